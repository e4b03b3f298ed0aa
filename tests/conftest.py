"""Shared fixtures: a small deterministic demo lake, fresh lakes, and the engines to run on."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from catalogs.demo import build_demo
from catalogs.lake import Lake
from engine.spark_session import java_problem

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
DEMO_EVENTS = 20_000
SPARK_MASTER = "local[2]"


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'astrolake[spark]')"
    return java_problem()


SPARK_MISSING = _spark_missing()

# The execution suite runs on both engines; one SparkSession serves the whole test run.
ENGINES = [
    "duckdb",
    pytest.param("spark", marks=[pytest.mark.spark,
                                 pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))]),
]


def pytest_configure(config):
    os.environ.setdefault("ASTROLAKE_SPARK_MASTER", SPARK_MASTER)


def add_parity_tables(lake: Lake) -> None:
    """Small tables with NULLs, strings and arrays, for the parity corpus."""
    utc = dt.timezone.utc
    lake.create_table("targets", pa.table({
        "name": ["TRAPPIST-1", "Tau Ceti", "Proxima Centauri", "Voyager-1", "Sgr A*", "Vega", "Mystery"],
        "kind": ["star", "star", "star", "spacecraft", "black hole", "star", None],
        "distance_ly": [40.66, 11.91, 4.24, 0.0025, 26670.0, 25.04, None],
        "planets": pa.array([7, 4, 2, None, None, 0, None], pa.int32()),
        "aliases": pa.array([["2MASS J23062928-0502285"], ["HD 10700", "52 Cet"], ["Alpha Cen C", "GJ 551"],
                             [], None, ["Alpha Lyrae", "HD 172167"], None], pa.list_(pa.string())),
        "discovered": pa.array([dt.date(1999, 1, 1), None, dt.date(1915, 1, 1), dt.date(1977, 9, 5),
                                dt.date(1974, 2, 13), None, None], pa.date32()),
        "last_seen": pa.array([dt.datetime(2017, 2, 22, 9, 0, tzinfo=utc), dt.datetime(2018, 10, 14, 9, 25, 10, tzinfo=utc),
                               dt.datetime(2019, 5, 3, 14, 20, tzinfo=utc), None,
                               dt.datetime(2018, 8, 15, 3, 16, tzinfo=utc), None, None], pa.timestamp("us", tz="UTC")),
    }))


@pytest.fixture(scope="session")
def demo_lake_path(tmp_path_factory) -> Path:
    """A demo lake shared by read-only tests (do not write to it)."""
    path = tmp_path_factory.mktemp("demo") / "lake"
    lake = Lake(path)
    build_demo(lake, n_events=DEMO_EVENTS, seed=42)
    add_parity_tables(lake)
    return path


@pytest.fixture
def lake_path(tmp_path) -> Path:
    """A fresh, empty lake path for one test."""
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_path) -> Lake:
    return Lake(lake_path)


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request) -> str:
    return request.param


_DEMO_SESSIONS: dict = {}


@pytest.fixture
def demo_session(demo_lake_path, engine_name):
    """A session over the shared demo lake, one per engine for the whole run (read-only)."""
    import engine

    if engine_name not in _DEMO_SESSIONS:
        _DEMO_SESSIONS[engine_name] = engine.connect(demo_lake_path, engine=engine_name)
    return _DEMO_SESSIONS[engine_name]


def run_astrolake(*args: str, env: dict | None = None, input: str | None = None, cwd=None):
    """The installed command, as a user runs it: a subprocess with its own stdout/stderr."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
        env=full_env, input=input, cwd=cwd, timeout=600,
    )
