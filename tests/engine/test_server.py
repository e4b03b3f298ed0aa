"""`astrolake serve` with real clients: PyHive (Thrift) and beeline (JDBC) against one server.

One server per module (a JVM start is slow): a subprocess over a copy of the demo lake, read-only,
--max-rows 5000, --query-timeout 120.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SPARK_MISSING, run_astrolake
from tests.engine.serving import beeline, child_pids, connect, non_loopback_address, query, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING)),
]
pyhive = pytest.importorskip("pyhive", reason="PyHive is a dev dependency: pip install -e '.[dev]'")

DEMO_QUERIES = ["01_top_candidate_per_target", "02_water_hole_candidates", "03_drift_rate_histogram",
                "04_interference_frequencies", "05_spacecraft_and_one_offs", "06_hits_per_site_and_year",
                "08_proxima_repeats"]


@pytest.fixture(scope="module")
def lake_copy(demo_lake_path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("served") / "lake"
    shutil.copytree(demo_lake_path, path)
    return path


@pytest.fixture(scope="module")
def served(lake_copy):
    server = start_server(lake_copy, lake_copy.parent, "--max-rows", "5000", "--query-timeout", "120",
                          "--refresh-interval", "0.5")
    yield server
    server.stop()


def _norm(value):
    """A value as JDBC shows it: timestamps as naive UTC date-times, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", value):
        return dt.datetime.fromisoformat(value)
    return value


def _same_rows(jdbc_rows, table) -> None:
    expected = [tuple(_norm(v) for v in row.values()) for row in table.to_pylist()]
    got = [tuple(_norm(v) for v in row) for row in jdbc_rows]
    assert len(got) == len(expected), (got[:3], expected[:3])
    for g, e in zip(got, expected):
        assert len(g) == len(e)
        for a, b in zip(g, e):
            assert a == pytest.approx(b, rel=1e-12) if isinstance(b, float) else a == b, (g, e)


def _error(served, sql) -> str:
    with connect(served) as conn:
        cursor = conn.cursor()
        with pytest.raises(pyhive.exc.OperationalError) as caught:
            cursor.execute(sql)
            cursor.fetchall()
    return str(caught.value)


# ---- start, metadata, queries ------------------------------------------------------------

def test_it_serves_loopback_and_prints_the_jdbc_url(served):
    assert f"jdbc:hive2://127.0.0.1:{served.port}/default" in served.banner
    assert "read-only" in served.banner
    other = non_loopback_address()
    if other:  # loopback only: nothing listens on the machine's other addresses
        with pytest.raises(OSError):
            socket.create_connection((other, served.port), timeout=2).close()


def test_show_tables_and_the_metadata_calls_bi_tools_make(served, lake_copy):
    from TCLIService import ttypes

    from catalogs.lake import Lake

    lake = Lake(lake_copy, create=False)
    assert {r[1] for r in query(served, "SHOW TABLES")} == set(lake.table_names())
    with connect(served) as conn:
        def rows(request):
            response = getattr(conn.client, type(request).__name__[1:-3])(request)
            assert response.status.statusCode == 0, response.status
            cursor = conn.cursor()
            cursor._state = cursor._STATE_RUNNING
            cursor._operationHandle = response.operationHandle
            return cursor.fetchall(), [d[0].lower() for d in cursor.description]

        tables, names = rows(ttypes.TGetTablesReq(sessionHandle=conn.sessionHandle, tableName="%"))
        assert {r[names.index("table_name")] for r in tables} == set(lake.table_names())
        columns, names = rows(ttypes.TGetColumnsReq(sessionHandle=conn.sessionHandle, tableName="signal_events"))
        got = {(r[names.index("column_name")], r[names.index("type_name")]) for r in columns}
        schema = lake.schema("signal_events")
        assert {c for c, _ in got} == set(schema.names)
        assert ("freq_hz", "DOUBLE") in got and ("observed_at", "TIMESTAMP") in got and ("obs_date", "DATE") in got
        schemas, _ = rows(ttypes.TGetSchemasReq(sessionHandle=conn.sessionHandle))
        assert ("default", "") in [tuple(r) for r in schemas]
        functions, names = rows(ttypes.TGetFunctionsReq(sessionHandle=conn.sessionHandle, functionName="%"))
        listed = {r[names.index("function_name")].lower() for r in functions}
        assert {"doppler_correct", "sep_extract", "distance", "dedoppler"} <= listed


@pytest.mark.parametrize("name", DEMO_QUERIES)
def test_pyhive_gets_the_same_rows_as_astrolake_sql(served, demo_lake_path, name):
    import engine

    sql = (ROOT / "queries" / f"{name}.sql").read_text()
    with engine.connect(demo_lake_path) as session:
        expected = session.sql(sql)
    _same_rows(query(served, sql.strip().rstrip(";")), expected)


