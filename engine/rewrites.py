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
class Bound:
    """``column op value`` that every row the query keeps from a table satisfies (op: < <= = >= >)."""

    column: str
    op: str
    value: float


@dataclass(frozen=True)
class TableRef:
    """A lake table as a query names it: latest, or ``VERSION AS OF`` / ``TIMESTAMP AS OF``, and the
    bounds its WHERE clause puts on numeric columns (used to skip files by their statistics)."""

    name: str
    version: int | None = None
    timestamp: str | None = None
    bounds: tuple[Bound, ...] = ()


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


_COMPARISONS = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.EQ: "="}
_MIRROR = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}


def _number(node: exp.Expression) -> float | None:
    if isinstance(node, exp.Neg):
        value = _number(node.this)
        return None if value is None else -value
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def bounds(table: exp.Table) -> tuple[Bound, ...]:
    """The bounds on ``table``'s columns from the top-level AND-ed comparisons with numeric literals
    in the WHERE clause of the SELECT whose FROM or JOIN names it. Any row such a WHERE keeps
    satisfies them, whatever the joins, so a file whose min/max excludes them can be skipped."""
    source = table.parent
    select = source.parent if isinstance(source, (exp.From, exp.Join)) else None
    if not isinstance(select, exp.Select) or select.args.get("where") is None:
        return ()
    sources = (1 if select.args.get("from_") or select.args.get("from") else 0) + len(select.args.get("joins") or [])
    name = table.alias_or_name
    found = []
    for conjunct in select.args["where"].this.flatten() if isinstance(select.args["where"].this, exp.And) \
            else [select.args["where"].this]:
        pairs = []
        if type(conjunct) in _COMPARISONS:
            op = _COMPARISONS[type(conjunct)]
            left, right = conjunct.this, conjunct.expression
            if isinstance(left, exp.Column) and _number(right) is not None:
                pairs.append((left, op, _number(right)))
            elif isinstance(right, exp.Column) and _number(left) is not None:
                pairs.append((right, _MIRROR[op], _number(left)))
        elif isinstance(conjunct, exp.Between) and isinstance(conjunct.this, exp.Column):
            low, high = _number(conjunct.args.get("low")), _number(conjunct.args.get("high"))
            if low is not None and high is not None:
                pairs += [(conjunct.this, ">=", low), (conjunct.this, "<=", high)]
        for column, op, value in pairs:
            if column.table == name or (not column.table and sources == 1):
                found.append(Bound(column.name, op, value))
    return tuple(found)


def table_ref(table: exp.Table) -> TableRef:
    """The TableRef of a table node; CompileError for time travel we cannot evaluate."""
    spec = table.args.get("version")
    if spec is None:
        return TableRef(table.name, bounds=bounds(table))
    kind = str(spec.name).upper()
    value = spec.expression
    if not isinstance(value, exp.Literal):
        raise CompileError(f"{kind} AS OF needs a literal value, got {value.sql(dialect='spark')}")
    if kind == "VERSION":
        if value.is_string or not value.is_int:
            raise CompileError(f"VERSION AS OF needs an integer version, got {value.sql(dialect='spark')}")
        return TableRef(table.name, version=int(value.this), bounds=bounds(table))
    if kind == "TIMESTAMP":
        return TableRef(table.name, timestamp=str(value.this), bounds=bounds(table))
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
