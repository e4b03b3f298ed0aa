import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits

from catalogs.ingest.files import parse_or_reject
from catalogs.ingest.fits_spectra import FORMAT, ingest_spectra
from tests.catalogs.ingest.builders import spectrum_fits, table_spectrum
from tests.conftest import REAL_DATA

SPECTRA = REAL_DATA / "spectra"
needs_real = pytest.mark.skipif(not SPECTRA.exists(), reason=f"real data not found at {REAL_DATA}")


def ingest_one(lake, path):
    report = ingest_spectra(lake, [path])
    assert not report.partial, report.summary()
    return sorted(pa.table(lake.delta_table("spectra").to_pyarrow_table()).to_pylist(), key=lambda r: (r["source_file"], int(r["spectrum_id"].rsplit(":", 1)[1])))


@needs_real
def test_um184_log_linear_matches_the_idl_reference(lake):
    [row] = ingest_one(lake, SPECTRA / "linetools_UM184_nF.fits")
    wave = np.array(row["wavelength_aa"])
    assert len(wave) == 16582 and len(row["flux"]) == 16582
    assert wave[0] == pytest.approx(3042.34515916, rel=1e-10)
    reference = np.loadtxt(SPECTRA / "linetools_UM184.dat.gz")
    np.testing.assert_allclose(wave, reference[:, 0], rtol=1e-7)
    np.testing.assert_allclose(row["flux"], reference[:, 1], atol=5e-4)
    assert row["object"] == "UM184" and row["observed_at"].isoformat().startswith("2012-07-12")
    assert row["ra_deg"] == pytest.approx(357.74, abs=1e-3) and row["dec_deg"] == pytest.approx(-0.86678, abs=1e-4)


@needs_real
def test_sdss_boss_file_flux_inverse_variance_and_log_wavelength(lake):
    path = SPECTRA / "linetools_SDSSJ220248.31+123656.3.fits"
    [row] = ingest_one(lake, path)
    hdul = fits.open(path)
    assert len(row["wavelength_aa"]) == 4646
    np.testing.assert_allclose(row["wavelength_aa"], 10 ** hdul[2].data.astype(np.float64), rtol=1e-12)
    assert row["wavelength_aa"][0] == pytest.approx(3553.857, abs=1e-3)
    assert row["wavelength_aa"][-1] == pytest.approx(10356.190, abs=1e-3)
    ivar = hdul[1].data.astype(np.float64)
    err = np.array(row["flux_err"], dtype=np.float64)
    good = ivar > 0
    np.testing.assert_allclose(err[good], 1 / np.sqrt(ivar[good]), rtol=1e-12)
    assert np.isnan(err[~good]).all()
    np.testing.assert_array_equal(np.array(row["flux"]), hdul[0].data.astype(np.float64))


@needs_real
def test_gmos_linear_one_d(lake):
    [row] = ingest_one(lake, SPECTRA / "specutils_L5g_0355+11_Cruz09.fits")
    wave = np.array(row["wavelength_aa"])
    assert len(wave) == 3020
    np.testing.assert_allclose(wave, 6100 + 1.374627360053 * np.arange(3020), rtol=1e-12)
    assert wave[-1] == pytest.approx(10250.0, abs=1e-6)


@needs_real
def test_stis_echelle_table_one_row_per_order(lake):
    rows = ingest_one(lake, SPECTRA / "specutils_odbue5030_x1d.fits")
    assert len(rows) == 40
    data = fits.getdata(SPECTRA / "specutils_odbue5030_x1d.fits", 1)
    for i in (0, 39):
        np.testing.assert_array_equal(rows[i]["wavelength_aa"], data["WAVELENGTH"][i])
        np.testing.assert_allclose(rows[i]["flux_err"], data["ERROR"][i].astype(np.float64))
    low = min(min(r["wavelength_aa"]) for r in rows)
    high = max(max(r["wavelength_aa"]) for r in rows)
    assert low == pytest.approx(1606.89, abs=0.01) and high == pytest.approx(2366.66, abs=0.01)
    assert {r["object"] for r in rows} == {"BD+28D4211"}


def test_ondrejov_table_of_wavelength_and_intensity_rows(lake, tmp_path):
    wave = np.linspace(6250.0, 6750.0, 300)
    flux = 1 - 0.5 * np.exp(-((wave - 6563.0) / 3) ** 2)
    [row] = ingest_one(lake, table_spectrum(tmp_path / "ond.fits", wave, flux, names=("WAVE", "INTENSITY")))
    np.testing.assert_array_equal(row["wavelength_aa"], wave)
    np.testing.assert_array_equal(row["flux"], flux)
    assert row["flux_err"] is None


def test_boss_loglam_table_and_nanometre_units(lake, tmp_path):
    loglam = np.linspace(3.6, 3.9, 50)
    cols = [fits.Column("loglam", "E", array=loglam), fits.Column("flux", "E", array=np.ones(50)),
            fits.Column("ivar", "E", array=np.full(50, 4.0))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(tmp_path / "spec-1.fits")
    nm = [fits.Column("WAVELENGTH", "D", unit="nm", array=np.linspace(400, 500, 20)),
          fits.Column("FLUX", "D", array=np.ones(20))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(nm)]).writeto(tmp_path / "nm.fits")
    rows = ingest_one(lake, tmp_path)
    by_len = {len(r["flux"]): r for r in rows}
    np.testing.assert_allclose(by_len[50]["wavelength_aa"], 10 ** loglam.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(by_len[50]["flux_err"], 0.5)
    np.testing.assert_allclose(by_len[20]["wavelength_aa"], np.linspace(4000, 5000, 20))


def test_log_linear_image_from_header(tmp_path):
    path = spectrum_fits(tmp_path / "log.fits", n=10, log=True)
    rows, reason = parse_or_reject(FORMAT, str(path), "0" * 64)
    assert reason is None
    wave = rows[0][1]["wavelength_aa"].to_pylist()[0]
    np.testing.assert_allclose(wave, 10 ** (3.6 + 1e-4 * np.arange(10)))


@pytest.mark.parametrize("wave, reason", [
    ([4000.0, 4001.0, 4001.0, 4002.0], "not monotonic"),
    ([4000.0, np.nan, 4002.0, 4003.0], "non-finite"),
])
def test_bad_wavelength_axis_is_rejected_with_reason(tmp_path, wave, reason):
    path = table_spectrum(tmp_path / "bad.fits", wave, [1.0] * 4)
    rows, why = parse_or_reject(FORMAT, str(path), "0" * 64)
    assert rows is None and reason in why


def test_decreasing_wavelength_is_kept(tmp_path):
    path = table_spectrum(tmp_path / "desc.fits", [5.0e3, 4.9e3, 4.8e3], [1.0, 2.0, 3.0], vector=True)
    rows, why = parse_or_reject(FORMAT, str(path), "0" * 64)
    assert why is None and rows[0][1]["wavelength_aa"].to_pylist()[0] == [5.0e3, 4.9e3, 4.8e3]
