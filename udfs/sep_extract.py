"""Source extraction and photometry on images (SEP, the library form of SExtractor), and WCS.

Images are the ``images`` table's encoding: ``pixels`` float32 little-endian, C order
[height, width]. The settings are SExtractor's as in the ``default.sex`` that made SEP's own
reference catalog (thresholds in units of the global background RMS, DETECT_MINAREA 5, the 3x3
``default.conv`` filter, DEBLEND_NTHRESH 32, DEBLEND_MINCONT 1.0, CLEAN Y / 1.0, BACK_SIZE 64,
BACK_FILTERSIZE 3, BACKPHOTO_TYPE GLOBAL, GAIN 0), so that ``sep_extract`` reproduces that
catalog. Non-finite pixels (NaN, inf) are masked, as SExtractor does with flagged pixels: left out
of the background, the detection and the apertures (their apertures carry APER_HASMASKED).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import warnings

import numpy as np
import pyarrow as pa
import sep

from udfs.registry import Arg, UdfSpec, register

# SExtractor's default.sex / default.conv settings (and SEP's own defaults, except deblend_cont).
BACK_SIZE_PIX = 64          # BACK_SIZE: background mesh, bw = bh
BACK_FILTER_SIZE = 3        # BACK_FILTERSIZE: median filter over meshes, fw = fh
MINAREA_PIX = 5             # DETECT_MINAREA
DEBLEND_NTHRESH = 32        # DEBLEND_NTHRESH
DEBLEND_CONT = 1.0          # DEBLEND_MINCONT of the reference default.sex: deblending off
CLEAN_PARAM = 1.0           # CLEAN Y, CLEAN_PARAM 1.0
APER_R_PIX = 5.0            # PHOT_APERTURES 10 (a diameter): r = 5 px
FILTER_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32)  # default.conv

SOURCE = pa.struct([
    ("x_pix", pa.float64()),
    ("y_pix", pa.float64()),
    ("flux", pa.float64()),
    ("flux_err", pa.float64()),
    ("aper_flags", pa.int32()),
    ("iso_flux", pa.float64()),
    ("peak", pa.float64()),
    ("a_pix", pa.float64()),
    ("b_pix", pa.float64()),
    ("theta_rad", pa.float64()),
    ("flags", pa.int32()),
    ("npix", pa.int32()),
])
SOURCES = pa.list_(SOURCE)
BACKGROUND = pa.struct([("back", pa.float64()), ("rms", pa.float64())])
PHOTOMETRY = pa.struct([("flux", pa.float64()), ("flux_err", pa.float64()), ("flags", pa.int32())])
SKY = pa.struct([("ra_deg", pa.float64()), ("dec_deg", pa.float64())])


class BadRow(ValueError):
    """The reason one row has no result (reported by ``<name>_error``)."""


# ---- images --------------------------------------------------------------------------------


def _image(pixels, width, height) -> tuple[np.ndarray, np.ndarray | None]:
    """The image as a writable native float32 [height, width] array, and the mask of its
    non-finite pixels (None when every pixel is finite); non-finite pixels are set to 0."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise BadRow(f"width and height must be positive, got width={width}, height={height}")
    expected = width * height * 4
    if len(pixels) != expected:
        raise BadRow(f"pixels has {len(pixels)} bytes, expected width*height*4 = {width}*{height}*4 = "
                     f"{expected} (float32 little-endian, C order [height, width])")
    data = np.frombuffer(pixels, dtype="<f4").reshape(height, width).astype(np.float32, copy=True)
    finite = np.isfinite(data)
    if finite.all():
        return data, None
    if not finite.any():
        raise BadRow("every pixel is NaN or infinite")
    mask = ~finite
    data[mask] = 0.0
    return data, mask


def _background(data: np.ndarray, mask: np.ndarray | None) -> sep.Background:
    return sep.Background(data, mask=mask, bw=BACK_SIZE_PIX, bh=BACK_SIZE_PIX,
                          fw=BACK_FILTER_SIZE, fh=BACK_FILTER_SIZE)


