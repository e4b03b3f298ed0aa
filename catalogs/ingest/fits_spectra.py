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
from catalogs.ingest.fits_header import observed_at, sky_position, text

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


def _image_axis(header, n: int, where: str) -> np.ndarray:
    crval = header.get("CRVAL1")
    delta = header.get("CDELT1", header.get("CD1_1"))
    crpix = header.get("CRPIX1", 1.0)
    if crval is None or delta is None:
        if any(k.startswith("WAT2_") for k in header) or "multispec" in str(header.get("WAT0_001", "")):
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
                primary = hdul[0].header
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
                            header = hdu.header if index else primary
                            wave = _image_axis(header, len(data), f"HDU {index}")
                            found.append((index, f"HDU {index}", *_check(f"HDU {index}", wave, data, None)))
                        elif isinstance(hdu, fits.BinTableHDU):
                            found += [(index, *s) for s in _table_spectra(hdu, index)]
            except Rejected:
                raise
            except Exception as e:  # noqa: BLE001
                raise Rejected(f"cannot read the file (truncated?): {' '.join(str(e).split())}") from e
            if not found:
                raise Rejected("no spectrum in the file (no 1-D image or spectrum table): unknown spectrum layout")
            rows = []
            for n, (index, label, wave, flux, err) in enumerate(found):
                header = hdul[index].header if index else primary
                merged = primary.copy()
                if index:
                    merged.update({k: v for k, v in header.items() if k not in ("", "COMMENT", "HISTORY")})
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


_LIST = pa.list_(pa.float64())


def _arrays(rows: list[dict]) -> pa.Table:
    columns = {k: [r[k] for r in rows] for k in ("spectrum_id", "source_file", "object", "observed_at", "ra_deg", "dec_deg")}
    table = pa.table({**columns, "observed_at": pa.array(columns["observed_at"], pa.timestamp("us", tz="UTC")),
                      "ra_deg": pa.array(columns["ra_deg"], pa.float64()),
                      "dec_deg": pa.array(columns["dec_deg"], pa.float64())})
    for name in ("wavelength_aa", "flux", "flux_err"):
        values = [r[name] for r in rows]
        offsets = np.zeros(len(values) + 1, dtype=np.int32)
        np.cumsum([0 if v is None else len(v) for v in values], out=offsets[1:])
        flat = np.concatenate([v for v in values if v is not None]) if any(v is not None for v in values) else np.empty(0)
        mask = pa.array([v is None for v in values])
        table = table.append_column(name, pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float64()), mask=mask))
    return table


def parse_spectrum_file(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    yield "spectra", _arrays(spectra_rows(path, sha256))


FORMAT = FileFormat("spectra", "spectra", parse_spectrum_file, SUFFIXES)


def ingest_spectra(lake, paths, **kwargs):
    """Ingest FITS spectra in one call; see ``catalogs.ingest.files.ingest_files``."""
    from catalogs.ingest.files import ingest_files

    return ingest_files(lake, FORMAT, paths, {}, **kwargs)
