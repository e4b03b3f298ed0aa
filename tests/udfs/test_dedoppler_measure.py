"""dedoppler_measure.c (``measure_compiled``: one hit at a time in C) against numpy's ``measure``
(many hits at once): the same measurements, integers exactly and the centre line to 1e-9
channels, for the cells the real search finds in chi-squared noise with drifting tones of many
widths and drifts, near the band's edges, close together, and in the real GBT file."""

import numpy as np
import pytest

from bench.sigproc import read_filterbank
from tests.conftest import REAL_DATA
from udfs.dedoppler import comp_stats, next_pow2
from udfs.dedoppler_tracks import measure, measure_compiled
from udfs.dedoppler_tree import drift_sums_above, path_offsets

GBT_FIL = REAL_DATA / "seti" / "setigen_sample_gbt_cband.fil"
INTEGERS = ("peak_track", "track", "start", "total", "lo", "hi", "lo_half", "hi_half")
STRONGEST, OTHERS = 50, 30  # cells compared per spectrogram: the strongest, and some of the rest


def spectrogram(rng, n_time, n_chans, tones, scale):
    """Chi-squared noise (2 dof) times ``scale`` with Gaussian tones (centre channel at the first
    step, FWHM in channels, peak level in noise means, channels per step)."""
    data = rng.chisquare(2, (n_time, n_chans))
    x, t = np.arange(n_chans)[None, :], np.arange(n_time)[:, None]
    for chan, fwhm, level, rate in tones:
        data += 2 * level * np.exp(-0.5 * ((x - chan - rate * t) * 2.355 / fwhm) ** 2)
    return (data * scale).astype(np.float32)


def cells(power, max_drift, snr_min, rng):
    """The search's cells above snr_min: the strongest, then some of the others."""
    median, std = comp_stats(power.sum(axis=0))
    delta, chan, value = drift_sums_above(power, max_drift, median + snr_min * std)
    order = np.argsort(-value, kind="stable")
    rest = order[STRONGEST:]
    pick = np.concatenate([order[:STRONGEST], np.sort(rng.choice(rest, min(OTHERS, len(rest)), replace=False))])
    return delta[pick], chan[pick], median, std


def compare(power, max_drift, snr_min, rng) -> dict:
    """Both measurements of the cells, asserted equal cell by cell; numpy's, with n and the cells."""
    n_time = power.shape[0]
    n = max(2, next_pow2(n_time))
    delta, chan, median, std = cells(power, max_drift, snr_min, rng)
    offsets = np.ascontiguousarray(path_offsets(n, max_drift)[:, :n_time], np.int64)
    want = measure(power, delta, chan, n, offsets, max_drift, median, std, snr_min)
    got = measure_compiled(power, delta, chan, n, offsets, max_drift, median, std, snr_min)
    for i in range(len(delta)):
        cell = f"cell {i} (delta {delta[i]}, chan {chan[i]})"
        for key in INTEGERS:
            np.testing.assert_array_equal(got[key][i], want[key][i], err_msg=f"{key} of {cell}")
        for key in ("centre", "drift"):
            assert abs(got[key][i] - want[key][i]) <= 1e-9, (key, cell, got[key][i], want[key][i])
    return {**want, "n": n, "delta": delta, "chan": chan}


def kinds(m, n_chans) -> dict:
    """How many of the measured hits are of each kind the comparison should cover."""
    width = m["hi"] - m["lo"] + 1
    return {
        "wide": int((m["hi_half"] - m["lo_half"] >= 2).sum()),  # refined
        "refined off the peak cell": int(((m["start"] != m["chan"]) | (m["total"] != m["delta"])).sum()),
        "past reach 16": int(((m["lo"] < -16) | (m["hi"] > 16)).sum()),  # track_widths' reach 64
        "narrow": int((width <= 3).sum()),
        "positive": int((m["total"] > 0).sum()), "negative": int((m["total"] < 0).sum()),
        "zero": int((m["total"] == 0).sum()),
        "blocks": int((np.abs(m["total"]) > m["n"] - 1).sum()),  # drifts past n - 1 channels
        "low edge": int((m["track"].min(axis=1) + m["lo"] <= 2).sum()),
        "high edge": int((m["track"].max(axis=1) + m["hi"] >= n_chans - 3).sum()),
    }