def _subtracted(pixels, width, height) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(the image with its background map subtracted, its mask, the global background RMS)."""
    data, mask = _image(pixels, width, height)
    bkg = _background(data, mask)
    bkg.subfrom(data)
    return data, mask, float(bkg.globalrms)


def _floats(values) -> np.ndarray:
    # Spark hands decimal literals (1.5) over as Decimal objects
    return np.asarray(values, dtype=np.float64)


def _sep_error(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"sep failed: {text}" if text else f"sep failed: {type(error).__name__}"


# ---- sep_extract ---------------------------------------------------------------------------

_INT_FIELDS = {"aper_flags", "flags", "npix"}


def _deblend_nthresh(deblend_cont: float) -> int:
    """DEBLEND_NTHRESH, or 1 when deblending is off (deblend_cont 1.0): no branch of the tree can
    hold more than all of the flux, so the objects are the same, found twice as fast, and a crowded
    image cannot overflow SEP's sub-object limit in a deblending that splits nothing."""
    return 1 if deblend_cont >= 1.0 else DEBLEND_NTHRESH


def _extract_one(pixels, width, height, thresh, minarea, deblend_cont, aper_r) -> dict[str, np.ndarray]:
    if not (math.isfinite(thresh) and thresh > 0):
        raise BadRow(f"thresh_sigma must be a positive number, got {thresh}")
    if minarea < 1:
        raise BadRow(f"minarea must be at least 1, got {minarea}")
    if not (0.0 <= deblend_cont <= 1.0):
        raise BadRow(f"deblend_cont must be between 0 and 1, got {deblend_cont}")
    if not (math.isfinite(aper_r) and aper_r > 0):
        raise BadRow(f"aper_r_pix must be a positive number, got {aper_r}")
    data, mask, rms = _subtracted(pixels, width, height)
    try:
        objects = sep.extract(
            data, thresh, err=rms, mask=mask, minarea=int(minarea), filter_kernel=FILTER_KERNEL,
            filter_type="matched", deblend_nthresh=_deblend_nthresh(deblend_cont), deblend_cont=deblend_cont,
            clean=True, clean_param=CLEAN_PARAM,
        )
    except Exception as e:  # pixel stack or deblending overflow: the row, not the query
        raise BadRow(_sep_error(e)) from e
    if len(objects):
        flux, flux_err, aper_flags = sep.sum_circle(data, objects["x"], objects["y"], aper_r, err=rms, mask=mask)
    else:
        flux = flux_err = np.empty(0)
        aper_flags = np.empty(0, dtype=np.int16)
    return {
        "x_pix": objects["x"], "y_pix": objects["y"], "flux": flux, "flux_err": flux_err,
        "aper_flags": aper_flags, "iso_flux": objects["flux"], "peak": objects["peak"],
        "a_pix": objects["a"], "b_pix": objects["b"], "theta_rad": objects["theta"],
        "flags": objects["flag"], "npix": objects["npix"],
    }


def _extract(pixels, width, height, thresh, minarea, deblend_cont, aper_r):
    thresh, deblend_cont, aper_r = _floats(thresh), _floats(deblend_cont), _floats(aper_r)
    minarea = np.asarray(minarea, dtype=np.int64)
    n = len(pixels)
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in SOURCE}
    counts = np.zeros(n, dtype=np.int64)
    errors: list[str | None] = [None] * n
    for i in range(n):
        try:
            found = _extract_one(pixels[i], width[i], height[i], float(thresh[i]), int(minarea[i]),
                                 float(deblend_cont[i]), float(aper_r[i]))
        except BadRow as e:
            errors[i] = str(e)
            continue
        except Exception as e:  # noqa: BLE001  (whatever sep raises stays with its row)
            errors[i] = _sep_error(e)
            continue
        counts[i] = len(found["x_pix"])
        for name, values in found.items():
            parts[name].append(values)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    children = []
    for f in SOURCE:
        dtype = np.int32 if f.name in _INT_FIELDS else np.float64
        values = np.concatenate(parts[f.name]).astype(dtype) if parts[f.name] else np.empty(0, dtype)
        children.append(pa.array(values, f.type))
    structs = pa.StructArray.from_arrays(children, fields=list(SOURCE))
    return pa.ListArray.from_arrays(pa.array(offsets), structs), errors


