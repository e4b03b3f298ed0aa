"""Doppler functions: astropy's radial_velocity_correction reproduced row by row (1 mm/s), the
barycentric frequency, bad rows, dates outside the IERS tables, offline use, and SQL on DuckDB."""

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, get_body_barycentric_posvel
from astropy.time import Time

from catalogs.lake import Lake
from udfs import doppler, observatories
from udfs.registry import call, evaluate, get

C = 299_792_458.0
ROOT = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc
TOLERANCE_MS = 1e-3  # 1 mm/s


def astropy_velocity(t, ra, dec, sites) -> np.ndarray:
    """astropy's barycentric correction for each row (one vectorised call per site: element-wise,
    the same numbers as one call per row), configured as the functions configure it."""
    t, ra, dec, sites = (np.asarray(a) for a in (t, ra, dec, sites))
    out = np.full(len(t), np.nan)
    with doppler.astropy_offline():
        for site in np.unique(sites):
            rows = sites == site
            coord = SkyCoord(ra[rows] * u.deg, dec[rows] * u.deg, frame="icrs")
            out[rows] = coord.radial_velocity_correction(
                kind="barycentric", obstime=Time(t[rows], scale="utc"),
                location=observatories.location(site)).to_value(u.m / u.s)
    return out


def random_rows(rng, start, span_s, n, sites=None):
    t = np.datetime64(start, "us") + rng.integers(0, int(span_s * 1e6), n).astype("timedelta64[us]")
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))  # uniform over the sphere
    site = rng.choice(sites or observatories.codes(), n)
    return t, ra, dec, site


@pytest.fixture(scope="module")
def sample():
    """2,400 rows: 2,000 over 1995-2025, all sky, every site; 400 around two leap seconds."""
    rng = np.random.default_rng(20240601)
    parts = [random_rows(rng, "1995-01-01", 31 * 365.25 * 86400, 2000),
             random_rows(rng, "2015-06-30T21:00", 6 * 3600, 200),
             random_rows(rng, "2016-12-31T21:00", 6 * 3600, 200)]
    return tuple(np.concatenate(column) for column in zip(*parts))


def test_matches_astropy_row_by_row(sample):
    t, ra, dec, site = sample
    ours, errors = doppler.barycentric_correction(t, ra, dec, site)
    assert errors is None
    reference = astropy_velocity(t, ra, dec, site)
    delta = np.abs(ours - reference)
    assert len(t) >= 2000 and set(site) == set(observatories.codes())
    assert np.abs(reference).max() > 29_000  # the whole range of the orbital velocity is covered
    assert delta.max() <= TOLERANCE_MS, f"max |dv| = {delta.max() * 1e3:.4f} mm/s"


def test_single_rows_through_the_registry_match_scalar_astropy():
    rows = [(dt.datetime(2019, 4, 29, 14, 20), 217.42896, -62.67948, "Parkes"),
            (dt.datetime(2016, 9, 26, 18, 46, 13), 256.0, 12.0, "GBT"),
            (dt.datetime(2017, 2, 22, 9, 0), 346.6223, -5.0413, "ata"),
            (dt.datetime(2005, 1, 1, 0, 0), 0.0, 90.0, "Arecibo"),
            (dt.datetime(2024, 12, 31, 23, 59, 59, 999999), 359.999, -89.9, "MeerKAT")]
    for when, ra, dec, site in rows:
        with doppler.astropy_offline():
            want = SkyCoord(ra * u.deg, dec * u.deg).radial_velocity_correction(
                obstime=Time(when, scale="utc"), location=observatories.location(site)).to_value(u.m / u.s)
        got = call("barycentric_velocity_ms", when.replace(tzinfo=UTC), ra, dec, site)
        assert abs(got - want) <= TOLERANCE_MS, (when, site, got, want)


