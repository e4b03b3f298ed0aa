"""ADQL's CONTAINS(POINT, CIRCLE | BOX): the tree rewrite, and the queries it makes on each engine."""

import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from catalogs.lake import Lake
from engine.errors import CompileError
from engine.sky_predicates import expand_sky_predicates
from udfs.sky import angular_distance_deg, box_contains

CENTRE = (346.6223, -5.0413)  # TRAPPIST-1 in the demo lake


def rewrite(sql: str) -> exp.Expression:
    return expand_sky_predicates(sqlglot.parse_one(sql, read="spark"))


def spark_sql(sql: str) -> str:
    return rewrite(sql).sql(dialect="spark")


# ---- the rewritten tree --------------------------------------------------------------------


def test_contains_circle_becomes_a_null_propagating_case():
    tree = rewrite("SELECT CONTAINS(POINT(ra, dec), CIRCLE(1.5, -2, 0.25)) AS c FROM t")
    case = tree.selects[0].this
    assert isinstance(case, exp.Case)
    assert case.args.get("default") is None  # no ELSE: a NULL comparison gives NULL
    condition = case.this.unnest()
    assert isinstance(condition, exp.LTE)
    call = condition.this
    assert isinstance(call, exp.Anonymous) and call.name == "distance"
    assert [a.sql() for a in call.expressions] == ["ra", "dec", "1.5", "-2"]
    assert condition.expression.sql() == "0.25"
    assert [(i.this.sql(), i.args["true"].sql()) for i in case.args["ifs"]] == [("TRUE", "1"), ("FALSE", "0")]
    assert tree.sql(dialect="spark") == (
        "SELECT CASE (DISTANCE(ra, dec, 1.5, -2) <= 0.25) WHEN TRUE THEN 1 WHEN FALSE THEN 0 END AS c FROM t")


def test_rewrite_is_a_copy():
    tree = sqlglot.parse_one("SELECT CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) FROM t", read="spark")
    before = tree.sql(dialect="spark")
    expand_sky_predicates(tree)
    assert tree.sql(dialect="spark") == before


@pytest.mark.parametrize("sql", [
    "SELECT * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3))",
    "SELECT * FROM t WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) = 1",
])
def test_contains_equals_one_is_the_predicate_itself(sql):
    assert spark_sql(sql) == "SELECT * FROM t WHERE DISTANCE(ra, dec, 1, 2) <= 3"


def test_contains_equals_zero_is_the_negation():
    assert spark_sql("SELECT * FROM t WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) = 0") == (
        "SELECT * FROM t WHERE NOT (DISTANCE(ra, dec, 1, 2) <= 3)")


def test_coordinate_system_argument_is_accepted():
    assert spark_sql("SELECT * FROM t WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('icrs', 1, 2, 3))") == (
        "SELECT * FROM t WHERE DISTANCE(ra, dec, 1, 2) <= 3")
    assert spark_sql("SELECT * FROM t WHERE 1 = CONTAINS(POINT('', ra, dec), CIRCLE('ICRS GEOCENTER', 1, 2, 3))") == (
        "SELECT * FROM t WHERE DISTANCE(ra, dec, 1, 2) <= 3")


def test_circle_and_box_take_a_point_as_centre():
    assert spark_sql("SELECT * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE('ICRS', POINT('ICRS', 1, 2), 3))") == (
        "SELECT * FROM t WHERE DISTANCE(ra, dec, 1, 2) <= 3")
    assert spark_sql("SELECT * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), BOX(POINT(1, 2), 3, 4))") == (
        "SELECT * FROM t WHERE IN_BOX(ra, dec, 1, 2, 3, 4)")


def test_box_becomes_in_box():
    assert spark_sql("SELECT CONTAINS(POINT(ra, dec), BOX('ICRS', 1, 2, 3, 4)) FROM t") == (
        "SELECT CASE (IN_BOX(ra, dec, 1, 2, 3, 4)) WHEN TRUE THEN 1 WHEN FALSE THEN 0 END FROM t")


def test_radius_expression_keeps_its_precedence():
    tree = rewrite("SELECT * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, r OR q))")
    assert isinstance(tree.args["where"].this.expression, exp.Paren)
    assert spark_sql("SELECT * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, r + 1))") == (
        "SELECT * FROM t WHERE DISTANCE(ra, dec, 1, 2) <= (r + 1)")


