"""Parity: every statement of the corpus gives the same answer on DuckDB and on Spark.

Results are compared row by row (as multisets unless the statement orders them) with a float
tolerance. Where the engines cannot agree, the corpus says which engine refuses and with which
named error, and the test checks that refusal: nothing differs silently.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from engine.errors import CompileError, EngineError, UnsupportedFunctionError
from tests.conftest import SPARK_MISSING


@dataclass(frozen=True)
class Case:
    sql: str
    refused_on: dict = field(default_factory=dict)  # engine -> (error class, why)


C = Case
CORPUS = [
    # ---- filters and projections
    C("SELECT count(*) AS n FROM signal_events"),
    C("SELECT count(*) AS n FROM signal_events WHERE snr > 25 AND freq_hz BETWEEN 1.4e9 AND 1.8e9"),
    C("SELECT event_id, snr FROM signal_events WHERE target = 'Voyager-1' AND snr > 250"),
    C("SELECT target FROM signal_events WHERE target IN ('TRAPPIST-1', 'Tau Ceti') AND snr > 60"),
    C("SELECT count(*) AS n FROM signal_events WHERE target NOT IN ('Vega', 'Sirius') OR snr < 11"),
    C("SELECT count(*) AS n FROM signal_events WHERE target LIKE 'K%' AND abs(drift_hz_s) < 0.5"),
    # Spark's LIKE escapes with a backslash by default
    C("SELECT 'b%c' LIKE 'b\\%c' AS a, 'bxc' LIKE 'b\\%c' AS b, 'a_b' ILIKE 'A\\_B' AS c, "
      "'axb' LIKE 'a\\_b' AS d, 'x#' LIKE 'x##' ESCAPE '#' AS e, 'Voyager-1' LIKE 'Voy%' AS f"),
    C("SELECT count(*) AS n FROM signal_events WHERE NOT (snr > 20) AND site <> 'GBT'"),
    C("SELECT event_id, freq_hz / 1e6 AS freq_mhz, drift_hz_s * 60 AS drift_hz_min FROM signal_events WHERE snr > 300"),
    C("SELECT DISTINCT site FROM signal_events"),
    C("SELECT DISTINCT target, site FROM signal_events WHERE dec_deg < -50"),
    C("SELECT CASE WHEN snr > 100 THEN 'strong' WHEN snr > 30 THEN 'medium' ELSE 'weak' END AS class, count(*) AS n "
      "FROM signal_events GROUP BY 1"),
    # ---- aggregates
    C("SELECT target, count(*) AS n, avg(snr) AS mean_snr, min(freq_hz) AS lo, max(freq_hz) AS hi "
      "FROM signal_events GROUP BY target"),
    C("SELECT site, sum(CASE WHEN abs(drift_hz_s) < 0.02 THEN 1 ELSE 0 END) AS rfi, count(*) AS n "
      "FROM signal_events GROUP BY site"),
    C("SELECT target, count(DISTINCT site) AS sites FROM signal_events GROUP BY target HAVING count(DISTINCT site) > 2"),
    C("SELECT site, stddev_samp(snr) AS sd, variance(drift_hz_s) AS var FROM signal_events GROUP BY site"),
    C("SELECT round(avg(snr), 3) AS mean, round(sum(snr), 1) AS total FROM signal_events"),
    C("SELECT count(*) AS n, count(bandwidth_hz) AS with_bw, count(DISTINCT beam) AS beams FROM signal_events"),
    C("SELECT site, max_by(target, snr) AS loudest FROM signal_events GROUP BY site"),
    C("SELECT target, sort_array(collect_set(site)) AS sites FROM signal_events WHERE target = 'Voyager-1' GROUP BY target"),
    C("SELECT site, count(*) AS n FROM signal_events GROUP BY site ORDER BY n DESC, site"),
    C("SELECT beam, count(*) AS n FROM signal_events GROUP BY beam ORDER BY beam"),
    # ---- ORDER BY / LIMIT
    C("SELECT event_id, snr FROM signal_events ORDER BY snr DESC, event_id LIMIT 7"),
    C("SELECT target, snr FROM signal_events ORDER BY snr ASC, event_id LIMIT 3"),
    C("SELECT name, distance_ly FROM targets ORDER BY distance_ly"),
    C("SELECT name, distance_ly FROM targets ORDER BY distance_ly DESC"),
    C("SELECT name, planets FROM targets ORDER BY planets NULLS LAST, name"),
    # ---- window functions
    C("SELECT target, snr, rank FROM (SELECT target, snr, row_number() OVER (PARTITION BY target ORDER BY snr DESC, "
      "event_id) AS rank FROM signal_events) t WHERE rank <= 2"),
    C("SELECT event_id, rank() OVER (ORDER BY snr DESC) AS r FROM signal_events WHERE snr > 200"),
    C("SELECT event_id, dense_rank() OVER (PARTITION BY site ORDER BY round(snr)) AS r FROM signal_events WHERE snr > 90"),
    C("SELECT event_id, snr - lag(snr) OVER (PARTITION BY target ORDER BY observed_at, event_id) AS delta "
      "FROM signal_events WHERE target = 'Voyager-1' AND snr > 250"),
    C("SELECT event_id, lead(freq_hz, 1) OVER (ORDER BY observed_at, event_id) AS next_freq "
      "FROM signal_events WHERE target = 'Proxima Centauri' AND snr > 39 AND abs(drift_hz_s) < 0.1"),
    C("SELECT event_id, sum(snr) OVER (PARTITION BY site ORDER BY event_id ROWS BETWEEN UNBOUNDED PRECEDING AND "
      "CURRENT ROW) AS running FROM signal_events WHERE snr > 95"),
    C("SELECT target, avg(snr) OVER (PARTITION BY target) AS mean_snr FROM signal_events WHERE snr > 99"),
    C("SELECT event_id, ntile(4) OVER (ORDER BY snr, event_id) AS quartile FROM signal_events WHERE snr > 80"),
    # ---- CTEs and subqueries
    C("WITH strong AS (SELECT * FROM signal_events WHERE snr > 50) SELECT site, count(*) AS n FROM strong GROUP BY site"),
    C("WITH per AS (SELECT target, max(snr) AS best FROM signal_events GROUP BY target), "
      "top AS (SELECT * FROM per WHERE best > 80) SELECT count(*) AS n, min(best) AS weakest FROM top"),
    C("SELECT count(*) AS n FROM signal_events WHERE snr > (SELECT avg(snr) * 3 FROM signal_events)"),
    C("SELECT name FROM targets t WHERE EXISTS (SELECT 1 FROM signal_events e WHERE e.target = t.name AND e.snr > 250)"),
    C("SELECT name FROM targets WHERE name NOT IN (SELECT DISTINCT target FROM signal_events)"),
    C("SELECT target, n FROM (SELECT target, count(*) AS n FROM signal_events GROUP BY target) WHERE n > 700"),
    C("SELECT e.target, e.snr FROM signal_events e WHERE e.snr = (SELECT max(snr) FROM signal_events s "
      "WHERE s.target = e.target) AND e.target LIKE 'T%'"),
    # ---- joins
    C("SELECT t.name, t.kind, count(e.event_id) AS hits FROM targets t LEFT JOIN signal_events e ON e.target = t.name "
      "GROUP BY t.name, t.kind"),
    C("SELECT t.name, max(e.snr) AS best FROM targets t JOIN signal_events e ON e.target = t.name "
      "WHERE t.kind = 'star' GROUP BY t.name"),
    C("SELECT t.name, e.site FROM targets t RIGHT JOIN (SELECT DISTINCT target, site FROM signal_events "
      "WHERE snr > 250) e ON e.target = t.name"),
    C("SELECT coalesce(t.name, e.target) AS who, t.kind FROM targets t FULL OUTER JOIN "
      "(SELECT DISTINCT target FROM signal_events WHERE target LIKE 'V%') e ON e.target = t.name"),
    C("SELECT a.target, count(*) AS pairs FROM signal_events a JOIN signal_events b ON a.target = b.target "
      "AND a.event_id < b.event_id AND abs(a.freq_hz - b.freq_hz) < 1000 WHERE a.snr > 250 AND b.snr > 250 "
      "GROUP BY a.target"),
    C("SELECT t.name, s.site FROM targets t CROSS JOIN (SELECT DISTINCT site FROM signal_events) s "
      "WHERE t.kind = 'spacecraft'"),
    C("SELECT name FROM targets t LEFT ANTI JOIN signal_events e ON e.target = t.name"),
    C("SELECT name FROM targets t LEFT SEMI JOIN signal_events e ON e.target = t.name AND e.snr > 1000"),
    # ---- set operations
    C("SELECT target FROM signal_events WHERE snr > 300 UNION SELECT name FROM targets WHERE kind = 'star'"),
    C("SELECT target FROM signal_events WHERE snr > 250 UNION ALL SELECT name FROM targets WHERE planets > 3"),
    C("SELECT name FROM targets INTERSECT SELECT target FROM signal_events WHERE snr > 250"),
    C("SELECT name FROM targets EXCEPT SELECT target FROM signal_events"),
    # ---- dates and timestamps
    C("SELECT year(observed_at) AS y, month(observed_at) AS m, count(*) AS n FROM signal_events "
      "WHERE target = 'Voyager-1' GROUP BY year(observed_at), month(observed_at)"),
    C("SELECT to_date(observed_at) AS day, count(*) AS n FROM signal_events WHERE snr > 250 GROUP BY to_date(observed_at)"),
    C("SELECT count(*) AS n FROM signal_events WHERE observed_at >= '2017-02-22' AND observed_at < '2017-02-23'"),
    C("SELECT count(*) AS n FROM signal_events WHERE observed_at BETWEEN TIMESTAMP '2016-09-26 18:45:00' "
      "AND TIMESTAMP '2016-09-26 19:00:00'"),
    C("SELECT obs_date, date_add(obs_date, 30) AS later, datediff(obs_date, DATE '2016-01-01') AS days "
      "FROM signal_events WHERE snr > 300"),
    C("SELECT date_trunc('month', observed_at) AS month, count(*) AS n FROM signal_events WHERE snr > 100 "
      "GROUP BY date_trunc('month', observed_at)"),
    C("SELECT hour(observed_at) AS h, minute(observed_at) AS mi, second(observed_at) AS s FROM signal_events "
      "WHERE snr > 1000"),
    C("SELECT unix_timestamp(observed_at) AS epoch_s FROM signal_events WHERE snr > 1000"),
    C("SELECT date_format(observed_at, 'yyyy-MM-dd HH:mm') AS at FROM signal_events WHERE snr > 1000"),
    C("SELECT name, datediff(DATE '2020-01-01', discovered) AS age_days FROM targets"),
    C("SELECT name, last_seen FROM targets WHERE last_seen > TIMESTAMP '2018-01-01 00:00:00'"),
    C("SELECT dayofweek(obs_date) AS dow, count(*) AS n FROM signal_events WHERE snr > 100 GROUP BY dayofweek(obs_date)"),
    # ---- NULL semantics
    C("SELECT name, planets + 1 AS more FROM targets"),
    C("SELECT count(*) AS n, count(kind) AS with_kind, count(planets) AS with_planets FROM targets"),
    C("SELECT name FROM targets WHERE kind IS NULL"),
    C("SELECT name FROM targets WHERE planets <> 7"),
    C("SELECT name, coalesce(kind, 'unknown') AS kind, nvl(planets, 0) AS planets FROM targets"),
    C("SELECT kind, count(*) AS n, sum(planets) AS planets FROM targets GROUP BY kind"),
    C("SELECT name, CASE WHEN planets IS NULL THEN -1 ELSE planets END AS p FROM targets"),
    C("SELECT nullif(kind, 'star') AS not_star, name FROM targets"),
    C("SELECT max(planets) AS most, min(discovered) AS earliest, avg(distance_ly) AS mean_ly FROM targets"),
    # ---- strings
    C("SELECT upper(name) AS u, lower(name) AS l, length(name) AS len FROM targets"),
    C("SELECT length(CAST(name AS BINARY)) AS n_bytes, length(CAST(NULL AS BINARY)) AS none FROM targets"),
    # a library function's BINARY result: sqlglot is told the functions' return types
    C("SELECT length(s.power) AS n_bytes, s.n_time AS n_time "
      "FROM (SELECT spectrogram(unhex(repeat('0000803F00000000', 8)), 4, 2) AS s) AS t"),
    C("SELECT length(spectrogram(unhex(repeat('0000803F00000000', 16)), 8, 1).power) AS n_bytes, "
      "CAST(healpix_index(ra_deg, dec_deg, 4) / 3.0 AS INT) AS third FROM signal_events WHERE snr > 300"),
    C("SELECT concat(name, ' (', coalesce(kind, '?'), ')') AS label FROM targets"),
    C("SELECT substring(name, 1, 4) AS prefix, substr(name, -2) AS suffix FROM targets"),
    C("SELECT trim('  x  ') AS t, ltrim('  x') AS l, rtrim('x  ') AS r, lpad('7', 3, '0') AS p, rpad('7', 3, '-') AS q"),
    C("SELECT name, replace(name, ' ', '_') AS slug, instr(name, 'a') AS where_a FROM targets"),
    C("SELECT name, regexp_extract(name, '([0-9]+)', 1) AS digits FROM targets WHERE name RLIKE '[0-9]'"),
    C("SELECT concat_ws('/', site, target) AS path, count(*) AS n FROM signal_events WHERE snr > 250 "
      "GROUP BY concat_ws('/', site, target)"),
    C("SELECT name, startswith(name, 'T') AS t FROM targets"),
    # ---- arrays
    C("SELECT name, size(aliases) AS n_aliases FROM targets WHERE aliases IS NOT NULL"),
    C("SELECT name FROM targets WHERE array_contains(aliases, 'GJ 551')"),
    C("SELECT name, aliases[0] AS first_alias FROM targets WHERE size(aliases) > 0"),
    C("SELECT name, alias FROM targets LATERAL VIEW explode(aliases) a AS alias"),
    C("SELECT name, split(name, '-') AS parts FROM targets WHERE name LIKE '%-%'"),
    C("SELECT array(1, 2, 3) AS xs, sort_array(array(3, 1, 2)) AS sorted"),
    # ---- time travel
    C("SELECT count(*) AS n FROM signal_events VERSION AS OF 2"),
    C("SELECT v1.n AS then_n, v4.n AS now_n FROM (SELECT count(*) AS n FROM signal_events VERSION AS OF 1) v1 "
      "CROSS JOIN (SELECT count(*) AS n FROM signal_events VERSION AS OF 4) v4"),
    C("SELECT count(*) AS n FROM signal_events TIMESTAMP AS OF '2999-01-01'"),
    # ---- casts and arithmetic
    C("SELECT CAST(snr AS INT) AS i, CAST(freq_hz AS BIGINT) AS f, CAST(beam AS STRING) AS b FROM signal_events "
      "WHERE snr > 300"),
    C("SELECT 7 / 2 AS div, 7 % 3 AS m, pow(2, 10) AS p, sqrt(16) AS r, floor(-2.5) AS fl, ceil(2.1) AS c"),
    C("SELECT round(1234.5678, 2) AS r2, round(1234.5678, -2) AS rm2, abs(-3) AS a, sign(-2.0) AS s"),
    C("SELECT greatest(1, 5, 3) AS g, least(4, 2, 8) AS l, exp(0) AS e, ln(1) AS z, log10(1000) AS l3"),
    C("SELECT degrees(radians(180.0)) AS d, sin(radians(90.0)) AS s, atan2(1.0, 1.0) AS a"),
    C("SELECT try_cast('x' AS INT) AS bad, try_cast('42' AS INT) AS good"),
    C("SELECT cardinality(aliases) AS n FROM targets"),
    C("SELECT array_distinct(array(3, 1, 3, 2, 1)) AS xs, array_join(array('a', 'b'), ',') AS joined"),
    C("SELECT name, array_distinct(concat(aliases, aliases)) AS once FROM targets WHERE aliases IS NOT NULL"),
    # ---- engine differences: refused with a named error, never silently different
    C("SELECT crc32(name) AS c FROM targets",
      refused_on={"duckdb": (UnsupportedFunctionError, "DuckDB has no crc32")}),
    C("SELECT soundex(name) AS s FROM targets",
      refused_on={"duckdb": (CompileError, "sqlglot cannot express SOUNDEX for DuckDB")}),
    C("SELECT monotonically_increasing_id() AS id FROM targets",
      refused_on={"duckdb": (UnsupportedFunctionError, "a Spark-only function")}),
    C("SELECT list_sum(array(1, 2)) AS s",
      refused_on={"spark": (UnsupportedFunctionError, "a DuckDB function, not Spark SQL")}),
]


def _norm(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    if isinstance(value, bool):
        return int(value)
    return value


def _rows(table) -> list[tuple]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [tuple(_norm(c[r]) for c in columns) for r in range(table.num_rows)]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _sort_key(row):
    return tuple((v is None, str(type(v)), round(v, 6) if isinstance(v, float) else v if not isinstance(v, tuple) else str(v))
                 for v in row)


def ordered(sql: str) -> bool:
    """Whether the statement's outermost query orders its result."""
    return bool(re.search(r"ORDER BY [^)]*$", sql, re.I))


