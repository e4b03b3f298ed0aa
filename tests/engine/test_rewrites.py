import pytest
from sqlglot import exp

from engine.errors import CompileError
from engine.rewrites import Bound, TableRef, bind_tables, lake_tables, table_ref
from engine.sqlfront import parse_one


def bind(sql):
    seen = []

    def resolve(ref):
        seen.append(ref)
        return f"{ref.name}@{ref.version if ref.version is not None else ref.timestamp or 'latest'}"

    return bind_tables(parse_one(sql), resolve).sql(dialect="duckdb"), seen


def test_table_bound_with_its_name_as_alias():
    sql, seen = bind("SELECT signal_events.snr FROM signal_events")
    assert sql == 'SELECT signal_events.snr FROM "signal_events@latest" AS signal_events'
    assert seen == [TableRef("signal_events")]


def test_alias_is_kept():
    sql, _ = bind("SELECT e.snr FROM signal_events AS e")
    assert sql == 'SELECT e.snr FROM "signal_events@latest" AS e'


def test_time_travel_refs():
    _, seen = bind("SELECT * FROM signal_events VERSION AS OF 3 JOIN sources TIMESTAMP AS OF '2024-01-01' ON true")
    assert seen == [TableRef("signal_events", version=3), TableRef("sources", timestamp="2024-01-01")]


def test_ctes_are_not_lake_tables():
    sql, seen = bind("WITH strong AS (SELECT * FROM signal_events WHERE snr > 20) SELECT * FROM strong")
    assert seen == [TableRef("signal_events", bounds=(Bound("snr", ">", 20.0),))]
    assert "FROM strong" in sql


def test_the_input_tree_is_not_changed():
    tree = parse_one("SELECT * FROM signal_events")
    bind_tables(tree, lambda ref: "x")
    assert tree.sql() == "SELECT * FROM signal_events"


def test_table_functions_are_left_alone():
    tree = parse_one("SELECT * FROM range(3)")
    assert lake_tables(tree) == []


@pytest.mark.parametrize("sql, message", [
    ("SELECT * FROM t VERSION AS OF 'x'", "VERSION AS OF needs an integer version"),
    ("SELECT * FROM t VERSION AS OF 1.5", "VERSION AS OF needs an integer version"),
    ("SELECT * FROM t TIMESTAMP AS OF current_timestamp()", "TIMESTAMP AS OF needs a literal value"),
])
def test_time_travel_we_cannot_evaluate(sql, message):
    table = parse_one(sql).find(exp.Table)
    with pytest.raises(CompileError, match=message):
        table_ref(table)


@pytest.mark.parametrize("sql, want", [
    ("SELECT * FROM t WHERE snr > 5 AND 2 >= beam AND x BETWEEN -1 AND 1",
     [("snr", ">", 5.0), ("beam", "<=", 2.0), ("x", ">=", -1.0), ("x", "<=", 1.0)]),
    ("SELECT * FROM t WHERE snr > 5 OR beam = 1", []),
    ("SELECT * FROM t WHERE snr > '5'", []),
    ("SELECT * FROM t a JOIN u b ON a.k = b.k WHERE a.snr > 5 AND snr > 6 AND b.f = 1", [("snr", ">", 5.0)]),
    ("SELECT * FROM t WHERE snr IN (SELECT snr FROM u WHERE snr > 9)", []),
])
def test_bounds_from_where(sql, want):
    table = next(t for t in parse_one(sql).find_all(exp.Table) if t.name == "t")
    assert [(b.column, b.op, b.value) for b in table_ref(table).bounds] == want
