"""Pure tree rewrites: sqlglot Expr in, sqlglot Expr out. Never a string.

``bind_tables`` replaces every lake table reference (with its time travel clause) by the
relation the backend reads that snapshot from, keeping the name the query used as the alias so
``signal_events.snr`` still resolves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from engine.errors import CompileError


@dataclass(frozen=True)
class TableRef:
    """A lake table as a query names it: latest, or ``VERSION AS OF`` / ``TIMESTAMP AS OF``."""

    name: str
    version: int | None = None
    timestamp: str | None = None


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def table_ref(table: exp.Table) -> TableRef:
    """The TableRef of a table node; CompileError for time travel we cannot evaluate."""
    spec = table.args.get("version")
    if spec is None:
        return TableRef(table.name)
    kind = str(spec.name).upper()
    value = spec.expression
    if not isinstance(value, exp.Literal):
        raise CompileError(f"{kind} AS OF needs a literal value, got {value.sql(dialect='spark')}")
    if kind == "VERSION":
        if value.is_string or not value.is_int:
            raise CompileError(f"VERSION AS OF needs an integer version, got {value.sql(dialect='spark')}")
        return TableRef(table.name, version=int(value.this))
    if kind == "TIMESTAMP":
        return TableRef(table.name, timestamp=str(value.this))
    raise CompileError(f"unsupported time travel: {kind} AS OF")


def lake_tables(tree: exp.Expression) -> list[exp.Table]:
    """Table nodes that name lake tables (not CTEs, not table functions)."""
    ctes = _cte_names(tree)
    found = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table-valued function such as range(10)
        if table.args.get("version") is None and not table.db and table.name.lower() in ctes:
            continue
        found.append(table)
    return found


def bind_tables(tree: exp.Expression, resolve: Callable[[TableRef], str]) -> exp.Expression:
    """A copy of ``tree`` with every lake table replaced by ``resolve(ref)``, its backend relation."""
    tree = tree.copy()
    for table in lake_tables(tree):
        relation = resolve(table_ref(table))
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        table.replace(exp.Table(this=exp.to_identifier(relation, quoted=True), alias=alias))
    return tree