def sep_extract_kernel(pixels, width, height, thresh_sigma):
    n = len(pixels)
    return _extract(pixels, width, height, thresh_sigma, np.full(n, MINAREA_PIX),
                    np.full(n, DEBLEND_CONT), np.full(n, APER_R_PIX))


_IMAGE_ARGS = (
    Arg("pixels", pa.binary(), "float32 little-endian pixels, C order [height, width] (images.pixels)"),
    Arg("width", pa.int32(), "number of pixel columns"),
    Arg("height", pa.int32(), "number of pixel rows"),
)

_FIELDS_DOC = (
    "One struct per object, in SEP's detection order: x_pix, y_pix (0-based barycentre, "
    "SExtractor X_IMAGE-1, Y_IMAGE-1), flux, flux_err (adu, background-subtracted sum in a "
    "circle of aper_r_pix around the centroid, error from the global background RMS, no Poisson "
    "term: FLUX_APER, FLUXERR_APER with GAIN 0), aper_flags (SEP aperture flags: 16 truncated at "
    "the edge, 32 has masked pixels), iso_flux (adu, sum over the isophotal footprint, FLUX_ISO), "
    "peak (adu, above background), a_pix, b_pix (pix, semi-axes), theta_rad (x towards y), flags "
    "(SEP object flags: 1 merged, 2 truncated, 8 singular), npix (pixels in the footprint)."
)

SEP_EXTRACT = register(UdfSpec(
    name="sep_extract",
    holds_gil=True,
    args=(*_IMAGE_ARGS, Arg("thresh_sigma", pa.float64(), "detection threshold in units of the global background RMS")),
    returns=SOURCES,
    kernel=sep_extract_kernel,
    reports_errors=True,
    doc="Sources found in an image by SEP, with SExtractor's settings: background (64 px mesh, 3x3 "
        "filter) subtracted, detection above thresh_sigma x the global background RMS with minarea "
        "5 px, the 3x3 default.conv filter, deblend_cont 1.0 (deblending off), cleaning on; aperture "
        "r = 5 px. NaN/inf pixels are masked. " + _FIELDS_DOC + " An empty array when nothing is "
        "found; NULL (see sep_extract_error) for pixels of the wrong length or a SEP failure.",
    examples=("SELECT image_id, s.x_pix, s.y_pix, s.flux FROM images "
              "LATERAL VIEW explode(sep_extract(pixels, width, height, 1.5)) t AS s",),
))

SEP_EXTRACT_WITH = register(UdfSpec(
    name="sep_extract_with",
    holds_gil=True,
    args=(*_IMAGE_ARGS,
          Arg("thresh_sigma", pa.float64(), "detection threshold in units of the global background RMS"),
          Arg("minarea", pa.int32(), "minimum number of pixels above threshold (SExtractor DETECT_MINAREA)"),
          Arg("deblend_cont", pa.float64(),
              "deblending minimum contrast, 0..1 (1.0: no deblending; 0.005: SEP's and SExtractor's stock value)"),
          Arg("aper_r_pix", pa.float64(), "radius of the photometry aperture in pixels")),
    returns=SOURCES,
    kernel=_extract,
    reports_errors=True,
    doc="sep_extract with the detection minimum area, the deblending contrast and the aperture "
        "radius (pix) as arguments; sep_extract(p, w, h, t) = sep_extract_with(p, w, h, t, 5, 1.0, 5.0). "
        + _FIELDS_DOC,
))


# ---- sep_background ------------------------------------------------------------------------


