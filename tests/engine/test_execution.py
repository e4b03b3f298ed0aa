"""The execution suite: the same SQL on every engine, checked against pyarrow computations."""

import datetime as dt
import re
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import engine
from catalogs.lake import Lake
from engine.errors import (
    CompileError,
    SqlSyntaxError,
    UnknownColumnError,
    UnknownTableError,
    UnsupportedFunctionError,
    UnsupportedStatementError,
    VersionNotFoundError,
)

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def demo_rows(demo_lake_path):
    return pa.table(Lake(demo_lake_path).delta_table("signal_events").to_pyarrow_table())


def test_returns_arrow(demo_session):
    result = demo_session.sql("SELECT count(*) AS n FROM signal_events")
    assert isinstance(result, pa.Table)
    assert result.column_names == ["n"]


def test_group_by_matches_pyarrow(demo_session, demo_rows):
    got = demo_session.sql(
        "SELECT target, count(*) AS hits, max(snr) AS best FROM signal_events WHERE snr > 25 "
        "GROUP BY target ORDER BY target")
    strong = demo_rows.filter(pc.greater(demo_rows["snr"], 25))
    want = strong.group_by("target").aggregate([("snr", "count"), ("snr", "max")]).sort_by("target")
    assert got["target"].to_pylist() == want["target"].to_pylist()
    assert got["hits"].to_pylist() == want["snr_count"].to_pylist()
    assert got["best"].to_pylist() == want["snr_max"].to_pylist()


def test_spark_functions_are_translated(demo_session, demo_rows):
    got = demo_session.sql(
        "SELECT year(observed_at) AS y, count(*) AS n, approx_count_distinct(target) AS targets, "
        "percentile_approx(snr, 0.5) AS median_snr "
        "FROM signal_events GROUP BY year(observed_at) ORDER BY y")
    years = pc.year(demo_rows["observed_at"])
    assert got["y"].to_pylist() == sorted(set(years.to_pylist()))
    assert sum(got["n"].to_pylist()) == demo_rows.num_rows
    assert all(25 <= t <= 35 for t in got["targets"].to_pylist())


def test_window_functions_and_subqueries(demo_session, demo_rows):
    got = demo_session.sql("""
        SELECT target, snr FROM (
          SELECT target, snr, row_number() OVER (PARTITION BY target ORDER BY snr DESC, event_id) AS r
          FROM signal_events) t
        WHERE r = 1 ORDER BY target""")
    want = demo_rows.group_by("target").aggregate([("snr", "max")]).sort_by("target")
    assert got["snr"].to_pylist() == want["snr_max"].to_pylist()


def test_self_join_with_aliases(demo_session):
    got = demo_session.sql("""
        SELECT a.target, count(*) AS n
        FROM signal_events a JOIN signal_events b
          ON a.target = b.target AND a.event_id < b.event_id AND abs(a.freq_hz - b.freq_hz) < 1000
             AND a.obs_date <> b.obs_date
        WHERE a.target = 'Proxima Centauri' AND abs(a.drift_hz_s) BETWEEN 0.01 AND 0.1
          AND abs(b.drift_hz_s) BETWEEN 0.01 AND 0.1
        GROUP BY a.target""")
    # the five BLC1-like hits on five days pair up 10 ways
    assert got.to_pylist() == [{"target": "Proxima Centauri", "n": 10}]


def test_partition_filter_prunes_files(demo_session):
    plan = demo_session.explain("SELECT count(*) FROM signal_events WHERE obs_date = DATE'2016-09-26'")
    if demo_session.engine == "duckdb":
        assert re.search(r"Scanning Files: 1/\d+", plan)
    else:
        assert re.search(r"PartitionFilters: \[.*obs_date.* = 2016-09-26", plan)
    assert demo_session.sql(
        "SELECT count(*) AS n FROM signal_events WHERE obs_date = DATE'2016-09-26' AND target = 'Voyager-1' "
        "AND snr > 250")["n"][0].as_py() == 9


def test_time_travel_version_as_of(demo_session):
    counts = [demo_session.sql(f"SELECT count(*) AS n FROM signal_events VERSION AS OF {v}")["n"][0].as_py()
              for v in range(5)]
    assert counts[0] == 0 and counts == sorted(counts) and len(set(counts)) == 5
    assert demo_session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py() == counts[4]


def test_time_travel_timestamp_as_of(lake_path, engine_name):
    from tests.catalogs.test_lake import events

    with engine.connect(lake_path, engine=engine_name) as session:
        session.lake.append("signal_events", events(2))
        between = dt.datetime.now(UTC).isoformat()
        time.sleep(0.05)
        session.lake.append("signal_events", events(5, 10))
        q = "SELECT count(*) AS n FROM signal_events TIMESTAMP AS OF '{}'"
        assert session.sql(q.format(between))["n"][0].as_py() == 2
        assert session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py() == 7
        with pytest.raises(VersionNotFoundError, match="did not exist at 1999"):
            session.sql(q.format("1999-01-01"))
        with pytest.raises(VersionNotFoundError, match="has no version 9"):
            session.sql("SELECT * FROM signal_events VERSION AS OF 9")


def test_commits_after_the_session_started_are_seen(lake_path, engine_name):
    from tests.catalogs.test_lake import events

    with engine.connect(lake_path, engine=engine_name) as session:
        assert session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py() == 0
        Lake(lake_path).append("signal_events", events(4))
        assert session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py() == 4