def test_doppler_correct_is_astropys_rule_for_applying_the_correction(sample):
    t, ra, dec, site = (a[:300] for a in sample)
    freq = np.random.default_rng(3).uniform(1e8, 1e10, len(t))
    spec = get("doppler_correct")
    f_bary, errors = spec.kernel(freq, t, ra, dec, site)
    assert errors is None  # every row has a value
    v = astropy_velocity(t, ra, dec, site) * (u.m / u.s)
    # a signal of rest frequency f0 seen at freq: optical velocities, v_bary = v_topo + v + v_topo v / c
    f0 = 1.4204057517667e9 * u.Hz
    v_topo = (freq * u.Hz).to(u.m / u.s, u.doppler_optical(f0))
    v_bary = v_topo + v + v_topo * v / (C * u.m / u.s)
    want = v_bary.to(u.Hz, u.doppler_optical(f0)).value
    assert np.allclose(f_bary, want, rtol=1e-11, atol=0)
    assert np.allclose(f_bary, freq / (1 + v.value / C), rtol=1e-11, atol=0)


def test_a_transmitter_at_rest_in_the_barycentre_has_one_barycentric_frequency():
    rng = np.random.default_rng(11)
    t, _, _, site = random_rows(rng, "2018-01-01", 365 * 86400, 500)
    ra, dec = np.full(500, 83.63308), np.full(500, 22.0145)  # one source, seen all year from everywhere
    v, _ = doppler.barycentric_correction(t, ra, dec, site)
    f0 = 1_420_405_751.7667
    topocentric = f0 * (1 + v / C)  # what each site receives
    assert np.ptp(topocentric) > 50_000  # the Earth moves it by tens of kHz
    f_bary, _ = get("doppler_correct").kernel(topocentric, t, ra, dec, site)
    assert np.abs(f_bary - f0).max() < 1e-5


def test_sign_moving_towards_the_target_is_positive():
    when = Time("2020-03-01T12:00:00", scale="utc")
    velocity = get_body_barycentric_posvel("earth", when)[1].xyz.to_value(u.m / u.s)
    apex = SkyCoord(x=velocity[0], y=velocity[1], z=velocity[2], representation_type="cartesian",
                    frame="icrs").spherical
    args = (dt.datetime(2020, 3, 1, 12, tzinfo=UTC), apex.lon.deg, apex.lat.deg, "GBT")
    v = call("barycentric_velocity_ms", *args)
    assert v > 29_000  # towards the apex of the Earth's motion
    assert call("doppler_correct", 1e9, *args) < 1e9  # the topocentric frequency is the higher
    antapex = (args[0], (apex.lon.deg + 180) % 360, -apex.lat.deg, "GBT")
    assert call("barycentric_velocity_ms", *antapex) < -29_000


def test_nulls_bad_rows_and_their_reasons():
    t = pa.array([dt.datetime(2019, 4, 29, 14, 20, tzinfo=UTC)] * 9 + [None]
                 + [dt.datetime(1959, 12, 31, tzinfo=UTC), dt.datetime(2100, 1, 1, tzinfo=UTC)],
                 pa.timestamp("us", tz="UTC"))
    ra = pa.array([217.4, 217.4, np.nan, 217.4, 217.4, 217.4, None, 577.4, 217.4, 217.4, 217.4, 217.4])
    dec = pa.array([-62.7, -62.7, -62.7, np.inf, 95.0, -62.7, -62.7, -62.7, -62.7, -62.7, -62.7, -62.7])
    site = pa.array(["Parkes", "Arecibo 2", "Parkes", "Parkes", "Parkes", None, "Parkes", "parkes", "PARKES",
                     "Parkes", "Parkes", "Parkes"])
    values = evaluate(get("barycentric_velocity_ms"), [t, ra, dec, site]).to_pylist()
    reasons = evaluate(get("barycentric_velocity_ms_error"), [t, ra, dec, site]).to_pylist()
    good = values[0]
    assert good == pytest.approx(call("barycentric_velocity_ms", t[0].as_py(), 217.4, -62.7, "Parkes"))
    assert values[7] == pytest.approx(good, abs=1e-9) and values[8] == good  # ra 577.4 = 217.4; any case
    assert [v is None for v in values] == [False, True, True, True, True, True, True, False, False, True, True, True]
    assert reasons[0] is None and reasons[7] is None and reasons[8] is None
    assert reasons[1].startswith("unknown observatory code 'Arecibo 2'; known codes: ATA, GBT, Parkes")
    assert all(code in reasons[1] for code in observatories.codes())
    assert reasons[2] == "ra_deg nan is not a finite number"
    assert reasons[3] == "dec_deg inf is not a finite number"
    assert reasons[4] == "dec_deg 95.0 is outside -90 .. 90"
    assert reasons[5] is None and reasons[6] is None and reasons[9] is None  # NULL in: NULL, no reason
    assert reasons[10].startswith("observed_at 1959-12-31T00:00:00 is outside 1960-01-01 .. 2099-12-31")
    assert reasons[11].startswith("observed_at 2100-01-01T00:00:00 is outside")

    freq = pa.array([982e6, np.nan, None])
    three = [c.slice(0, 3) for c in (t, ra, dec)]
    bad_site = pa.array(["Parkes", "Parkes", "Parkes"])
    f = evaluate(get("doppler_correct"), [freq, *three, bad_site]).to_pylist()
    why = evaluate(get("doppler_correct_error"), [freq, *three, bad_site]).to_pylist()
    assert f[0] == pytest.approx(982e6 / (1 + good / C)) and f[1] is None and f[2] is None
    assert why == [None, "freq_hz nan is not a finite number", None]


