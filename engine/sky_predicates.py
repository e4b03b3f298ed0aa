"""ADQL's geometry predicates as a pure tree rewrite: sqlglot Expr in, sqlglot Expr out.

``CONTAINS(POINT(ra, dec), CIRCLE(ra0, dec0, radius))`` is ADQL's cone search. Spark and DuckDB
both have a built-in string ``contains(a, b)``, so no function of that name can be registered;
instead this rewrite replaces the ADQL form by calls of the function library before the tree is
bound and compiled:

- ``CONTAINS(POINT(a, b), CIRCLE(c, d, r))`` ->
  ``CASE (distance(a, b, c, d) <= r) WHEN TRUE THEN 1 WHEN FALSE THEN 0 END``
- ``CONTAINS(POINT(a, b), BOX(c, d, w, h))`` ->
  ``CASE in_box(a, b, c, d, w, h) WHEN TRUE THEN 1 WHEN FALSE THEN 0 END``
- ``CONTAINS(...) = 1`` (or ``1 = CONTAINS(...)``) -> the predicate itself, and ``= 0`` -> its
  negation, so the usual ``WHERE 1 = CONTAINS(...)`` filters on the comparison directly
- ``DISTANCE(POINT(a, b), POINT(c, d))`` -> ``distance(a, b, c, d)``

The result is 1 or 0, and NULL when any coordinate or the radius is NULL, as in ADQL (the CASE
has no ELSE, so a NULL comparison matches no branch). POINT, CIRCLE and BOX accept ADQL's
optional leading coordinate system ('ICRS' or ''; other systems are refused), and CIRCLE and BOX
accept a POINT as their centre (ADQL 2.1). A ``contains(a, b)`` without POINT/CIRCLE/BOX
arguments is the engines' string function and is left untouched; POINT/CIRCLE/BOX anywhere else,
or a malformed CONTAINS, is a CompileError.
"""

from __future__ import annotations

from sqlglot import exp

from engine.errors import CompileError

SHAPES = {"point": 2, "circle": 3, "box": 4}  # numeric arguments of each shape after expansion
FRAMES = {"", "ICRS"}


def expand_sky_predicates(tree: exp.Expression) -> exp.Expression:
    """A copy of ``tree`` with ADQL's CONTAINS/POINT/CIRCLE/BOX rewritten into library calls."""
    expanded = tree.transform(_expand, copy=True)
    for call in expanded.find_all(exp.Anonymous):
        if _shape_name(call):
            raise CompileError(
                f"{call.name.upper()}(...) is only supported inside CONTAINS(POINT(...), CIRCLE(...) or BOX(...)) "
                f"or DISTANCE(POINT(...), POINT(...)): {call.sql(dialect='spark')}"
            )
    return expanded


# ---- the rewrite ---------------------------------------------------------------------------


def _expand(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.EQ):
        for side, other in ((node.this, node.expression), (node.expression, node.this)):
            if _is_sky_contains(side) and _is_int_literal(other, ("0", "1")):
                predicate = _predicate(side)
                return predicate if other.this == "1" else exp.Not(this=exp.Paren(this=predicate))
        return node
    if _is_sky_contains(node):
        return exp.Case(
            this=exp.Paren(this=_predicate(node)),
            ifs=[exp.If(this=exp.true(), true=exp.Literal.number(1)),
                 exp.If(this=exp.false(), true=exp.Literal.number(0))],
        )
    if isinstance(node, exp.Anonymous) and node.name.lower() == "distance" and any(
        _shape_name(a) for a in node.expressions
    ):
        return _distance(node)
    return node


def _contains_args(node: exp.Expression) -> tuple[exp.Expression, exp.Expression] | None:
    """The two arguments of a ``contains(x, y)`` call (sqlglot's Contains or an Anonymous)."""
    if isinstance(node, exp.Contains):
        return node.this, node.expression
    if isinstance(node, exp.Anonymous) and node.name.lower() == "contains" and len(node.expressions) == 2:
        return node.expressions[0], node.expressions[1]
    return None


def _is_sky_contains(node: exp.Expression) -> bool:
    """ADQL's CONTAINS: a contains(...) with a POINT, CIRCLE or BOX argument."""
    args = _contains_args(node)
    return args is not None and any(_shape_name(a) for a in args)


def _predicate(node: exp.Expression) -> exp.Expression:
    """The boolean condition of ADQL ``CONTAINS(POINT(...), CIRCLE(...) | BOX(...))``."""
    point, region = _contains_args(node)
    text = node.sql(dialect="spark")
    if _shape_name(point) != "point":
        raise CompileError(f"CONTAINS needs a POINT(ra, dec) as its first argument: {text}")
    region_name = _shape_name(region)
    if region_name not in ("circle", "box"):
        raise CompileError(f"CONTAINS(POINT(...), ...) needs a CIRCLE(ra, dec, radius) or "
                           f"BOX(ra, dec, width, height) as its second argument: {text}")
    ra, dec = _coordinates(point)
    centre = _coordinates(region)
    if region_name == "circle":
        ra0, dec0, radius = centre
        return exp.LTE(this=_call("distance", ra, dec, ra0, dec0), expression=_operand(radius))
    return _call("in_box", ra, dec, *centre)


def _distance(node: exp.Anonymous) -> exp.Expression:
    """ADQL ``DISTANCE(POINT(...), POINT(...))`` as ``distance(ra1, dec1, ra2, dec2)``."""
    points = node.expressions
    if len(points) != 2 or any(_shape_name(p) != "point" for p in points):
        raise CompileError(f"DISTANCE takes two POINTs or four numbers: {node.sql(dialect='spark')}")
    return _call("distance", *_coordinates(points[0]), *_coordinates(points[1]))


# ---- shapes --------------------------------------------------------------------------------


def _shape_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous) and node.name.lower() in SHAPES:
        return node.name.lower()
    return None


def _coordinates(shape: exp.Anonymous) -> list[exp.Expression]:
    """The numeric arguments of a POINT, CIRCLE or BOX: the coordinate system dropped, a POINT
    centre expanded into its two coordinates, each argument itself rewritten."""
    name = _shape_name(shape)
    args = list(shape.expressions)
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        frame = args.pop(0).this.strip().upper()
        if frame.split(" ")[0] not in FRAMES:
            raise CompileError(f"{name.upper()}: only ICRS coordinates are supported, got '{frame}'")
    if name != "point" and args and _shape_name(args[0]) == "point":
        args = [*_coordinates(args[0]), *args[1:]]
    if len(args) != SHAPES[name] or any(_shape_name(a) for a in args):
        usage = {"point": "POINT([frame,] ra, dec)", "circle": "CIRCLE([frame,] ra, dec, radius)",
                 "box": "BOX([frame,] ra, dec, width, height)"}[name]
        raise CompileError(f"{usage} takes {SHAPES[name]} numbers (degrees): {shape.sql(dialect='spark')}")
    return [expand_sky_predicates(a) for a in args]


def _call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _operand(node: exp.Expression) -> exp.Expression:
    """``node`` parenthesised unless it is atomic, for use as one side of a comparison."""
    operator = (exp.Binary, exp.Connector, exp.Unary, exp.Predicate)  # some are also Funcs in sqlglot
    atomic = isinstance(node, (exp.Column, exp.Literal, exp.Paren, exp.Null, exp.Boolean, exp.Func)) and not isinstance(
        node, operator)
    return node if atomic else exp.Paren(this=node)


def _is_int_literal(node: exp.Expression, values: tuple[str, ...]) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and node.this in values
