"""Execution backends. Each turns a bound sqlglot tree into its own SQL and runs it."""

from __future__ import annotations

from engine.backends.base import Backend
from engine.errors import UsageError

ENGINES = ("duckdb", "spark")


def create_backend(engine: str, **options) -> Backend:
    """A backend by name; heavy engines are imported only when asked for."""
    if engine == "duckdb":
        from engine.backends.duckdb import DuckDBBackend

        return DuckDBBackend(**options)
    if engine == "spark":
        from engine.backends.spark import SparkBackend

        return SparkBackend(**options)
    raise UsageError(f"unknown engine '{engine}' (choose one of: {', '.join(ENGINES)})")
