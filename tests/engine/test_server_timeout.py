"""`astrolake serve --query-timeout`: a query that runs too long is stopped by the server's own
limit (no timeout from the client), and the server keeps serving."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.conftest import SPARK_MISSING
from tests.engine.serving import connect, query, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING)),
]
pyhive = pytest.importorskip("pyhive", reason="PyHive is a dev dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def served(demo_lake_path, tmp_path_factory):
    lake = tmp_path_factory.mktemp("timeout") / "lake"
    shutil.copytree(demo_lake_path, lake)
    # long enough for a small query on a slow, busy machine; the runaway below never ends
    server = start_server(lake, lake.parent, "--query-timeout", "10")
    yield server
    server.stop()


def test_the_server_wide_timeout_stops_a_runaway_query(served):
    started = time.monotonic()
    with connect(served) as conn:
        cursor = conn.cursor()
        with pytest.raises(pyhive.exc.OperationalError, match="TIMEDOUT|timed out|cancel"):
            cursor.execute("SELECT sum(hash(id)) FROM range(0, 1000000000000)")
            cursor.fetchall()
    assert 10 <= time.monotonic() - started < 60
    assert query(served, "SELECT count(*) FROM signal_events")[0][0] > 0
