"""Every Sky construct compiles to the Spark SQL it means (sqlglot's validate_all style): the tree
the compiler builds, printed in the Spark dialect, is exactly the expected text."""

import pytest
import sqlglot
from sqlglot import exp

from engine.dsl.compiler import compile_sky
from engine.errors import SkyCompileError
from engine.rewrites import bounds, lake_tables

PARAMS = {"min": "30", "target": "Vega", "r": "2", "n": "5"}
EXTRACTED = (
    "SELECT image_id, source_file, hdu, observed_at, telescope, instrument, filter, exptime_s, object, width, height, "
    "ra_center_deg, dec_center_deg, x_pix, y_pix, flux, flux_err, aper_flags, iso_flux, peak, a_pix, b_pix, theta_rad, "
    "flags, npix, _sky.ra_deg AS ra_deg, _sky.dec_deg AS dec_deg FROM (SELECT image_id, source_file, hdu, observed_at, "
    "telescope, instrument, filter, exptime_s, object, width, height, ra_center_deg, dec_center_deg, _src.x_pix AS x_pix, "
    "_src.y_pix AS y_pix, _src.flux AS flux, _src.flux_err AS flux_err, _src.aper_flags AS aper_flags, _src.iso_flux AS "
    "iso_flux, _src.peak AS peak, _src.a_pix AS a_pix, _src.b_pix AS b_pix, _src.theta_rad AS theta_rad, _src.flags AS "
    "flags, _src.npix AS npix, PIX_TO_SKY(wcs_header, _src.x_pix, _src.y_pix) AS _sky FROM images LATERAL VIEW "
    "EXPLODE(SEP_EXTRACT(pixels, width, height, 3)) _t AS _src) AS _s1"
)
CONE_TRAPPIST = ("dec_deg BETWEEN -5.124633334333333 AND -4.9579666656666666 AND "
                 "IN_CONE(ra_deg, dec_deg, 346.6223, -5.0413, 0.08333333333333333)")
FEBRUARY = ("observed_at >= CAST('2017-02-01 00:00:00' AS TIMESTAMP) AND observed_at < CAST('2017-03-01 00:00:00' AS "
            "TIMESTAMP) AND obs_date BETWEEN CAST('2017-02-01' AS DATE) AND CAST('2017-02-28' AS DATE)")

