"""dedoppler_hits.c and dedoppler_echoes.c: the compiled walk over the candidates gives the hits
of the numpy batches (udfs.dedoppler_echoes), on setigen's signals in chi-squared noise and in
the real GBT background; its order of candidates is numpy's stable one; bad cells are refused."""

import numpy as np
import pytest

from tests.udfs.test_dedoppler import DF_HZ, DT_S, MAX_DRIFT, gbt, gbt_frame, inject, noise_frame  # noqa: F401
from udfs import _dedoppler_hits_c
from udfs.dedoppler import find_hits
from udfs.dedoppler_tree import path_offsets

stg = pytest.importorskip("setigen", reason="setigen (a dev dependency) is needed to simulate signals")
u = pytest.importorskip("astropy.units")


def assert_same_hits(data, tsamp_s, fch1_hz, foff_hz, max_drift_hz_s=MAX_DRIFT, snr_min=10.0):
    data = np.ascontiguousarray(data, np.float32)
    compiled = find_hits(data, tsamp_s, fch1_hz, foff_hz, max_drift_hz_s, snr_min)
    reference = find_hits(data, tsamp_s, fch1_hz, foff_hz, max_drift_hz_s, snr_min, compiled=False)
    assert len(compiled) == len(reference)
    for got, want in zip(compiled, reference):
        assert got["chan_index"] == want["chan_index"] and got["snr"] == want["snr"]
        for key in ("freq_hz", "freq_start_hz", "freq_end_hz"):
            assert got[key] == pytest.approx(want[key], rel=0, abs=1e-6 * abs(foff_hz)), key
        assert got["drift_hz_s"] == pytest.approx(want["drift_hz_s"], rel=0, abs=1e-9)
    return compiled


def tones(frame, rng, count, snr=(15, 100), width_hz=(1.5, 12)):
    """``count`` tones that stay in the band (+-4 Hz/s moves up to 131 channels)."""
    for _ in range(count):
        inject(frame, int(rng.integers(140, frame.fchans - 140)), float(rng.uniform(-MAX_DRIFT, MAX_DRIFT)),
               float(rng.uniform(*snr)), float(rng.uniform(*width_hz)))
    return frame


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chi2_noise_with_tones(seed):
    frame = tones(noise_frame(seed), np.random.default_rng(seed), 8)
    hits = assert_same_hits(frame.data, frame.dt, frame.fmin, frame.df)
    assert len(hits) >= 6


def test_crowded_crossing_tones():
    """Many tones in few channels: signals cross and their echoes overlap."""
    rng = np.random.default_rng(7)
    frame = stg.Frame(fchans=4096, tchans=32, df=DF_HZ * u.Hz, dt=DT_S * u.s, fch1=6000 * u.MHz, ascending=True,
                      seed=7)
    frame.add_noise(x_mean=10, noise_type="chi2")
    tones(frame, rng, 40, snr=(15, 200), width_hz=(1.5, 20))
    hits = assert_same_hits(frame.data, frame.dt, frame.fmin, frame.df)
    assert len(hits) >= 20


def test_real_background_and_descending_frequency(gbt):  # noqa: F811
    frame = tones(gbt_frame(gbt), np.random.default_rng(11), 6)
    assert_same_hits(frame.data, frame.dt, frame.fmin, frame.df)
    # the band read from its top: foff negative
    assert_same_hits(frame.data[:, ::-1], frame.dt, frame.fmin + (frame.fchans - 1) * frame.df, -frame.df)


@pytest.mark.parametrize("n_time", [20, 9])
def test_steps_not_a_power_of_two(n_time):
    frame = stg.Frame(fchans=1024, tchans=n_time, df=DF_HZ * u.Hz, dt=DT_S * u.s, fch1=6000 * u.MHz,
                      ascending=True, seed=n_time)
    frame.add_noise(x_mean=10, noise_type="chi2")
    tones(frame, np.random.default_rng(n_time), 5)
    assert_same_hits(frame.data, frame.dt, frame.fmin, frame.df)


def test_noise_with_a_low_threshold():
    """snr_min 4 on pure noise: hundreds of candidates, many weak hits. (The walk indexes candidates
    in one channel in eight or more by a counting sort over the channels, fewer by a sort of keys:
    seed 1 above takes the first way, seeds 2 and 3 the second.)"""
    frame = noise_frame(5)
    hits = assert_same_hits(frame.data, frame.dt, frame.fmin, frame.df, snr_min=4.0)
    assert len(hits) > 20


