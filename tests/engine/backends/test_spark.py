"""Delta on Spark through delta-rs: reads of exact snapshots, atomic writes, both directions."""

import os
import shutil
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

import engine
from catalogs.lake import Lake
from engine.errors import LakeError, QueryError, SchemaMismatchError
from tests.catalogs.test_lake import events
from tests.conftest import SPARK_MISSING, run_astrolake

pytestmark = [pytest.mark.spark, pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))]


@pytest.fixture
def spark_session_for(lake_path):
    with engine.connect(lake_path, engine="spark") as session:
        yield session


def count(session, table="signal_events", clause=""):
    return session.sql(f"SELECT count(*) AS n FROM {table} {clause}")["n"][0].as_py()


def test_spark_writes_delta_that_duckdb_reads(spark_session_for, lake_path):
    spark = spark_session_for
    spark.lake.append("signal_events", events(4))
    made = spark.sql("CREATE TABLE strong AS SELECT target, snr, observed_at FROM signal_events WHERE snr >= 22")
    assert made.to_pylist() == [{"table": "strong", "version": 0, "rows_written": 2}]
    spark.sql("INSERT INTO strong VALUES ('Tau Ceti', 99.5, TIMESTAMP '2020-01-01 00:00:00')")
    with engine.connect(lake_path) as duck:
        got = duck.sql("SELECT target, snr, observed_at FROM strong ORDER BY snr")
    assert got["snr"].to_pylist() == [22.0, 23.0, 99.5]
    assert got.schema.field("observed_at").type == pa.timestamp("us", tz="UTC")
    assert str(got["observed_at"][2].as_py()) == "2020-01-01 00:00:00+00:00"
    # the files are Spark's, in a folder of their own, committed by one Delta log entry each
    history = Lake(lake_path).history("strong")
    assert [h["operation"] for h in history] == ["WRITE", "CREATE TABLE"]
    log = sorted(p.name for p in (lake_path / "strong" / "_delta_log").glob("*.json"))
    assert log == ["00000000000000000000.json", "00000000000000000001.json"]


def test_duckdb_writes_delta_that_spark_reads(spark_session_for, lake_path):
    with engine.connect(lake_path) as duck:
        duck.lake.append("signal_events", events(3))
        duck.sql("CREATE TABLE picked AS SELECT event_id, snr FROM signal_events WHERE snr > 20")
    assert spark_session_for.sql("SELECT sum(snr) AS s FROM picked")["s"][0].as_py() == 43.0


def test_spark_insert_into_a_partitioned_catalog_table(spark_session_for, lake_path):
    spark = spark_session_for
    spark.lake.append("signal_events", events(2))
    spark.sql("""INSERT INTO signal_events (event_id, observed_at, target, ra_deg, dec_deg, freq_hz, drift_hz_s, snr)
                 VALUES (99, TIMESTAMP '2018-05-05 12:00:00', 'Ross 128', 176.935, 0.8042, 4.4e9, 0.1, 17.5)""")
    lake = Lake(lake_path)
    snap = lake.snapshot("signal_events")
    assert any("obs_date=2018-05-05" in f and "/spark-" in f for f in snap.files)
    with engine.connect(lake_path) as duck:
        row = duck.sql("SELECT obs_date, target FROM signal_events WHERE event_id = 99").to_pylist()
    assert str(row[0]["obs_date"]) == "2018-05-05" and row[0]["target"] == "Ross 128"
    # files from two writers (delta-rs and Spark) in one read, partition pruning on both
    assert count(spark, clause="WHERE obs_date = DATE'2018-05-05'") == 1
    assert count(spark) == 3


def test_overwritten_files_are_never_read(spark_session_for, lake_path):
    spark = spark_session_for
    spark.sql("CREATE TABLE t AS SELECT 1 AS x UNION ALL SELECT 2")
    spark.sql("CREATE OR REPLACE TABLE t AS SELECT 10 AS x")
    parquet_files = list((lake_path / "t").rglob("*.parquet"))
    assert len(parquet_files) >= 2  # the replaced file is still on disk
    assert spark.sql("SELECT x FROM t").to_pylist() == [{"x": 10}]
    assert sorted(r["x"] for r in spark.sql("SELECT x FROM t VERSION AS OF 0").to_pylist()) == [1, 2]
    with engine.connect(lake_path) as duck:
        assert duck.sql("SELECT x FROM t").to_pylist() == [{"x": 10}]


def test_a_commit_after_the_session_started_is_seen(spark_session_for, lake_path):
    spark = spark_session_for
    assert count(spark) == 0
    Lake(lake_path).append("signal_events", events(5))
    assert count(spark) == 5
    assert count(spark, clause="VERSION AS OF 0") == 0


def test_a_failed_job_leaves_no_trace(spark_session_for, lake_path):
    spark = spark_session_for
    spark.lake.append("signal_events", events(3))
    before = (spark.lake.delta_table("signal_events").version(), sorted(spark.lake.snapshot("signal_events").files))
    folders_before = sorted(p.name for p in (lake_path / "signal_events").iterdir())
    # freq_hz may not be null: the check runs inside the Spark job, which fails part-way
    with pytest.raises(QueryError, match="column 'freq_hz' of table 'signal_events' may not be null"):
        spark.sql("""INSERT INTO signal_events (event_id, observed_at, target, ra_deg, dec_deg, freq_hz, drift_hz_s, snr)
                     SELECT event_id + 100, observed_at, target, ra_deg, dec_deg,
                            CASE WHEN snr > 21 THEN NULL ELSE freq_hz END, drift_hz_s, snr
                     FROM signal_events""")
    after = (spark.lake.delta_table("signal_events").version(), sorted(spark.lake.snapshot("signal_events").files))
    assert after == before
    assert sorted(p.name for p in (lake_path / "signal_events").iterdir()) == folders_before
    assert count(spark) == 3


