"""Sky text -> AST (engine.dsl.ast). Syntax errors name the line and column, show the line with a
caret, and say in words what was expected; common mistakes are recognised with Lark's
``match_examples`` (a missing unit, an unknown stage or clause, an unclosed string)."""

from __future__ import annotations

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from engine.dsl import ast
from engine.dsl.expect import split_expect
from engine.errors import SkyError, SkySyntaxError

_OPTIONS = dict(rel_to=__file__, parser="lalr", maybe_placeholders=True)

STAGES = ("correct doppler", "extract sources [thresh N]", "spectrogram fft N [integrate M]",
          "search drift [max R Hz/s] [snr N]", "classify", 'cadence on "A" off "B", "C" [tolerance F Hz]')
CLAUSES = "near, during, where, match, a stage, select, group by, having, order by, limit or into"

# Common mistakes, recognised by the parser state they fail in (Lark's match_examples).
EXAMPLES = {
    "missing unit": [
        'from t near "x" within 5',
        "from t near (1, 2) within 0.5 where snr > 1",
        "from t match u within 2",
        "from t match u within 2 nearest",
        'from t near "x" within 5 during 2017',
    ],
    "unknown stage": [
        "from t correct dopler",
        "from t correct",
        "from t extract stars",
        "from t extract",
        "from t search",
        "from t search drifts",
        "from t spectrogram 1024",
    ],
    "unknown clause": [
        "from t filter snr > 5",
        "from t near",
        "from t cone 5",
        "from t where snr > 5 sort by snr",
        "from t where snr > 5 show snr",
        "from t select snr sort by snr",
    ],
    "missing source": [
        "select snr",
        "where snr > 5",
        "near 'x' within 5 arcmin",
    ],
}

HINTS = {
    "missing unit": "a number needs a unit here (e.g. 5 arcmin, 0.1 deg, 30 arcsec)",
    "unknown stage": "unknown or incomplete stage; the stages are: " + "; ".join(STAGES),
    "unknown clause": f"expected a clause here: {CLAUSES}",
    "missing source": "a query starts with 'from TABLE'",
}

WORDS = {
    "UNIT": "a unit (Hz, kHz, MHz, GHz, Hz/s, deg, arcmin, arcsec, mas, s, min, h, d, Angstrom, nm)",
    "NAME": "a name", "STRING": 'a quoted string ("...")', "NUMBER": "a number", "INT": "a whole number",
    "PARAM": "a $parameter", "DATETIME": "a date (2017-02-01) or time (2017-02-01T12:00:00)",
    "COMPARE": "a comparison (=, !=, <, <=, >, >=)", "ADD_OP": "+ or -", "MUL_OP": "*, / or %",
    "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "DOT": "'.'", "MINUS": "'-'", "$END": "the end of the query",
}


def _word(terminal: str) -> str:
    if terminal in WORDS:
        return WORDS[terminal]
    try:
        pattern = _AST_PARSER.get_terminal(terminal).pattern
        return f"'{pattern.value}'"
    except (KeyError, AttributeError):
        return terminal.lower().lstrip("_")


def _expected(terminals) -> str:
    words = sorted({_word(t) for t in terminals if not t.startswith("__")})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _classify(e: UnexpectedInput, text: str) -> str:
    if isinstance(e, UnexpectedCharacters):
        char = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        if char in "\"'":
            return f"unclosed string: a string that opens with {char} must close with {char} on the same line"
        allowed = getattr(e, "allowed", None) or set()
        return f"unexpected character {char!r}" + (f"; expected {_expected(allowed)}" if allowed else "")
    try:
        label = e.match_examples(_AST_PARSER.parse, EXAMPLES, use_accepts=True)
    except Exception:  # noqa: BLE001 - lark 1.3's debug logging there can itself raise (TypeError)
        label = None
    expected = getattr(e, "expected", None) or getattr(e, "accepts", None) or set()
    if label is None and "UNIT" in expected:
        label = "missing unit"
    token = getattr(e, "token", None)
    got = "the end of the query" if token is None or token.type == "$END" else f"'{token}'"
    if label:
        return f"{HINTS[label]} (got {got})"
    got = "unexpected end of the query" if got == "the end of the query" else f"unexpected {got}"
    if {"NAME", "NUMBER", "STRING"} <= set(expected):
        return f"{got}; expected a value (a column, a number with or without a unit, a string, a function call)"
    return f"{got}; expected {_expected(expected)}" if expected else got


