"""astrolake's benchmark harness: ``python -m bench`` (or ``make bench``).

Measures, in one run on this machine, each figure next to a reference measured in the same run:

* ingest rate of ``catalogs.ingest.events.ingest_events`` (Parquet and CSV files) against the bare
  cost of pyarrow reading the same files and ``deltalake.write_deltalake`` writing the same rows;
* warm query latency through ``engine.connect(lake).sql(...)`` against DuckDB's own
  ``read_parquet`` over the same snapshot files (latest and ``VERSION AS OF``), and a cold first
  query for information.

The results go to docs/benchmarks.md (overwritten each run). Modules:

* ``bench.machine``   what the run ran on (CPU, cores, memory, library versions)
* ``bench.timing``    clocks: one timed call, medians, per-stage time of a call
* ``bench.workload``  the input event files (Parquet, CSV) made like the demo lake's
* ``bench.ingest_bench`` and ``bench.query_bench``  the measurements
* ``bench.report``    the markdown
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR = REPO_ROOT / "bench" / "work"
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
GOAL_QUERY_RATIO = 1.2  # astrolake / plain DuckDB, warm median
BUSY_SHARE = 0.05  # other processes' share of the CPU during a run above which the report warns
