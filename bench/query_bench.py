"""Query latency: astrolake's session path against DuckDB reading the same snapshot files.

astrolake side: one session, ``session.sql(text)`` with the query text each time, so every run
pays parsing, binding (the Delta log refresh of ``Lake.snapshot``), compiling and the DuckDB view.
Reference side: one plain ``duckdb.connect()``, the same query written directly over
``read_parquet([the snapshot's files], hive_partitioning = true)``; the file list is taken from the
Delta log with deltalake once, before timing. Warm figures: one warm-up run each, then ``runs``
runs alternating the two sides, median of each. Every run's rows are compared (they must be equal).
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

import engine
from bench.timing import median_seconds, settle, timed
from catalogs.demo import build_demo
from catalogs.lake import Lake
from engine.sqlfront import parse_one

TABLE = "signal_events"
TOP_K = (
    "SELECT target, count(*) AS hits, max(snr) AS best_snr FROM {events} "
    "WHERE snr > 25 AND freq_hz BETWEEN 1.4e9 AND 1.8e9 "
    "GROUP BY target ORDER BY best_snr DESC, target LIMIT 10"
)


@dataclass(frozen=True)
class QueryShape:
    name: str
    template: str  # with {events} where the table goes
    version: int | None = None  # None: the latest version

    @property
    def astrolake_sql(self) -> str:
        events = TABLE if self.version is None else f"{TABLE} VERSION AS OF {self.version}"
        return self.template.format(events=events)

    def duckdb_sql(self, files: list[str]) -> str:
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return self.template.format(events=f"read_parquet([{listed}], hive_partitioning = true)")


SHAPES = (
    QueryShape("filter + group-by + top-10, latest version", TOP_K),
    QueryShape("the same, time travel (VERSION AS OF 2)", TOP_K, version=2),
)


@dataclass
class QueryFigures:
    shape: QueryShape
    files: int
    result_rows: int
    astrolake_seconds: list[float]
    duckdb_seconds: list[float]

    @property
    def astrolake_median_seconds(self) -> float:
        return statistics.median(self.astrolake_seconds)

    @property
    def duckdb_median_seconds(self) -> float:
        return statistics.median(self.duckdb_seconds)

    @property
    def ratio(self) -> float:
        return self.astrolake_median_seconds / self.duckdb_median_seconds


@dataclass
class QueryBench:
    lake_rows: int
    lake_versions: int
    build_seconds: float
    shapes: list[QueryFigures]
    cold_astrolake_seconds: float
    cold_duckdb_seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)  # the first shape, warm medians

    @property
    def cold_ratio(self) -> float:
        return self.cold_astrolake_seconds / self.cold_duckdb_seconds


def snapshot_files(lake_path: Path, version: int | None = None) -> list[str]:
    """The data files of a version, straight from the Delta log (not through astrolake)."""
    return DeltaTable(str(lake_path / TABLE), version=version).file_uris()


def plain_duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # as astrolake's backend does; this query has no timestamps
    return con


def check_same(shape: QueryShape, ours: pa.Table, theirs: pa.Table) -> None:
    if ours.to_pylist() != theirs.to_pylist():
        raise AssertionError(
            f"{shape.name}: astrolake and DuckDB disagree\nastrolake: {ours.to_pylist()}\nduckdb: {theirs.to_pylist()}"
        )


def bench_shape(session, con, lake_path: Path, shape: QueryShape, runs: int) -> QueryFigures:
    files = snapshot_files(lake_path, shape.version)
    ours_sql, theirs_sql = shape.astrolake_sql, shape.duckdb_sql(files)

    def ours():
        return session.sql(ours_sql)

    def theirs():
        return con.sql(theirs_sql).to_arrow_table()

    first = ours()
    check_same(shape, first, theirs())  # the warm-up runs
    astrolake_seconds, duckdb_seconds = [], []
    for _ in range(runs):
        seconds, a = timed(ours)
        astrolake_seconds.append(seconds)
        seconds, b = timed(theirs)
        duckdb_seconds.append(seconds)
        check_same(shape, a, b)
    return QueryFigures(shape, len(files), first.num_rows, astrolake_seconds, duckdb_seconds)


def cold_seconds(lake_path: Path, shape: QueryShape, sessions: int) -> tuple[float, float]:
    """Median over ``sessions`` new sessions of their first query, astrolake and plain DuckDB.

    astrolake: connect (open the lake, a new DuckDB) and run. DuckDB: open the Delta table for
    its file list, connect and run. In this (warm) Python process, with the files in the page
    cache: imports and first-use set-up of sqlglot are not counted.
    """
    def ours():
        with engine.connect(str(lake_path)) as session:
            return session.sql(shape.astrolake_sql)

    def theirs():
        con = plain_duckdb()
        try:
            return con.sql(shape.duckdb_sql(snapshot_files(lake_path, shape.version))).to_arrow_table()
        finally:
            con.close()

    check_same(shape, ours(), theirs())
    return median_seconds(ours, sessions), median_seconds(theirs, sessions)


def stage_seconds(session, shape: QueryShape, runs: int) -> dict[str, float]:
    """Warm medians of the steps of ``session.sql`` for one query, each timed on its own."""
    text = shape.astrolake_sql
    tree = parse_one(text)
    bound = session.bind(tree)
    compiled = session.backend.compile(bound)
    cheap = max(runs, 50)
    return {
        "parse (sqlglot, Spark dialect)": median_seconds(lambda: parse_one(text), cheap),
        "Lake.snapshot (Delta log refresh: update_incremental)": median_seconds(
            lambda: session.lake.snapshot(TABLE, shape.version), cheap),
        "bind (tree copy + table rewrite, includes Lake.snapshot)": median_seconds(lambda: session.bind(tree), cheap),
        "compile (function check + DuckDB SQL from sqlglot)": median_seconds(
            lambda: session.backend.compile(bound), cheap),
        "run on DuckDB (the view over the same files)": median_seconds(lambda: session.backend.run(compiled), runs),
        "whole session.sql": median_seconds(lambda: session.sql(text), runs),
    }


def build_lake(lake_path: Path, n_events: int, seed: int) -> tuple[float, Lake]:
    shutil.rmtree(lake_path, ignore_errors=True)
    lake = Lake(lake_path)
    seconds, _ = timed(lambda: build_demo(lake, n_events=n_events, seed=seed))
    return seconds, lake


def bench_queries(work_dir: Path, n_events: int, runs: int, seed: int) -> QueryBench:
    lake_path = work_dir / "query-lake"
    build, lake = build_lake(lake_path, n_events, seed)
    info = lake.info(TABLE)
    settle()
    session = engine.connect(lake)
    con = plain_duckdb()
    try:
        shapes = [bench_shape(session, con, lake_path, shape, runs) for shape in SHAPES]
        stages = stage_seconds(session, SHAPES[0], runs)
    finally:
        con.close()
        session.close()
    cold_ours, cold_theirs = cold_seconds(lake_path, SHAPES[0], min(runs, 3))
    return QueryBench(info.rows, info.version, build, shapes, cold_ours, cold_theirs, stages)
