"""Sky on both engines: every construct runs, and gives what the equivalent Spark SQL (or pyarrow)
gives on the demo lake or on a small lake made for the test."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import engine
from catalogs.lake import Lake
from engine.errors import SkyCompileError, SkySyntaxError

UTC = dt.timezone.utc


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12)
    return a == b


def same(session, sky: str, sql: str, params=None):
    """The Sky query and the SQL give the same columns and rows (floats to 1e-12: sums may be
    added up in another order)."""
    got, want = session.sky(sky, params), session.sql(sql)
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    for g, w in zip(rows(got), rows(want)):
        assert all(_close(g[k], w[k]) for k in w), (g, w)
    return got


def test_select_and_unit_filters(demo_session):
    got = same(demo_session,
               "from signal_events where freq between 1420 MHz and 1720 MHz and snr > 80 and abs(drift) > 50 mHz/s "
               "select target, freq as MHz, drift order by snr desc, event_id",
               "SELECT target, freq_hz / 1e6 AS freq_mhz, drift_hz_s FROM signal_events WHERE freq_hz BETWEEN 1420e6 AND "
               "1720e6 AND snr > 80 AND abs(drift_hz_s) > 0.05 ORDER BY snr DESC, event_id")
    assert [r["target"] for r in rows(got)] == ["TRAPPIST-1"] * 3


def test_cone_search_by_name_matches_distance(demo_session):
    got = same(demo_session,
               'from signal_events near "Proxima Centauri" within 30 arcmin select event_id order by event_id',
               "SELECT event_id FROM signal_events WHERE distance(ra_deg, dec_deg, 217.4289, -62.6795) <= 0.5 "
               "ORDER BY event_id")
    assert got.num_rows > 100


def test_cone_search_by_position_and_a_lake_target(demo_session):
    by_position = demo_session.sky("from signal_events near (26.0170, -15.9375) within 1 arcmin select count() as n")
    by_name = demo_session.sky('from signal_events near "tau ceti" within 1 arcmin select count() as n')
    by_target = demo_session.sql("SELECT count(*) AS n FROM signal_events WHERE target = 'Tau Ceti'")
    assert rows(by_position) == rows(by_name) == rows(by_target)


def test_cone_skips_files_by_declination(demo_session):
    sql = demo_session.compile_sky('from signal_events near "Voyager-1" within 1 arcmin select count() as n')
    # the engine's SQL keeps the declination band the lake prunes files with (see test_compiler)
    assert "dec_deg BETWEEN 12.16" in sql and "IN_CONE(ra_deg, dec_deg, 257.5166, 12.183" in sql.upper().replace("RA_DEG", "ra_deg").replace("DEC_DEG", "dec_deg")


def test_time_windows(demo_session):
    same(demo_session, "from signal_events during 2017-02-01 .. 2017-03-01 select count() as n",
         "SELECT count(*) AS n FROM signal_events WHERE observed_at >= '2017-02-01' AND observed_at < '2017-03-01'")
    same(demo_session, "from signal_events during 2018 select count() as n",
         "SELECT count(*) AS n FROM signal_events WHERE year(observed_at) = 2018")
    same(demo_session, "from signal_events during mjd 57806 .. 57807 select count() as n",  # 2017-02-22
         "SELECT count(*) AS n FROM signal_events WHERE to_date(observed_at) = DATE '2017-02-22'")
    same(demo_session, "from signal_events during 2017-02-22T09:00 .. 2017-02-22T09:06 select event_id order by event_id",
         "SELECT event_id FROM signal_events WHERE observed_at >= TIMESTAMP '2017-02-22 09:00:00' AND "
         "observed_at < TIMESTAMP '2017-02-22 09:06:00' ORDER BY event_id")


def test_correct_doppler(demo_session):
    got = same(demo_session,
               'from signal_events near "Voyager-1" within 1 arcmin where snr > 1000 correct doppler '
               "select observed_at, freq_bary as MHz order by observed_at",
               "SELECT observed_at, doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) / 1e6 AS freq_bary_mhz "
               "FROM signal_events WHERE snr > 1000 ORDER BY observed_at")
    assert got.num_rows == 3 and all(8419 < f < 8421 for f in got["freq_bary_mhz"].to_pylist())


def test_filter_on_a_stage_column(demo_session):
    same(demo_session, "from signal_events where snr > 250 correct doppler where freq_bary > 8 GHz select event_id "
                       "order by event_id",
         "SELECT event_id FROM signal_events WHERE snr > 250 AND doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, "
         "site) > 8e9 ORDER BY event_id")


def test_group_having_order_limit(demo_session):
    got = same(demo_session,
               "from signal_events group by site select site, count() as hits, max(snr), avg(freq) as GHz "
               "having hits > 3500 order by hits desc, site limit 3",
               "SELECT site, count(*) AS hits, max(snr) AS max_snr, avg(freq_hz) / 1e9 AS avg_freq_ghz FROM signal_events "
               "GROUP BY site HAVING count(*) > 3500 ORDER BY hits DESC, site LIMIT 3")
    assert got.num_rows == 3


def test_parameters_and_defaults(demo_session):
    text = 'param $target = "Vega"\nfrom signal_events near $target within 3 arcmin where snr > $min select count() as n'
    vega = demo_session.sky(text, {"min": "20"})
    tau = demo_session.sky(text, {"min": "20", "target": "Tau Ceti"})
    want = demo_session.sql("SELECT target, count(*) AS n FROM signal_events WHERE snr > 20 AND target IN ('Vega', "
                            "'Tau Ceti') GROUP BY target ORDER BY target")
    assert [vega["n"][0].as_py(), tau["n"][0].as_py()] == want["n"].to_pylist()[::-1]


def test_strings_cannot_inject(demo_session):
    got = demo_session.sky("from signal_events where target = $t select count() as n", {"t": "x' OR '1'='1"})
    assert got["n"][0].as_py() == 0


def test_errors_are_sky_errors(demo_session):
    with pytest.raises(SkySyntaxError):
        demo_session.sky("from signal_events where")
    with pytest.raises(SkyCompileError, match="did you mean 'signal_events'"):
        demo_session.sky("from signal_event")
    with pytest.raises(SkyCompileError, match="did you mean 'snr'"):
        demo_session.sky("from signal_events select snrr")


# ---- constructs that need tables the demo lake does not have: a small lake per test ----------

@pytest.fixture
def fresh(lake_path, engine_name):
    with engine.connect(lake_path, engine=engine_name) as session:
        yield session


def _positions(lake: Lake):
    lake.create_table("optical", pa.table({
        "obj_id": pa.array([1, 2, 3], pa.int64()), "ra_deg": [10.0, 10.001, 50.0], "dec_deg": [20.0, 20.0, -5.0],
        "mag": [12.5, 14.0, 9.0]}))
    lake.create_table("radio", pa.table({
        "src_id": pa.array([7, 8, 9, 10], pa.int64()), "ra_deg": [10.0002, 10.0, 50.0, 120.0],
        "dec_deg": [20.0, 20.0008, -5.0005, 0.0], "flux_mjy": [3.0, 4.0, 5.0, 6.0]}))


def test_match_all_and_nearest(fresh):
    _positions(fresh.lake)
    everything = fresh.sky("from optical match radio within 5 arcsec all "
                           "select obj_id, radio_src_id, sep_arcsec order by obj_id, radio_src_id")
    want = fresh.sql("SELECT o.obj_id, r.src_id AS radio_src_id, distance(o.ra_deg, o.dec_deg, r.ra_deg, r.dec_deg) * 3600 "
                     "AS sep_arcsec FROM optical o JOIN radio r ON distance(o.ra_deg, o.dec_deg, r.ra_deg, r.dec_deg) "
                     "<= 5 / 3600.0 ORDER BY obj_id, radio_src_id")
    assert rows(everything) == rows(want)
    assert [(r["obj_id"], r["radio_src_id"]) for r in rows(everything)] == [(1, 7), (1, 8), (2, 7), (2, 8), (3, 9)]
    nearest = fresh.sky("from optical match radio as r within 5 arcsec select obj_id, r_src_id, r_flux_mjy "
                        "order by obj_id")
    # obj 2 is 2.7 arcsec from src 7 and 4.4 arcsec from src 8
    assert [(r["obj_id"], r["r_src_id"]) for r in rows(nearest)] == [(1, 7), (2, 7), (3, 9)]


def test_into_creates_replaces_and_appends(fresh):
    _positions(fresh.lake)
    written = fresh.sky("from optical where mag < 13 into bright")
    assert written["rows_written"][0].as_py() == 2
    fresh.sky("from optical where mag < 10 into bright replace")
    fresh.sky("from optical where mag > 13 into bright append")
    assert sorted(fresh.sql("SELECT obj_id FROM bright")["obj_id"].to_pylist()) == [2, 3]


def _image(width=96, height=80):
    from astropy.wcs import WCS

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:height, 0:width]
    pixels = rng.normal(100.0, 2.0, (height, width))
    for cx, cy, amp in [(20.3, 30.7, 400.0), (70.1, 50.2, 250.0)]:
        pixels += amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.5 ** 2))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [1.0, 1.0]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    return pixels.astype("<f4").tobytes(), wcs.to_header().tostring(), wcs


def test_extract_sources(fresh):
    pixels, header, wcs = _image()
    fresh.lake.append("images", pa.table({
        "image_id": ["img1"], "pixels": [pixels], "width": pa.array([96], pa.int32()), "height": pa.array([80], pa.int32()),
        "wcs_header": [header], "object": ["field"], "observed_at": [dt.datetime(2020, 1, 1, tzinfo=UTC)]}))
    got = fresh.sky("from images extract sources thresh 5 select image_id, x_pix, y_pix, ra, dec, flux order by x_pix")
    want = fresh.sql("SELECT image_id, s.x_pix AS x_pix, s.y_pix AS y_pix, s.flux AS flux FROM images "
                     "LATERAL VIEW explode(sep_extract(pixels, width, height, 5.0)) t AS s ORDER BY x_pix")
    assert got["x_pix"].to_pylist() == want["x_pix"].to_pylist()
    assert got.num_rows == 2 and abs(got["x_pix"][0].as_py() - 20.3) < 0.2
    ra, dec = wcs.all_pix2world([got["x_pix"][0].as_py()], [got["y_pix"][0].as_py()], 0)
    assert abs(got["ra_deg"][0].as_py() - ra[0]) < 1e-6 and abs(got["dec_deg"][0].as_py() - dec[0]) < 1e-6
    near = fresh.sky(f"from images extract sources thresh 5 near ({ra[0]}, {dec[0]}) within 2 arcsec select x_pix")
    assert near.num_rows == 1


def test_spectrogram(fresh):
    rate, n = 1.0e6, 64 * 8 * 4
    t = np.arange(n) / rate
    samples = np.exp(2j * np.pi * 125_000 * t).astype(np.complex64)
    fresh.lake.append("voltages", pa.table({
        "snapshot_id": ["v1"], "samples": [samples.tobytes()], "n_samples": pa.array([n], pa.int64()),
        "sample_rate_hz": [rate], "center_freq_hz": [1.4e9], "observed_at": [dt.datetime(2021, 5, 1, tzinfo=UTC)],
        "target": ["test tone"]}))
    got = fresh.sky("from voltages spectrogram fft 64 integrate 8 select snapshot_id, n_time, n_chans, tsamp as ms, "
                    "foff as kHz, fch1 as MHz, start_at, power")
    row = rows(got)[0]
    assert (row["n_time"], row["n_chans"]) == (4, 64)
    assert row["tsamp_ms"] == pytest.approx(0.512) and row["foff_khz"] == pytest.approx(15.625)
    assert row["fch1_mhz"] == pytest.approx(1399.5)
    power = np.frombuffer(row["power"], "<f4").reshape(4, 64)
    assert int(np.argmax(power[0])) == 32 + 8  # +125 kHz is 8 channels above the centre
