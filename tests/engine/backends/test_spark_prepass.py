"""Library calls on Spark, evaluated by pyarrow in the tasks (engine/backends/spark_prepass.py).

The WHERE translation and the per-piece evaluation are checked without Spark, against DuckDB;
the Spark queries run with the pre-pass and on Spark's UDF path and must return the same rows
(and DuckDB's).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

import engine
from engine.backends import function_prepass, spark_prepass
from engine.errors import QueryError
from engine.sqlfront import parse_one
from tests.conftest import SPARK_MISSING
from tests.engine.backends.test_function_prepass import SAME_RESULT, lake_path, rows  # noqa: F401 - fixture

BATCH = pa.table({
    "n": pa.array([1, 2, 3, None, 5, -6], pa.int64()),
    "x": pa.array([0.5, None, 2.5, 3.5, -1.0, 10.0], pa.float64()),
    "name": pa.array(["img-1", "IMG-2", None, "b%c", "img-5", "other"]),
    "ok": pa.array([True, False, None, True, True, False]),
    "t": pa.array([0, 1, 2, 3, 4, 5], pa.timestamp("us", tz="UTC")),
    "day": pa.array([18262, 18263, None, 18264, 18262, 18265], pa.date32()),
})
COLUMNS = {f.name: f.type for f in BATCH.schema}

TRANSLATED = [
    "n > 2", "n = 2", "n <> 2", "x <= 2.5", "-n < -1", "abs(n) >= 5", "n + 1 > 3", "n * 2 = x * 2",
    "n - x > 0", "ok", "NOT ok", "n > 1 AND x > 1", "n > 4 OR x IS NULL", "NOT (n > 1 OR x < 0)",
    "name IS NULL", "NOT name IS NULL", "n BETWEEN 2 AND 5", "x BETWEEN -1 AND 1",
    "n IN (1, 5, 7)", "name IN ('img-1', 'other')", "name LIKE 'img-%'", "name LIKE 'b%c'",
    "name ILIKE 'img-%'", "name = 'IMG-2'", "ok = TRUE", "(n > 1)",
    "day >= DATE '2020-01-02'", "day = CAST('2020-01-01' AS DATE)",
    "t > TIMESTAMP '1970-01-01 00:00:00.000002'", "t BETWEEN TIMESTAMP '1970-01-01' AND TIMESTAMP '1970-01-01 00:00:00.000003'",
]
NOT_TRANSLATED = [
    "n / 2 > 1", "n % 2 = 1", "CAST(x AS INT) = 2", "t > '1970-01-01'", "n = '2'", "NOT n IN (1, 2)",
    "n <=> 2", "name LIKE concat('img', '%')", "name LIKE 'b\\%c'", "n IN (1, x)",
    "day = DATE '2020-1-2'", "day = DATE '2019-02-30'", "t > TIMESTAMP '2020-01-01T10:00'", "day > t",
]


def duckdb_rows(where: str) -> list:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("batch", BATCH)
    sql = sqlglot.transpile(f"SELECT * FROM batch WHERE {where}", read="spark", write="duckdb")[0]
    return rows(con.sql(sql).to_arrow_table())


@pytest.mark.parametrize("where", TRANSLATED)
def test_a_translated_conjunct_keeps_the_rows_sql_keeps(where):
    node = sqlglot.parse_one(where, read="spark")
    expression = spark_prepass.arrow_filter(node, COLUMNS)
    assert expression is not None, where
    assert rows(BATCH.filter(expression)) == duckdb_rows(where)


@pytest.mark.parametrize("where", NOT_TRANSLATED)
def test_a_conjunct_whose_meaning_could_differ_stays_in_the_query(where):
    assert spark_prepass.arrow_filter(sqlglot.parse_one(where, read="spark"), COLUMNS) is None


@pytest.mark.parametrize("literal, arrow_type, expected", [
    ("512", pa.int32(), 512), ("-3", pa.int64(), -3), ("1.5", pa.float32(), 1.5), ("0.1", pa.float64(), 0.1),
    ("'GBT'", pa.string(), "GBT"), ("0.1", pa.float32(), None), ("3000000000", pa.int32(), None),
    ("'5'", pa.int32(), None), ("2.5", pa.int32(), None), ("NULL", pa.int32(), None),
])
def test_plain_literals_are_cast_without_spark_only_when_exact(literal, arrow_type, expected):
    got = function_prepass.plain_literal(sqlglot.parse_one(literal, read="spark"), arrow_type)
    assert (None if got is None else got.as_py()) == expected
    if got is not None:
        assert got.type == arrow_type


def test_each_piece_gives_the_rows_duckdb_gives(lake_path):
    """A partitioned table, a pushed filter and a kept one, evaluated piece by piece as the tasks do."""
    query = ("SELECT event_id, obs_date, doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) AS f "
             "FROM signal_events WHERE snr > 20 AND target LIKE 'T%' AND obs_date >= DATE '2019-06-01' "
             "AND year(observed_at) < 2030")
    with engine.connect(lake_path) as duck:
        expected = duck.sql(query)
        tree = duck.bind(parse_one(query))
        library = {s.name: s for s in duck.backend._library}
        rewritten, stages = function_prepass.plan(tree, duck.backend._snapshots, library,
                                                  can_push=spark_prepass.can_push)
        (stage,) = stages
        assert "obs_date" in stage.predicate.sql() and "YEAR" not in stage.predicate.sql().upper()
        assert "YEAR" in rewritten.sql().upper()  # a function call stays in the query
        pieces = [b for path, group in spark_prepass.pieces(stage.snapshot)
                  for b in spark_prepass.evaluate_piece(stage, path, group, _filter(stage), {}, stage.schema, 2)]
        duck.backend.con.register("piece_rows", pa.Table.from_batches(pieces, stage.schema))
        got = duck.backend.con.sql(
            'SELECT event_id, obs_date, "__fn0_0" AS f FROM piece_rows WHERE year(observed_at) < 2030'
        ).to_arrow_table()
    assert len(spark_prepass.pieces(stage.snapshot)) > 1
    assert rows(got) == rows(expected) and expected.num_rows > 0


def _filter(stage):
    return spark_prepass.stage_filter(stage.predicate, {f.name: f.type for f in stage.snapshot.schema})


# ---- on Spark ------------------------------------------------------------------------------

QUERIES = SAME_RESULT + [
    "SELECT image_id, size(sep_extract(pixels, width, height, 3.0)) AS n FROM images "
    "WHERE exptime_s BETWEEN 15 AND 60 AND image_id LIKE 'img-%'",
    "SELECT event_id, doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) AS f FROM signal_events "
    "WHERE obs_date >= DATE '2019-06-01' AND observed_at < TIMESTAMP '2021-01-01 00:00:00'",
]
# a conjunct without a library call that Spark would apply first, and the pre-pass could not
FILTER_FIRST = [q for q in QUERIES if "rand()" in q]


@pytest.fixture(scope="module")
def spark_sessions(lake_path):
    with_prepass = engine.connect(lake_path, engine="spark")
    without = engine.connect(lake_path, engine="spark", function_prepass=False)
    yield with_prepass, without
    with_prepass.close()
    without.close()


@pytest.mark.spark
@pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))
@pytest.mark.parametrize("query", QUERIES)
def test_the_spark_prepass_changes_no_result(spark_sessions, lake_path, query):
    with_prepass, without = spark_sessions
    assert ("function pre-pass" in with_prepass.explain(query)) == (query not in FILTER_FIRST)
    got, expected = with_prepass.sql(query), without.sql(query)
    assert got.column_names == expected.column_names
    assert rows(got) == rows(expected)
    with engine.connect(lake_path) as duck:
        assert rows(got) == rows(duck.sql(query))


@pytest.mark.spark
@pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))
def test_a_partition_filter_goes_into_the_stage(spark_sessions):
    with_prepass, without = spark_sessions
    query = ("SELECT count(*) AS n, max(distance(ra_deg, dec_deg, 0.0, 0.0)) AS d FROM signal_events "
             "WHERE obs_date = DATE '2019-06-01' OR obs_date = DATE '2016-09-26'")
    stages = with_prepass.explain(query).split("== Physical Plan ==")[0]
    assert "__astrolake_stage_0" in stages and "WHERE obs_date = CAST('2019-06-01' AS DATE)" in stages
    assert with_prepass.sql(query).to_pylist() == without.sql(query).to_pylist()


@pytest.mark.spark
@pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))
def test_a_data_file_gone_before_a_task_reads_it_is_a_query_error(lake_path, tmp_path):
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake_path, copy)
    query = "SELECT image_id, size(sep_extract(pixels, width, height, 3.0)) AS n FROM images"
    with engine.connect(copy, engine="spark") as session:
        assert session.sql(query).num_rows > 0
        victim = next((copy / "images").rglob("*.parquet"))
        victim.unlink()
        with pytest.raises(QueryError) as error:
            session.sql(query)
    assert victim.name in str(error.value) and "\n" not in str(error.value)


@pytest.mark.spark
@pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))
def test_a_spark_write_reads_the_stage(lake_path, tmp_path):
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake_path, copy)
    with engine.connect(copy, engine="spark") as session:
        session.sql("CREATE TABLE found AS SELECT image_id, size(sep_extract(pixels, width, height, 3.0)) AS n "
                    "FROM images WHERE exptime_s > 15")
        got = session.sql("SELECT image_id, n FROM found")
    with engine.connect(copy) as duck:
        expected = duck.sql("SELECT image_id, size(sep_extract(pixels, width, height, 3.0)) AS n "
                            "FROM images WHERE exptime_s > 15")
    assert rows(got) == rows(expected) and got.num_rows > 0


@pytest.mark.spark
@pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))
def test_a_stages_pieces_are_spread_over_the_cores(spark_sessions):
    with_prepass, _ = spark_sessions
    backend = with_prepass.backend
    tree = with_prepass.bind(parse_one("SELECT max(distance(ra_deg, dec_deg, 0.0, 0.0)) AS d FROM signal_events"))
    from udfs.registry import all_functions

    _, (stage,) = function_prepass.plan(tree, backend._snapshots, {s.name: s for s in all_functions()})
    n_pieces = len(spark_prepass.pieces(stage.snapshot))
    frame = spark_prepass.stage_frame(backend.spark, stage, spark_prepass.constant_values(backend.spark, [stage]))
    cores = backend.spark.sparkContext.defaultParallelism
    assert n_pieces > cores >= 2
    assert frame.rdd.getNumPartitions() == cores
