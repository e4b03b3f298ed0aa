"""Sky geometry kernels: distance, in_cone, in_box, healpix_index, against astropy."""

import numpy as np
import pyarrow as pa
import pytest

from udfs.registry import call, evaluate, get
from udfs.sky import angular_distance_deg

RNG_SEED = 20240601


def random_positions(rng, n):
    """Uniform on the sphere (so the poles get their share)."""
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


def column(values, type_=pa.float64()):
    return pa.array(values, type_)


# ---- distance ------------------------------------------------------------------------------


def test_distance_matches_astropy_separation_on_random_points():
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(RNG_SEED)
    ra1, dec1 = random_positions(rng, 2000)
    ra2, dec2 = random_positions(rng, 2000)
    # close pairs too, where the cosine formula would lose digits
    ra2[:500] = ra1[:500] + rng.normal(0, 1e-4, 500)
    dec2[:500] = np.clip(dec1[:500] + rng.normal(0, 1e-4, 500), -90, 90)
    got = evaluate(get("distance"), [column(ra1), column(dec1), column(ra2), column(dec2)]).to_numpy()
    want = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("ra1, dec1, ra2, dec2, want", [
    (359.9, 0.0, 0.1, 0.0, 0.2),        # across RA 0/360
    (0.0, 10.0, 360.0, 10.0, 0.0),      # the same meridian
    (-10.0, 0.0, 350.0, 0.0, 0.0),      # negative RA
    (0.0, 90.0, 123.0, 90.0, 0.0),      # the north pole has every RA
    (0.0, -90.0, 270.0, -89.0, 1.0),    # one degree from the south pole
    (10.0, 89.0, 190.0, 89.0, 2.0),     # over the pole
    (0.0, 0.0, 180.0, 0.0, 180.0),      # antipodal on the equator
    (30.0, 45.0, 210.0, -45.0, 180.0),  # antipodal
    (0.0, 90.0, 0.0, -90.0, 180.0),     # pole to pole
])
def test_distance_edge_cases(ra1, dec1, ra2, dec2, want):
    assert call("distance", ra1, dec1, ra2, dec2) == pytest.approx(want, abs=1e-9)


def test_distance_antipodal_is_exact_near_180():
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(RNG_SEED + 1)
    ra, dec = random_positions(rng, 500)
    eps = rng.uniform(0, 1e-3, 500)
    ra2, dec2 = (ra + 180.0) % 360.0, -dec + eps * np.sign(dec + 1e-12)
    got = angular_distance_deg(ra, dec, ra2, dec2)
    want = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra2 * u.deg, np.clip(dec2, -90, 90) * u.deg)).deg
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_distance_nulls():
    result = evaluate(get("distance"), [column([1.0, None, 3.0]), column([0.0, 0.0, None]),
                                        column([1.0, 2.0, 3.0]), column([1.0, 0.0, 0.0])])
    assert result.to_pylist() == [pytest.approx(1.0), None, None]


def test_distance_accepts_decimal_and_integer_columns():
    # Spark passes numeric literals as DECIMAL, DuckDB integers as INTEGER
    from decimal import Decimal

    result = evaluate(get("distance"), [pa.array([Decimal("359.9")], pa.decimal128(5, 1)), pa.array([0], pa.int32()),
                                        column([0.1]), column([0.0])])
    assert result.to_pylist() == [pytest.approx(0.2, abs=1e-9)]


# ---- in_cone -------------------------------------------------------------------------------


def test_in_cone_is_exactly_distance_within_radius():
    rng = np.random.default_rng(RNG_SEED + 2)
    ra, dec = random_positions(rng, 3000)
    ra0, dec0 = random_positions(rng, 3000)
    radius = rng.uniform(0, 180, 3000)
    radius[:10] = angular_distance_deg(ra[:10], dec[:10], ra0[:10], dec0[:10])  # on the boundary
    got = evaluate(get("in_cone"), [column(ra), column(dec), column(ra0), column(dec0), column(radius)]).to_numpy(
        zero_copy_only=False)
    np.testing.assert_array_equal(got, angular_distance_deg(ra, dec, ra0, dec0) <= radius)
    assert got[:10].all()