def test_strongest_first_is_numpys_stable_order():
    rng = np.random.default_rng(3)
    value = rng.integers(-50, 50, 100_000).astype(np.float32) * np.float32(0.5)  # many ties
    value[:10] = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.4e38, -3.4e38, 0.0, -0.0]
    order = np.frombuffer(_dedoppler_hits_c.strongest_first(value, len(value)), np.int64)
    np.testing.assert_array_equal(order, np.argsort(-value.astype(np.float64), kind="stable"))
    assert np.frombuffer(_dedoppler_hits_c.strongest_first(np.empty(0, np.float32), 0), np.int64).size == 0
    with pytest.raises(ValueError, match="bytes"):
        _dedoppler_hits_c.strongest_first(value, len(value) + 1)


def test_cells_out_of_the_band_are_refused():
    n_time, n_chans, max_drift = 8, 64, 10
    power = np.ones((n_time, n_chans), np.float32)
    offsets = np.ascontiguousarray(path_offsets(8, max_drift)[:, :n_time], np.int64)

    def walk(delta, chan, **changed):
        args = dict(power=power, n_time=n_time, n_chans=n_chans, n=8, offsets=offsets, max_drift=max_drift,
                    median=8.0, std=1.0, snr_min=5.0)
        args.update(changed)
        return _dedoppler_hits_c.find_hits(*args.values(), np.array(delta, np.int64), np.array(chan, np.int64),
                                           len(delta), np.full(len(delta), 20.0, np.float32))

    assert len(walk([3], [10])) > 0  # a hit (HitRow bytes)
    for delta, chan in (([10], [60]), ([-10], [5]), ([11], [0]), ([0], [64]), ([0], [-1])):
        with pytest.raises(ValueError, match="leaves the band|out of the search"):
            walk(delta, chan)
    with pytest.raises(ValueError, match="inconsistent shape"):
        walk([0], [0], n=6)
    with pytest.raises(ValueError, match="std positive"):
        walk([0], [0], std=0.0)
    with pytest.raises(ValueError, match="power has"):
        walk([0], [0], n_chans=65)


def test_order_statistics_are_the_sorted_values():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.standard_normal(20_000), np.full(5000, 2.5), [0.0, -0.0, 1e-45, -3e38, 3e38]])
    values = rng.permutation(values).astype(np.float32)
    ranks = np.array([0, 1, 17, 9_999, 10_000, 20_000, 24_999, len(values) - 1], np.int64)
    got = np.frombuffer(_dedoppler_hits_c.order_statistics(values, len(values), ranks, len(ranks)), np.float32)
    np.testing.assert_array_equal(got, np.sort(values)[ranks])
    with pytest.raises(ValueError, match="rank is out"):
        _dedoppler_hits_c.order_statistics(values, len(values), np.array([len(values)], np.int64), 1)
    for bad in (np.nan, -np.nan, np.inf, -np.inf):  # (seen in the keys' range, from either end)
        spoilt = values.copy()
        spoilt[3] = bad
        with pytest.raises(ValueError, match="finite"):
            _dedoppler_hits_c.order_statistics(spoilt, len(spoilt), ranks, len(ranks))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 131_075])
def test_trimmed_std_is_numpys_in_float64(n):
    values = (np.random.default_rng(n).chisquare(64, n) * 1e5).astype(np.float32)
    low, high = np.percentile(values, [5, 95]) if n > 1 else (values[0], values[0])
    count, std = _dedoppler_hits_c.trimmed_std(values, n, float(low), float(high))
    kept = values[(values >= low) & (values <= high)].astype(np.float64)
    assert count == len(kept) and std == pytest.approx(kept.std(), rel=1e-12)
    assert _dedoppler_hits_c.trimmed_std(values, n, 1.0, 0.5)[0] == 0  # nothing kept: count 0, std NaN
    values[-1] = np.inf  # sums that overflowed: an infinite bound keeps them, and the std is NaN
    count, std = _dedoppler_hits_c.trimmed_std(values, n, float(low), float("inf"))
    assert count == (values >= low).sum() and np.isnan(std)
