import gzip
import warnings

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import engine
from catalogs.ingest.fits_images import ingest_images, parse_image_file
from tests.catalogs.ingest.builders import image_fits
from tests.conftest import ENGINES, REAL_DATA
from tests.udfs.test_sep_extract import assert_matches_sextractor
from udfs.sep_extract import pix_to_sky_kernel

SEP_IMAGE = REAL_DATA / "sep" / "image.fits"
WCS_IMAGES = sorted((REAL_DATA / "images").glob("*.fits"))
needs_real = pytest.mark.skipif(not SEP_IMAGE.exists(), reason=f"real data not found at {REAL_DATA}")


def table(lake, name):
    return pa.table(lake.delta_table(name).to_pyarrow_table())


def pixels(row):
    return np.frombuffer(row["pixels"], "<f4").reshape(row["height"], row["width"])


@needs_real
def test_sep_image_pixels_are_astropys_scaled_data_and_extract_gives_sextractors_65(lake):
    report = ingest_images(lake, [SEP_IMAGE], extract=True)
    assert not report.partial and report.rows == {"sources": 65, "images": 1}
    [row] = table(lake, "images").to_pylist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fits.getdata(SEP_IMAGE).astype(np.float32)
    assert (row["width"], row["height"]) == (256, 256)
    np.testing.assert_array_equal(pixels(row), expected)
    assert row["telescope"] == "ESONTTB" and row["instrument"] == "EMMI" and row["exptime_s"] == 1200.0
    assert row["observed_at"].isoformat() == "1992-10-26T00:00:00+00:00"  # DATE-OBS '26/10/92'
    assert row["ra_center_deg"] is None  # no celestial WCS
    sources = table(lake, "sources").to_pylist()
    assert {s["image_id"] for s in sources} == {row["image_id"]}
    assert sorted(s["source_id"] for s in sources) == list(range(65))
    assert_matches_sextractor(sources)
    assert all(s["ra_deg"] is None for s in sources)


@needs_real
@pytest.mark.parametrize("path", WCS_IMAGES, ids=lambda p: p.name)
def test_wcs_is_kept_and_the_centre_agrees_with_astropy(lake, path):
    ingest_images(lake, [path])
    [row] = table(lake, "images").to_pylist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(path)
        wcs = WCS(header).celestial
        data = fits.getdata(path)
    x, y = (row["width"] - 1) / 2, (row["height"] - 1) / 2
    sky, errors = pix_to_sky_kernel([row["wcs_header"]], [x], [y])
    assert errors == [None]
    expected = wcs.pixel_to_world(x, y).icrs
    assert abs(sky.field("ra_deg")[0].as_py() - expected.ra.deg) < 1e-9
    assert abs(sky.field("dec_deg")[0].as_py() - expected.dec.deg) < 1e-9
    assert abs(row["ra_center_deg"] - expected.ra.deg) < 1e-9 and abs(row["dec_center_deg"] - expected.dec.deg) < 1e-9
    np.testing.assert_array_equal(pixels(row), np.asarray(data, dtype=np.float32))


def test_multi_extension_gzip_and_rice_compressed(lake, tmp_path):
    data = np.random.default_rng(1).normal(0, 1, (32, 40)).astype(np.float32)
    mef = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI"), fits.ImageHDU(data * 2, name="SCI2"),
                  fits.BinTableHDU.from_columns([fits.Column("A", "D", array=[1.0])])]).writeto(mef)
    gz = tmp_path / "one.fits.gz"
    with gzip.open(gz, "wb") as f:
        fits.PrimaryHDU(data + 1).writeto(f)
    fz = tmp_path / "rice.fits.fz"
    ints = (data * 100).astype(np.int32)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(ints, compression_type="RICE_1")]).writeto(fz)
    report = ingest_images(lake, [mef, gz, fz])
    assert report.rows == {"images": 4}
    rows = sorted(table(lake, "images").to_pylist(), key=lambda r: (r["source_file"], r["hdu"]))
    assert [(r["source_file"].rsplit("/", 1)[1], r["hdu"]) for r in rows] == [
        ("mef.fits", 1), ("mef.fits", 2), ("one.fits.gz", 0), ("rice.fits.fz", 1)]
    np.testing.assert_array_equal(pixels(rows[1]), data * 2)
    np.testing.assert_array_equal(pixels(rows[2]), data + 1)
    np.testing.assert_array_equal(pixels(rows[3]), ints.astype(np.float32))


def test_header_keywords_and_time_scale(tmp_path):
    path = image_fits(tmp_path / "a.fits", **{"DATE-OBS": "2020-01-02T03:04:05", "TIMESYS": "TAI"})
    [(name, rows)] = list(parse_image_file(str(path), "ab" * 32, {}))
    row = rows.to_pylist()[0]
    assert name == "images" and row["image_id"] == "abababababababab:0"
    assert row["observed_at"].isoformat() == "2020-01-02T03:03:28+00:00"  # TAI - 37 s
    assert (row["telescope"], row["instrument"], row["filter"], row["exptime_s"], row["object"]) == \
        ("TEST", "CAM", "R", 30.0, "field0")
    assert row["ra_center_deg"] == pytest.approx(150.0, abs=1e-4) and row["dec_center_deg"] == pytest.approx(2.0, abs=1e-4)


def test_extract_on_wcs_image_gives_sky_positions(lake, tmp_path):
    ingest_images(lake, [image_fits(tmp_path / "a.fits")], extract=True, thresh_sigma=5.0)
    sources = table(lake, "sources").to_pylist()
    assert len(sources) == 1
    s = sources[0]
    assert s["x_pix"] == pytest.approx(21, abs=0.1) and s["y_pix"] == pytest.approx(21, abs=0.1)
    wcs = WCS(fits.getheader(tmp_path / "a.fits"))
    ra, dec = wcs.all_pix2world(s["x_pix"], s["y_pix"], 0)
    assert s["ra_deg"] == pytest.approx(float(ra), abs=1e-9) and s["dec_deg"] == pytest.approx(float(dec), abs=1e-9)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_ingested_images_and_sources_query_together(lake, lake_path, tmp_path, engine_name):
    ingest_images(lake, [image_fits(tmp_path / "a.fits"), image_fits(tmp_path / "b.fits", seed=2)], extract=True,
                  thresh_sigma=5.0)
    with engine.connect(lake_path, engine=engine_name) as session:
        got = session.sql("SELECT i.object, count(s.source_id) AS n FROM images i JOIN sources s "
                          "ON i.image_id = s.image_id GROUP BY i.object ORDER BY i.object").to_pylist()
    assert got == [{"object": "field0", "n": 1}, {"object": "field2", "n": 1}]