def test_beeline_gets_the_same_rows_as_astrolake_sql(served, demo_lake_path, tmp_path):
    import engine

    sqls = [(ROOT / "queries" / f"{n}.sql").read_text().strip() for n in ("03_drift_rate_histogram",
                                                                          "06_hits_per_site_and_year")]
    udf = ("SELECT event_id, round(doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site), 3) AS bary_hz "
           "FROM signal_events ORDER BY event_id LIMIT 5;")
    script = tmp_path / "demo.sql"
    script.write_text("\n".join(sqls + [udf]) + "\n")
    done = beeline(served, script)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    blocks = [b for b in re.split(r"\n(?=[a-z_]+(?:,[a-z_]+)*\n)", done.stdout.strip()) if b.strip()]
    assert len(blocks) == 3, done.stdout
    with engine.connect(demo_lake_path) as session:
        for block, sql in zip(blocks, sqls + [udf]):
            expected = session.sql(sql)
            lines = list(csv.reader(block.strip().splitlines()))
            assert lines[0] == expected.column_names
            want = [list(row.values()) for row in expected.to_pylist()]
            assert len(lines[1:]) == len(want)
            for got_row, want_row in zip(lines[1:], want):
                for got, value in zip(got_row, want_row, strict=True):
                    if isinstance(value, float):  # Java prints 1.349212192191E9
                        assert float(got) == pytest.approx(value, rel=1e-12)
                    else:
                        assert got == str(value)


def test_the_library_functions_work_over_jdbc(served, demo_lake_path):
    import engine

    sql = ("SELECT event_id, doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) AS bary_hz, "
           "distance(ra_deg, dec_deg, 217.42895, -62.67949) AS from_proxima_deg "
           "FROM signal_events WHERE snr > 200 ORDER BY event_id")
    with engine.connect(demo_lake_path) as session:
        expected = session.sql(sql)
    assert expected.num_rows > 0
    _same_rows(query(served, sql), expected)


def test_time_travel_and_sky_predicates_go_through_astrolakes_rewrites(served, demo_lake_path):
    import engine

    sqls = [
        "SELECT count(*) AS events FROM signal_events VERSION AS OF 1",
        "SELECT e.target, count(*) AS hits FROM signal_events VERSION AS OF 2 AS e "
        "WHERE CONTAINS(POINT(e.ra_deg, e.dec_deg), CIRCLE(217.42895, -62.67949, 1.0)) = 1 GROUP BY e.target",
    ]
    with engine.connect(demo_lake_path) as session:
        for sql in sqls:
            expected = session.sql(sql)
            assert expected.num_rows > 0
            _same_rows(query(served, sql), expected)
    assert "has no version 999" in _error(served, "SELECT count(*) FROM signal_events VERSION AS OF 999")


# ---- freshness -----------------------------------------------------------------------------

def test_an_ingest_while_serving_is_seen_by_the_next_query(served, lake_copy, tmp_path):
    from catalogs.lake import Lake
    from tests.catalogs.ingest.builders import image_fits

    assert query(served, "SELECT count(*) FROM images") == [(0,)]
    fits = image_fits(tmp_path / "field.fits", seed=3, shape=(64, 48))
    done = run_astrolake("--lake", str(lake_copy), "ingest", "images", str(fits))
    assert done.returncode == 0, done.stderr
    version = Lake(lake_copy, create=False).snapshot("images").version
    assert version >= 1
    assert query(served, "SELECT count(*), min(width), min(height) FROM images") == [(1, 48, 64)]
    found = query(served, "SELECT size(sep_extract(pixels, width, height, 1.5)) FROM images")
    assert found[0][0] is not None and found[0][0] >= 0


# ---- policy and limits -------------------------------------------------------------------------

@pytest.mark.parametrize("sql, says", [
    ("CREATE TABLE x AS SELECT 1 AS a", "CREATE TABLE is refused: this server is read-only"),
    ("INSERT INTO signal_events SELECT * FROM signal_events", "INSERT is refused: this server is read-only"),
    ("DROP TABLE signal_events", "DropTable statements are refused over JDBC"),
    ("CREATE OR REPLACE TEMPORARY VIEW signal_events AS SELECT 1 AS a", "CreateViewCommand statements are refused"),
    ("SET spark.sql.ansi.enabled=true", "SET key=value is refused"),
    ("ADD JAR /tmp/evil.jar", "AddJarsCommand statements are refused"),
    ("CACHE TABLE signal_events", "CacheTable statements are refused"),
])
def test_read_only_refuses_writes_with_one_clear_line(served, lake_copy, sql, says):
    from catalogs.lake import Lake

    before = {n: Lake(lake_copy, create=False).info(n).version for n in ("signal_events",)}
    message = _error(served, sql)
    assert says in message
    assert {n: Lake(lake_copy, create=False).info(n).version for n in before} == before
    assert query(served, "SELECT count(*) FROM signal_events")[0][0] > 1  # the view is intact