def test_adql_distance_of_two_points():
    assert spark_sql("SELECT DISTANCE(POINT('ICRS', ra, dec), POINT(1, 2)) AS d FROM t") == (
        "SELECT DISTANCE(ra, dec, 1, 2) AS d FROM t")
    # the library's four-number distance is untouched
    assert spark_sql("SELECT distance(ra, dec, 1, 2) AS d FROM t") == "SELECT DISTANCE(ra, dec, 1, 2) AS d FROM t"


@pytest.mark.parametrize("sql", [
    "SELECT contains(target, 'Ceti') FROM t",
    "SELECT * FROM t WHERE contains(target, 'Ceti') = 1",
    "SELECT * FROM t WHERE contains(target, name)",
])
def test_string_contains_is_untouched(sql):
    tree = sqlglot.parse_one(sql, read="spark")
    assert rewrite(sql) == tree
    assert isinstance(next(rewrite(sql).find_all(exp.Contains)), exp.Contains)


def test_nested_queries_are_rewritten():
    sql = ("WITH near AS (SELECT * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3))) "
           "SELECT (SELECT count(*) FROM near WHERE CONTAINS(POINT(ra, dec), BOX(1, 2, 1, 1)) = 1) AS n")
    text = spark_sql(sql)
    assert "CONTAINS" not in text.upper().replace("IN_BOX", "")
    assert "DISTANCE(ra, dec, 1, 2) <= 3" in text and "IN_BOX(ra, dec, 1, 2, 1, 1)" in text


