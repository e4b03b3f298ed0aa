"""LATERAL VIEW on both engines: the same rows as Spark's meaning, and on DuckDB the fast form."""

import pytest
import sqlglot

from engine.backends.lateral_views import rewrite_lateral_views

ALIASES = {  # the parity table `targets` (tests/conftest.py): name -> aliases
    "TRAPPIST-1": ["2MASS J23062928-0502285"], "Tau Ceti": ["HD 10700", "52 Cet"],
    "Proxima Centauri": ["Alpha Cen C", "GJ 551"], "Voyager-1": [], "Sgr A*": None,
    "Vega": ["Alpha Lyrae", "HD 172167"], "Mystery": None,
}


def duckdb_sql(spark_sql: str) -> str:
    return rewrite_lateral_views(sqlglot.parse_one(spark_sql, read="spark")).sql("duckdb")


def test_explode_becomes_a_select_list_unnest_under_the_source_name():
    sql = duckdb_sql("SELECT i.image_id, s.x_pix FROM images i "
                     "LATERAL VIEW explode(sep_extract(i.pixels, i.width, i.height, 1.5)) t AS s WHERE t.s.flux > 0")
    assert sql == ("SELECT i.image_id, s.x_pix FROM (SELECT i.*, UNNEST(SEP_EXTRACT(i.pixels, i.width, i.height, 1.5)) "
                   "AS s FROM images AS i) AS i WHERE i.s.flux > 0")
    assert "CROSS JOIN" not in sql


def test_outer_explode_keeps_its_rows_with_a_left_join():
    sql = duckdb_sql("SELECT name, alias FROM targets LATERAL VIEW OUTER explode(aliases) a AS alias")
    assert "LEFT JOIN LATERAL" in sql and "ON TRUE" in sql


def test_other_generators_are_left_to_sqlglot():
    tree = sqlglot.parse_one("SELECT p, v FROM targets LATERAL VIEW posexplode(aliases) a AS p, v", read="spark")
    assert rewrite_lateral_views(tree) == tree


def expected(outer: bool) -> list[tuple]:
    rows = []
    for name, aliases in ALIASES.items():
        if aliases:
            rows += [(name, a) for a in aliases]
        elif outer:
            rows.append((name, None))
    return sorted(rows, key=str)


@pytest.mark.parametrize("outer", [False, True])
def test_explode_rows_on_both_engines(demo_session, outer):
    view = "LATERAL VIEW OUTER" if outer else "LATERAL VIEW"
    result = demo_session.sql(f"SELECT name, a.alias FROM targets {view} explode(aliases) a AS alias")
    assert sorted(zip(result["name"].to_pylist(), result["alias"].to_pylist()), key=str) == expected(outer)


def test_star_chained_views_and_filters_on_both_engines(demo_session):
    result = demo_session.sql(
        "SELECT * FROM targets LATERAL VIEW explode(aliases) a AS alias LATERAL VIEW explode(array(1, 2)) b AS k "
        "WHERE k = 2 AND alias LIKE 'HD%' ORDER BY alias")
    assert result.column_names[-2:] == ["alias", "k"]
    assert result["alias"].to_pylist() == ["HD 10700", "HD 172167"]
    assert result["k"].to_pylist() == [2, 2]
    grouped = demo_session.sql(
        "SELECT name, count(*) AS n FROM targets LATERAL VIEW explode(aliases) a AS alias GROUP BY name ORDER BY name")
    assert dict(zip(grouped["name"].to_pylist(), grouped["n"].to_pylist())) == {
        n: len(a) for n, a in ALIASES.items() if a}


def test_filters_on_the_source_run_before_the_generator():
    sql = duckdb_sql("SELECT image_id, s.flux FROM images LATERAL VIEW explode(sep_extract(pixels, width, height, 1.5)) "
                     "t AS s WHERE image_id = 'a' AND s.flux > 0 AND width > 10")
    assert sql == ("SELECT image_id, s.flux FROM (SELECT images.*, UNNEST(SEP_EXTRACT(pixels, width, height, 1.5)) AS s "
                   "FROM (SELECT images.* FROM images WHERE image_id = 'a' AND width > 10) AS images) AS images "
                   "WHERE s.flux > 0")


def test_filtered_explode_on_both_engines(demo_session):
    result = demo_session.sql("SELECT name, alias FROM targets LATERAL VIEW explode(aliases) a AS alias "
                              "WHERE name = 'Tau Ceti' AND alias LIKE 'HD%'")
    assert result.to_pylist() == [{"name": "Tau Ceti", "alias": "HD 10700"}]
