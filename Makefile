# The whole set-up: `make run` and `make test`. Both create .venv and install astrolake into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAKE ?= lake
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-spark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

# Build the deterministic demo lake (once) and run every query in queries/ on embedded DuckDB.
run: $(STAMP)
	$(BIN)/astrolake --lake $(LAKE) demo
	@for f in queries/*.sql; do \
		echo; echo "== $$f"; \
		$(BIN)/astrolake --lake $(LAKE) sql --file $$f || exit 1; \
	done

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

# Spark next to plain Spark and DuckDB at 10M and 100M events (needs Java 17; several minutes).
bench-spark: $(STAMP)
	$(BIN)/python -m bench.spark_bench

clean:
	rm -rf $(VENV) $(LAKE) bench/work