def parse(text: str) -> ast.Query:
    """The AST of one Sky query (an ``expect`` block at the end of the text is ignored)."""
    if not isinstance(text, str):
        raise SkySyntaxError("a Sky query is text")
    query_text, _ = split_expect(text)
    if not query_text.strip():
        raise SkySyntaxError("empty query: a query starts with 'from TABLE'", 1, 1, text)
    try:
        return _AST_PARSER.parse(query_text)
    except UnexpectedInput as e:
        line, column = (e.line, e.column) if getattr(e, "line", -1) not in (-1, None) else _end(query_text)
        if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
            line, column = _end(query_text)
        try:
            message = _classify(e, query_text)
        except Exception:  # noqa: BLE001 - a message is always better than a crash
            message = "the query does not parse here"
        raise SkySyntaxError(message, line, column, text) from e
    except VisitError as e:
        if isinstance(e.orig_exc, SkyError):
            raise SkySyntaxError(e.orig_exc.reason, e.orig_exc.line, e.orig_exc.column, text) from e
        raise SkySyntaxError(f"cannot read the query: {e.orig_exc}", text=text) from e
    except LarkError as e:  # pragma: no cover - any other parser failure
        raise SkySyntaxError(str(e).splitlines()[0], text=text) from e


def _end(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character (comments count as blank)."""
    lines = text.rstrip().splitlines() or [""]
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].split("#")[0].rstrip()
        if stripped:
            return i + 1, len(stripped) + 1
    return 1, 1


def _pos(meta_or_token) -> dict:
    line = getattr(meta_or_token, "line", 0) or 0
    column = getattr(meta_or_token, "column", 0) or 0
    return {"line": line, "column": column}


def _unquote(token: Token) -> str:
    return str(token)[1:-1]


class _At:
    """The position of a rule: its first token's or first node's (the inline transformer gets no
    meta; a rule that starts with a keyword takes the position of what follows it)."""

    __slots__ = ("line", "column")

    def __init__(self, children):
        self.line = self.column = 0
        for child in children:
            line = getattr(child, "line", None)
            if isinstance(child, tuple) and child:
                line, child = getattr(child[0], "line", None), child[0]
            if line:
                self.line, self.column = line, child.column
                return


def _with_position(f, _data, children, _meta):
    return f(_At(children), children)


@v_args(wrapper=_with_position)
class _ToAst(Transformer):
    """Lark parse tree -> ast dataclasses."""

    def start(self, meta, children):
        return children[0]

    def query(self, meta, children):
        defaults = dict(c for c in children if isinstance(c, tuple))
        source, *steps, shape = [c for c in children if not isinstance(c, tuple)]
        return ast.Query(source=source, steps=steps, **shape, defaults=defaults, **_pos(meta))

    def default(self, meta, children):
        name, value = children
        if isinstance(value, Token) and value.type == "STRING":
            return str(name)[1:], _unquote(value)
        return str(name)[1:], str(value)

    def source(self, meta, children):
        name, alias = children
        return ast.Source(str(name), alias, **_pos(meta))

    def alias(self, meta, children):
        return str(children[0])

    # ---- steps
    def near(self, meta, children):
        target, radius = children
        if isinstance(target, tuple):
            return ast.Near(radius, ra=target[0], dec=target[1], **_pos(meta))
        return ast.Near(radius, name=target, **_pos(meta))

    def target_name(self, meta, children):
        return ast.String(_unquote(children[0]), **_pos(children[0]))

    def target_param(self, meta, children):
        return ast.Param(str(children[0])[1:], **_pos(children[0]))

    def target_position(self, meta, children):
        return tuple(children)

    def during(self, meta, children):
        start, end = children
        return ast.During(start, end, **_pos(meta))

    def instant_datetime(self, meta, children):
        return ast.Instant("datetime", str(children[0]), **_pos(meta))

    def instant_year(self, meta, children):
        return ast.Instant("year", str(children[0]), **_pos(meta))

    def instant_mjd(self, meta, children):
        return ast.Instant("mjd", children[0], **_pos(meta))

    def instant_number(self, meta, children):
        return ast.Instant("number", str(children[0]), **_pos(meta))

    def instant_text(self, meta, children):
        return ast.Instant("text", _unquote(children[0]), **_pos(meta))

    def instant_param(self, meta, children):
        return ast.Instant("param", str(children[0])[1:], **_pos(meta))

    def signed_negative(self, meta, children):
        return "-" + str(children[0])

    def signed(self, meta, children):
        return str(children[0])

    def negative(self, meta, children):
        return "-" + str(children[0])

    def where(self, meta, children):
        return ast.Where(children[0], **_pos(meta))

    def _arg(self, token):
        if token is None:
            return None
        if token.type == "PARAM":
            return ast.Param(str(token)[1:], **_pos(token))
        return ast.Number(str(token), **_pos(token))

    def correct_doppler(self, meta, children):
        return ast.Stage("correct doppler", **_pos(meta))

    def extract_sources(self, meta, children):
        return ast.Stage("extract sources", {"thresh": self._arg(children[1])}, **_pos(meta))

    def spectrogram(self, meta, children):
        return ast.Stage("spectrogram", {"fft": self._arg(children[1]), "integrate": self._arg(children[2])},
                         **_pos(meta))

    def search_drift(self, meta, children):
        return ast.Stage("search drift", {"max": children[1], "snr": self._arg(children[2])}, **_pos(meta))

    def cadence(self, meta, children):
        names = [ast.String(_unquote(c), **_pos(c)) for c in children[1:] if isinstance(c, Token) and c.type == "STRING"]
        tolerance = children[-1] if isinstance(children[-1], ast.Quantity) else None
        return ast.Stage("cadence", {"on": names[0], "off": names[1:], "tolerance": tolerance}, **_pos(meta))

    def classify(self, meta, children):
        return ast.Stage("classify", **_pos(meta))

    def match(self, meta, children):
        table, alias, radius, mode = children
        return ast.Match(str(table), radius, alias, mode or "nearest", **_pos(meta))

    def match_mode(self, meta, children):
        return str(children[0]).lower()

    # ---- shape
    def shape(self, meta, children):
        projection, having, order, limit, into = children
        select, group = projection or (None, None)
        return {"select": select, "group": group, "having": having, "order": order, "limit": limit,
                "into": into}

    def select_group(self, meta, children):
        return children[0], children[1]

    def group_select(self, meta, children):
        return children[1], children[0]

    def select(self, meta, children):
        return list(children)

    def select_item(self, meta, children):
        expr, name = children
        if name is not None and name.type == "UNIT":
            return ast.SelectItem(expr, unit=str(name), **_pos(meta))
        return ast.SelectItem(expr, alias=None if name is None else str(name), **_pos(meta))

    def group(self, meta, children):
        return list(children)

    def having(self, meta, children):
        return children[0]

    def order(self, meta, children):
        return list(children)

    def order_item(self, meta, children):
        expr, direction = children
        return ast.OrderItem(expr, direction == "desc", **_pos(meta))

    def direction(self, meta, children):
        return str(children[0]).lower()

    def limit(self, meta, children):
        return self._arg(children[0])

    def into(self, meta, children):
        name, mode = children
        return ast.Into(str(name), mode or "create", **_pos(meta))

    def into_mode(self, meta, children):
        return str(children[0]).lower()

    # ---- expressions
    def or_expr(self, meta, children):
        return self._chain("or", meta, children)

    def and_expr(self, meta, children):
        return self._chain("and", meta, children)

    def _chain(self, op, meta, children):
        node = children[0]
        for right in children[1:]:
            node = ast.Binary(op, node, right, line=node.line, column=node.column)
        return node

    def not_(self, meta, children):
        return ast.Unary("not", children[0], **_pos(meta))

    def compare(self, meta, children):
        left, op, right = children
        op = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return ast.Binary(op, left, right, **_pos(op_token := children[1]))

    def between(self, meta, children):
        return ast.Between(*children, **_pos(meta))

    def not_between(self, meta, children):
        return ast.Between(*children, negated=True, **_pos(meta))

    def is_null(self, meta, children):
        return ast.IsNull(children[0], **_pos(meta))

    def is_not_null(self, meta, children):
        return ast.IsNull(children[0], negated=True, **_pos(meta))

    def in_list(self, meta, children):
        return ast.InList(children[0], list(children[1:]), **_pos(meta))

    def not_in_list(self, meta, children):
        return ast.InList(children[0], list(children[1:]), negated=True, **_pos(meta))

    def like(self, meta, children):
        return ast.Like(children[0], _unquote(children[1]), **_pos(meta))

    def arith(self, meta, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, **_pos(children[1]))

    def neg(self, meta, children):
        return ast.Unary("-", children[0], **_pos(meta))

    def quantity(self, meta, children):
        value, unit = children
        node = ast.Param(str(value)[1:], **_pos(value)) if value.type == "PARAM" else ast.Number(str(value), **_pos(value))
        return ast.Quantity(node, str(unit), **_pos(meta))

    def number(self, meta, children):
        return ast.Number(str(children[0]), **_pos(meta))

    def string(self, meta, children):
        return ast.String(_unquote(children[0]), **_pos(meta))

    def datetime(self, meta, children):
        return ast.DateTime(str(children[0]), **_pos(meta))

    def param(self, meta, children):
        return ast.Param(str(children[0])[1:], **_pos(meta))

    def true(self, meta, children):
        return ast.Boolean(True, **_pos(meta))

    def false(self, meta, children):
        return ast.Boolean(False, **_pos(meta))

    def column(self, meta, children):
        return ast.ColumnRef(str(children[0]), **_pos(meta))

    def field(self, meta, children):
        return ast.Field(str(children[0]), str(children[1]), **_pos(meta))

    def call(self, meta, children):
        name, *args = children
        args = [a for a in args if a is not None]
        return ast.Call(str(name), args, **_pos(meta))


# The parser that builds the AST while it parses (LALR's inline transformer: no parse tree, faster).
_AST_PARSER = Lark.open("grammar.lark", transformer=_ToAst(), **_OPTIONS)