@pytest.mark.parametrize("sql, message", [
    ("SELECT CONTAINS(POINT(ra, dec), 5) FROM t", "needs a CIRCLE"),
    ("SELECT CONTAINS(POINT(ra, dec), POINT(1, 2)) FROM t", "needs a CIRCLE"),
    ("SELECT CONTAINS(5, CIRCLE(1, 2, 3)) FROM t", "needs a POINT"),
    ("SELECT CONTAINS(CIRCLE(1, 2, 3), POINT(ra, dec)) FROM t", "needs a POINT"),
    ("SELECT CONTAINS(POINT(ra), CIRCLE(1, 2, 3)) FROM t", "POINT([frame,] ra, dec) takes 2 numbers"),
    ("SELECT CONTAINS(POINT(ra, dec), CIRCLE(1, 2)) FROM t", "CIRCLE([frame,] ra, dec, radius) takes 3"),
    ("SELECT CONTAINS(POINT(ra, dec), BOX(1, 2, 3)) FROM t", "BOX([frame,] ra, dec, width, height) takes 4"),
    ("SELECT CONTAINS(POINT('GALACTIC', l, b), CIRCLE(1, 2, 3)) FROM t", "only ICRS"),
    ("SELECT POINT(ra, dec) FROM t", "only supported inside CONTAINS"),
    ("SELECT * FROM t WHERE CIRCLE(1, 2, 3) IS NOT NULL", "only supported inside CONTAINS"),
    ("SELECT DISTANCE(POINT(1, 2), 3, 4) FROM t", "DISTANCE takes two POINTs"),
])
def test_malformed_uses_are_compile_errors(sql, message):
    with pytest.raises(CompileError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        rewrite(sql)


# ---- through SQL on the engines ------------------------------------------------------------


@pytest.fixture(scope="module")
def positions(demo_lake_path):
    table = Lake(demo_lake_path).delta_table("signal_events").to_pyarrow_table()
    return table.column("ra_deg").to_numpy(), table.column("dec_deg").to_numpy()


def test_contains_circle_counts_match_numpy(demo_session, positions):
    ra, dec = positions
    for radius in (0.5, 5.0, 60.0):
        want = int((angular_distance_deg(ra, dec, *CENTRE) <= radius).sum())
        got = demo_session.sql(
            "SELECT count(*) AS n FROM signal_events "
            f"WHERE 1 = CONTAINS(POINT('ICRS', ra_deg, dec_deg), CIRCLE('ICRS', {CENTRE[0]}, {CENTRE[1]}, {radius}))")
        assert got.column("n").to_pylist() == [want]
        summed = demo_session.sql(
            f"SELECT sum(CONTAINS(POINT(ra_deg, dec_deg), CIRCLE({CENTRE[0]}, {CENTRE[1]}, {radius}))) AS n "
            "FROM signal_events")
        assert int(summed.column("n")[0].as_py()) == want
        cone = demo_session.sql(
            f"SELECT count(*) AS n FROM signal_events WHERE in_cone(ra_deg, dec_deg, {CENTRE[0]}, {CENTRE[1]}, {radius})")
        assert cone.column("n").to_pylist() == [want]


def test_contains_box_counts_match_numpy(demo_session, positions):
    ra, dec = positions
    inside, _ = box_contains(ra, dec, np.full(len(ra), 250.0), np.full(len(ra), 10.0),
                             np.full(len(ra), 150.0), np.full(len(ra), 80.0))
    got = demo_session.sql("SELECT count(*) AS n FROM signal_events "
                           "WHERE CONTAINS(POINT(ra_deg, dec_deg), BOX(250.0, 10.0, 150.0, 80.0)) = 1")
    assert got.column("n").to_pylist() == [int(inside.sum())]
    assert 0 < inside.sum() < len(ra)


def test_contains_values_and_nulls(demo_session):
    got = demo_session.sql(
        "SELECT CONTAINS(POINT(359.95, 0.0), CIRCLE(0.05, 0.0, 0.11)) AS across_zero, "
        "CONTAINS(POINT(0.0, 89.9), CIRCLE(180.0, 89.9, 0.19)) AS over_pole, "
        "CONTAINS(POINT(CAST(NULL AS DOUBLE), 1.0), CIRCLE(1.0, 1.0, 1.0)) AS null_point, "
        "CONTAINS(POINT(1.0, 1.0), CIRCLE(1.0, 1.0, CAST(NULL AS DOUBLE))) AS null_radius, "
        "CONTAINS(POINT(1.0, 1.0), BOX(1.0, CAST(NULL AS DOUBLE), 1.0, 1.0)) AS null_box, "
        "DISTANCE(POINT(0.0, 0.0), POINT(180.0, 0.0)) AS antipodal, "
        "contains('TRAPPIST-1', 'PIST') AS string_contains")
    assert got.to_pylist() == [{
        "across_zero": 1, "over_pole": 0, "null_point": None, "null_radius": None, "null_box": None,
        "antipodal": pytest.approx(180.0), "string_contains": True,
    }]


def test_contains_in_select_list_and_group_by(demo_session):
    got = demo_session.sql(
        f"SELECT CONTAINS(POINT(ra_deg, dec_deg), CIRCLE({CENTRE[0]}, {CENTRE[1]}, 1.0)) AS near, count(*) AS n "
        f"FROM signal_events GROUP BY CONTAINS(POINT(ra_deg, dec_deg), CIRCLE({CENTRE[0]}, {CENTRE[1]}, 1.0)) "
        "ORDER BY near")
    assert got.column("near").to_pylist() == [0, 1]
    assert sum(got.column("n").to_pylist()) == demo_session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py()


def test_string_contains_still_runs(demo_session):
    got = demo_session.sql("SELECT count(*) AS n FROM signal_events WHERE contains(target, 'TRAPPIST')")
    want = demo_session.sql("SELECT count(*) AS n FROM signal_events WHERE target LIKE '%TRAPPIST%'")
    assert got.column("n").to_pylist() == want.column("n").to_pylist()


def test_compile_shows_the_rewrite(demo_session):
    text = demo_session.compile("SELECT count(*) FROM signal_events WHERE "
                                "1 = CONTAINS(POINT(ra_deg, dec_deg), CIRCLE(1, 2, 3))")
    assert "distance(ra_deg, dec_deg, 1, 2) <= 3" in text.lower()


def test_malformed_contains_fails_before_running(demo_session):
    with pytest.raises(CompileError, match="needs a CIRCLE"):
        demo_session.sql("SELECT CONTAINS(POINT(ra_deg, dec_deg), 5) FROM signal_events")


def test_healpix_through_sql(demo_session, positions):
    from astropy import units as u
    from astropy_healpix import HEALPix

    ra, dec = positions
    want = HEALPix(nside=2 ** 6, order="nested").lonlat_to_healpix(ra * u.deg, dec * u.deg)
    got = demo_session.sql("SELECT healpix_index(ra_deg, dec_deg, 6) AS pixel, count(*) AS n FROM signal_events "
                           "GROUP BY healpix_index(ra_deg, dec_deg, 6)")
    pixels, counts = np.unique(want, return_counts=True)
    assert dict(zip(got["pixel"].to_pylist(), got["n"].to_pylist())) == dict(zip(pixels.tolist(), counts.tolist()))
    assert got.schema.field("pixel").type == pa.int64()