def _kind(arrow_type) -> str:
    """A column type as a user sees it: string widths and list offsets do not matter."""
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"array<{_kind(arrow_type.value_type)}>"
    if pa.types.is_struct(arrow_type):
        return "struct<" + ",".join(f"{f.name}:{_kind(f.type)}" for f in arrow_type) + ">"
    if pa.types.is_timestamp(arrow_type):
        return f"timestamp[{arrow_type.tz}]"
    if pa.types.is_decimal(arrow_type):  # the engines' precision rules differ; the scale must not
        return f"decimal(*, {arrow_type.scale})"
    return str(arrow_type)


def assert_same_result(a, b, is_ordered: bool) -> None:
    rows_a, rows_b = _rows(a), _rows(b)
    assert a.num_columns == b.num_columns, (a.schema, b.schema)
    assert [_kind(f.type) for f in a.schema] == [_kind(f.type) for f in b.schema], (a.schema, b.schema)
    assert len(rows_a) == len(rows_b), (rows_a[:5], rows_b[:5])
    if not is_ordered:
        rows_a, rows_b = sorted(rows_a, key=_sort_key), sorted(rows_b, key=_sort_key)
    for ra, rb in zip(rows_a, rows_b):
        assert _same(ra, rb), f"{ra} != {rb}"


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 60


