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


def _like(node: exp.Like | exp.ILike) -> exp.Expression:
    # Spark's LIKE escapes with a backslash unless told otherwise ('a\_b' matches only "a_b");
    # DuckDB's has no escape character unless given one
    if isinstance(node.parent, exp.Escape):
        return node
    pattern = node.expression
    if isinstance(pattern, exp.Literal) and "\\" not in pattern.this:
        return node
    return exp.Escape(this=node, expression=exp.Literal.string("\\"))


TRANSFORMS: Mapping[type, callable] = {
    exp.ArrayDistinct: _array_distinct,
    exp.Like: _like,
    exp.ILike: _like,
    exp.DayOfWeek: _day_of_week,
    exp.TsOrDsAdd: _date_add,
    exp.StrToUnix: _unix_timestamp,
}


# Spark answers these with a 32-bit INT where DuckDB answers with a BIGINT: cast, so a table
# made by CREATE TABLE AS has the same schema whichever engine made it.
SPARK_INT_RESULTS = (exp.Year, exp.Month, exp.Day, exp.DayOfMonth, exp.Hour, exp.Minute, exp.Second,
                     exp.DateDiff, exp.DayOfWeek, exp.DayOfYear, exp.WeekOfYear, exp.Quarter, exp.Length,
                     exp.StrPosition, exp.ArraySize)
SPARK_INT_WINDOWS = (exp.RowNumber, exp.Rank, exp.DenseRank, exp.Ntile)
SPARK_INT_NAMED = {"cardinality"}
_INT = exp.DataType.build("INT")
SPARK_DOUBLE_RESULTS = (exp.Sign,)  # Spark's sign/signum is a DOUBLE; DuckDB's a TINYINT
_DOUBLE = exp.DataType.build("DOUBLE")


def _spark_int(node: exp.Expression) -> bool:
    if isinstance(node, SPARK_INT_RESULTS):
        return True
    if isinstance(node, exp.Window):
        return isinstance(node.this, SPARK_INT_WINDOWS)
    return isinstance(node, exp.Anonymous) and node.name.lower() in SPARK_INT_NAMED


def apply_transforms(tree: exp.Expression) -> exp.Expression:
    def visit(node):
        transform = TRANSFORMS.get(type(node))
        result = transform(node) if transform else node
        if _spark_int(node):
            return exp.cast(result, _INT)
        return exp.cast(result, _DOUBLE) if isinstance(node, SPARK_DOUBLE_RESULTS) else result

    return tree.transform(visit, copy=True)


def _is_integral_cast(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and node.to.this in _INTEGRAL


def _is_sum(node: exp.Expression) -> bool:
    return isinstance(node, exp.Sum)


_BINARY = {exp.DataType.Type.BINARY, exp.DataType.Type.VARBINARY}
_TYPED = (exp.Cast, exp.Sum, exp.Length)


def _wanted(node: exp.Expression) -> bool:
    return _is_integral_cast(node) or _is_sum(node) or isinstance(node, exp.Length)


def _typed_calls(tree: exp.Expression, function_types: Mapping[str, str]) -> None:
    """Wrap each call of a library function in ``tree`` in a cast to its declared return type
    (sqlglot knows no type of an unknown function), marked so it is told from the user's casts."""
    calls = [n for n in tree.find_all(exp.Anonymous) if n.name.lower() in function_types]
    for call in calls:
        typed = exp.Cast(this=call.copy(), to=exp.DataType.build(function_types[call.name.lower()],
                                                                  dialect="spark"))
        typed.meta["library_type"] = True
        call.replace(typed)


def _is_library_type(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and node.meta.get("library_type", False)


def apply_typed_fixes(tree: exp.Expression, schema,
                      function_types: Mapping[str, str] | None = None) -> exp.Expression:
    """The differences that depend on an operand's type, found by sqlglot's type annotation
    over the lake's schemas and the library functions' return types (``function_types``: lower
    case name -> Spark SQL type; an operand of unknown type is left alone):

    - Spark truncates a fraction cast to an integer (3.9 -> 3); DuckDB rounds (-> 4).
    - Spark's sum of integers is a BIGINT; DuckDB's is a 128-bit HUGEINT (a decimal in Arrow).
    - Spark's length of a BINARY is its number of bytes; DuckDB's length takes no BLOB.
    """
    wanted = [n for n in tree.find_all(*_TYPED, bfs=False) if _wanted(n)]
    if not wanted:
        return tree
    try:
        copy = tree.copy()
        if function_types:
            _typed_calls(copy, function_types)
        typed = annotate_types(qualify_columns(copy, schema=schema, allow_partial_qualification=True),
                               schema=schema, dialect="duckdb")
    except (OptimizeError, KeyError, ValueError):
        return tree
    annotated = [n for n in typed.find_all(*_TYPED, bfs=False) if _wanted(n) and not _is_library_type(n)]
    if len(annotated) != len(wanted):
        return tree
    sums = []
    for original, typed_node in zip(wanted, annotated):
        operand_type = typed_node.this.type
        if operand_type is None:
            continue
        if _is_integral_cast(original) and operand_type.this in _FRACTIONAL:
            original.set("this", exp.func("trunc", original.this))
        elif _is_sum(original) and operand_type.this in _INTEGRAL:
            sums.append(original)
        elif isinstance(original, exp.Length) and operand_type.this in _BINARY:
            original.replace(exp.func("octet_length", original.this))
    for node in sums:
        node.replace(exp.cast(node.copy(), exp.DataType.build("BIGINT")))
    return tree