def sep_background_kernel(pixels, width, height):
    n = len(pixels)
    back = np.full(n, np.nan)
    rms = np.full(n, np.nan)
    errors: list[str | None] = [None] * n
    for i in range(n):
        try:
            data, mask = _image(pixels[i], width[i], height[i])
            bkg = _background(data, mask)
            back[i], rms[i] = bkg.globalback, bkg.globalrms
        except BadRow as e:
            errors[i] = str(e)
        except Exception as e:  # noqa: BLE001
            errors[i] = _sep_error(e)
    return pa.StructArray.from_arrays([pa.array(back), pa.array(rms)], fields=list(BACKGROUND)), errors


SEP_BACKGROUND = register(UdfSpec(
    name="sep_background",
    holds_gil=True,
    args=_IMAGE_ARGS,
    returns=BACKGROUND,
    kernel=sep_background_kernel,
    reports_errors=True,
    doc="The global background level (back, adu) and its RMS (rms, adu) of an image, as SEP (and "
        "SExtractor with BACK_SIZE 64, BACK_FILTERSIZE 3) estimates them: sigma-clipped mode in 64 "
        "px meshes, 3x3 median-filtered. NaN/inf pixels are masked. NULL (see sep_background_error) "
        "for pixels of the wrong length.",
))


# ---- aperture_flux -------------------------------------------------------------------------


def aperture_flux_kernel(pixels, width, height, x_pix, y_pix, r_pix):
    x_pix, y_pix, r_pix = _floats(x_pix), _floats(y_pix), _floats(r_pix)
    n = len(pixels)
    flux = np.full(n, np.nan)
    flux_err = np.full(n, np.nan)
    flags = np.zeros(n, dtype=np.int32)
    errors: list[str | None] = [None] * n
    # Rows that measure the same image share one background estimate and one sum_circle call.
    groups: dict[tuple, list[int]] = {}
    images: dict[tuple, object] = {}
    for i in range(n):
        x, y, r = x_pix[i], y_pix[i], r_pix[i]
        if not (math.isfinite(x) and math.isfinite(y)):
            errors[i] = f"x_pix and y_pix must be finite, got ({x}, {y})"
        elif not (math.isfinite(r) and r > 0):
            errors[i] = f"r_pix must be a positive number, got {r}"
        elif not (-0.5 - r < x < int(width[i]) - 0.5 + r and -0.5 - r < y < int(height[i]) - 0.5 + r):
            errors[i] = (f"the aperture at ({x}, {y}) with r_pix {r} lies outside the "
                         f"{int(width[i])}x{int(height[i])} image")
        else:
            key = (int(width[i]), int(height[i]), hashlib.blake2b(pixels[i], digest_size=16).digest())
            groups.setdefault(key, []).append(i)
            images[key] = pixels[i]
    for (width_, height_, digest), rows in groups.items():
        pixels_ = images[(width_, height_, digest)]
        try:
            data, mask, rms = _subtracted(pixels_, width_, height_)
            rows_ = np.array(rows)
            f, fe, fl = sep.sum_circle(data, x_pix[rows_], y_pix[rows_], r_pix[rows_], err=rms, mask=mask)
            flux[rows_], flux_err[rows_], flags[rows_] = f, fe, fl
        except Exception as e:  # noqa: BLE001
            reason = str(e) if isinstance(e, BadRow) else _sep_error(e)
            for i in rows:
                errors[i] = reason
    values = pa.StructArray.from_arrays([pa.array(flux), pa.array(flux_err), pa.array(flags, pa.int32())],
                                        fields=list(PHOTOMETRY))
    return values, errors


APERTURE_FLUX = register(UdfSpec(
    name="aperture_flux",
    holds_gil=True,
    args=(*_IMAGE_ARGS,
          Arg("x_pix", pa.float64(), "aperture centre x, 0-based pixels"),
          Arg("y_pix", pa.float64(), "aperture centre y, 0-based pixels"),
          Arg("r_pix", pa.float64(), "aperture radius, pixels")),
    returns=PHOTOMETRY,
    kernel=aperture_flux_kernel,
    reports_errors=True,
    doc="Circular-aperture photometry (SEP sum_circle, 5x5 subpixels at the edge) on the image with "
        "its SEP background map (64 px mesh, 3x3 filter) subtracted: flux (adu), flux_err (adu, "
        "global background RMS x sqrt(area), no Poisson term) and flags (16 aperture truncated at "
        "the image edge, 32 has NaN/inf pixels, which are left out). (x_pix, y_pix) are 0-based. "
        "NULL (see aperture_flux_error) for pixels of the wrong length, r_pix <= 0, a non-finite "
        "position or an aperture wholly outside the image.",
))