def test_schema_mismatch_on_insert_writes_nothing(spark_session_for):
    spark = spark_session_for
    with pytest.raises(SchemaMismatchError, match="has no column 'snrr'"):
        spark.sql("INSERT INTO signal_events (event_id, snrr) VALUES (1, 2.0)")
    assert spark.lake.delta_table("signal_events").version() == 0


def test_concurrent_appends_both_land(spark_session_for, lake_path):
    spark = spark_session_for
    spark.sql("CREATE TABLE log AS SELECT 0 AS writer, 0 AS i")
    errors = []

    def spark_writer():
        try:
            for i in range(3):
                spark.sql(f"INSERT INTO log VALUES (1, {i})")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def duckdb_writer():
        try:
            with engine.connect(lake_path) as duck:
                for i in range(3):
                    duck.sql(f"INSERT INTO log VALUES (2, {i})")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=spark_writer), threading.Thread(target=duckdb_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = spark.sql("SELECT writer, count(*) AS n FROM log GROUP BY writer ORDER BY writer").to_pylist()
    assert rows == [{"writer": 0, "n": 1}, {"writer": 1, "n": 3}, {"writer": 2, "n": 3}]
    assert Lake(lake_path).delta_table("log").version() == 6


def test_a_conflicting_overwrite_never_erases_a_concurrent_append(lake_path):
    """An overwrite planned before another writer's append: refused, or committed without losing it."""
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import CommitProperties

    lake = Lake(lake_path)
    lake.create_table("t", pa.table({"x": [1]}))
    stale = Lake(lake_path).delta_table("t")  # a writer that read version 0
    lake.append("t", pa.table({"x": [2]}))  # someone else appends: version 1
    with pytest.raises(CommitFailedError):
        stale.create_write_transaction([], mode="overwrite", schema=stale.schema(),
                                       commit_properties=CommitProperties(max_commit_retries=0))
    assert sorted(pa.table(Lake(lake_path).delta_table("t").to_pyarrow_table())["x"].to_pylist()) == [1, 2]
    stale.create_write_transaction([], mode="overwrite", schema=stale.schema())  # retried: it rebases
    assert pa.table(Lake(lake_path).delta_table("t").to_pyarrow_table())["x"].to_pylist() == [2]


@pytest.mark.slow
def test_cli_on_spark_and_a_missing_java(demo_lake_path, tmp_path):
    done = run_astrolake("--engine", "spark", "--master", "local[1]", "--lake", str(demo_lake_path), "sql",
                         "SELECT target, count(*) AS n FROM signal_events WHERE snr > 1000 GROUP BY target",
                         "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout == '"target","n"\n"Voyager-1",3\n'
    done = run_astrolake("--lake", str(demo_lake_path), "--engine", "spark", "--conf", "spark.sql.shuffle.partitions=3",
                         "shell", input="SELECT count(*) AS n FROM signal_events WHERE snr > 1000;\n")
    assert done.returncode == 0 and " 3\n(1 row)" in done.stdout
    no_java = {"PATH": str(Path(sys.executable).parent), "JAVA_HOME": ""}
    done = run_astrolake("--engine", "spark", "--lake", str(tmp_path / "l"), "sql", "SELECT 1", env=no_java)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: the spark engine needs Java 17 or newer: "
                                   "no 'java' on PATH and JAVA_HOME is not set")
    done = run_astrolake("--engine", "duckdb", "--master", "local[1]", "--lake", str(tmp_path / "l"), "tables")
    assert done.returncode == 2 and "--master and --conf apply to --engine spark" in done.stderr


def test_tables_with_binary_columns_are_read_in_small_batches(spark_session_for, lake_path):
    """Spark's Parquet reader fills 4,096 rows per batch; with megabyte images that is gigabytes
    of heap, so a statement over a table with BINARY columns reads small batches, and only it."""
    from engine.backends.spark import BLOB_READER_BATCH_ROWS

    lake = Lake(lake_path)
    lake.append("images", pa.table({"image_id": ["a", "b"], "width": pa.array([2, 2], pa.int32()),
                                    "height": pa.array([1, 1], pa.int32()),
                                    "pixels": pa.array([b"\0" * 8, b"\1" * 8], pa.binary())}))
    session = spark_session_for
    backend = session.backend
    images = backend.relation(lake.snapshot("images"))
    events_view = backend.relation(lake.snapshot("signal_events"))
    key = "spark.sql.parquet.columnarReaderBatchSize"
    before = backend.spark.conf.get(key)
    with backend._reading_blobs(f"SELECT octet_length(pixels) FROM {images}"):
        assert backend.spark.conf.get(key) == str(BLOB_READER_BATCH_ROWS)
    assert backend.spark.conf.get(key) == before
    with backend._reading_blobs(f"SELECT count(*) FROM {events_view}"):
        assert backend.spark.conf.get(key) == before
    assert session.sql("SELECT image_id, length(pixels) AS n FROM images ORDER BY image_id").to_pylist() == [
        {"image_id": "a", "n": 8}, {"image_id": "b", "n": 8}]