def test_several_problems_are_all_reported():
    reason = call("doppler_correct_error", float("inf"), dt.datetime(2019, 1, 1, tzinfo=UTC), float("nan"), -91.0, "Mars")
    assert reason.split("; ")[0] == "freq_hz inf is not a finite number"
    assert "ra_deg nan" in reason and "dec_deg -91.0 is outside" in reason and "unknown observatory code 'Mars'" in reason


def test_dates_outside_the_iers_tables_still_match_astropy_in_degraded_mode():
    coverage = doppler.iers_coverage()
    assert coverage["start"] <= "1973-01-02" and coverage["end"] >= "2026-01-01"
    rng = np.random.default_rng(7)
    for start in ("1960-01-01", "1965-06-01", "2035-01-01", "2099-06-01"):
        t, ra, dec, site = random_rows(rng, start, 180 * 86400, 60)
        ours, errors = doppler.barycentric_correction(t, ra, dec, site)
        assert errors is None  # a value, not NULL
        assert np.abs(ours - astropy_velocity(t, ra, dec, site)).max() <= TOLERANCE_MS, start


def test_astropy_is_configured_offline():
    from astropy.coordinates import solar_system_ephemeris
    from astropy.utils import iers

    with doppler.astropy_offline():
        assert iers.conf.auto_download is False
        assert iers.conf.auto_max_age is None
        assert solar_system_ephemeris.get() == "builtin"
        table = iers.earth_orientation_table.get()
        assert "astropy_iers_data" in str(table.meta.get("data_path", "")) or table.meta.get("data_url") is None


def test_works_with_the_network_cut_in_a_fresh_process():
    script = textwrap.dedent("""
        import socket, urllib.request
        def no_network(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = no_network
        socket.create_connection = no_network
        urllib.request.urlopen = no_network
        import datetime as dt
        from udfs.registry import call
        print(repr(call("barycentric_velocity_ms", dt.datetime(1983, 5, 17, 3, 0), 83.6, 22.0, "Effelsberg")))
        print(repr(call("doppler_correct", 1.4e9, dt.datetime(2031, 7, 4, 21, 30), 266.4, -29.0, "MeerKAT")))
    """)
    done = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    v, f = (float(line) for line in done.stdout.split())
    assert v == pytest.approx(call("barycentric_velocity_ms", dt.datetime(1983, 5, 17, 3, 0), 83.6, 22.0, "Effelsberg"), abs=1e-9)
    assert f == pytest.approx(call("doppler_correct", 1.4e9, dt.datetime(2031, 7, 4, 21, 30), 266.4, -29.0, "MeerKAT"), rel=1e-15)


# ---- through SQL -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_rows(demo_lake_path):
    return Lake(demo_lake_path).delta_table("signal_events").to_pyarrow_table().sort_by("event_id")


