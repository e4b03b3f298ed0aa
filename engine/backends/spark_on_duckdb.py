"""Spark SQL's meaning, kept when a tree is run by DuckDB.

sqlglot translates Spark's function names and syntax to DuckDB's; a few functions have the same
name but a different answer. Each difference is one entry of ``TRANSFORMS`` (tree node class ->
function returning the node DuckDB should run), the sqlglot way; only the cast rule needs the
column types, so it is a separate pass. The parity suite (tests/engine/test_parity.py) is where
a new difference shows up first.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify_columns import qualify_columns

_INTEGRAL = {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT,
             exp.DataType.Type.BIGINT}
_FRACTIONAL = {exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE, exp.DataType.Type.DECIMAL}


def _day_of_week(node: exp.DayOfWeek) -> exp.Expression:
    # Spark: Sunday = 1 .. Saturday = 7; DuckDB: Sunday = 0 .. Saturday = 6.
    return exp.paren(exp.Add(this=node, expression=exp.Literal.number(1)), copy=False)


def _date_add(node: exp.TsOrDsAdd) -> exp.Expression:
    # Spark's date_add/date_sub return a DATE; DuckDB's date + INTERVAL is a TIMESTAMP.
    if node.text("unit").upper() in ("", "DAY"):
        return exp.cast(node, exp.DataType.build("DATE"))
    return node


def _unix_timestamp(node: exp.StrToUnix) -> exp.Expression:
    # Spark's unix_timestamp(ts) takes timestamps and dates too; sqlglot assumes a string.
    value = node.this
    if isinstance(value, exp.Literal) and value.is_string:
        return node
    seconds = exp.func("epoch", exp.cast(value, exp.DataType.build("TIMESTAMPTZ")))
    return exp.cast(exp.func("floor", seconds), exp.DataType.build("BIGINT"))


def _array_distinct(node: exp.ArrayDistinct) -> exp.Expression:
    # Spark keeps the first occurrence of each element, in order; DuckDB's list_distinct does
    # not promise an order. Keep element v when its first position is its own position i.
    value, index = exp.to_identifier("__al_v"), exp.to_identifier("__al_i")
    first_position = exp.Anonymous(this="LIST_POSITION", expressions=[node.this.copy(), value.copy()])
    keep = exp.Lambda(this=exp.EQ(this=first_position, expression=index.copy()), expressions=[value, index])
    return exp.ArrayFilter(this=node.this, expression=keep)


TRANSFORMS: Mapping[type, callable] = {
    exp.ArrayDistinct: _array_distinct,
    exp.DayOfWeek: _day_of_week,
    exp.TsOrDsAdd: _date_add,
    exp.StrToUnix: _unix_timestamp,
}


def apply_transforms(tree: exp.Expression) -> exp.Expression:
    def visit(node):
        transform = TRANSFORMS.get(type(node))
        return transform(node) if transform else node

    return tree.transform(visit, copy=True)


def truncate_fractional_casts(tree: exp.Expression, schema: dict[str, dict[str, str]]) -> exp.Expression:
    """Spark truncates a fraction cast to an integer (3.9 -> 3); DuckDB rounds (-> 4).

    The operand's type comes from sqlglot's type annotation over the lake's schemas; a cast whose
    operand type is unknown is left alone.
    """
    casts = [c for c in tree.find_all(exp.Cast, bfs=False) if c.to.this in _INTEGRAL]
    if not casts:
        return tree
    try:
        typed = annotate_types(qualify_columns(tree.copy(), schema=schema, allow_partial_qualification=True),
                               schema=schema, dialect="duckdb")
    except (OptimizeError, KeyError, ValueError):
        return tree
    typed_casts = [c for c in typed.find_all(exp.Cast, bfs=False) if c.to.this in _INTEGRAL]
    if len(typed_casts) != len(casts):
        return tree
    for original, annotated in zip(casts, typed_casts):
        operand_type = annotated.this.type
        if operand_type is not None and operand_type.this in _FRACTIONAL:
            original.set("this", exp.func("trunc", original.this))
    return tree
