"""Sky syntax: the AST with positions, and syntax errors that name the line and column, show the
line with a caret and say in words what was expected."""

import pytest

from engine.dsl import ast
from engine.dsl.parser import parse
from engine.errors import EngineError, SkySyntaxError


def test_ast_carries_positions():
    q = parse('from signal_events\nnear "TRAPPIST-1" within 5 arcmin\nwhere snr > 25\nselect freq as MHz')
    assert q.source == ast.Source("signal_events")
    near, where = q.steps
    assert isinstance(near, ast.Near) and (near.line, near.column) == (2, 6)  # where its target starts
    assert near.name.value == "TRAPPIST-1" and near.radius.unit == "arcmin"
    assert (where.condition.line, where.condition.column) == (3, 11)
    assert q.select[0].unit == "MHz" and q.select[0].alias is None


def test_keywords_are_case_insensitive_and_do_not_shadow_columns():
    q = parse("FROM sources WHERE drift > 1 SELECT sources")  # 'sources' and 'drift' are also keywords
    assert q.source.table == "sources"
    assert q.steps[0].condition.left == ast.ColumnRef("drift")


@pytest.mark.parametrize("text, line, column, message", [
    ('from signal_events\nnear "TRAPPIST-1" within 5\nselect snr', 3, 1, "a number needs a unit here"),
    ('from t near (1, 2) within 0.5 where snr > 1', 1, 31, "a number needs a unit here"),
    ("from t match u within 2", 1, 24, "a number needs a unit here"),
    ("from t correct dopler", 1, 16, "unknown or incomplete stage; the stages are: correct doppler"),
    ("from t extract stars", 1, 16, "unknown or incomplete stage"),
    ('from t where target = "abc\nselect snr', 1, 23, "unclosed string"),
    ("from t filter snr > 5", 1, 8, "expected a clause here: near, during, where"),
    ("from t where snr > 5 sort by snr", 1, 22, "expected a clause here"),
    ("select snr", 1, 1, "a query starts with 'from TABLE'"),
    ("from t where snr >", 1, 19, "unexpected end of the query; expected a value"),
    ("", 1, 1, "empty query"),
])
def test_syntax_errors_say_where_and_what(text, line, column, message):
    with pytest.raises(SkySyntaxError) as info:
        parse(text)
    error = info.value
    if message == "unclosed string":
        line, column = 1, 23
    assert (error.line, error.column) == (line, column), str(error)
    assert message in str(error)
    assert isinstance(error, EngineError) and error.exit_code == 1
    first, *rest = str(error).splitlines()
    assert first.startswith(f"syntax error at line {line}, column {column}: ")
    if text:
        assert rest[0] == "  " + text.splitlines()[line - 1]
        assert rest[1] == "  " + " " * (column - 1) + "^"
