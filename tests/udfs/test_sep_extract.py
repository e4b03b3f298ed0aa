"""SEP source extraction, background, aperture photometry and pixel -> sky, as library functions.

The acceptance case is SEP's own test against SExtractor (../shared/data/real/sep, README section
1): the reference image, extracted with the settings of its default.sex, must give the catalog
SExtractor wrote, through the registry and through SQL.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest

import engine
from catalogs.lake import Lake
from tests.conftest import REAL_DATA
from udfs import sep_extract as se
from udfs.registry import call, evaluate, get

SEP_DATA = REAL_DATA / "sep"
IMAGES_DATA = REAL_DATA / "images"
NEEDS_SEP_DATA = pytest.mark.skipif(
    not (SEP_DATA / "image.fits").exists(),
    reason=f"the real-data set is absent: {SEP_DATA}/image.fits (see ../shared/data/real/README.md section 1)",
)
NEEDS_IMAGES_DATA = pytest.mark.skipif(
    not (IMAGES_DATA / "astropy-data_gc_2mass_k.header.txt").exists(),
    reason=f"the real-data set is absent: {IMAGES_DATA} (see ../shared/data/real/README.md section 4)",
)

# the reference FITS files carry ESO-LOG cards that astropy warns about
pytestmark = pytest.mark.filterwarnings("ignore:The following header keyword is invalid")

APER_TRUNC, APER_HASMASKED = 16, 32
OBJ_MERGED = 1
LATERAL = "SELECT s.* FROM images LATERAL VIEW explode(sep_extract(pixels, width, height, 1.5)) t AS s"


# ---- helpers -------------------------------------------------------------------------------


def stars(shape=(128, 160), positions=((40.3, 30.7, 2000.0), (100.6, 90.2, 1000.0)), sigma=1.5,
          back=100.0, noise=1.0, seed=0) -> np.ndarray:
    """A float32 image: Gaussian stars (x, y, total flux) on a flat background with white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    image = back + rng.normal(0.0, noise, shape)
    for x, y, total in positions:
        image += total / (2 * np.pi * sigma**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return image.astype(np.float32)


def blob(image: np.ndarray) -> bytes:
    return np.ascontiguousarray(image, dtype="<f4").tobytes()


def run(name: str, *columns):
    """evaluate() on whole columns: (results, reasons) as Python lists."""
    spec = get(name)
    arrays = [c if isinstance(c, pa.Array) else pa.array(c, a.type) for c, a in zip(columns, spec.args)]
    results = evaluate(spec, arrays).to_pylist()
    reasons = evaluate(get(name + "_error"), arrays).to_pylist()
    return results, reasons


def extract(image: np.ndarray, thresh: float = 1.5) -> list[dict]:
    h, w = image.shape
    return call("sep_extract", blob(image), w, h, thresh)


def read_reference_image() -> np.ndarray:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ESO-LOG cards are not standard FITS
        data = fits.getdata(SEP_DATA / "image.fits")  # BSCALE/BZERO applied: float32
    assert data.dtype == np.float32
    return np.ascontiguousarray(data, dtype=np.float32)


def read_reference_catalog() -> np.ndarray:
    """image.cat sorted by Y_IMAGE; columns (0-based): 1 X_IMAGE, 2 Y_IMAGE, 12 FLUX_APER,
    13 FLUXERR_APER, 20 FLAGS."""
    ref = np.loadtxt(SEP_DATA / "image.cat")
    return ref[np.argsort(ref[:, 2], kind="stable")]


def assert_matches_sextractor(sources: list[dict]) -> None:
    ref = read_reference_catalog()
    got = sorted(sources, key=lambda s: s["y_pix"])
    assert len(got) == len(ref) == 65
    x = np.array([s["x_pix"] for s in got])
    y = np.array([s["y_pix"] for s in got])
    flux = np.array([s["flux"] for s in got])
    flux_err = np.array([s["flux_err"] for s in got])
    np.testing.assert_allclose(x, ref[:, 1] - 1.0, rtol=0, atol=1e-3)
    np.testing.assert_allclose(y, ref[:, 2] - 1.0, rtol=0, atol=1e-3)
    np.testing.assert_allclose(flux, ref[:, 12], rtol=2e-4)
    np.testing.assert_allclose(flux_err, ref[:, 13], rtol=1e-5)
    if "aper_flags" in got[0]:  # not a column of the sources table
        aper_flags = np.array([s["aper_flags"] for s in got])
        assert int(((aper_flags & APER_TRUNC) != 0).sum()) == 4
        assert int(((aper_flags & APER_HASMASKED) != 0).sum()) == 0


def images_lake(path, rows: list[dict]) -> Lake:
    lake = Lake(path)
    lake.append("images", pa.table({
        "image_id": [r["image_id"] for r in rows],
        "pixels": pa.array([r["pixels"] for r in rows], pa.binary()),
        "width": pa.array([r["width"] for r in rows], pa.int32()),
        "height": pa.array([r["height"] for r in rows], pa.int32()),
        "wcs_header": pa.array([r.get("wcs_header") for r in rows], pa.string()),
    }))
    return lake


# ---- the functions are registered with their types ------------------------------------------


def test_signatures():
    assert get("sep_extract").signature == (
        "sep_extract(pixels binary, width int, height int, thresh_sigma double) -> array<struct<"
        "x_pix:double,y_pix:double,flux:double,flux_err:double,aper_flags:int,iso_flux:double,"
        "peak:double,a_pix:double,b_pix:double,theta_rad:double,flags:int,npix:int>>"
    )
    assert get("sep_extract_with").signature.startswith(
        "sep_extract_with(pixels binary, width int, height int, thresh_sigma double, minarea int, "
        "deblend_cont double, aper_r_pix double) -> array<struct<")
    assert get("sep_background").signature == (
        "sep_background(pixels binary, width int, height int) -> struct<back:double,rms:double>")
    assert get("aperture_flux").signature == (
        "aperture_flux(pixels binary, width int, height int, x_pix double, y_pix double, r_pix double)"
        " -> struct<flux:double,flux_err:double,flags:int>")
    assert get("pix_to_sky").signature == (
        "pix_to_sky(wcs_header string, x_pix double, y_pix double) -> struct<ra_deg:double,dec_deg:double>")
    for name in ("sep_extract", "sep_extract_with", "sep_background", "aperture_flux", "pix_to_sky"):
        assert get(name + "_error").returns == pa.string()


def test_source_fields_match_the_sources_table():
    from catalogs.schemas import SOURCES

    for field in se.SOURCE:
        if field.name in SOURCES.column_names:
            assert SOURCES.column(field.name).type == field.type, field.name


# ---- kernels on synthetic images ------------------------------------------------------------


def test_finds_stars_at_their_positions():
    image = stars()
    found = sorted(extract(image), key=lambda s: s["x_pix"])
    assert len(found) == 2
    for source, (x, y, total) in zip(found, ((40.3, 30.7, 2000.0), (100.6, 90.2, 1000.0))):
        assert abs(source["x_pix"] - x) < 0.05 and abs(source["y_pix"] - y) < 0.05  # 0-based
        # r = 5 px holds 1 - exp(-25 / (2 * 1.5**2)) = 99.6% of a sigma 1.5 px Gaussian
        assert source["flux_err"] == pytest.approx(np.sqrt(np.pi * 25) * 1.0, rel=0.1)  # rms 1
        assert source["flux"] == pytest.approx(total * (1 - np.exp(-25 / 4.5)), abs=4 * source["flux_err"])
        assert source["a_pix"] == pytest.approx(1.5, rel=0.15) and source["b_pix"] == pytest.approx(1.5, rel=0.15)
        assert source["iso_flux"] > 0 and source["peak"] > 0 and source["npix"] >= 5
        assert source["flags"] == 0 and source["aper_flags"] == 0


def test_nothing_found_is_an_empty_array_not_null():
    image = stars(positions=())
    results, reasons = run("sep_extract", [blob(image)], [160], [128], [50.0])
    assert results == [[]] and reasons == [None]


def test_sep_extract_is_sep_extract_with_sextractor_defaults():
    image = stars()
    default = extract(image)
    explicit = call("sep_extract_with", blob(image), 160, 128, 1.5, 5, 1.0, 5.0)
    assert default == explicit


def test_deblend_cont_splits_blended_stars():
    image = stars(positions=((60.0, 60.0, 3000.0), (64.5, 60.0, 3000.0)), sigma=1.2)
    together = call("sep_extract_with", blob(image), 160, 128, 3.0, 5, 1.0, 5.0)
    apart = call("sep_extract_with", blob(image), 160, 128, 3.0, 5, 0.005, 5.0)
    assert len(together) == 1 and together[0]["flags"] & OBJ_MERGED == 0
    assert len(apart) == 2 and all(s["flags"] & OBJ_MERGED for s in apart)


def test_single_deblending_threshold_changes_nothing_when_deblending_is_off():
    import sep

    image = stars(positions=((60.0, 60.0, 3000.0), (64.5, 60.0, 3000.0), (20.0, 100.0, 500.0)), sigma=1.2)
    data = image.copy()
    bkg = sep.Background(data)
    bkg.subfrom(data)
    full = sep.extract(data, 1.5, err=bkg.globalrms, deblend_cont=1.0, deblend_nthresh=32)
    found = extract(image)
    assert len(found) == len(full)
    np.testing.assert_array_equal([s["x_pix"] for s in found], full["x"])
    np.testing.assert_array_equal([s["iso_flux"] for s in found], full["flux"].astype(np.float64))


def test_aperture_radius_argument():
    image = stars()
    small = call("sep_extract_with", blob(image), 160, 128, 1.5, 5, 1.0, 2.0)
    large = call("sep_extract_with", blob(image), 160, 128, 1.5, 5, 1.0, 5.0)
    for s, l in zip(small, large):
        assert s["x_pix"] == l["x_pix"] and s["flux"] < l["flux"]
        assert s["flux_err"] == pytest.approx(l["flux_err"] * 2.0 / 5.0, rel=1e-2)  # rms * sqrt(area)


def test_background():
    image = stars(back=250.0, noise=3.0)
    result = call("sep_background", blob(image), 160, 128)
    assert result["back"] == pytest.approx(250.0, abs=0.3)
    assert result["rms"] == pytest.approx(3.0, rel=0.05)


def test_aperture_flux():
    image = stars(positions=((80.0, 64.0, 5000.0),))
    result = call("aperture_flux", blob(image), 160, 128, 80.0, 64.0, 8.0)
    background = call("sep_background", blob(image), 160, 128)
    assert result["flux"] == pytest.approx(5000.0, rel=0.01)  # background subtracted
    # rms * sqrt(area), the area summed over 5x5 subpixels at the edge: pi r^2 within 1%
    assert result["flux_err"] == pytest.approx(background["rms"] * np.sqrt(np.pi * 64.0), rel=1e-2)
    assert result["flags"] == 0
    edge = call("aperture_flux", blob(image), 160, 128, 1.0, 64.0, 5.0)
    assert edge["flags"] & APER_TRUNC


def test_aperture_flux_many_positions_on_one_image_agree_with_one_at_a_time():
    image = stars()
    b = blob(image)
    xs, ys, rs = [40.3, 100.6, 10.0, 40.3], [30.7, 90.2, 10.0, 30.7], [5.0, 3.0, 4.0, 7.5]
    together, reasons = run("aperture_flux", [b] * 4, [160] * 4, [128] * 4, xs, ys, rs)
    assert reasons == [None] * 4
    assert together == [call("aperture_flux", b, 160, 128, x, y, r) for x, y, r in zip(xs, ys, rs)]


def tan_header(crval=(150.0, 2.0), crpix=(51.0, 41.0), cdelt=1e-3, radesys="ICRS", lines=True) -> str:
    from astropy.io import fits

    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = crval
    header["CRPIX1"], header["CRPIX2"] = crpix
    header["CDELT1"], header["CDELT2"] = -cdelt, cdelt
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    header["RADESYS"] = radesys
    if radesys == "FK5":
        header["EQUINOX"] = 2000.0
    return header.tostring(sep="\n") if lines else header.tostring()


def test_pix_to_sky_is_zero_based():
    # FITS pixel CRPIX (1-based) is 0-based pixel CRPIX - 1: exactly the reference point
    for lines in (True, False):  # one card per line, or 80-character cards run together
        sky = call("pix_to_sky", tan_header(lines=lines), 50.0, 40.0)
        assert sky == {"ra_deg": pytest.approx(150.0, abs=1e-12), "dec_deg": pytest.approx(2.0, abs=1e-12)}
    east = call("pix_to_sky", tan_header(), 49.0, 40.0)  # RA grows to the left (CDELT1 < 0)
    assert east["ra_deg"] > 150.0


def test_pix_to_sky_vectorized_over_several_headers():
    a, b = tan_header(), tan_header(crval=(10.0, -30.0))
    results, reasons = run("pix_to_sky", [a, b, a, b], [50.0, 50.0, 0.0, 0.0], [40.0, 40.0, 0.0, 0.0])
    assert reasons == [None] * 4
    assert results[0]["ra_deg"] == pytest.approx(150.0) and results[1]["dec_deg"] == pytest.approx(-30.0)
    assert results[2] == call("pix_to_sky", a, 0.0, 0.0) and results[3] == call("pix_to_sky", b, 0.0, 0.0)


def test_pix_to_sky_transforms_fk5_to_icrs():
    from astropy.coordinates import SkyCoord

    sky = call("pix_to_sky", tan_header(radesys="FK5"), 50.0, 40.0)
    expected = SkyCoord(150.0, 2.0, unit="deg", frame="fk5", equinox="J2000").icrs
    assert sky["ra_deg"] == pytest.approx(expected.ra.deg, abs=1e-10)
    assert sky["dec_deg"] == pytest.approx(expected.dec.deg, abs=1e-10)
    assert abs(sky["ra_deg"] - 150.0) * 3600 < 0.1  # FK5 J2000 and ICRS differ by tens of mas


@NEEDS_IMAGES_DATA
def test_pix_to_sky_on_real_headers():
    """README section 4 reference points (astropy/WCSLIB, native frame) and their ICRS."""
    from astropy.coordinates import SkyCoord

    twomass = (IMAGES_DATA / "astropy-data_gc_2mass_k.header.txt").read_text()  # EQUINOX 2000: FK5
    for (x, y), (ra, dec) in {(0, 0): (266.97405525, -29.43139219), (720, 719): (265.83144866, -28.43285591),
                              (360, 359.5): (266.4, -28.93333)}.items():
        sky = call("pix_to_sky", twomass, float(x), float(y))
        icrs = SkyCoord(ra, dec, unit="deg", frame="fk5", equinox="J2000").icrs
        assert sky["ra_deg"] == pytest.approx(icrs.ra.deg, abs=2e-8)
        assert sky["dec_deg"] == pytest.approx(icrs.dec.deg, abs=2e-8)
        assert sky["ra_deg"] == pytest.approx(ra, abs=1e-4) and sky["dec_deg"] == pytest.approx(dec, abs=1e-4)
    galactic = (IMAGES_DATA / "astropy-data_gc_msx_e.header.txt").read_text()  # GLON-CAR / GLAT-CAR
    for (x, y), (l, b) in {(0, 0): (0.49938001, -0.49232335), (148, 148): (359.51271332, 0.49434335),
                           (74, 74): (0.00604667, 0.00101)}.items():
        sky = call("pix_to_sky", galactic, float(x), float(y))
        icrs = SkyCoord(l, b, unit="deg", frame="galactic").icrs
        assert sky["ra_deg"] == pytest.approx(icrs.ra.deg, abs=2e-8)
        assert sky["dec_deg"] == pytest.approx(icrs.dec.deg, abs=2e-8)


# ---- bad input: NULL for the row, the reason from <name>_error --------------------------------


def test_wrong_byte_length():
    image = stars()
    good, short = blob(image), blob(image)[:-4]
    results, reasons = run("sep_extract", [good, short, good], [160] * 3, [128] * 3, [1.5] * 3)
    assert len(results[0]) == 2 and results[1] is None and len(results[2]) == 2
    assert reasons[0] is None and reasons[2] is None
    assert "81916 bytes" in reasons[1] and "160*128*4 = 81920" in reasons[1]
    for name, extra in (("sep_background", ()), ("aperture_flux", (10.0, 10.0, 3.0)),
                        ("sep_extract_with", (1.5, 5, 1.0, 5.0))):
        assert call(name, short, 160, 128, *extra) is None
        assert "expected width*height*4" in call(name + "_error", short, 160, 128, *extra)


def test_width_and_height_must_be_positive():
    for w, h in ((0, 128), (-160, -128)):
        assert call("sep_extract", b"", w, h, 1.5) is None
        assert "must be positive" in call("sep_extract_error", b"", w, h, 1.5)


def test_bad_parameters():
    b = blob(stars())
    cases = {
        ("sep_extract", (0.0,)): "thresh_sigma",
        ("sep_extract", (float("nan"),)): "thresh_sigma",
        ("sep_extract_with", (1.5, 0, 1.0, 5.0)): "minarea",
        ("sep_extract_with", (1.5, 5, 2.0, 5.0)): "deblend_cont",
        ("sep_extract_with", (1.5, 5, 1.0, -1.0)): "aper_r_pix",
        ("aperture_flux", (10.0, 10.0, 0.0)): "r_pix",
        ("aperture_flux", (float("nan"), 10.0, 3.0)): "finite",
        ("aperture_flux", (500.0, 10.0, 3.0)): "outside",
    }
    for (name, extra), word in cases.items():
        assert call(name, b, 160, 128, *extra) is None, (name, extra)
        assert word in call(name + "_error", b, 160, 128, *extra), (name, extra)


def test_null_in_null_out():
    b = blob(stars())
    results, reasons = run("sep_extract", [b, None, b], [160, 160, None], [128, 128, 128], [1.5, 1.5, 1.5])
    assert results[0] is not None and results[1] is None and results[2] is None
    assert reasons == [None, None, None]
    assert call("pix_to_sky", None, 1.0, 2.0) is None and call("pix_to_sky_error", None, 1.0, 2.0) is None


def test_nan_pixels_are_masked():
    image = stars()
    clean = sorted(extract(image), key=lambda s: s["x_pix"])
    holed = image.copy()
    holed[0:20, 0:20] = np.nan  # far from both stars
    holed[90, 103] = np.inf  # inside the 5 px aperture of the second star
    found = sorted(extract(holed), key=lambda s: s["x_pix"])
    assert len(found) == 2
    assert found[0]["x_pix"] == pytest.approx(clean[0]["x_pix"], abs=1e-3)
    assert found[0]["aper_flags"] == 0
    assert found[1]["aper_flags"] & APER_HASMASKED
    assert np.isfinite([s["flux"] for s in found]).all()
    background = call("sep_background", blob(holed), 160, 128)
    assert np.isfinite(background["back"]) and np.isfinite(background["rms"])
    assert call("aperture_flux", blob(holed), 160, 128, 103.0, 90.0, 3.0)["flags"] & APER_HASMASKED


def test_all_nan_image():
    image = np.full((64, 64), np.nan, dtype=np.float32)
    assert call("sep_extract", blob(image), 64, 64, 1.5) is None
    assert call("sep_extract_error", blob(image), 64, 64, 1.5) == "every pixel is NaN or infinite"
    assert call("sep_background_error", blob(image), 64, 64) == "every pixel is NaN or infinite"


def test_sep_failure_stays_with_its_row():
    noise = np.random.default_rng(1).normal(0.0, 1.0, (1000, 1000)).astype(np.float32)
    b = blob(noise)
    results, reasons = run("sep_extract", [b, b], [1000, 1000], [1000, 1000], [0.01, 5.0])
    assert results[0] is None and results[1] is not None
    assert reasons[0].startswith("sep failed: internal pixel buffer full")


def test_pix_to_sky_without_celestial_wcs():
    results, reasons = run("pix_to_sky", ["", "CTYPE1  = 'LINEAR  '", tan_header()], [1.0] * 3, [1.0] * 3)
    assert results[0] is None and results[1] is None and results[2] is not None
    assert reasons[0] == "wcs_header is empty: the image has no WCS"
    assert reasons[1].startswith("the WCS has no celestial axes")


@NEEDS_SEP_DATA
def test_pix_to_sky_on_the_sep_image_header_is_null_with_a_reason():
    header = (SEP_DATA / "image.header.txt").read_text()  # CTYPE blank: no celestial WCS
    assert call("pix_to_sky", header, 10.0, 10.0) is None
    assert call("pix_to_sky_error", header, 10.0, 10.0).startswith("the WCS has no celestial axes")


# ---- acceptance: SEP's own test against SExtractor ----------------------------------------------


@NEEDS_SEP_DATA
def test_reference_image_background_matches_sextractor():
    from astropy.io import fits

    import sep

    data = read_reference_image()
    result = call("sep_background", blob(data), 256, 256)
    bkg = sep.Background(data.copy(), bw=64, bh=64, fw=3, fh=3)  # SEP's test: back() rtol 1e-5 of back.fits
    np.testing.assert_allclose(bkg.back(dtype=np.float32), fits.getdata(SEP_DATA / "back.fits"), rtol=1e-5)
    np.testing.assert_allclose(bkg.rms(dtype=np.float32), fits.getdata(SEP_DATA / "rms.fits"), rtol=1e-4)
    assert result == {"back": bkg.globalback, "rms": bkg.globalrms}
    rms_map = fits.getdata(SEP_DATA / "rms.fits")
    assert rms_map.min() <= result["rms"] <= rms_map.max()


@NEEDS_SEP_DATA
def test_reference_image_matches_sextractor_catalog():
    data = read_reference_image()
    results, reasons = run("sep_extract", [blob(data)], [256], [256], [1.5])
    assert reasons == [None]
    assert_matches_sextractor(results[0])
    # aperture_flux at SExtractor's own positions gives its FLUX_APER too
    ref = read_reference_catalog()
    n = len(ref)
    photometry, reasons = run("aperture_flux", [blob(data)] * n, [256] * n, [256] * n,
                              list(ref[:, 1] - 1.0), list(ref[:, 2] - 1.0), [5.0] * n)
    assert reasons == [None] * n
    np.testing.assert_allclose([p["flux"] for p in photometry], ref[:, 12], rtol=2e-4)
    np.testing.assert_allclose([p["flux_err"] for p in photometry], ref[:, 13], rtol=1e-5)
    assert sum(1 for p in photometry if p["flags"] & APER_TRUNC) == 4


@NEEDS_SEP_DATA
def test_reference_image_through_sql(tmp_path, engine_name):
    data = read_reference_image()
    bad = blob(data)[:-1]
    images_lake(tmp_path / "lake", [
        {"image_id": "ntt-emmi", "pixels": blob(data), "width": 256, "height": 256},
        {"image_id": "truncated", "pixels": bad, "width": 256, "height": 256},
    ])
    with engine.connect(tmp_path / "lake", engine=engine_name) as session:
        table = session.sql(LATERAL)
        assert table.column_names == [f.name for f in se.SOURCE]
        assert_matches_sextractor(table.to_pylist())
        status = session.sql(
            "SELECT image_id, sep_extract(pixels, width, height, 1.5) IS NULL AS failed, "
            "sep_extract_error(pixels, width, height, 1.5) AS why FROM images ORDER BY image_id"
        ).to_pylist()
        assert [(r["image_id"], r["failed"]) for r in status] == [("ntt-emmi", False), ("truncated", True)]
        assert status[0]["why"] is None and "262143 bytes" in status[1]["why"]
        background = session.sql(
            "SELECT b.back, b.rms FROM (SELECT sep_background(pixels, width, height) AS b FROM images "
            "WHERE image_id = 'ntt-emmi') u"
        ).to_pylist()
        assert background == [call("sep_background", blob(data), 256, 256)]


@NEEDS_SEP_DATA
def test_filling_the_sources_table(tmp_path, engine_name):
    data = read_reference_image()
    header = tan_header(crval=(30.0, -10.0), crpix=(128.5, 128.5), cdelt=1e-4)
    images_lake(tmp_path / "lake", [{"image_id": "ntt-emmi", "pixels": blob(data), "width": 256,
                                     "height": 256, "wcs_header": header}])
    with engine.connect(tmp_path / "lake", engine=engine_name) as session:
        session.sql("""
            INSERT INTO sources
            SELECT image_id, CAST(source_id AS BIGINT) AS source_id, x_pix, y_pix,
                   sky.ra_deg AS ra_deg, sky.dec_deg AS dec_deg, flux, flux_err, a_pix, b_pix,
                   theta_rad, flags, npix
            FROM (
                SELECT image_id, source_id, s.x_pix AS x_pix, s.y_pix AS y_pix, s.flux AS flux,
                       s.flux_err AS flux_err, s.a_pix AS a_pix, s.b_pix AS b_pix,
                       s.theta_rad AS theta_rad, s.flags AS flags, s.npix AS npix,
                       pix_to_sky(wcs_header, s.x_pix, s.y_pix) AS sky
                FROM images
                LATERAL VIEW posexplode(sep_extract(pixels, width, height, 1.5)) t AS source_id, s
            ) u
        """)
        rows = session.sql("SELECT * FROM sources ORDER BY source_id").to_pylist()
    assert [r["source_id"] for r in rows] == list(range(65))
    assert_matches_sextractor(rows)
    for r in rows[:5]:
        sky = call("pix_to_sky", header, r["x_pix"], r["y_pix"])
        assert (r["ra_deg"], r["dec_deg"]) == pytest.approx((sky["ra_deg"], sky["dec_deg"]))


@NEEDS_SEP_DATA
def test_doc_examples_run_on_a_lake_with_an_image(tmp_path, engine_name):
    """docs/functions/sep.md runs on the demo lake (empty images); here on one real image."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "functions" / "sep.md"
    examples = re.findall(r"^```sql\n(.*?)^```", doc.read_text(), re.S | re.M)
    assert examples
    data = read_reference_image()
    images_lake(tmp_path / "lake", [{"image_id": "ntt-emmi", "pixels": blob(data), "width": 256,
                                     "height": 256, "wcs_header": tan_header(crpix=(128.5, 128.5))}])
    with engine.connect(tmp_path / "lake", engine=engine_name) as session:
        for example in examples:
            assert session.sql(example).num_rows > 0, example
