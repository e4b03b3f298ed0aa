"""One exception root for everything astrolake raises on purpose.

The CLI turns an EngineError into one line on stderr and ``exit_code``; a traceback only with
``--debug``. Errors from DuckDB, Py4J, Lark and delta-rs are wrapped with ``raise ... from e``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EngineError(Exception):
    """Root of every error astrolake reports to a user."""

    exit_code = 1


class UsageError(EngineError):
    """The command was called wrongly (bad option value, missing argument)."""

    exit_code = 2


class SqlSyntaxError(EngineError):
    """The query text does not parse; carries the 1-based line and column."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.line, self.column = line, column
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"syntax error{where}: {message}")


class CompileError(EngineError):
    """The query parses but cannot be turned into SQL for the chosen engine."""


class UnsupportedFunctionError(CompileError):
    """A function the chosen engine does not have and astrolake does not map."""


class UnsupportedStatementError(CompileError):
    """A statement kind astrolake does not run (e.g. UPDATE)."""


class SkyError(EngineError):
    """A Sky query that cannot be run: carries the 1-based line and column, and the message's
    further lines show the query line with a caret under the place."""

    multiline = True  # the CLI prints every line (the caret display), not just the first

    def __init__(self, message: str, line: int | None = None, column: int | None = None, text: str | None = None):
        self.line, self.column, self.reason = line, column, message
        where = f" at line {line}, column {column}" if line else ""
        if not self.kind:  # the CLI says "error: " already: "error: line 2, column 5: ..."
            where = where.removeprefix(" at ")
        detail = ""
        if text is not None and line:
            lines = text.splitlines() or [""]
            source = lines[line - 1] if 0 < line <= len(lines) else ""
            detail = f"\n  {source}\n  {' ' * max(column - 1, 0)}^"
        head = f"{self.kind}{where}" if self.kind or where else "error"
        super().__init__(f"{head}: {message}{detail}")

    kind = ""


class SkySyntaxError(SkyError):
    """The Sky text does not parse."""

    kind = "syntax error"


class SkyCompileError(SkyError, CompileError):
    """The Sky query parses but means nothing runnable: unknown table or column, a unit of the wrong
    kind, an unknown target name, an unbound parameter."""

    kind = ""


class ExpectationError(EngineError):
    """``astrolake check``: a query's result differs from its expected result (or it failed)."""


class CatalogError(EngineError):
    """Unknown table or column, or a table that cannot be read."""


class UnknownTableError(CatalogError):
    pass


class UnknownColumnError(CatalogError):
    pass


class LakeError(EngineError):
    """A Delta table could not be read or written."""


class SchemaMismatchError(LakeError):
    """Rows do not fit the table's schema; nothing was written."""


class VersionNotFoundError(LakeError):
    """Time travel to a version or timestamp the table does not have."""


class IngestError(EngineError):
    """Input rows were rejected; nothing was committed. ``rejects`` lists (row, reason)."""

    def __init__(self, message: str, rejects: list | None = None):
        self.rejects = rejects or []
        super().__init__(message)


class PartialIngest(IngestError):
    """Some input files were rejected (and quarantined) while the good ones were committed.

    Raised by the CLI after printing the ingest summary, so the call exits 3 ("partial")."""

    exit_code = 3


class UdfError(EngineError):
    """A function of the library was declared or called wrongly."""


class QueryError(EngineError):
    """The engine failed while running a query (conversion error, division by zero, ...)."""


class BackendUnavailableError(EngineError):
    """The chosen engine cannot start here (e.g. pyspark or Java missing)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix naming the closest candidate, or ''."""
    pool = sorted(set(candidates))
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""
