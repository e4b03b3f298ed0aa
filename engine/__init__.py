"""astrolake's engine: SQL (and later Sky) over a Delta lake, on DuckDB or Spark.

``import engine; s = engine.connect("lake"); s.sql("SELECT ...")`` returns a pyarrow.Table.
"""

from engine.errors import EngineError

__all__ = ["EngineError", "Session", "connect"]


def __getattr__(name):
    # Lazy, so that ``engine.errors`` can be imported by catalogs/ without a cycle.
    if name in ("Session", "connect"):
        from engine import session

        return getattr(session, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