@pytest.mark.parametrize("ra, dec, ra0, dec0, radius, want", [
    (359.95, 0.0, 0.05, 0.0, 0.11, True),    # across RA 0/360
    (359.95, 0.0, 0.05, 0.0, 0.09, False),
    (0.0, 89.9, 180.0, 89.9, 0.21, True),    # over the north pole: 0.2 deg apart
    (0.0, 89.9, 180.0, 89.9, 0.19, False),
    (10.0, 20.0, 190.0, -20.0, 180.0, True),  # antipodal, radius 180 covers the sky
    (10.0, 20.0, 10.0, 20.0, 0.0, True),     # radius 0 contains its centre
    (10.0, 20.0, 10.0, 20.0, -1.0, False),   # a negative radius contains nothing
])
def test_in_cone_edge_cases(ra, dec, ra0, dec0, radius, want):
    assert call("in_cone", ra, dec, ra0, dec0, radius) is want


def test_in_cone_nulls():
    result = evaluate(get("in_cone"), [column([1.0, None]), column([0.0, 0.0]), column([1.0, 1.0]),
                                       column([0.0, 0.0]), column([None, 1.0])])
    assert result.to_pylist() == [None, None]


# ---- in_box --------------------------------------------------------------------------------


def gnomonic(ra, dec, ra0, dec0):
    """Tangent-plane (xi, eta) and cos(distance) of positions about a centre (astropy's frame)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    offsets = SkyCoord(ra * u.deg, dec * u.deg).transform_to(centre.skyoffset_frame())
    lon, lat = np.radians(offsets.lon.deg), np.radians(offsets.lat.deg)
    cos_c = np.cos(lat) * np.cos(lon)
    return np.cos(lat) * np.sin(lon) / cos_c, np.sin(lat) / cos_c, cos_c


def test_in_box_is_a_tangent_plane_rectangle():
    rng = np.random.default_rng(RNG_SEED + 3)
    n = 4000
    ra0, dec0 = random_positions(rng, n)
    dec0 = np.clip(dec0, -89.0, 89.0)
    width, height = rng.uniform(0.1, 20, n), rng.uniform(0.1, 20, n)
    ra = ra0 + rng.uniform(-1, 1, n) * width / np.cos(np.radians(dec0)) * 0.8
    dec = np.clip(dec0 + rng.uniform(-1, 1, n) * height * 0.8, -90, 90)
    got = evaluate(get("in_box"), [column(v) for v in (ra, dec, ra0, dec0, width, height)]).to_numpy(zero_copy_only=False)
    xi, eta, cos_c = gnomonic(ra, dec, ra0, dec0)
    want = (cos_c > 0) & (np.abs(xi) <= np.tan(np.radians(width / 2))) & (np.abs(eta) <= np.tan(np.radians(height / 2)))
    margin = np.minimum(np.abs(np.abs(xi) - np.tan(np.radians(width / 2))), np.abs(np.abs(eta) - np.tan(np.radians(height / 2))))
    clear = margin > 1e-9  # leave rows on the edge to rounding
    np.testing.assert_array_equal(got[clear], want[clear])
    assert 0.2 < want.mean() < 0.9


@pytest.mark.parametrize("ra, dec, want", [
    (10.0, 20.0, True),     # the centre
    (10.99, 20.0, True),    # along the RA arm, inside half the width (1 deg at dec 20 is ~0.94)
    (11.2, 20.0, False),
    (10.0, 20.49, True),    # along the Dec arm
    (10.0, 20.51, False),
    (190.0, -20.0, False),  # the antipode is not in the box
])
def test_in_box_edge_cases(ra, dec, want):
    assert call("in_box", ra, dec, 10.0, 20.0, 2.0, 1.0) is want


def test_in_box_across_ra_zero_and_at_the_pole():
    assert call("in_box", 359.8, 0.0, 0.1, 0.0, 1.0, 1.0) is True
    assert call("in_box", 0.3, 0.0, 359.9, 0.0, 1.0, 1.0) is True
    # centred on the pole: a square about the pole whatever the RA of the point
    assert call("in_box", 123.0, 89.8, 0.0, 90.0, 1.0, 1.0) is True
    assert call("in_box", 123.0, 89.0, 0.0, 90.0, 1.0, 1.0) is False


def test_in_box_bad_size_is_null_with_reason():
    assert call("in_box", 10.0, 20.0, 10.0, 20.0, 180.0, 1.0) is None
    assert "[0, 180)" in call("in_box_error", 10.0, 20.0, 10.0, 20.0, 180.0, 1.0)
    assert call("in_box", 10.0, 20.0, 10.0, 20.0, 1.0, -1.0) is None
    assert call("in_box_error", 10.0, 20.0, 10.0, 20.0, 1.0, 1.0) is None


# ---- healpix_index -------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 5, 12, 20, 29])
def test_healpix_matches_astropy_healpix(order):
    from astropy import units as u
    from astropy_healpix import HEALPix

    rng = np.random.default_rng(RNG_SEED + order)
    ra, dec = random_positions(rng, 2000)
    ra = np.concatenate([ra, [0.0, 360.0, 359.999999, 45.0, 45.0, 0.0, 180.0]])
    dec = np.concatenate([dec, [0.0, 0.0, 0.0, 90.0, -90.0, 41.8103149, -41.8103149]])
    got = evaluate(get("healpix_index"), [column(ra), column(dec), pa.array([order] * len(ra), pa.int32())])
    want = HEALPix(nside=2 ** order, order="nested").lonlat_to_healpix(ra * u.deg, dec * u.deg)
    np.testing.assert_array_equal(got.to_numpy(), want)
    assert got.type == pa.int64()
    assert got.to_numpy().max() < 12 * 4 ** order


def test_healpix_mixed_orders_in_one_column():
    from astropy import units as u
    from astropy_healpix import HEALPix

    rng = np.random.default_rng(RNG_SEED)
    ra, dec = random_positions(rng, 300)
    orders = rng.integers(0, 30, 300)
    got = evaluate(get("healpix_index"), [column(ra), column(dec), pa.array(orders, pa.int32())]).to_numpy()
    for i in range(300):
        want = HEALPix(nside=2 ** int(orders[i]), order="nested").lonlat_to_healpix([ra[i]] * u.deg, [dec[i]] * u.deg)[0]
        assert got[i] == want


def test_healpix_nested_parent_is_index_div_4():
    coarse = call("healpix_index", 123.4, -56.7, 10)
    fine = call("healpix_index", 123.4, -56.7, 11)
    assert fine // 4 == coarse


@pytest.mark.parametrize("ra, dec, order, reason", [
    (10.0, 20.0, 30, "order must be 0..29"),
    (10.0, 20.0, -1, "order must be 0..29"),
    (10.0, 90.5, 8, "dec_deg must be in [-90, 90]"),
    (10.0, float("nan"), 8, "dec_deg must be in [-90, 90]"),
    (float("inf"), 0.0, 8, "ra_deg must be finite"),
])
def test_healpix_bad_input_is_null_with_reason(ra, dec, order, reason):
    assert call("healpix_index", ra, dec, order) is None
    assert reason in call("healpix_index_error", ra, dec, order)


def test_healpix_nulls_and_bad_rows_do_not_disturb_the_others():
    result = evaluate(get("healpix_index"), [column([10.0, None, 10.0, 10.0]), column([20.0, 20.0, 20.0, 20.0]),
                                             pa.array([3, 3, 31, None], pa.int32())])
    assert result.to_pylist() == [call("healpix_index", 10.0, 20.0, 3), None, None, None]
    assert call("healpix_index_error", 10.0, 20.0, 3) is None