def test_sql_matches_the_kernel_and_astropy(demo_session, demo_rows):
    got = demo_session.sql("""
        SELECT event_id, freq_hz, observed_at, ra_deg, dec_deg, site,
               barycentric_velocity_ms(observed_at, ra_deg, dec_deg, site) AS v_ms,
               doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) AS f_bary_hz
        FROM signal_events
        ORDER BY event_id""")
    assert got.num_rows == demo_rows.num_rows
    assert got["event_id"].to_pylist() == demo_rows["event_id"].to_pylist()
    v = got["v_ms"].to_numpy(zero_copy_only=False)
    t = got["observed_at"].cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
    columns = [t, got["ra_deg"].to_numpy(), got["dec_deg"].to_numpy(), got["site"].to_numpy(zero_copy_only=False)]
    kernel, errors = doppler.barycentric_correction(*columns)
    assert errors is None
    assert np.array_equal(v, kernel)
    f = got["freq_hz"].to_numpy()
    assert np.allclose(got["f_bary_hz"].to_numpy(), f / (1 + v / C), rtol=1e-14, atol=0)
    sample = np.random.default_rng(5).choice(len(v), 300, replace=False)
    reference = astropy_velocity(*(c[sample] for c in columns))
    assert np.abs(v[sample] - reference).max() <= TOLERANCE_MS


def test_sql_10000_rows_with_one_bad_site_returns_10000_rows(demo_session, demo_rows):
    bad = demo_rows["event_id"][1234].as_py()
    got = demo_session.sql(f"""
        SELECT event_id,
               barycentric_velocity_ms(observed_at, ra_deg, dec_deg, obs_site) AS v_ms,
               doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, obs_site) AS f_bary_hz,
               doppler_correct_error(freq_hz, observed_at, ra_deg, dec_deg, obs_site) AS why
        FROM (SELECT event_id, observed_at, ra_deg, dec_deg, freq_hz,
                     CASE WHEN event_id = {bad} THEN 'Arecibo 2' ELSE site END AS obs_site
              FROM signal_events ORDER BY event_id LIMIT 10000) t
        ORDER BY event_id""")
    assert got.num_rows == 10_000
    ids = got["event_id"].to_pylist()
    nulls = [i for i, v in zip(ids, got["v_ms"].to_pylist()) if v is None]
    assert nulls == [bad]
    assert [i for i, f in zip(ids, got["f_bary_hz"].to_pylist()) if f is None] == [bad]
    reasons = {i: w for i, w in zip(ids, got["why"].to_pylist()) if w is not None}
    assert list(reasons) == [bad]
    assert reasons[bad].startswith("unknown observatory code 'Arecibo 2'; known codes: ATA, GBT, Parkes")


def test_sql_error_companion_and_literals(demo_session):
    row = demo_session.sql("""
        SELECT barycentric_velocity_ms(TIMESTAMP '2019-04-29 14:20:00', 217.42896, -62.67948, 'parkes') AS v,
               barycentric_velocity_ms(TIMESTAMP '2019-04-29 14:20:00', 217.42896, -62.67948, 'Nowhere') AS v_bad,
               barycentric_velocity_ms_error(TIMESTAMP '2019-04-29 14:20:00', 217.42896, -62.67948, 'Nowhere') AS why,
               barycentric_velocity_ms_error(TIMESTAMP '2019-04-29 14:20:00', 217.42896, -62.67948, 'Parkes') AS no_why,
               barycentric_velocity_ms(CAST(NULL AS TIMESTAMP), 217.42896, -62.67948, 'Parkes') AS v_null
    """).to_pylist()[0]
    want = astropy_velocity([np.datetime64("2019-04-29T14:20:00", "us")], [217.42896], [-62.67948], ["Parkes"])[0]
    assert abs(row["v"] - want) <= TOLERANCE_MS
    assert row["v_bad"] is None and row["v_null"] is None and row["no_why"] is None
    assert row["why"].startswith("unknown observatory code 'Nowhere'; known codes:")