CASES = {
    "source": ("from signal_events", "SELECT * FROM signal_events"),
    "comments": ("# a comment\nfrom signal_events  # another\n-- and a SQL-style one\nselect snr",
                 "SELECT snr FROM signal_events"),
    "select": ("from signal_events select target, snr", "SELECT target, snr FROM signal_events"),
    "short names": ("from signal_events select freq, drift, ra", "SELECT freq_hz, drift_hz_s, ra_deg FROM signal_events"),
    "output units": ("from signal_events select freq as MHz, drift as mHz/s, ra as arcsec",
                     "SELECT freq_hz / 1000000 AS freq_mhz, drift_hz_s * 1000 AS drift_mhz_s, ra_deg * 3600 AS ra_arcsec "
                     "FROM signal_events"),
    "output alias": ("from signal_events select freq_hz / 1e6 as f", "SELECT freq_hz / 1e6 AS f FROM signal_events"),
    "filters with units": (
        "from signal_events where freq between 1420 MHz and 1720 MHz and snr > 25 and abs(drift) < 4 Hz/s",
        "SELECT * FROM signal_events WHERE freq_hz BETWEEN 1420000000 AND 1720000000 AND snr > 25 AND ABS(drift_hz_s) < 4"),
    "unit from the column": ("from signal_events where drift > 500 mHz/s and bandwidth < 3 kHz",
                             "SELECT * FROM signal_events WHERE drift_hz_s > 0.5 AND bandwidth_hz < 3000"),
    "time column in seconds": ("from spectrograms where tsamp < 20 ms", "SELECT * FROM spectrograms WHERE tsamp_s < 0.02"),
    "wavelength": ("from signal_events where 6563 Å > 650 nm select snr",
                   "SELECT snr FROM signal_events WHERE 6563 > 6500"),
    "full column name, bare number": ("from signal_events where freq_hz > 1420e6",
                                      "SELECT * FROM signal_events WHERE freq_hz > 1420e6"),
    "logic": ('from signal_events where (snr > 25 or snr < 3) and not site = "GBT" and beam is not null '
              'and site in ("GBT", "Parkes") and target like "Kepler%" and snr not between 1 and 2',
              "SELECT * FROM signal_events WHERE (snr > 25 OR snr < 3) AND NOT (site = 'GBT') AND NOT beam IS NULL "
              "AND site IN ('GBT', 'Parkes') AND target LIKE 'Kepler%' AND NOT snr BETWEEN 1 AND 2"),
    "near a name": ('from signal_events near "TRAPPIST-1" within 5 arcmin', f"SELECT * FROM signal_events WHERE {CONE_TRAPPIST}"),
    "near an alias": ('from signal_events near "trappist 1" within 5 arcmin',
                      f"SELECT * FROM signal_events WHERE {CONE_TRAPPIST}"),
    "near a position": ("from signal_events near (346.6223, -5.0413) within 0.1 deg",
                        "SELECT * FROM signal_events WHERE dec_deg BETWEEN -5.141300000999999 AND -4.941299999 "
                        "AND IN_CONE(ra_deg, dec_deg, 346.6223, -5.0413, 0.1)"),
    "near sexagesimal": ('from signal_events near "23h06m29.35s -05d02m28.7s" within 30 arcsec',
                         "SELECT * FROM signal_events WHERE dec_deg BETWEEN -5.0496388898888895 AND -5.032972221222222 "
                         "AND IN_CONE(ra_deg, dec_deg, 346.6222916666666, -5.041305555555556, 0.008333333333333333)"),
    "during dates": ("from signal_events during 2017-02-01 .. 2017-03-01", f"SELECT * FROM signal_events WHERE {FEBRUARY}"),
    "during a day": ("from signal_events during 2017-02-22",
                     "SELECT * FROM signal_events WHERE observed_at >= CAST('2017-02-22 00:00:00' AS TIMESTAMP) AND "
                     "observed_at < CAST('2017-02-23 00:00:00' AS TIMESTAMP) AND obs_date BETWEEN CAST('2017-02-22' AS "
                     "DATE) AND CAST('2017-02-22' AS DATE)"),
    "during a year, start_at": ("from spectrograms during 2018",
                                "SELECT * FROM spectrograms WHERE start_at >= CAST('2018-01-01 00:00:00' AS TIMESTAMP) AND "
                                "start_at < CAST('2019-01-01 00:00:00' AS TIMESTAMP)"),
    "during ISO times": ("from signal_events during 2017-02-22T09:00:00 .. 2017-02-22T09:30",
                         "SELECT * FROM signal_events WHERE observed_at >= CAST('2017-02-22 09:00:00' AS TIMESTAMP) AND "
                         "observed_at < CAST('2017-02-22 09:30:00' AS TIMESTAMP) AND obs_date BETWEEN "
                         "CAST('2017-02-22' AS DATE) AND CAST('2017-02-22' AS DATE)"),
    "during MJD": ("from signal_events during mjd 57806 .. 57806.5",
                   "SELECT * FROM signal_events WHERE observed_at >= CAST('2017-02-22 00:00:00' AS TIMESTAMP) AND "
                   "observed_at < CAST('2017-02-22 12:00:00' AS TIMESTAMP) AND obs_date BETWEEN CAST('2017-02-22' AS "
                   "DATE) AND CAST('2017-02-22' AS DATE)"),
    "time literal": ("from signal_events where observed_at >= 2017-02-22T09:00:00 select event_id",
                     "SELECT event_id FROM signal_events WHERE observed_at >= CAST('2017-02-22 09:00:00' AS TIMESTAMP)"),
    "correct doppler": ("from signal_events correct doppler select freq_bary as MHz",
                        "SELECT freq_bary_hz / 1000000 AS freq_bary_mhz FROM (SELECT *, DOPPLER_CORRECT(freq_hz, "
                        "observed_at, ra_deg, dec_deg, site) AS freq_bary_hz FROM signal_events) AS _s1"),
    "the issue's example": (
        '# strongest candidates\nfrom signal_events\nnear "TRAPPIST-1" within 5 arcmin\nduring 2017-02-01 .. 2017-03-01\n'
        "where freq between 1420 MHz and 1720 MHz and snr > 25 and abs(drift) < 4 Hz/s\ncorrect doppler\n"
        "select target, observed_at, freq_bary as MHz, drift, snr\norder by snr desc\nlimit 20",
        "SELECT target, observed_at, freq_bary_hz / 1000000 AS freq_bary_mhz, drift_hz_s, snr FROM (SELECT *, "
        "DOPPLER_CORRECT(freq_hz, observed_at, ra_deg, dec_deg, site) AS freq_bary_hz FROM signal_events WHERE "
        f"{CONE_TRAPPIST} AND {FEBRUARY} AND freq_hz BETWEEN 1420000000 AND 1720000000 AND snr > 25 AND "
        "ABS(drift_hz_s) < 4) AS _s1 ORDER BY snr DESC LIMIT 20"),
    "filter after a stage": ("from signal_events correct doppler where freq_bary > 1 GHz select event_id",
                             "SELECT event_id FROM (SELECT *, DOPPLER_CORRECT(freq_hz, observed_at, ra_deg, "
                             "dec_deg, site) AS freq_bary_hz FROM signal_events) AS _s1 WHERE freq_bary_hz > 1000000000"),
    "extract sources": ("from images extract sources thresh 3 where flux > 100 select image_id, ra, dec, flux",
                        f"SELECT image_id, ra_deg, dec_deg, flux FROM ({EXTRACTED}) AS _s2 WHERE flux > 100"),
    "spectrogram": (
        "from voltages spectrogram fft 1024 integrate 16 select snapshot_id, n_time, n_chans, tsamp as ms, foff as kHz",
        None),
    "match nearest": ("from sources match sources as other within 2 arcsec nearest select image_id, other_image_id, sep_arcsec",
                      None),
    "match all": ("from sources match spectra within 1 arcsec all select source_id, spectra_spectrum_id, sep_arcsec",
                  "SELECT source_id, spectra_spectrum_id, sep_arcsec FROM (SELECT _l1.*, _r1.spectrum_id AS spectra_spectrum_id, "
                  "_r1.source_file AS spectra_source_file, _r1.object AS spectra_object, _r1.observed_at AS spectra_observed_at, "
                  "_r1.ra_deg AS spectra_ra_deg, _r1.dec_deg AS spectra_dec_deg, _r1.wavelength_aa AS spectra_wavelength_aa, "
                  "_r1.flux AS spectra_flux, _r1.flux_err AS spectra_flux_err, DISTANCE(_l1.ra_deg, _l1.dec_deg, _r1.ra_deg, "
                  "_r1.dec_deg) * 3600 AS sep_arcsec FROM (SELECT * FROM sources) AS _l1 INNER JOIN spectra AS _r1 ON "
                  "_r1.dec_deg BETWEEN _l1.dec_deg - 0.0002777787777777778 AND _l1.dec_deg + 0.0002777787777777778 AND "
                  "IN_CONE(_r1.ra_deg, _r1.dec_deg, _l1.ra_deg, _l1.dec_deg, 0.0002777777777777778)) AS _s2"),
    "group by alone": ("from signal_events group by site", "SELECT site, COUNT(*) AS n FROM signal_events GROUP BY site"),
    "aggregate, having, order, limit": (
        "from signal_events select site, count() as hits, max(snr), avg(freq) as MHz group by site having hits > 10 "
        "order by hits desc limit 3",
        "SELECT site, COUNT(*) AS hits, MAX(snr) AS max_snr, AVG(freq_hz) / 1000000 AS avg_freq_mhz FROM signal_events "
        "GROUP BY site HAVING COUNT(*) > 10 ORDER BY hits DESC LIMIT 3"),
    "group by before select": ("from signal_events group by site select site, count() as hits",
                               "SELECT site, COUNT(*) AS hits FROM signal_events GROUP BY site"),
    "group by an output name": ("from signal_events select year(observed_at) as year, count() as n group by year",
                                "SELECT YEAR(observed_at) AS year, COUNT(*) AS n FROM signal_events GROUP BY YEAR(observed_at)"),
    "parameters": ("from signal_events where snr > $min near $target within $r arcmin limit $n",
                   "SELECT * FROM signal_events WHERE snr > 30 AND dec_deg BETWEEN 38.750366665666675 AND 38.81703333433333 "
                   "AND IN_CONE(ra_deg, dec_deg, 279.2347, 38.7837, 0.03333333333333333) LIMIT 5"),
    "parameter defaults": ('param $min = 30\nparam $site = "GBT"\nfrom signal_events where snr > $min and site = $site',
                           "SELECT * FROM signal_events WHERE snr > 30 AND site = 'GBT'"),
    "into": ("from signal_events where snr > 100 into strong_hits",
             "CREATE TABLE strong_hits AS SELECT * FROM signal_events WHERE snr > 100"),
    "into replace": ("from signal_events where snr > 100 into strong_hits replace",
                     "CREATE OR REPLACE TABLE strong_hits AS SELECT * FROM signal_events WHERE snr > 100"),
    "into append": ("from signal_events where snr > 100 into signal_events append",
                    "INSERT INTO signal_events SELECT * FROM signal_events WHERE snr > 100"),
    "library functions": ("from signal_events select healpix_index(ra, dec, 4) as pix, distance(ra, dec, 0, 0) as MHz_not",
                          "SELECT HEALPIX_INDEX(ra_deg, dec_deg, 4) AS pix, DISTANCE(ra_deg, dec_deg, 0, 0) AS MHz_not "
                          "FROM signal_events"),
    "function units": ("from signal_events where distance(ra, dec, 0, 0) < 30 arcmin",
                       "SELECT * FROM signal_events WHERE DISTANCE(ra_deg, dec_deg, 0, 0) < 0.5"),
    "expect block is not the query": ("from signal_events select snr\nexpect\nsnr\n1.5\n", "SELECT snr FROM signal_events"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiles_to_spark_sql(name):
    text, want = CASES[name]
    tree = compile_sky(text, PARAMS)
    got = tree.sql(dialect="spark")
    if want is not None:
        assert got == want
    # the tree is the one the SQL front end makes from its own Spark SQL: a round trip is stable
    assert sqlglot.parse_one(got, read="spark").sql(dialect="spark") == got


def test_spectrogram_columns():
    got = compile_sky(CASES["spectrogram"][0]).sql(dialect="spark")
    assert "SPECTROGRAM(samples, 1024, 16) AS _sg" in got
    assert "16384 / sample_rate_hz AS tsamp_s" in got and "sample_rate_hz / 1024 AS foff_hz" in got
    assert "center_freq_hz - sample_rate_hz / 2 AS fch1_hz" in got
    assert got.startswith("SELECT snapshot_id, n_time, n_chans, tsamp_s * 1000 AS tsamp_ms, foff_hz / 1000 AS foff_khz")


def test_match_nearest_keeps_the_closest_per_row():
    got = compile_sky(CASES["match nearest"][0]).sql(dialect="spark")
    assert "ROW_NUMBER() OVER (PARTITION BY image_id, source_id ORDER BY sep_arcsec" in got
    assert "WHERE _match_rank = 1" in got
    assert "IN_CONE(_r1.ra_deg, _r1.dec_deg, _l1.ra_deg, _l1.dec_deg, 0.0005555555555555556)" in got


def test_cone_and_filters_give_file_skipping_bounds():
    tree = compile_sky(CASES["the issue's example"][0])
    table = next(t for t in lake_tables(tree) if t.name == "signal_events")
    found = {(b.column, b.op) for b in bounds(table)}
    assert {("dec_deg", ">="), ("dec_deg", "<="), ("freq_hz", ">="), ("freq_hz", "<=")} <= found


def test_identifiers_and_strings_are_nodes_not_text():
    tree = compile_sky("from signal_events where target = \"x'; DROP TABLE signal_events; --\" select snr")
    literal = tree.find(exp.EQ).expression
    assert isinstance(literal, exp.Literal) and literal.this == "x'; DROP TABLE signal_events; --"
    assert "'x''; DROP TABLE signal_events; --'" in tree.sql(dialect="spark") or "\\'" in tree.sql(dialect="spark")


@pytest.mark.parametrize("text, message", [
    ("from signal_event", r"unknown table 'signal_event' \(did you mean 'signal_events'\?\)"),
    ("from signal_events select frq", r"unknown column 'frq' \(did you mean 'freq'\?\)"),
    ("from signal_events where drift < 3 MHz", r"cannot compare drift \(a drift rate in Hz/s\) with 3 MHz \(a frequency\)"),
    ("from signal_events where snr > 5 arcsec", r"snr has no unit but 5 arcsec is an angle"),
    ("from signal_events where freq > 1420", r"missing unit: 'freq' is freq_hz, a frequency in Hz"),
    ('from signal_events near "Trapist-1" within 5 arcmin', r"unknown target 'Trapist-1' \(did you mean 'TRAPPIST-1'\?\)"),
    ('from signal_events near "Vega" within 5 MHz', r"the radius of near must be an angle"),
    ("from signal_events select snr as MHz", r"cannot show snr in MHz: it has no unit"),
    ("from signal_events select freq as arcsec", r"cannot show freq_hz in arcsec"),
    ("from signal_events where $x > 1", r"parameter \$x is not bound \(give --param x=VALUE"),
    ("from signal_events during 2017-03-01 .. 2017-02-01", r"the time window is empty"),
    ("from signal_events during 2017-02-30", r"'2017-02-30' is not a time"),
    ("from signal_events near (1, 95) within 1 deg", r"declination 95 deg is outside"),
    ("from signal_events extract sources", r"extract sources needs the column\(s\) pixels, width, height"),
    ("from images correct doppler", r"correct doppler needs the column\(s\) freq_hz"),
    ("from signal_events select frobnicate(snr)", r"unknown function 'frobnicate'"),
    ("from signal_events select snr, snr", r"two output columns are named 'snr'"),
    ("from signal_events having snr > 3", r"having filters groups"),
    ("from spectra near 'Vega' within 1 arcsec match voltages within 1 arcsec", None),
])
def test_compile_errors_are_precise(text, message):
    if message is None:
        compile_sky(text)  # voltages has ra_deg/dec_deg: this one is fine
        return
    with pytest.raises(SkyCompileError, match=message) as info:
        compile_sky(text)
    assert info.value.line == 1 and info.value.column >= 1
    assert "\n  " + text.splitlines()[0] in str(info.value)
