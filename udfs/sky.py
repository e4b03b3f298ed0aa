"""Sky geometry, in ADQL's words: angular distance between positions on the sphere."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from udfs.registry import Arg, UdfSpec, register


def angular_distance_deg(ra1_deg, dec1_deg, ra2_deg, dec2_deg) -> np.ndarray:
    """Great-circle distance in degrees (Vincenty's formula: exact at the poles, across RA 0/360
    and for antipodal points, where the haversine and cosine formulas lose precision)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1_deg, dec1_deg, ra2_deg, dec2_deg))
    d_ra = ra2 - ra1
    sin_d1, cos_d1 = np.sin(dec1), np.cos(dec1)
    sin_d2, cos_d2 = np.sin(dec2), np.cos(dec2)
    num1 = cos_d2 * np.sin(d_ra)
    num2 = cos_d1 * sin_d2 - sin_d1 * cos_d2 * np.cos(d_ra)
    denominator = sin_d1 * sin_d2 + cos_d1 * cos_d2 * np.cos(d_ra)
    return np.degrees(np.arctan2(np.hypot(num1, num2), denominator))


DISTANCE = register(UdfSpec(
    name="distance",
    args=(Arg("ra1_deg", pa.float64()), Arg("dec1_deg", pa.float64()),
          Arg("ra2_deg", pa.float64()), Arg("dec2_deg", pa.float64())),
    returns=pa.float64(),
    kernel=angular_distance_deg,
    doc="Angular distance in degrees between (ra1_deg, dec1_deg) and (ra2_deg, dec2_deg), all in "
        "degrees (ICRS). Vincenty's formula: exact at the poles, across RA 0/360 and for antipodal "
        "points. NULL if any argument is NULL.",
    examples=("SELECT distance(346.6223, -5.0413, 346.6223, -5.0) AS sep_deg",),
))


IN_CONE = register(UdfSpec(
    name="in_cone",
    args=(Arg("ra_deg", pa.float64()), Arg("dec_deg", pa.float64()),
          Arg("ra0_deg", pa.float64()), Arg("dec0_deg", pa.float64()), Arg("radius_deg", pa.float64())),
    returns=pa.bool_(),
    kernel=lambda ra, dec, ra0, dec0, radius: angular_distance_deg(ra, dec, ra0, dec0) <= np.asarray(radius, dtype=np.float64),
    doc="Cone search: true when (ra_deg, dec_deg) lies within radius_deg of the centre (ra0_deg, "
        "dec0_deg), all in degrees (ICRS); exactly distance(ra_deg, dec_deg, ra0_deg, dec0_deg) <= "
        "radius_deg (boundary included, a negative radius matches nothing). NULL if any argument is NULL.",
    examples=("SELECT in_cone(346.6223, -5.0413, 346.6223, -5.0, 0.05) AS inside",),
))


def box_contains(ra_deg, dec_deg, ra0_deg, dec0_deg, width_deg, height_deg):
    """Whether each position lies in the ADQL BOX centred on (ra0, dec0): a cross with arms of
    half the width (east-west) and half the height (north-south) along the great circles through
    the centre, closed by great circles meeting the arm ends at right angles. In the gnomonic
    (tangent-plane) projection about the centre that is the rectangle |xi| <= tan(width/2),
    |eta| <= tan(height/2) on the centre's hemisphere. ``(inside, errors)``."""
    ra, dec, ra0, dec0 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra_deg, dec_deg, ra0_deg, dec0_deg))
    width, height = (np.asarray(v, dtype=np.float64) for v in (width_deg, height_deg))
    d_ra = ra - ra0
    sin_d, cos_d, sin_d0, cos_d0 = np.sin(dec), np.cos(dec), np.sin(dec0), np.cos(dec0)
    cos_c = sin_d0 * sin_d + cos_d0 * cos_d * np.cos(d_ra)  # cosine of the distance to the centre
    xi = cos_d * np.sin(d_ra)                                # tangent-plane offsets times cos_c
    eta = cos_d0 * sin_d - sin_d0 * cos_d * np.cos(d_ra)
    with np.errstate(invalid="ignore"):
        half_w, half_h = np.tan(np.radians(width / 2)), np.tan(np.radians(height / 2))
        inside = (cos_c > 0) & (np.abs(xi) <= half_w * cos_c) & (np.abs(eta) <= half_h * cos_c)
    errors = [None] * len(inside)
    for i in np.flatnonzero(~((width >= 0) & (width < 180) & (height >= 0) & (height < 180))):
        errors[i] = f"box width and height must be in [0, 180) degrees, got {width[i]:g} x {height[i]:g}"
    return inside, errors


