"""Header keywords and simple images read without astropy's objects are what astropy reads:
every keyword of odd and real headers, and the data of every simple image, compared with astropy."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from catalogs.ingest.fits_cards import Keywords, NeedsAstropy, hdu_keywords, simple_image
from tests.conftest import REAL_DATA

ODD_CARDS = [
    "OBJECT  = 'O''Brien  '         / a doubled quote, trailing blanks",
    "TARGNAME= '  lead'",
    "EMPTY   = ''",
    "RECORD  = 'AXIS.1: 5'          / record-valued: astropy's",
    "COLONS  = '12:30:00.5'",
    "EXPTIME =                 1.5D2 / a D exponent",
    "LOWEXP  =               2.5e-3 / a lowercase exponent: astropy's",
    "INTEGER =                  -042",
    "PLUS    =                   +7.",
    "POINT   =                  .25",
    "FLAG    =                    T",
    "OFF     =                    F / comment with ' quote",
    "UNDEF   =                      / no value",
    "CPLX    = (1.0, 2.0)",
    "REPEAT  =                    1",
    "REPEAT  =                    2",
    "LONGSTR = 'a long string that goes on&'",
    "CONTINUE  ' and on'",
    "NOEQUALS  just text",
    "FREE    =      'free format'",
    "lower   =                    3",
]
KEYS = ["OBJECT", "TARGNAME", "EMPTY", "RECORD", "COLONS", "EXPTIME", "LOWEXP", "INTEGER", "PLUS", "POINT", "FLAG",
        "OFF", "UNDEF", "CPLX", "REPEAT", "LONGSTR", "NOEQUALS", "FREE", "LOWER", "ABSENT", "COMMENT", "HISTORY",
        "RECORD.AXIS.1", "NAXIS", "SIMPLE"]


def same(got, want) -> bool:
    if isinstance(want, float) and np.isnan(want):
        return isinstance(got, float) and np.isnan(got)
    return type(got) is type(want) and got == want


def odd_file(path, cards=ODD_CARDS):
    header = "".join(c.ljust(80) for c in ["SIMPLE  =                    T", "BITPIX  =                  -32",
                                           "NAXIS   =                    1", "NAXIS1  =                    4",
                                           "COMMENT a comment", "HISTORY a history", *cards, "END"])
    header = header.ljust(-(-len(header) // 2880) * 2880)
    data = np.array([1.0, np.nan, -2.5, 3e30], dtype=">f4").tobytes().ljust(2880, b"\0")
    path.write_bytes(header.encode("latin-1") + data)
    return path


def check_all_keys(path, keys=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            hdul.readall()
            for hdu, keywords in zip(hdul, hdu_keywords(hdul, str(path))):
                header = hdu.header
                try:
                    last = dict(header.items())
                except fits.VerifyError:  # an unparsable card: only header.get of the others
                    last = None
                for key in keys or [*header.keys(), "ABSENT", "DATE-OBS"]:
                    assert (key in keywords) == (key in header), (path, key)
                    try:
                        want = header.get(key)
                    except fits.VerifyError:  # an unparsable card: astropy's error either way
                        with pytest.raises(fits.VerifyError):
                            keywords.get(key)
                        continue
                    assert same(keywords.get(key), want), (path, key)
                    if key not in ("", "COMMENT", "HISTORY") and last is not None:
                        assert same(keywords.repeated_last().get(key), last.get(key)), (path, key)


def test_odd_cards_read_as_astropy_reads_them(tmp_path):
    check_all_keys(odd_file(tmp_path / "odd.fits"), KEYS)


def test_keywords_astropy_would_have_to_read_are_asked_of_it_or_refused(tmp_path):
    keywords, _ = simple_image(str(odd_file(tmp_path / "odd.fits")))
    assert keywords.get("OBJECT") == "O'Brien" and keywords.get("EXPTIME") == 150.0 and keywords.get("FLAG") is True
    for key in ("RECORD", "LOWEXP", "UNDEF", "CPLX", "LONGSTR"):
        with pytest.raises(NeedsAstropy):
            keywords.get(key)


def test_hierarch_and_non_ascii_headers_are_left_to_astropy(tmp_path):
    for name, card in [("hierarch", "HIERARCH ESO DET CHIP = 'x'"), ("latin", "OBJECT  = 'caf\xe9'")]:
        path = odd_file(tmp_path / f"{name}.fits", [card, "RA      =                 10.5"])
        assert simple_image(str(path)) is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdul:
                assert Keywords(hdul[0].header, path.read_bytes()[:2880]).get("RA") == hdul[0].header.get("RA")


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i2", ">i4", ">i8", "u1"])
def test_simple_images_read_as_astropy_reads_them(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.normal(0, 1000, (3, 5, 7)) if dtype.startswith(">f") else rng.integers(0, 100, (3, 5, 7))).astype(dtype)
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(data, fits.Header({"OBJECT": "x", "EXPTIME": 3.5})).writeto(path)
    keywords, got = simple_image(str(path))
    want = fits.getdata(path)
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    assert keywords.get("EXPTIME") == 3.5 and keywords.get("BITPIX") == fits.getheader(path)["BITPIX"]


def test_files_that_are_not_one_unscaled_image_go_to_astropy(tmp_path):
    data = np.arange(10, dtype=np.int16)
    fits.PrimaryHDU(data.astype(np.uint16)).writeto(tmp_path / "scaled.fits")  # BZERO = 32768
    fits.HDUList([fits.PrimaryHDU(data), fits.ImageHDU(data)]).writeto(tmp_path / "two.fits")
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    fits.PrimaryHDU(data).writeto(tmp_path / "gz.fits.gz")
    whole = odd_file(tmp_path / "whole.fits").read_bytes()
    (tmp_path / "short.fits").write_bytes(whole[:-2880])
    (tmp_path / "long.fits").write_bytes(whole + b"\0" * 2880)
    for name in ("scaled.fits", "two.fits", "empty.fits", "gz.fits.gz", "short.fits", "long.fits"):
        assert simple_image(str(tmp_path / name)) is None, name
    assert simple_image(str(tmp_path / "whole.fits")) is not None


@pytest.mark.skipif(not REAL_DATA.exists(), reason=f"real data not found at {REAL_DATA}")
def test_every_keyword_of_the_real_files():
    paths = sorted(p for p in REAL_DATA.rglob("*") if p.name.lower().endswith((".fits", ".fit", ".fts")))
    assert paths
    for path in paths:
        check_all_keys(path)
        simple = simple_image(str(path), max_bytes=1 << 40)
        if simple is not None:
            assert np.array_equal(simple[1], fits.getdata(path), equal_nan=True)
