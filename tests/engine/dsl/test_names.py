"""Target positions from the lake: the mean on the sphere, right across RA 0/360 and at the poles."""

from __future__ import annotations

import pyarrow as pa
import pytest

from catalogs.lake import Lake
from engine.dsl.names import lake_targets, mean_positions


def positions(rows):
    return mean_positions(pa.table({"target": [r[0] for r in rows], "ra_deg": [r[1] for r in rows],
                                    "dec_deg": [r[2] for r in rows]}), "target")


def test_a_target_seen_on_both_sides_of_ra_zero_is_at_ra_zero():
    got = positions([("Wrap", 359.9, 10.0), ("Wrap", 0.1, 10.0)])
    ra, dec = got["Wrap"]
    assert min(ra, 360 - ra) == pytest.approx(0.0, abs=1e-9)
    assert dec == pytest.approx(10.0, abs=1e-3)  # a chord's midpoint is a hair nearer the pole


def test_mean_positions_away_from_the_wrap_and_at_a_pole():
    got = positions([("A", 10.0, -5.0), ("A", 10.0, 5.0), ("Pole", 0.0, 89.9), ("Pole", 180.0, 89.9),
                     ("One", 123.4, -56.7), ("Nameless", 1.0, 1.0)])
    assert got["A"] == pytest.approx((10.0, 0.0), abs=1e-9)
    assert got["Pole"][1] == pytest.approx(90.0, abs=1e-9)
    assert got["One"] == pytest.approx((123.4, -56.7), abs=1e-9)


def test_nulls_and_non_finite_positions_are_left_out():
    got = mean_positions(pa.table({"target": ["X", "X", None], "ra_deg": [20.0, float("nan"), 5.0],
                                   "dec_deg": [30.0, 1.0, 5.0]}), "target")
    assert got == {"X": pytest.approx((20.0, 30.0), abs=1e-9)}


def test_lake_targets_uses_the_spherical_mean(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.create_table("pointings", pa.table({"target": ["Wrap", "Wrap", "Elsewhere"], "ra_deg": [359.0, 1.0, 90.0],
                                             "dec_deg": [0.0, 0.0, 45.0]}))
    targets = lake_targets(lake)
    assert min(targets["Wrap"][0], 360 - targets["Wrap"][0]) == pytest.approx(0.0, abs=1e-9)
    assert targets["Elsewhere"] == pytest.approx((90.0, 45.0), abs=1e-9)
