"""A session: one lake, one backend. ``engine.connect(lake).sql(text)`` returns a pyarrow.Table."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
from sqlglot import exp

from catalogs.lake import Lake
from catalogs.schemas import spec, sql_type
from engine import rewrites
from engine.backends import create_backend
from engine.errors import UnsupportedStatementError
from engine.sky_predicates import expand_sky_predicates
from engine.sqlfront import parse_one, parse_statements

DEFAULT_LAKE = "lake"


def default_lake() -> str:
    return os.environ.get("ASTROLAKE_LAKE", DEFAULT_LAKE)


class Session:
    """Queries over one lake on one engine. Tables are read at their latest version per query."""

    def __init__(self, lake: str | os.PathLike | Lake | None = None, engine: str = "duckdb", **options):
        self.lake = lake if isinstance(lake, Lake) else Lake(lake or default_lake())
        self.engine = engine
        self.backend = create_backend(engine, **options)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.backend.close()

    # ---- queries -----------------------------------------------------------------------

    def sql(self, text: str) -> pa.Table:
        """Run every statement of ``text`` (Spark SQL); the result of the last one."""
        result = pa.table({})
        for statement in parse_statements(text):
            result = self.execute(statement)
        return result

    def execute(self, tree: exp.Expression) -> pa.Table:
        """Run one parsed statement."""
        if isinstance(tree, exp.Query):
            return self.backend.execute(self.bind(tree))
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
            return self._create_table_as(tree)
        if isinstance(tree, exp.Insert):
            return self._insert(tree)
        if isinstance(tree, exp.Describe):
            return self.describe(tree.this.name)
        if isinstance(tree, exp.Command) and _is_show_tables(tree):
            return self.tables()
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise UnsupportedStatementError(
            f"{kind} statements are not supported (queries, CREATE TABLE ... AS, INSERT INTO, "
            "SHOW TABLES and DESCRIBE are)"
        )

    def bind(self, tree: exp.Expression) -> exp.Expression:
        """The tree with lake tables bound to the backend's snapshot relations."""
        tree = expand_sky_predicates(tree)
        return rewrites.bind_tables(tree, self._relation)

    def _relation(self, ref: rewrites.TableRef) -> str:
        snapshot = self.lake.snapshot(ref.name, ref.version, ref.timestamp)
        return self.backend.relation(self.lake.prune(snapshot, ref.bounds))

    def compile(self, text: str) -> str:
        """The backend's SQL for one statement (what ``explain`` shows)."""
        return self.backend.compile(self.bind(parse_one(text)))

    def explain(self, text: str) -> str:
        return self.backend.explain(self.bind(parse_one(text)))

    # ---- Sky ---------------------------------------------------------------------------

    def sky_tree(self, text: str, params: dict | None = None) -> exp.Expression:
        """The sqlglot tree of a Sky query (the same kind ``parse_one`` makes from Spark SQL)."""
        from engine.dsl.catalog import LakeCatalog
        from engine.dsl.compiler import compile_sky

        if getattr(self, "_sky_catalog", None) is None:
            self._sky_catalog = LakeCatalog(self.lake)
        return compile_sky(text, params, self._sky_catalog)

    def sky(self, text: str, params: dict | None = None) -> pa.Table:
        """Run a Sky query (engine/dsl); ``params`` binds its ``$name`` parameters."""
        return self.execute(self.sky_tree(text, params))

    def compile_sky(self, text: str, params: dict | None = None) -> str:
        """The backend's SQL for a Sky query."""
        tree = self.sky_tree(text, params)
        return self.backend.compile(self.bind(tree.expression if not isinstance(tree, exp.Query) else tree))

    def explain_sky(self, text: str, params: dict | None = None) -> str:
        tree = self.sky_tree(text, params)
        return self.backend.explain(self.bind(tree.expression if not isinstance(tree, exp.Query) else tree))

    # ---- writes ------------------------------------------------------------------------

    def _create_table_as(self, tree: exp.Create) -> pa.Table:
        query = tree.expression
        if not isinstance(query, exp.Query):
            raise UnsupportedStatementError("CREATE TABLE needs AS SELECT ... (the lake's tables are Delta tables)")
        name = tree.this.name if isinstance(tree.this, exp.Table) else tree.this.this.name
        replace = bool(tree.args.get("replace"))
        self.lake.check_creatable(name, replace)
        mode = "replace" if replace and self.lake.exists(name) else "create"
        version, rows = self.backend.write(self.bind(query), self.lake, name, mode)
        return _write_result(name, version, rows)

    def _insert(self, tree: exp.Insert) -> pa.Table:
        if tree.args.get("overwrite"):
            raise UnsupportedStatementError("INSERT OVERWRITE is not supported; use CREATE OR REPLACE TABLE")
        target = tree.this
        columns = None
        if isinstance(target, exp.Schema):
            columns = [c.name for c in target.expressions]
            target = target.this
        name = target.name
        if not self.lake.exists(name):
            self.lake.delta_table(name)  # raises UnknownTableError with a suggestion
        query = tree.expression
        if not isinstance(query, exp.Query):
            query = exp.select("*").from_(query)
        version, rows = self.backend.write(self.bind(query), self.lake, name, "append", columns)
        return _write_result(name, version, rows)

    # ---- metadata ----------------------------------------------------------------------

    def tables(self) -> pa.Table:
        infos = [self.lake.info(n) for n in self.lake.table_names()]
        return pa.table({
            "table": [i.name for i in infos],
            "rows": pa.array([i.rows for i in infos], pa.int64()),
            "version": pa.array([i.version for i in infos], pa.int64()),
            "description": [i.description for i in infos],
        })

    def describe(self, name: str) -> pa.Table:
        schema = self.lake.schema(name)
        table_spec = spec(name)
        units, descriptions = [], []
        for field in schema:
            meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            if table_spec and field.name in table_spec.column_names:
                column = table_spec.column(field.name)
                meta = {"unit": column.unit, "description": column.description}
            units.append(meta.get("unit", ""))
            descriptions.append(meta.get("description", ""))
        partitions = set(self.lake.info(name).partition_by)
        return pa.table({
            "column": schema.names,
            "type": [sql_type(f.type) for f in schema],
            "unit": units,
            "nullable": [f.nullable for f in schema],
            "partition": [f.name in partitions for f in schema],
            "description": descriptions,
        })

    def history(self, name: str) -> pa.Table:
        commits = self.lake.history(name)
        metrics = [c.get("operationMetrics") or {} for c in commits]
        return pa.table({
            "version": pa.array([c["version"] for c in commits], pa.int64()),
            "committed_at": pa.array(
                [dt.datetime.fromtimestamp(c["timestamp"] / 1000, dt.timezone.utc) for c in commits],
                pa.timestamp("ms", tz="UTC"),
            ),
            "operation": [c.get("operation", "") for c in commits],
            "rows_added": pa.array([m.get("num_added_rows") for m in metrics], pa.int64()),
            "files_added": pa.array([m.get("num_added_files") for m in metrics], pa.int64()),
            "note": [c.get("astrolake.note", "") for c in commits],
        })


def _write_result(name: str, version: int, rows: int) -> pa.Table:
    return pa.table({"table": [name], "version": pa.array([version], pa.int64()), "rows_written": pa.array([rows], pa.int64())})


def _is_show_tables(tree: exp.Command) -> bool:
    return str(tree.this).upper() == "SHOW" and tree.expression is not None and tree.expression.name.strip().upper().startswith("TABLES")


def connect(lake: str | os.PathLike | None = None, engine: str = "duckdb", **options) -> Session:
    """A session over the lake at ``lake`` (default ``$ASTROLAKE_LAKE`` or ``./lake``)."""
    return Session(lake, engine=engine, **options)
