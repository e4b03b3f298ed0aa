# The whole set-up: `make run` and `make test`. Both create .venv and install astrolake into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAKE ?= lake
STAMP := $(VENV)/.installed

.PHONY: ext run test check bench bench-spark bench-dedoppler clean

C_SOURCES := $(wildcard udfs/*.c udfs/*.h)

$(STAMP): pyproject.toml $(C_SOURCES)  # (the install compiles the C files)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

# Build the deterministic demo lake (once) and run every query in queries/ on embedded DuckDB.
run: $(STAMP)
	$(BIN)/astrolake --lake $(LAKE) demo
	@for f in queries/*.sql queries/*.sky; do \
		echo; echo "== $$f"; \
		$(BIN)/astrolake --lake $(LAKE) run $$f || exit 1; \
	done

# Rebuild the C extensions in place after editing them (the install builds them once).
ext: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps -e .

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The expected results in queries/ are those of the 20k-event demo lake (the tests' lake).
check: $(STAMP)
	$(BIN)/astrolake --lake lake-check demo --events 20000
	$(BIN)/astrolake --lake lake-check check queries

bench: $(STAMP)
	$(BIN)/python -m bench

# Spark next to plain Spark and DuckDB at 10M and 100M events (needs Java 17; several minutes).
bench-spark: $(STAMP)
	$(BIN)/python -m bench.spark_bench

# dedoppler next to turboSETI 2.3.2, which gets its own virtualenv (it needs numpy < 2).
TURBO_VENV := bench/.turbo-venv
bench-dedoppler: $(STAMP)
	test -x $(TURBO_VENV)/bin/python || ($(PYTHON) -m venv $(TURBO_VENV) && \
		$(TURBO_VENV)/bin/python -m pip install --quiet 'numpy<2' turbo_seti==2.3.2)
	$(BIN)/python -m bench.dedoppler_bench

clean:
	rm -rf $(VENV) $(LAKE) lake-check bench/work