IN_BOX = register(UdfSpec(
    name="in_box",
    args=(Arg("ra_deg", pa.float64()), Arg("dec_deg", pa.float64()),
          Arg("ra0_deg", pa.float64()), Arg("dec0_deg", pa.float64()),
          Arg("width_deg", pa.float64()), Arg("height_deg", pa.float64())),
    returns=pa.bool_(),
    kernel=box_contains,
    reports_errors=True,
    doc="True when (ra_deg, dec_deg) lies in ADQL's BOX centred on (ra0_deg, dec0_deg) with "
        "width_deg (east-west) and height_deg (north-south), all in degrees (ICRS): the sides are "
        "great circles, so it is a rectangle in the tangent plane about the centre. Width and "
        "height must be in [0, 180) degrees (else NULL, reason in in_box_error). NULL if any "
        "argument is NULL.",
    examples=("SELECT in_box(10.5, 20.2, 10.0, 20.0, 2.0, 1.0) AS inside",),
))

MAX_HEALPIX_ORDER = 29


def healpix_nested(ra_deg, dec_deg, order):
    """Nested-scheme HEALPix pixel of each position at ``order`` (nside = 2**order), with
    astropy_healpix. ``(indices, errors)``: NULL for an order outside 0..29 or a declination
    outside [-90, 90]."""
    import astropy.units as u
    from astropy_healpix.core import lonlat_to_healpix

    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    good_order = (order >= 0) & (order <= MAX_HEALPIX_ORDER)
    good_dec = np.abs(dec) <= 90
    good = good_order & good_dec & np.isfinite(ra)
    result = np.zeros(ra.shape, dtype=np.int64)
    if good.any():
        nside = np.left_shift(1, order[good]).astype(np.intc)
        result[good] = lonlat_to_healpix(ra[good] * u.deg, dec[good] * u.deg, nside, order="nested")
    errors = [None] * len(ra)
    for i in np.flatnonzero(~good):
        if not good_order[i]:
            errors[i] = f"HEALPix order must be 0..{MAX_HEALPIX_ORDER}, got {order[i]}"
        elif not good_dec[i]:
            errors[i] = f"dec_deg must be in [-90, 90], got {dec[i]:g}"
        else:
            errors[i] = f"ra_deg must be finite, got {ra[i]:g}"
    return result, errors


HEALPIX_INDEX = register(UdfSpec(
    name="healpix_index",
    args=(Arg("ra_deg", pa.float64()), Arg("dec_deg", pa.float64()), Arg("order", pa.int32())),
    returns=pa.int64(),
    kernel=healpix_nested,
    reports_errors=True,
    doc="HEALPix pixel index (nested scheme, nside = 2^order) of (ra_deg, dec_deg) in degrees "
        "(ICRS), as astropy_healpix.HEALPix(nside=2**order, order='nested').lonlat_to_healpix. "
        "order is 0..29; an order outside that range, a declination outside [-90, 90] or a non-finite RA gives "
        "NULL, with the reason in healpix_index_error. NULL if any argument is NULL.",
    examples=("SELECT healpix_index(346.6223, -5.0413, 8) AS pixel",),
))
