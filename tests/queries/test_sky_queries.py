"""The Sky queries in queries/: each gives what an equivalent Spark SQL query gives, and
`astrolake check` finds every query's expected result (on the test demo lake) on every engine.

The expected results (NAME.expected.csv beside a query, or an ``expect`` block at its end) are
results on the demo lake the tests build: ``build_demo(n_events=20_000, seed=42)``, the same as
``astrolake demo --events 20000`` (``make check``). The 1M-event lake ``make run`` builds has other
rows, so ``check`` on it would (rightly) report differences.
"""

import datetime as dt
from pathlib import Path

import pytest

from engine.dsl.check import check, compare, expectation, query_files, to_csv

QUERIES = Path(__file__).resolve().parents[2] / "queries"
SKY = sorted(QUERIES.glob("*.sky"))


def mjd(day: float) -> str:
    moment = dt.datetime(1858, 11, 17) + dt.timedelta(days=day)
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S}'"


def cone(ra: float, dec: float, radius_deg: str) -> str:
    return f"distance(ra_deg, dec_deg, {ra}, {dec}) <= {radius_deg}"


DOPPLER = "doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) / 1e6 AS freq_bary_mhz"
EQUIVALENT_SQL = {
    "09": f"SELECT target, observed_at, {DOPPLER}, drift_hz_s, snr FROM signal_events WHERE "
          f"{cone(346.6223, -5.0413, '5 / 60.0')} AND observed_at >= TIMESTAMP '2017-02-01 00:00:00' AND "
          "observed_at < TIMESTAMP '2017-03-01 00:00:00' AND freq_hz BETWEEN 1420e6 AND 1720e6 AND snr > 25 AND "
          "abs(drift_hz_s) < 4 ORDER BY snr DESC LIMIT 20",
    "10": "SELECT observed_at, site, freq_hz / 1e6 AS freq_mhz, drift_hz_s, snr FROM signal_events WHERE "
          f"{cone(257.5166, 12.1830, '1 / 60.0')} AND to_date(observed_at) = DATE '2016-09-26' AND snr > 250 "
          "ORDER BY observed_at, freq_hz",
    "11": "SELECT to_date(observed_at) AS day, count(*) AS hits, max(snr) AS best_snr FROM signal_events WHERE "
          f"{cone(217.4289, -62.6795, '0.1')} AND freq_hz BETWEEN 981.9e6 AND 982.1e6 AND abs(drift_hz_s) "
          "BETWEEN 0.01 AND 0.1 GROUP BY to_date(observed_at) ORDER BY day",
    "12": "SELECT site, count(*) AS hits, max(snr) AS best_snr, avg(freq_hz) / 1e9 AS avg_freq_ghz FROM signal_events "
          "GROUP BY site ORDER BY site",
    "13": "SELECT round(drift_hz_s) AS drift_bin_hz_s, count(*) AS hits FROM signal_events WHERE abs(drift_hz_s) < 5 "
          "GROUP BY round(drift_hz_s) ORDER BY drift_bin_hz_s",
    "14": "SELECT year(observed_at) AS year, count(*) AS hits, max(snr) AS best_snr FROM signal_events WHERE snr > 100 "
          "GROUP BY year(observed_at) ORDER BY year",
    "15": "SELECT site, count(*) AS hits, min(target) AS first_target, max(target) AS last_target FROM signal_events "
          "WHERE freq_hz BETWEEN 1575.41e6 AND 1575.43e6 AND abs(drift_hz_s) < 0.02 GROUP BY site ORDER BY hits DESC, site",
    "16": "SELECT target, observed_at, site, freq_hz / 1e6 AS freq_mhz, drift_hz_s, snr FROM signal_events WHERE "
          f"{cone(346.6223, -5.0413, '0.1')} AND observed_at >= {mjd(57800)} AND observed_at < {mjd(57830)} AND snr > 80 "
          "ORDER BY snr DESC, observed_at",
    "17": "SELECT site, count(*) AS hits, max(snr) AS best_snr, min(freq_hz) / 1e6 AS min_freq_mhz, "
          "max(freq_hz) / 1e6 AS max_freq_mhz FROM signal_events WHERE " + cone(26.0170, -15.9375, "3 / 60.0") +
          " GROUP BY site ORDER BY hits DESC, site",
    "18": f"SELECT observed_at, freq_hz / 1e6 AS freq_mhz, {DOPPLER}, snr FROM signal_events WHERE "
          f"{cone(257.5166, 12.1830, '1 / 60.0')} AND snr > 1000 ORDER BY observed_at",
    "19": "SELECT target, site, observed_at, freq_hz / 1e6 AS freq_mhz, snr FROM signal_events WHERE snr > 100 AND "
          "drift_hz_s = 0 AND NOT (freq_hz BETWEEN 1575e6 AND 1576e6) ORDER BY snr DESC LIMIT 5",
    "20": "SELECT target, count(*) AS hits, max(snr) AS best_snr FROM signal_events WHERE "
          f"{cone(297.0, 45.0, '5')} AND year(observed_at) = 2018 AND target LIKE 'K%' GROUP BY target ORDER BY target",
}


def test_there_are_at_least_ten_sky_queries_each_with_sql_to_check_it():
    assert len(SKY) >= 10
    assert sorted(p.name[:2] for p in SKY) == sorted(EQUIVALENT_SQL)


@pytest.mark.parametrize("path", SKY, ids=lambda p: p.stem)
def test_sky_query_agrees_with_its_sql_and_its_expected_result(demo_session, path):
    assert path.read_text().lstrip().startswith("#"), "each query starts with the question it answers"
    got = demo_session.sky(path.read_text())
    want = demo_session.sql(EQUIVALENT_SQL[path.name[:2]])
    assert got.num_rows > 0
    assert compare(to_csv(got), to_csv(want), 1e-12) == []
    expected = expectation(path)
    assert expected is not None, f"{path.name} has no expected result"
    assert compare(to_csv(got), expected.csv, 1e-9) == []


def test_check_passes_on_every_query_file(demo_session):
    outcomes = check(demo_session, [QUERIES])
    assert len(outcomes) == len(query_files([QUERIES])) >= 18
    bad = {str(o.path.name): o.details for o in outcomes if o.status != "passed"}
    assert bad == {}, bad
