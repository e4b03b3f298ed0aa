"""The Backend contract: the only place a sqlglot tree becomes a string of SQL."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from catalogs.lake import Lake, Snapshot
from engine.errors import CompileError, UnsupportedFunctionError, UnsupportedStatementError, did_you_mean

WRITE_MODES = ("append", "create", "replace")


def subset_suffix(snapshot: Snapshot) -> str:
    """'' for a whole snapshot; for one pruned by file statistics, a short id of its file list
    (each engine caches one relation per distinct list)."""
    import hashlib

    if not snapshot.pruned:
        return ""
    return "_" + hashlib.sha1("\n".join(snapshot.files).encode()).hexdigest()[:8]


class Backend(ABC):
    """An engine that reads lake snapshots and runs bound sqlglot trees."""

    name: str
    dialect: str

    @abstractmethod
    def relation(self, snapshot: Snapshot) -> str:
        """The name of a relation in this engine that reads exactly ``snapshot``'s files."""

    @abstractmethod
    def function_names(self) -> set[str]:
        """Lower-case names of every function this engine can call (built-in and registered)."""

    @abstractmethod
    def run(self, sql: str) -> pa.Table:
        """Run one statement of this engine's SQL; the result as an Arrow table."""

    @abstractmethod
    def plan(self, sql: str) -> str:
        """The engine's own plan for one statement of its SQL."""

    def close(self) -> None:  # pragma: no cover - backends without resources
        pass

    def compile(self, tree: exp.Expression) -> str:
        """The tree as this engine's SQL; a named error for anything it cannot express."""
        self.check_functions(tree)
        tree = self.adapt(tree)
        try:
            return tree.sql(dialect=self.dialect, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as e:
            raise CompileError(f"cannot run on {self.name}: {e}") from e

    def adapt(self, tree: exp.Expression) -> exp.Expression:
        """Rewrites that keep Spark SQL's meaning on this engine (none by default)."""
        return tree

    def check_functions(self, tree: exp.Expression) -> None:
        """Fail at compile time on a function neither sqlglot nor this engine knows."""
        calls = list(tree.find_all(exp.Anonymous))
        if not calls:
            return
        known = self.function_names()
        for call in calls:
            name = call.name.lower()
            if name not in known:
                raise UnsupportedFunctionError(
                    f"function '{call.name}' is not supported on {self.name}{did_you_mean(name, known)}"
                )

    def execute(self, tree: exp.Expression) -> pa.Table:
        return self.run(self.compile(tree))

    def explain(self, tree: exp.Expression) -> str:
        return self.plan(self.compile(tree))

    def write(self, tree: exp.Expression, lake: Lake, table: str, mode: str,
              columns: list[str] | None = None) -> tuple[int, int]:
        """Run a bound query and commit its rows to ``table``; (new version, rows written).

        ``mode``: "append" (INSERT INTO), "create" or "replace" (CREATE [OR REPLACE] TABLE AS).
        This default collects the rows as Arrow and lets delta-rs write them; a distributed
        engine overrides it to write the files itself.
        """
        rows = self.execute(tree)
        rows = rows.rename_columns(target_names(rows.column_names, lake, table, mode, columns))
        note = "INSERT INTO" if mode == "append" else "CREATE TABLE AS"
        if mode == "append":
            return lake.append(table, rows, note=note), rows.num_rows
        return lake.create_table(table, rows, replace=mode == "replace", note=note), rows.num_rows


def target_names(result_names: list[str], lake: Lake, table: str, mode: str,
                 columns: list[str] | None) -> list[str]:
    """The table columns a query's result columns go to (Spark's rules).

    With a column list, by that list; for INSERT without one, by position; for CREATE TABLE AS,
    the query's own names.
    """
    if mode != "append" and not columns:
        return list(result_names)
    names = columns or lake.schema(table).names[: len(result_names)]
    if len(names) != len(result_names):
        raise UnsupportedStatementError(
            f"INSERT INTO {table} names {len(names)} columns but the query returns {len(result_names)}"
        )
    return list(names)
