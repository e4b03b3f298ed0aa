"""The SQL front end: Spark SQL text in, sqlglot expressions out (no strings leave here)."""

from __future__ import annotations

import logging

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from engine.errors import SqlSyntaxError

# sqlglot logs a warning when it falls back to a generic Command (e.g. SHOW TABLES); we handle those.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

READ_DIALECT = "spark"


def parse_statements(text: str) -> list[exp.Expression]:
    """Every statement of ``text`` (separated by ``;``) as a sqlglot tree, in the Spark dialect."""
    try:
        statements = [s for s in sqlglot.parse(text, read=READ_DIALECT) if s is not None]
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        message = first.get("description", str(e)).split(". Line")[0]
        highlight = first.get("highlight")
        if highlight:
            message = f"{message} (near '{highlight}')" if "near" not in message else message
        raise SqlSyntaxError(_tidy(message), first.get("line"), first.get("col")) from e
    except TokenError as e:
        raise SqlSyntaxError(str(e)) from e
    if not statements:
        raise SqlSyntaxError("empty query")
    return statements


def parse_one(text: str) -> exp.Expression:
    statements = parse_statements(text)
    if len(statements) != 1:
        raise SqlSyntaxError(f"expected one statement, got {len(statements)}")
    return statements[0]


def _tidy(message: str) -> str:
    # sqlglot describes tokens as "<Token token_type: TokenType.WHERE, text: WHERE, ...>"
    import re

    return re.sub(r"<Token token_type: TokenType\.\w+, text: ([^,]*),[^>]*>", r"'\1'", message)