# ---- pix_to_sky ----------------------------------------------------------------------------

_WCS_LOCK = threading.Lock()  # astropy WCS objects are shared through the cache below


@functools.lru_cache(maxsize=64)
def _celestial_wcs(header_text: str):
    """(celestial WCS, its frame, or None when already ICRS) of a FITS header text, or a BadRow."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.wcs.utils import wcs_to_celestial_frame

    text = header_text.strip("\n")
    if not text.strip():
        return BadRow("wcs_header is empty: the image has no WCS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if "\n" in text:
                header = fits.Header.fromstring(text, sep="\n")
            else:
                header = fits.Header.fromstring(text)
            wcs = WCS(header, relax=True, fix=True)
        except Exception as e:  # noqa: BLE001
            return BadRow(f"wcs_header is not a readable FITS WCS: {' '.join(str(e).split())}")
        if not wcs.has_celestial:
            ctypes = ", ".join(f"CTYPE{i + 1}={c!r}" for i, c in enumerate(wcs.wcs.ctype)) or "no CTYPE"
            return BadRow(f"the WCS has no celestial axes ({ctypes})")
        celestial = wcs.celestial
        try:
            frame = wcs_to_celestial_frame(celestial)
        except ValueError as e:
            return BadRow(f"the celestial frame of the WCS is not known: {' '.join(str(e).split())}")
    return celestial, (None if frame.name == "icrs" else frame)


def _pix_to_icrs(celestial, frame, x, y) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lon, lat = celestial.all_pix2world(x, y, 0)
        if frame is not None:
            from astropy.coordinates import SkyCoord

            icrs = SkyCoord(lon, lat, unit="deg", frame=frame).icrs
            lon, lat = icrs.ra.deg, icrs.dec.deg
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def pix_to_sky_kernel(wcs_header, x_pix, y_pix):
    x_pix, y_pix = _floats(x_pix), _floats(y_pix)
    n = len(wcs_header)
    ra = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    errors: list[str | None] = [None] * n
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(wcs_header):
        groups.setdefault(text, []).append(i)
    for text, rows in groups.items():
        parsed = _celestial_wcs(text)
        if isinstance(parsed, BadRow):
            for i in rows:
                errors[i] = str(parsed)
            continue
        rows_ = np.array(rows)
        try:
            with _WCS_LOCK:
                ra[rows_], dec[rows_] = _pix_to_icrs(*parsed, x_pix[rows_], y_pix[rows_])
        except Exception as e:  # noqa: BLE001
            for i in rows:
                errors[i] = f"the WCS transformation failed: {' '.join(str(e).split())}"
    return pa.StructArray.from_arrays([pa.array(ra), pa.array(dec)], fields=list(SKY)), errors


PIX_TO_SKY = register(UdfSpec(
    name="pix_to_sky",
    args=(Arg("wcs_header", pa.string(),
              "the WCS as FITS header text (images.wcs_header): 80-character cards, run together or one per line"),
          Arg("x_pix", pa.float64(), "x, 0-based pixels"),
          Arg("y_pix", pa.float64(), "y, 0-based pixels")),
    returns=SKY,
    kernel=pix_to_sky_kernel,
    reports_errors=True,
    doc="The ICRS position (ra_deg, dec_deg, degrees) of 0-based pixel (x_pix, y_pix) of an image, "
        "with astropy.wcs (WCSLIB, with SIP/distortions when the header has them): pixel (0, 0) is "
        "the centre of the first pixel, FITS's (1, 1). Celestial WCSs in another frame (FK5, FK4, "
        "galactic, ecliptic) are transformed to ICRS. NULL (see pix_to_sky_error) for a header "
        "without a celestial WCS or one that cannot be read.",
))
