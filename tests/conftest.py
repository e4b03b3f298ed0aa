"""Shared fixtures: a small deterministic demo lake, fresh lakes, and the engines to run on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catalogs.demo import build_demo
from catalogs.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
DEMO_EVENTS = 20_000

# The execution suite runs on every engine this build has; Spark joins with its backend.
ENGINES = ["duckdb"]


@pytest.fixture(scope="session")
def demo_lake_path(tmp_path_factory) -> Path:
    """A demo lake shared by read-only tests (do not write to it)."""
    path = tmp_path_factory.mktemp("demo") / "lake"
    build_demo(Lake(path), n_events=DEMO_EVENTS, seed=42)
    return path


@pytest.fixture
def lake_path(tmp_path) -> Path:
    """A fresh, empty lake path for one test."""
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_path) -> Lake:
    return Lake(lake_path)


@pytest.fixture(params=ENGINES)
def engine_name(request) -> str:
    return request.param


@pytest.fixture
def demo_session(demo_lake_path, engine_name):
    import engine

    with engine.connect(demo_lake_path, engine=engine_name) as session:
        yield session


def run_astrolake(*args: str, env: dict | None = None, input: str | None = None, cwd=None):
    """The installed command, as a user runs it: a subprocess with its own stdout/stderr."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
        env=full_env, input=input, cwd=cwd, timeout=300,
    )
