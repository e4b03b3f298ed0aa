"""FITS images into ``images`` (one row per image HDU), and with ``extract`` their SEP sources.

Every image HDU of a file (primary, IMAGE extensions, Rice/fpack tile-compressed ``.fz`` and
gzipped files, all through astropy) becomes one row: DATE-OBS as ``observed_at`` (UTC), TELESCOP,
INSTRUME, FILTER, EXPTIME, OBJECT, the WCS as FITS header text, the ICRS position of the image
centre when the WCS is celestial, and the pixels as float32 with BSCALE/BZERO applied.
Degenerate axes (NAXIS3 = 1 ...) are dropped; a real cube, an image HDU whose header has no
NAXIS, a data unit that cannot be read (truncated file, unknown BITPIX) or an image with no
finite pixel rejects the whole file (a file is ingested whole or not at all). Table HDUs are
passed over; a file without any image is rejected.

With ``extract`` the sources of each image (``udfs.sep_extract``: SEP with SExtractor's
settings, ra/dec through ``pix_to_sky``) go to ``sources`` in the same call.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from catalogs.ingest.files import FileFormat, Rejected, binary_column
from catalogs.ingest.fits_header import number, observed_at, text

SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


def _image_hdus(hdul):
    from astropy.io import fits

    for index, hdu in enumerate(hdul):
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            yield index, hdu


def _pixels(index: int, hdu) -> np.ndarray:
    header = hdu.header
    if "NAXIS" not in header:
        raise Rejected(f"HDU {index}: the header has no NAXIS keyword")
    bitpix = header.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise Rejected(f"HDU {index}: BITPIX {bitpix!r} is not a FITS pixel type (8, 16, 32, 64, -32, -64)")
    try:
        data = hdu.data
    except Exception as e:  # noqa: BLE001
        raise Rejected(f"HDU {index}: cannot read the data (truncated file?): {' '.join(str(e).split())}") from e
    if data is None:
        return None
    data = np.squeeze(data) if data.ndim > 2 else data
    if data.ndim != 2:
        raise Rejected(f"HDU {index}: a {data.ndim}-D array of shape {data.shape}; images must be 2-D")
    return data


def _wcs_text(header, width: int, height: int) -> tuple[str | None, float | None, float | None]:
    from astropy.wcs import WCS

    from udfs.sep_extract import pix_to_sky_kernel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header, relax=True, fix=True)
        except Exception:  # noqa: BLE001  (no usable WCS: the image is still an image)
            return None, None, None
        if wcs.naxis == 0 or not any(str(c).strip() for c in wcs.wcs.ctype):
            return None, None, None
        keep = wcs.celestial if wcs.has_celestial else wcs
        wcs_header = keep.to_header(relax=True).tostring(sep="\n")
    if not keep.has_celestial:
        return wcs_header, None, None
    sky, errors = pix_to_sky_kernel([wcs_header], [(width - 1) / 2.0], [(height - 1) / 2.0])
    if errors[0] is not None:
        return wcs_header, None, None
    return wcs_header, sky.field("ra_deg")[0].as_py(), sky.field("dec_deg")[0].as_py()


def check_primary_header(path: str) -> None:
    """Rejected with a precise reason for a primary header astropy would report only vaguely
    (an unknown BITPIX or a missing NAXIS make it misread the rest of the file)."""
    import gzip

    from astropy.io import fits

    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.Header.fromfile(f)
    except Exception:  # noqa: BLE001  (astropy's own open reports it)
        return
    if "SIMPLE" not in header:
        return
    if header.get("BITPIX") not in (8, 16, 32, 64, -32, -64):
        raise Rejected(f"HDU 0: BITPIX {header.get('BITPIX')!r} is not a FITS pixel type (8, 16, 32, 64, -32, -64)")
    if "NAXIS" not in header:
        raise Rejected("HDU 0: the header has no NAXIS keyword")


def image_rows(path: str, sha256: str) -> list[dict]:
    """One dict per image HDU (the row of ``images``); Rejected when the file cannot be ingested."""
    from astropy.io import fits

    rows = []
    check_primary_header(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            hdul = fits.open(path, memmap=False, lazy_load_hdus=True, ignore_missing_end=False)
        except Exception as e:  # noqa: BLE001
            raise Rejected(f"not a readable FITS file: {' '.join(str(e).split())}") from e
        with hdul:
            for index, hdu in _image_hdus(hdul):
                data = _pixels(index, hdu)
                if data is None:
                    continue
                pixels = np.ascontiguousarray(data, dtype="<f4")
                if not np.isfinite(pixels[:8]).any() and not np.isfinite(pixels).any():
                    raise Rejected(f"HDU {index}: every pixel is NaN or infinite")
                header = hdu.header
                height, width = pixels.shape
                wcs_header, ra, dec = _wcs_text(header, width, height)
                rows.append({
                    "image_id": f"{sha256[:16]}:{index}",
                    "source_file": path,
                    "hdu": index,
                    "observed_at": observed_at(header),
                    "telescope": text(header, "TELESCOP"),
                    "instrument": text(header, "INSTRUME"),
                    "filter": text(header, "FILTER", "FILTNAM1", "FILTER1", "BAND"),
                    "exptime_s": number(header, "EXPTIME", "EXPOSURE", "ITIME"),
                    "object": text(header, "OBJECT"),
                    "width": width,
                    "height": height,
                    "wcs_header": wcs_header,
                    "ra_center_deg": ra,
                    "dec_center_deg": dec,
                    "pixels": pixels,
                })
    if not rows:
        raise Rejected("no image HDU with data in the file")
    return rows


def source_rows(image: dict, thresh_sigma: float) -> pa.Table:
    """The SEP sources of one image row (udfs.sep_extract), with ra/dec from its WCS."""
    from udfs.sep_extract import pix_to_sky_kernel, sep_extract_kernel

    found, errors = sep_extract_kernel([image["pixels"].tobytes()], [image["width"]], [image["height"]], [thresh_sigma])
    if errors[0] is not None:
        raise Rejected(f"HDU {image['hdu']}: source extraction failed: {errors[0]}")
    objects = found[0].values.flatten() if len(found[0].values) else None
    n = 0 if objects is None else len(found[0].values)
    columns = {"image_id": [image["image_id"]] * n, "source_id": pa.array(np.arange(n), pa.int64())}
    for name in ("x_pix", "y_pix", "flux", "flux_err", "a_pix", "b_pix", "theta_rad", "flags", "npix"):
        columns[name] = found[0].values.field(name) if n else pa.array([], pa.float64())
    ra = dec = pa.nulls(n, pa.float64())
    if n and image["ra_center_deg"] is not None:
        sky, errs = pix_to_sky_kernel([image["wcs_header"]] * n, columns["x_pix"].to_numpy(),
                                      columns["y_pix"].to_numpy())
        if errs[0] is None:
            ra, dec = sky.field("ra_deg"), sky.field("dec_deg")
    columns["ra_deg"], columns["dec_deg"] = ra, dec
    if not n:
        columns["flags"] = columns["npix"] = pa.array([], pa.int32())
    return pa.table(columns)


def parse_image_file(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    """(table, rows) of one FITS file: ``sources`` first when extracting, then ``images``."""
    rows = image_rows(path, sha256)
    if options.get("extract"):
        thresh = float(options.get("thresh_sigma", 1.5))
        for found in [source_rows(row, thresh) for row in rows]:  # all extracted before any is yielded
            if found.num_rows:
                yield "sources", found
    for row in rows:
        pixels = row.pop("pixels")
        table = pa.Table.from_pylist([row])
        yield "images", table.append_column("pixels", binary_column(pixels))


FORMAT = FileFormat("images", "images", parse_image_file, SUFFIXES)


def ingest_images(lake, paths, extract: bool = False, thresh_sigma: float = 1.5, **kwargs):
    """Ingest FITS images (and with ``extract`` their sources) in one call; see ``ingest_files``."""
    from catalogs.ingest.files import ingest_files

    options = {"extract": True, "thresh_sigma": float(thresh_sigma), "also_tables": ("sources",)} if extract else {}
    return ingest_files(lake, FORMAT, paths, options, **kwargs)