@pytest.fixture(scope="module")
def sessions(demo_lake_path):
    if SPARK_MISSING:
        pytest.skip(SPARK_MISSING)
    import engine
    from tests.conftest import _DEMO_SESSIONS

    for name in ("duckdb", "spark"):
        if name not in _DEMO_SESSIONS:
            _DEMO_SESSIONS[name] = engine.connect(demo_lake_path, engine=name)
    return _DEMO_SESSIONS["duckdb"], _DEMO_SESSIONS["spark"]


@pytest.mark.spark
@pytest.mark.parametrize("case", CORPUS, ids=[f"q{i:02d}" for i in range(len(CORPUS))])
def test_same_answer_on_both_engines(sessions, case):
    duck, spark = sessions
    results = {}
    for name, session in (("duckdb", duck), ("spark", spark)):
        if name in case.refused_on:
            error, _why = case.refused_on[name]
            with pytest.raises(error):
                session.sql(case.sql)
        else:
            try:
                results[name] = session.sql(case.sql)
            except EngineError as e:
                pytest.fail(f"{name} failed: {e}")
    if len(results) == 2:
        assert results["duckdb"].num_rows > 0 or "EXCEPT" in case.sql or "ANTI" in case.sql
        assert_same_result(results["duckdb"], results["spark"], ordered(case.sql))