def test_create_table_as_and_insert_into(lake_path, engine_name, demo_lake_path):
    from tests.catalogs.test_lake import events

    with engine.connect(lake_path, engine=engine_name) as session:
        session.lake.append("signal_events", events(3))
        made = session.sql("CREATE TABLE strong AS SELECT target, snr FROM signal_events WHERE snr >= 21")
        assert made.to_pylist() == [{"table": "strong", "version": 0, "rows_written": 2}]
        session.sql("INSERT INTO strong VALUES ('Tau Ceti', 99.5)")
        session.sql("INSERT INTO strong (snr, target) SELECT 50.0, 'Ross 128'")
        got = session.sql("SELECT target, snr FROM strong ORDER BY snr")
        assert got.to_pylist() == [
            {"target": "TRAPPIST-1", "snr": 21.0}, {"target": "TRAPPIST-1", "snr": 22.0},
            {"target": "Ross 128", "snr": 50.0}, {"target": "Tau Ceti", "snr": 99.5}]
        assert session.sql("SELECT count(*) AS n FROM strong VERSION AS OF 0")["n"][0].as_py() == 2
        session.sql("CREATE OR REPLACE TABLE strong AS SELECT 1 AS one")
        assert session.sql("SELECT * FROM strong").to_pylist() == [{"one": 1}]
        assert "strong" in session.sql("SHOW TABLES")["table"].to_pylist()
    # another session (and so another engine run) reads what this one wrote
    with engine.connect(lake_path) as other:
        assert other.sql("SELECT * FROM strong").to_pylist() == [{"one": 1}]


def test_insert_into_catalog_table_is_schema_checked(lake_path, engine_name):
    from engine.errors import SchemaMismatchError

    with engine.connect(lake_path, engine=engine_name) as session:
        with pytest.raises(SchemaMismatchError):
            session.sql("INSERT INTO signal_events (event_id, target) VALUES (1, 'x')")
        assert session.lake.info("signal_events").version == 0


def test_describe_and_show(demo_session):
    described = demo_session.sql("DESCRIBE signal_events")
    assert described["column"].to_pylist()[:3] == ["event_id", "observed_at", "target"]
    row = described.filter(pc.equal(described["column"], "freq_hz")).to_pylist()[0]
    assert row["unit"] == "Hz" and row["type"] == "double"
    tables = demo_session.sql("SHOW TABLES")
    assert {"signal_events", "images", "sources", "spectra", "spectrograms", "voltages"} <= set(tables["table"].to_pylist())


@pytest.mark.parametrize("sql, error, message", [
    ("SELECT snrr FROM signal_events", UnknownColumnError, "unknown column 'snrr' \\(did you mean 'snr'\\?\\)"),
    ("SELECT * FROM signal_event", UnknownTableError, "unknown table 'signal_event' \\(did you mean 'signal_events'\\?\\)"),
    ("SELECT no_such_fn(snr) FROM signal_events", UnsupportedFunctionError, "function 'no_such_fn' is not supported on"),
    ("SELECT * FROM signal_events WHERE", SqlSyntaxError, "syntax error at line 1"),
    ("DELETE FROM signal_events WHERE snr < 1", UnsupportedStatementError, "DELETE statements are not supported"),
    ("INSERT OVERWRITE signal_events SELECT * FROM signal_events", UnsupportedStatementError, "INSERT OVERWRITE"),
    ("SELECT * FROM signal_events VERSION AS OF 'x'", CompileError, "integer version"),
])
def test_errors(demo_session, sql, error, message):
    with pytest.raises(error, match=message):
        demo_session.sql(sql)


def test_a_failed_query_leaves_the_session_usable(demo_session):
    with pytest.raises(UnknownColumnError):
        demo_session.sql("SELECT nope FROM signal_events")
    assert demo_session.sql("SELECT 1 AS one").to_pylist() == [{"one": 1}]


def test_timestamps_come_back_as_utc(demo_session):
    got = demo_session.sql("SELECT observed_at FROM signal_events WHERE snr = 1289.3")
    assert got.schema.field("observed_at").type == pa.timestamp("us", tz="UTC")
    assert got["observed_at"][0].as_py() == dt.datetime(2016, 9, 26, 18, 46, 13, tzinfo=UTC)


@pytest.mark.parametrize("sql", [
    "SELECT count(*) AS n FROM signal_events WHERE snr > 1000",
    "SELECT count(*) AS n FROM signal_events WHERE 1000 < snr AND freq_hz BETWEEN 8e9 AND 9e9",
    "SELECT count(*) AS n FROM signal_events e LEFT JOIN targets t ON t.name = e.target WHERE e.snr > 250",
    "SELECT count(*) AS n FROM (SELECT * FROM signal_events WHERE snr > 250) s WHERE snr < 400",
    "SELECT count(*) AS n FROM signal_events WHERE snr > 1000 OR target = 'Vega'",
    "SELECT count(*) AS n FROM signal_events WHERE snr = -1",
])
def test_file_skipping_by_log_statistics_keeps_answers(demo_session, demo_rows, sql):
    import duckdb

    con = duckdb.connect()
    con.register("signal_events", demo_rows)
    con.register("targets", pa.table(Lake(demo_session.lake.root).delta_table("targets").to_pyarrow_table()))
    assert demo_session.sql(sql)["n"][0].as_py() == con.execute(sql).fetchone()[0]


def test_file_skipping_reads_fewer_files(demo_session):
    tree = demo_session.bind(engine.sqlfront.parse_one("SELECT * FROM signal_events WHERE snr > 1000"))
    from engine.rewrites import lake_tables

    relation = lake_tables(tree)[0].name
    assert re.search(r"_[0-9a-f]{8}$", relation)  # a relation over a subset of the files
    whole = demo_session.lake.snapshot("signal_events")
    from engine.rewrites import Bound

    pruned = demo_session.lake.prune(whole, (Bound("snr", ">", 1000.0),))
    assert 0 < len(pruned.files) < len(whole.files)
