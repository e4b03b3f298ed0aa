"""Spark's ``LATERAL VIEW`` as DuckDB runs it well.

sqlglot writes ``FROM t LATERAL VIEW explode(f(x)) v AS s`` as ``FROM t CROSS JOIN UNNEST(f(x))
AS v(s)``: a correlated join, which DuckDB runs by de-duplicating the outer rows on every column
the function reads. For a function of an image's pixels that hashes and copies megabytes per row
(measured: 8x the time of the function itself over SDSS-sized images). This pass writes a plain
``explode`` as a select-list ``UNNEST`` in a subquery that keeps the source's name instead:

    FROM (SELECT t.*, UNNEST(f(x)) AS s FROM t) AS t

which has the same rows (none for a NULL or empty array), evaluates ``f`` once per row, and lets
``t.col`` and ``s.field`` resolve as before. The WHERE conjuncts that read only the source's
columns move below the generator, so ``f`` runs only on the rows they keep. ``LATERAL VIEW OUTER explode`` keeps a row with NULL
for a NULL or empty array, which a select-list UNNEST cannot; it becomes ``LEFT JOIN LATERAL
(SELECT UNNEST(...)) ON TRUE`` (sqlglot's own translation drops the OUTER). Other generators
(``posexplode``, ``inline``, ...) are left to sqlglot.
"""

from __future__ import annotations

from sqlglot import exp


def _rewritable(select: exp.Select) -> bool:
    laterals = select.args.get("laterals") or []
    if not laterals or select.args.get("joins"):
        return False
    source = select.args.get("from_")
    if source is None or not isinstance(source.this, (exp.Table, exp.Subquery)):
        return False
    for lateral in laterals:
        alias = lateral.args.get("alias")
        if not (lateral.args.get("view") and type(lateral.this) is exp.Explode
                and alias is not None and len(alias.columns) == 1):
            return False
    return True


def _lateral_tables(select: exp.Select) -> dict[str, str]:
    """Lateral view table alias -> its column name (``v`` -> ``s`` for ``v AS s``)."""
    names = {}
    for lateral in select.args["laterals"]:
        alias = lateral.args["alias"]
        if alias.name:
            names[alias.name] = alias.columns[0].name
    return names


def conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The terms of a chain of ANDs (through parentheses)."""
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return conjuncts(node.this)
    return [node]


def _split_where(select: exp.Select, generated: set[str]) -> tuple[list, list]:
    """The WHERE conjuncts that read only the source's columns (they filter before the generator
    runs: a filter on image_id must not extract every image first), and the rest."""
    where = select.args.get("where")
    if where is None:
        return [], []
    early, late = [], []
    for part in conjuncts(where.this):
        names = {c.name for c in part.find_all(exp.Column)} | {c.table for c in part.find_all(exp.Column) if c.table}
        plain = not part.find(exp.Subquery, exp.AggFunc, exp.Window, exp.Star)
        (early if plain and not names & generated else late).append(part)
    return early, late


def _rewrite(select: exp.Select) -> exp.Select:
    source = select.args["from_"].this
    name = source.alias_or_name
    relation: exp.Expression = source
    views = _lateral_tables(select)
    generated = set(views) | {lateral.args["alias"].columns[0].name for lateral in select.args["laterals"]}
    early, late = _split_where(select, generated)
    if early:
        relation = exp.Subquery(this=exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier(name)))
                                .from_(source.copy()).where(exp.and_(*[e.copy() for e in early])),
                                alias=exp.TableAlias(this=exp.to_identifier(name)))
    for lateral in select.args["laterals"]:
        column = lateral.args["alias"].columns[0]
        array = lateral.this.this
        star = exp.Column(this=exp.Star(), table=exp.to_identifier(name))
        if lateral.args.get("outer"):
            unnested = exp.select(exp.alias_(exp.Unnest(expressions=[array]), column.copy()))
            inner = exp.select(star, exp.column(column.copy(), "__lv")).from_(relation).join(
                exp.Lateral(this=exp.Subquery(this=unnested), alias=exp.TableAlias(this=exp.to_identifier("__lv"))),
                join_type="left", on=exp.true())
        else:
            inner = exp.select(star, exp.alias_(exp.Unnest(expressions=[array]), column.copy())).from_(relation)
        relation = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(name)))
    select = select.copy()
    select.set("laterals", None)
    select.set("from_", exp.From(this=relation))
    select.set("where", exp.Where(this=exp.and_(*late)) if late else None)
    # ``v.s`` named the lateral view's column by its table alias: now it is the source's column
    for node in list(select.find_all(exp.Column)):
        if node.table in views and node.name == views[node.table]:  # v.s
            node.set("table", exp.to_identifier(name))
        elif node.db in views and node.table == views[node.db]:  # v.s.field
            node.set("db", exp.to_identifier(name))
    return select


def rewrite_lateral_views(tree: exp.Expression) -> exp.Expression:
    """Every rewritable ``SELECT ... LATERAL VIEW explode(...)`` of ``tree`` (see the module doc)."""
    return tree.transform(lambda node: _rewrite(node) if isinstance(node, exp.Select) and _rewritable(node) else node,
                          copy=True)
