"""The embedded backend: DuckDB reading the Parquet files a Delta snapshot names.

Each (table, version) becomes a temporary view over ``read_parquet([...files])``: DuckDB's
native reader (4.5x faster here than scanning a pyarrow dataset), with hive partition columns
typed from the Delta schema so filters on them prune files, and Parquet statistics skipping row
groups. The file list comes from the Delta log (delta-rs), never from listing the directory, so
files an overwrite removed are never read (delta-rs#2779).
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from sqlglot import exp
from sqlglot.schema import MappingSchema

from catalogs.lake import Snapshot
from catalogs.schemas import sql_type
from engine.backends.base import Backend, subset_suffix
from engine.backends.lateral_views import rewrite_lateral_views
from engine.backends.spark_on_duckdb import apply_transforms, apply_typed_fixes
from engine.errors import (
    CompileError,
    QueryError,
    UnknownColumnError,
    UnsupportedFunctionError,
)

_PARTITION_TYPES = {
    pa.date32(): "DATE",
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBBackend(Backend):
    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None):
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {_quote_str(memory_limit)}")
        from udfs import duckdb as duckdb_udfs
        from udfs.registry import all_functions

        self._library = all_functions()
        duckdb_udfs.register(self.con, self._library)
        self._views: dict[tuple, str] = {}
        self._columns: dict[str, dict[str, str]] = {}  # view -> column -> Spark SQL type
        self._functions: set[str] | None = None

    # ---- tables ------------------------------------------------------------------------

    def relation(self, snapshot: Snapshot) -> str:
        key = (snapshot.table, snapshot.version, snapshot.files)
        view = self._views.get(key)
        if view is None:
            view = f"{snapshot.table}@v{snapshot.version}" + subset_suffix(snapshot)
            self._create_view(view, snapshot)
            self._views[key] = view
            self._columns[view] = {f.name: sql_type(f.type) for f in snapshot.schema}
        return view

    def adapt(self, tree: exp.Expression) -> exp.Expression:
        tree = apply_transforms(tree)
        tree = apply_typed_fixes(tree, MappingSchema(self._columns, dialect="spark"))
        return rewrite_lateral_views(tree)

    def _create_view(self, view: str, snapshot: Snapshot) -> None:
        if not snapshot.files:
            # An empty snapshot has no file for read_parquet: a typed empty relation instead.
            self.con.register(view, snapshot.schema.empty_table())
            return
        columns = ", ".join(_quote_ident(f.name) for f in snapshot.schema)
        files = "[" + ", ".join(_quote_str(f) for f in snapshot.files) + "]"
        if snapshot.partition_by:
            types = ", ".join(
                f"{_quote_str(p)}: {_PARTITION_TYPES.get(snapshot.schema.field(p).type, 'VARCHAR')}"
                for p in snapshot.partition_by
            )
            options = f"hive_partitioning = true, hive_types = {{{types}}}"
        else:
            options = "hive_partitioning = false"
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {_quote_ident(view)} AS "
            f"SELECT {columns} FROM read_parquet({files}, {options})"
        )

    # ---- functions ---------------------------------------------------------------------

    def function_names(self) -> set[str]:
        if self._functions is None:
            self._functions = _builtin_functions() | {s.name for s in self._library}
        return self._functions

    # ---- running -----------------------------------------------------------------------

    def run(self, sql: str) -> pa.Table:
        try:
            relation = self.con.sql(sql)
            if relation is None:
                return pa.table({})
            return relation.to_arrow_table()
        except duckdb.Error as e:
            raise _translate(e) from e

    def plan(self, sql: str) -> str:
        try:
            rows = self.con.execute(f"EXPLAIN {sql}").fetchall()
        except duckdb.Error as e:
            raise _translate(e) from e
        return "\n".join(r[1] for r in rows)

    def close(self) -> None:
        self.con.close()


_BUILTINS: set[str] = set()


def _builtin_functions() -> set[str]:
    """DuckDB's own function names, read once per process (it takes tens of milliseconds)."""
    if not _BUILTINS:
        with duckdb.connect(":memory:") as con:
            rows = con.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions()").fetchall()
        _BUILTINS.update(r[0] for r in rows)
    return _BUILTINS


_COLUMN_NOT_FOUND = re.compile(r'Referenced column "([^"]+)" not found')
_CANDIDATES = re.compile(r'Candidate bindings: (.*)')
_FUNCTION_MISSING = re.compile(r"(Scalar|Aggregate|Table) Function with name (\w+) does not exist")


def _first_line(error: duckdb.Error) -> str:
    text = str(error).split("\n")[0]
    return re.sub(r"^[A-Za-z ]+ Error: ", "", text).strip()


def _translate(error: duckdb.Error) -> Exception:
    """A DuckDB error as one of ours: one line, no DuckDB-internal SQL positions."""
    text = str(error)
    found = _COLUMN_NOT_FOUND.search(text)
    if found:
        column = found.group(1)
        hint = ""
        candidates = _CANDIDATES.search(text)
        if candidates:
            names = re.findall(r'"([^"]+)"', candidates.group(1))
            if names:
                best = names[0].split(".")[-1]
                hint = f" (did you mean '{best}'?)"
        return UnknownColumnError(f"unknown column '{column}'{hint}")
    missing = _FUNCTION_MISSING.search(text)
    if missing:
        return UnsupportedFunctionError(f"function '{missing.group(2)}' is not supported on duckdb")
    if isinstance(error, (duckdb.ParserException, duckdb.BinderException)):
        return CompileError(_first_line(error))
    return QueryError(_first_line(error))
