import pytest
from sqlglot import exp

from engine.errors import SqlSyntaxError
from engine.sqlfront import parse_one, parse_statements


def test_statements_are_split():
    statements = parse_statements("SELECT 1; SELECT 2;")
    assert [type(s) for s in statements] == [exp.Select, exp.Select]


def test_syntax_error_has_line_and_column():
    with pytest.raises(SqlSyntaxError, match=r"syntax error at line 2, column 6: .*'WHERE'") as e:
        parse_one("SELECT * FROM\n WHERE x = 1")
    assert (e.value.line, e.value.column) == (2, 6)


def test_empty_query():
    with pytest.raises(SqlSyntaxError, match="empty query"):
        parse_statements("  ;  ")


def test_parse_one_wants_one():
    with pytest.raises(SqlSyntaxError, match="expected one statement, got 2"):
        parse_one("SELECT 1; SELECT 2")


def test_unterminated_string():
    with pytest.raises(SqlSyntaxError):
        parse_one("SELECT 'abc FROM t")