# (n_time, n_chans, max_drift, snr_min, tones, what the cells must include)
SCENARIOS = {
    "narrow tones, all drifts": (32, 4096, 127, 10.0, [
        (400, 1, 3, 0.0), (900, 1.5, 2.5, 0.4), (1400, 2, 3, -0.7), (1900, 3, 2, 2.5), (2500, 1, 3, -3.2),
        (3100, 2, 2.5, 1.3), (3600, 4, 2, -1.9)], ("narrow", "positive", "negative", "zero", "blocks")),
    "wide tones": (32, 4096, 127, 10.0, [
        (500, 8, 3, 0.0), (1200, 16, 3, 0.6), (1900, 25, 3, -0.4), (2700, 40, 3, 0.2),
        (3400, 30, 3, -1.1)], ("wide", "refined off the peak cell", "past reach 16", "positive", "negative")),
    "20 steps (n = 32), mixed": (20, 4096, 100, 10.0, [
        (300, 1, 4, 0.0), (800, 6, 3, 1.5), (1500, 20, 3, -0.8), (2300, 2, 4, -4.0), (3000, 40, 3, 0.3),
        (3600, 3, 3, 2.2)], ("narrow", "wide", "past reach 16", "blocks", "zero")),
    "16 steps, mixed": (16, 4096, 60, 10.0, [
        (300, 1, 4, 0.0), (900, 10, 3, -1.0), (1600, 35, 3, 0.5), (2400, 2, 4, 5.0), (3200, 4, 3, -2.5)],
                        ("narrow", "wide", "past reach 16", "blocks", "negative")),
    "band edges": (32, 2048, 127, 10.0, [
        (0, 1, 4, 0.0), (1.5, 3, 3, 0.3), (8, 12, 2, -0.2), (2047, 1, 4, 0.0), (2045, 3, 3, -0.4),
        (2038, 14, 2, 0.2)], ("low edge", "high edge", "wide")),
    "close pairs": (32, 4096, 127, 10.0, [
        (700, 2, 3, 0.5), (704, 2, 3, 0.5), (1600, 6, 2, -0.3), (1609, 6, 2, -0.3), (2500, 3, 3, 0.0),
        (2506, 12, 1.5, 0.0), (3300, 2, 3, 1.0), (3320, 2, 3, -1.0)], ("narrow", "wide", "positive", "negative")),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_measure_compiled_equals_numpy(name):
    n_time, n_chans, max_drift, snr_min, tones, covers = SCENARIOS[name]
    rng = np.random.default_rng(sorted(SCENARIOS).index(name) + 100)
    power = spectrogram(rng, n_time, n_chans, tones, scale=float(10 ** rng.uniform(-2, 5)))
    m = compare(power, max_drift, snr_min, rng)
    assert len(m["delta"]) > 0
    found = kinds(m, n_chans)
    assert all(found[kind] > 0 for kind in covers), found


def test_measure_compiled_equals_numpy_random():
    """Random tones, widths, drifts, step counts (not powers of two too) and thresholds."""
    rng = np.random.default_rng(7)
    total = {}
    for _ in range(12):
        n_time = int(rng.choice([8, 13, 16, 20, 32, 33]))
        n = max(2, next_pow2(n_time))
        n_chans = int(rng.choice([1024, 4096]))
        max_drift = int(rng.choice([n - 1, 2 * n + 5, 150]))
        tones = [(rng.uniform(-3, n_chans + 3), float(rng.choice([1, 2, 4, 8, 16, 30, 40])), rng.uniform(1, 5),
                  float(rng.choice([0.0, rng.uniform(-1, 1), rng.uniform(-4, 4)]))) for _ in range(10)]
        power = spectrogram(rng, n_time, n_chans, tones, scale=float(10 ** rng.uniform(-2, 5)))
        m = compare(power, max_drift, float(rng.choice([6.0, 10.0, 20.0])), rng)
        for kind, count in kinds(m, n_chans).items():
            total[kind] = total.get(kind, 0) + count
    assert all(count > 0 for kind, count in total.items() if "edge" not in kind), total  # (edges: above)


@pytest.fixture(scope="module")
def gbt():
    if not GBT_FIL.exists():
        pytest.skip(f"real GBT filterbank not found at {GBT_FIL}")
    return read_filterbank(GBT_FIL)[1]


def test_measure_compiled_equals_numpy_on_real_data(gbt):
    """The GBT C-band cut-out (32 x 1024): its own cells (noise and whatever is in it, at a low
    threshold), and with tones of several widths added."""
    rng = np.random.default_rng(11)
    compare(gbt, 127, 4.0, rng)
    tones = [(100, 1, 4, 0.5), (300, 6, 3, -1.2), (500, 25, 2, 2.0), (700, 40, 2, 0.0), (1021, 2, 4, -0.1),
             (2, 3, 4, 0.2), (850, 4, 3, 3.5), (858, 4, 3, 3.5)]
    x, t = np.arange(gbt.shape[1])[None, :], np.arange(gbt.shape[0])[:, None]
    power = gbt.astype(np.float64)
    for chan, fwhm, level, rate in tones:  # level in units of the file's mean power
        power += level * gbt.mean() * np.exp(-0.5 * ((x - chan - rate * t) * 2.355 / fwhm) ** 2)
    m = compare(power.astype(np.float32), 127, 6.0, rng)
    found = kinds(m, gbt.shape[1])
    assert found["wide"] > 0 and found["narrow"] > 0 and found["refined off the peak cell"] > 0, found
