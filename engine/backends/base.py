"""The Backend contract: the only place a sqlglot tree becomes a string of SQL."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from catalogs.lake import Snapshot
from engine.errors import CompileError, UnsupportedFunctionError, did_you_mean


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
        try:
            return tree.sql(dialect=self.dialect, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as e:
            raise CompileError(f"cannot run on {self.name}: {e}") from e

    def check_functions(self, tree: exp.Expression) -> None:
        """Fail at compile time on a function neither sqlglot nor this engine knows."""
        known = self.function_names()
        for call in tree.find_all(exp.Anonymous):
            name = call.name.lower()
            if name not in known:
                raise UnsupportedFunctionError(
                    f"function '{call.name}' is not supported on {self.name}{did_you_mean(name, known)}"
                )

    def execute(self, tree: exp.Expression) -> pa.Table:
        return self.run(self.compile(tree))

    def explain(self, tree: exp.Expression) -> str:
        return self.plan(self.compile(tree))
