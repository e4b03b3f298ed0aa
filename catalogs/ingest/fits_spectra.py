"""1-D spectra from FITS files into ``spectra``, in the layouts real archives write.

Recognised layouts (anything else is rejected with the reason, never guessed):

* **SDSS / BOSS image files**: a primary header with COEFF0/COEFF1 (log10 wavelength
  = COEFF0 + COEFF1 * j, 0-based j). The primary is the flux; the error comes from an inverse
  variance image in HDU 1 (sigma = 1/sqrt(ivar), NaN where ivar <= 0), or, for a 2-D spSpec
  primary, from its row 2 (sigma). A float64 log10-wavelength image in HDU 2 is used when present.
* **1-D image with a linear or log-linear wavelength axis**: CRVAL1, CDELT1 (or CD1_1), CRPIX1;
  DC-FLAG = 1 (or CTYPE1 ``WAVE-LOG``) means log10: lambda = 10^(CRVAL1 + CDELT1 (i - CRPIX1)), 1-based i.
  CUNIT1 (or the IRAF ``WAT1_001`` units) in nm, um or m is converted to Angstrom.
* **Binary table, one spectrum per row** (HST x1d, echelle orders): array columns WAVELENGTH and
  FLUX, optionally ERROR.
* **Binary table, one sample per row** (BOSS spec-*.fits ``loglam``/``flux``/``ivar``, the Ondrejov
  CCD700 layout of wavelength and intensity rows): a wavelength column (WAVELENGTH, WAVE, LAMBDA, or
  LOGLAM in log10), a flux column (FLUX or INTENSITY) and optionally ERROR/ERR/SIGMA or IVAR.

A spectrum is rejected when its wavelength axis is not strictly monotonic or not finite, the
arrays differ in length, or every flux value is NaN. Table column units (TUNITn) in nm/um/m are
converted to Angstrom. Wavelengths are stored as the file gives them (vacuum or air).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from catalogs.ingest.files import FileFormat, Rejected
from catalogs.ingest.fits_cards import Keywords, NeedsAstropy, hdu_keywords, simple_image
from catalogs.ingest.fits_header import observed_at, sky_position, text
from catalogs.schemas import SPECTRA, TIMESTAMP_UTC

SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")
_TO_AA = {"angstrom": 1.0, "angstroms": 1.0, "aa": 1.0, "a": 1.0, "0.1 nm": 1.0, "nm": 10.0,
          "nanometer": 10.0, "nanometers": 10.0, "um": 1e4, "micron": 1e4, "microns": 1e4, "m": 1e10}
WAVE_NAMES = ("wavelength", "wave", "lambda", "lam")
LOG_WAVE_NAMES = ("loglam",)
FLUX_NAMES = ("flux", "intensity")
ERR_NAMES = ("error", "err", "sigma", "flux_err", "flux_error")


def _unit_scale(unit: str | None, where: str) -> float:
    if not unit:
        return 1.0
    key = unit.strip().lower()
    if key not in _TO_AA:
        raise Rejected(f"{where}: wavelength unit {unit!r} is not a length (Angstrom, nm, um, m)")
    return _TO_AA[key]


def _wat_units(header) -> str | None:
    wat = text(header, "WAT1_001")
    if wat:
        for part in wat.split():
            if part.startswith("units="):
                return part[len("units="):]
    return None


def _check(where: str, wavelength, flux, err) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    wavelength = np.asarray(wavelength, dtype=np.float64).ravel()
    flux = np.asarray(flux, dtype=np.float64).ravel()
    err = None if err is None else np.asarray(err, dtype=np.float64).ravel()
    if len(wavelength) < 2:
        raise Rejected(f"{where}: a spectrum needs at least 2 samples, got {len(wavelength)}")
    if len(flux) != len(wavelength) or (err is not None and len(err) != len(wavelength)):
        raise Rejected(f"{where}: wavelength has {len(wavelength)} samples but flux has {len(flux)}"
                       + (f" and error {len(err)}" if err is not None else ""))
    if not np.isfinite(wavelength).all():
        raise Rejected(f"{where}: the wavelength axis has non-finite values")
    step = np.diff(wavelength)
    if not ((step > 0).all() or (step < 0).all()):
        bad = int(np.flatnonzero(step <= 0)[0] if (step > 0).sum() >= (step < 0).sum() else np.flatnonzero(step >= 0)[0])
        raise Rejected(f"{where}: the wavelength axis is not monotonic (at sample {bad + 1}: "
                       f"{float(wavelength[bad])!r} then {float(wavelength[bad + 1])!r})")
    if not np.isfinite(flux).any():
        raise Rejected(f"{where}: every flux value is NaN or infinite")
    return wavelength, flux, err


def _sigma_from_ivar(ivar) -> np.ndarray:
    ivar = np.asarray(ivar, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)


def _sdss(hdul) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    header = hdul[0].header
    primary = np.asarray(hdul[0].data, dtype=np.float64)
    n = primary.shape[-1]
    loglam = header["COEFF0"] + header["COEFF1"] * np.arange(n)
    if len(hdul) > 2 and hdul[2].is_image and hdul[2].data is not None and hdul[2].data.shape == (n,) \
            and hdul[2].data.dtype.kind == "f" and 2.0 < float(np.nanmedian(hdul[2].data)) < 6.0:
        loglam = np.asarray(hdul[2].data, dtype=np.float64)
    if primary.ndim == 2:  # spSpec: rows flux, continuum-subtracted flux, sigma, mask, ...
        return 10.0 ** loglam, primary[0], primary[2] if primary.shape[0] > 2 else None
    err = None
    if len(hdul) > 1 and hdul[1].is_image and hdul[1].data is not None and hdul[1].data.shape == (n,):
        err = _sigma_from_ivar(hdul[1].data)
    return 10.0 ** loglam, primary, err


def _image_axis(header: Keywords, n: int, where: str) -> np.ndarray:
    crval = header.get("CRVAL1")
    delta = header.get("CDELT1")
    delta = header.get("CD1_1") if delta is None else delta
    crpix = header.get("CRPIX1", 1.0)
    if crval is None or delta is None:
        if any(k.startswith("WAT2_") for k in header.keys()) or "multispec" in str(header.get("WAT0_001", "")):
            raise Rejected(f"{where}: an IRAF multispec wavelength solution, not supported")
        raise Rejected(f"{where}: a 1-D image without a wavelength axis (CRVAL1 and CDELT1/CD1_1 missing): "
                       "unknown spectrum layout")
    ctype = str(header.get("CTYPE1", "")).upper()
    pixel = np.arange(1, n + 1, dtype=np.float64)
    axis = float(crval) + float(delta) * (pixel - float(crpix))
    is_log = header.get("DC-FLAG") == 1 or "LOG" in ctype
    unit = text(header, "CUNIT1") or _wat_units(header)
    if is_log:
        return 10.0 ** axis * _unit_scale(unit, where)
    return axis * _unit_scale(unit, where)


def _column(columns, names):
    by_lower = {c.name.lower(): c for c in columns}
    for name in names:
        if name in by_lower:
            return by_lower[name]
    return None


def _table_spectra(hdu, index: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    columns = hdu.columns
    data = hdu.data
    where = f"HDU {index}"
    wave_col = _column(columns, WAVE_NAMES)
    log_col = _column(columns, LOG_WAVE_NAMES) if wave_col is None else None
    flux_col = _column(columns, FLUX_NAMES)
    err_col = _column(columns, ERR_NAMES)
    ivar_col = _column(columns, ("ivar",)) if err_col is None else None
    if (wave_col is None and log_col is None) or flux_col is None:
        names = ", ".join(c.name for c in columns)
        raise Rejected(f"{where}: a table without wavelength and flux columns ({names}): unknown spectrum layout")
    if data is None or len(data) == 0:
        raise Rejected(f"{where}: the spectrum table has no rows")
    scale = 1.0 if log_col is not None else _unit_scale(wave_col.unit, where)
    wave_name = (log_col or wave_col).name
    vector = np.ndim(data[wave_name][0]) > 0
    out = []
    rows = range(len(data)) if vector else [None]
    for r in rows:
        pick = (lambda c: data[c.name][r]) if vector else (lambda c: data[c.name])
        wave = np.asarray(pick(log_col or wave_col), dtype=np.float64)
        wave = 10.0 ** wave if log_col is not None else wave * scale
        err = pick(err_col) if err_col is not None else (_sigma_from_ivar(pick(ivar_col)) if ivar_col is not None else None)
        label = f"{where} row {r + 1}" if vector else where
        out.append((label, *_check(label, wave, pick(flux_col), err)))
    return out


def spectra_rows(path: str, sha256: str) -> list[dict]:
    """One dict per spectrum of the file (the row of ``spectra``); Rejected when it cannot be ingested."""
    simple = simple_image(path)
    if simple is not None:  # one primary HDU and nothing else: read without astropy's objects
        try:
            return _rows(path, sha256, *_simple_spectrum(*simple))
        except Rejected:
            raise
        except Exception:  # noqa: BLE001  (NeedsAstropy, or anything astropy should judge)
            pass
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
        except Exception as e:  # noqa: BLE001
            raise Rejected(f"not a readable FITS file: {' '.join(str(e).split())}") from e
        with hdul:
            try:
                hdul.readall()
                keywords = hdu_keywords(hdul, path)
                primary = keywords[0]
                found: list[tuple[int, str, np.ndarray, np.ndarray, np.ndarray | None]] = []
                if "COEFF0" in primary and "COEFF1" in primary and hdul[0].data is not None:
                    found.append((0, "HDU 0", *_check("HDU 0", *_sdss(hdul))))
                else:
                    for index, hdu in enumerate(hdul):
                        if hdu.is_image and hdu.data is not None:
                            data = np.squeeze(hdu.data)
                            if data.ndim != 1:
                                raise Rejected(f"HDU {index}: a {data.ndim}-D image of shape {hdu.data.shape}; "
                                               "a spectrum image must be 1-D: unknown spectrum layout")
                            wave = _image_axis(keywords[index], len(data), f"HDU {index}")
                            found.append((index, f"HDU {index}", *_check(f"HDU {index}", wave, data, None)))
                        elif isinstance(hdu, fits.BinTableHDU):
                            found += [(index, *s) for s in _table_spectra(hdu, index)]
            except Rejected:
                raise
            except Exception as e:  # noqa: BLE001
                raise Rejected(f"cannot read the file (truncated?): {' '.join(str(e).split())}") from e
            return _rows(path, sha256, found, keywords)


def _simple_spectrum(keywords: Keywords, data: np.ndarray) -> tuple[list[tuple], list[Keywords]]:
    """``found`` of a file of one primary 1-D image, as the astropy path below finds it."""
    if "COEFF0" in keywords and "COEFF1" in keywords:
        raise NeedsAstropy("COEFF0")  # SDSS: its error and wavelength images are in other HDUs
    flux = np.squeeze(data)
    if flux.ndim != 1:
        raise NeedsAstropy("an image of more than one dimension")  # rejected there, with astropy's shape
    wave = _image_axis(keywords, len(flux), "HDU 0")
    return [(0, "HDU 0", *_check("HDU 0", wave, flux, None))], [keywords]


def _rows(path: str, sha256: str, found: list[tuple], keywords: list[Keywords]) -> list[dict]:
    if not found:
        raise Rejected("no spectrum in the file (no 1-D image or spectrum table): unknown spectrum layout")
    primary = keywords[0]
    rows = []
    for n, (index, label, wave, flux, err) in enumerate(found):
        merged = _Merged(primary, keywords[index].repeated_last()) if index else primary
        ra, dec = sky_position(merged)
        rows.append({
            "spectrum_id": f"{sha256[:16]}:{n}",
            "source_file": path,
            "object": text(merged, "OBJECT", "TARGNAME", "OBJNAME"),
            "observed_at": observed_at(merged) or observed_at(primary),
            "ra_deg": ra, "dec_deg": dec,
            "wavelength_aa": wave, "flux": flux, "flux_err": err,
        })
    return rows


class _Merged:
    """An extension's keywords over the primary header's (as ``primary.copy().update(extension)``
    without copying the primary, whose header can hold hundreds of cards)."""

    def __init__(self, primary: Keywords, extension: Keywords):
        self.primary = primary
        self.extension = extension

    def get(self, key, default=None):
        if key not in ("", "COMMENT", "HISTORY"):
            value = self.extension.get(key, _MISSING)
            if value is not _MISSING:
                return value
        return self.primary.get(key, default)


_MISSING = object()
_LIST = pa.list_(pa.float64())
_SCALARS = pa.struct([("spectrum_id", pa.string()), ("source_file", pa.string()), ("object", pa.string()),
                      ("observed_at", TIMESTAMP_UTC), ("ra_deg", pa.float64()), ("dec_deg", pa.float64())])


def _list_column(values: list) -> pa.Array:
    present = [v for v in values if v is not None]
    if not present:
        return pa.nulls(len(values), _LIST)
    if len(values) == 1:  # the usual file: one spectrum
        return pa.ListArray.from_arrays(pa.array([0, len(present[0])], pa.int32()), pa.array(present[0], pa.float64()))
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([0 if v is None else len(v) for v in values], out=offsets[1:])
    flat = present[0] if len(present) == 1 else np.concatenate(present)
    mask = None if len(present) == len(values) else pa.array([v is None for v in values])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float64()), mask=mask)


def spectra_table(rows: list[dict]) -> pa.Table:
    """Rows of ``spectra_rows`` as an Arrow table of the ``spectra`` schema (typed column by column,
    so the lake's conform has nothing left to cast)."""
    scalars = pa.array([{f.name: r[f.name] for f in _SCALARS} for r in rows], _SCALARS)  # one conversion
    arrays = [_list_column([r[name] for r in rows]) for name in ("wavelength_aa", "flux", "flux_err")]
    columns = [*scalars.flatten(), *arrays]
    return pa.Table.from_arrays(columns, schema=SPECTRA.schema)


def parse_spectrum_file(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    yield "spectra", spectra_table(spectra_rows(path, sha256))


FORMAT = FileFormat("spectra", "spectra", parse_spectrum_file, SUFFIXES)


def ingest_spectra(lake, paths, **kwargs):
    """Ingest FITS spectra in one call; see ``catalogs.ingest.files.ingest_files``."""
    from catalogs.ingest.files import ingest_files

    return ingest_files(lake, FORMAT, paths, {}, **kwargs)