def test_read_only_commands_run(served):
    assert query(served, "DESCRIBE signal_events")[0][0] == "event_id"
    assert query(served, "SET spark.sql.session.timeZone") == [("spark.sql.session.timeZone", "UTC")]
    assert "Physical Plan" in query(served, "EXPLAIN SELECT count(*) FROM signal_events")[0][0]
    assert query(served, "USE default") == []


def test_max_rows_caps_a_result(served):
    assert len(query(served, "SELECT event_id FROM signal_events")) == 5000
    assert query(served, "SELECT count(*) FROM signal_events")[0][0] > 5000  # aggregates are not capped


# ---- bad input --------------------------------------------------------------------------------

def test_bad_input_gets_one_line_and_the_server_keeps_serving(served, demo_lake_path):
    import engine

    assert "Syntax error at or near 'SELEC'" in _error(served, "SELEC 1")
    assert "unknown table 'signal_event' (did you mean 'signal_events'?)" in _error(
        served, "SELECT * FROM signal_event")
    assert "unknown column 'snrr' (did you mean 'snr'?)" in _error(served, "SELECT snrr FROM signal_events")
    assert "distance takes 4 arguments, got 2" in _error(served, "SELECT distance(ra_deg, dec_deg) FROM signal_events")
    # a malformed image is a NULL with the reason, as on the embedded engine
    bad = ("SELECT sep_extract(CAST('not an image' AS BINARY), 64, 48, 1.5) AS found, "
           "sep_extract_error(CAST('not an image' AS BINARY), 64, 48, 1.5) AS why")
    with engine.connect(demo_lake_path) as session:
        expected = session.sql(bad).to_pylist()[0]
    assert expected["found"] is None and expected["why"]
    assert query(served, bad) == [(None, expected["why"])]
    assert query(served, "SELECT 1") == [(1,)]


def test_a_timed_out_or_cancelled_query_leaves_the_server_healthy(served):
    from TCLIService import ttypes

    slow = "SELECT sum(hash(id)) FROM range(0, 1000000000000)"
    with connect(served) as conn:
        # a statement's own timeout (JDBC setQueryTimeout) under the server's --query-timeout
        started = time.monotonic()
        response = conn.client.ExecuteStatement(ttypes.TExecuteStatementReq(
            conn.sessionHandle, slow, runAsync=False, queryTimeout=3))
        cursor = conn.cursor()
        cursor._state, cursor._operationHandle = cursor._STATE_RUNNING, response.operationHandle
        with pytest.raises(pyhive.exc.OperationalError, match="TIMEDOUT"):
            cursor.fetchall()
        assert time.monotonic() - started < 60
        cursor = conn.cursor()
        cursor.execute(slow, async_=True)
        time.sleep(1.0)
        cursor.cancel()
        assert cursor.poll().operationState == ttypes.TOperationState.CANCELED_STATE
    assert query(served, "SELECT count(*) FROM signal_events")[0][0] > 0


def test_a_client_that_disconnects_mid_query_does_not_hurt_the_others(served):
    conn = connect(served)
    cursor = conn.cursor()
    cursor.execute("SELECT sum(hash(id)) FROM range(0, 1000000000000)", async_=True)
    time.sleep(0.5)
    conn._transport.close()  # gone without closing its session
    assert query(served, "SELECT count(DISTINCT target) FROM signal_events")[0][0] > 0


def test_concurrent_clients_get_right_answers(served):
    expected_count = query(served, "SELECT count(*) FROM signal_events")[0][0]
    mixed = [
        ("SELECT target FROM signal_events WHERE event_id = 7", None),
        ("SELECT count(*) FROM signal_events", [(expected_count,)]),
        ("SELECT site, count(*) FROM signal_events GROUP BY site ORDER BY site", None),
        ("SELECT round(sum(distance(ra_deg, dec_deg, 0, 0)), 3) FROM signal_events WHERE snr > 100", None),
    ]
    reference = {sql: want or query(served, sql) for sql, want in mixed}
    errors: list = []

    def client(k: int) -> None:
        try:
            with connect(served) as conn:
                cursor = conn.cursor()
                for i in range(4):  # bench/jdbc_bench.py runs 8 x 50 and times them
                    sql = mixed[(k + i) % len(mixed)][0]
                    cursor.execute(sql)
                    got = cursor.fetchall()
                    if got != reference[sql]:
                        errors.append((sql, got))
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []


# ---- shutdown (last: it stops the module's server) -------------------------------------------

def test_sigterm_stops_cleanly_port_released_no_orphan_jvm(served):
    pid = served.process.pid
    children = child_pids(pid)
    assert children, "the JVM runs as a child of the server process"
    assert served.stop() == 0
    assert "stopped (" in served.output()
    time.sleep(1)
    assert not [c for c in children if Path(f"/proc/{c}").exists()
                and "Z" not in Path(f"/proc/{c}/stat").read_text().split()[2]]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", served.port))  # the port is free again
