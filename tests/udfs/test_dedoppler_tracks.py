"""dedoppler_tracks: each vectorized measurement against a plain one-hit-at-a-time reading of
its definition, on noise with tones of many widths and drifts."""

import numpy as np
import pytest

from udfs.dedoppler_tracks import RISE, Windows, centroid_line, fine_line, refine, track_widths
from udfs.dedoppler_tree import path_offsets

N, MAX_DRIFT = 32, 127
PATHS = path_offsets(N, MAX_DRIFT)


@pytest.fixture(scope="module")
def power():
    """Chi-squared noise (4 dof) with 40 Gaussian tones, 0.5 to 20 channels wide, drifting."""
    rng = np.random.default_rng(21)
    data = rng.chisquare(4, size=(N, 4000))
    x = np.arange(4000)
    for _ in range(40):
        chan, sigma, level, drift = rng.integers(100, 3900), rng.uniform(0.5, 20), rng.uniform(0.5, 30), rng.uniform(-3, 3)
        for t in range(N):
            data[t] += level * np.exp(-0.5 * ((x - chan - drift * t) / sigma) ** 2)
    return data.astype(np.float32)


def stats(power):
    spectrum = power.sum(axis=0, dtype=np.float64)
    return float(np.median(spectrum)), float(spectrum.std())


def one_track_width(power, track, median, std, snr_min, max_width=4096):
    """The definition, one track: hill-climb from offset 0 to the brightest shifted track, then
    walk out while the shifted sums stay above snr_min and do not rise by more than RISE; the
    half run: at half the top SNR or more. Look further while the walk reaches the edge."""
    reach = 16
    while True:
        ks = np.arange(-reach, reach + 1)
        cols = track[None, :] + ks[:, None]
        inside = ((cols >= 0) & (cols < power.shape[1])).all(axis=1)
        sums = power[np.arange(N)[None, :], np.clip(cols, 0, power.shape[1] - 1)].sum(axis=1)
        snr = np.where(inside, (sums.astype(np.float64) - median) / std, -np.inf)
        top = reach
        while 0 < top < 2 * reach and max(snr[top - 1], snr[top + 1]) > snr[top]:
            top += 1 if snr[top + 1] > snr[top - 1] else -1
        bounds, halves, complete = [], [], 0 < top < 2 * reach or reach >= max_width
        for step in (-1, 1):
            k = half = top
            while True:
                nxt = k + step
                if not 0 <= nxt <= 2 * reach:
                    complete = complete and reach >= max_width
                    break
                if snr[nxt] <= snr_min or snr[nxt] > snr[k] + RISE:
                    break
                k = nxt
                if half == k - step and snr[k] >= 0.5 * snr[top]:
                    half = k
            bounds.append(k - reach)
            halves.append(half - reach)
        if complete:
            return min(bounds[0], 0), max(bounds[1], 0), halves[0], halves[1]
        reach *= 4


def test_track_widths(power):
    median, std = stats(power)
    rng = np.random.default_rng(22)
    starts = rng.integers(50, 3950, 300)
    tracks = np.clip(starts[:, None] + np.round(np.outer(rng.uniform(-3, 3, 300), np.arange(N))).astype(int), 0, 3999)
    got = np.stack(track_widths(power, tracks, median, std, 10.0), axis=1)
    want = np.array([one_track_width(power, t, median, std, 10.0) for t in tracks])
    np.testing.assert_array_equal(got, want)
    assert (want[:, 1] - want[:, 0] > 4).any()  # some wide ones


def one_refine(local, chan, total, lo, hi):
    """The track (start, total drift) whose window of hi - lo + 1 channels holds the most power,
    first best in order of drift then start."""
    width, n_local = hi - lo + 1, local.shape[1]
    reach = max(2, width)
    cumulative = np.concatenate([np.zeros((N, 1)), np.cumsum(local, axis=1, dtype=np.float64)], axis=1)
    best = (-np.inf, chan, total)
    starts = np.arange(chan + lo - reach, chan + lo + reach + 1)
    for tt in range(max(-MAX_DRIFT, total - reach), min(MAX_DRIFT, total + reach) + 1):
        left = starts[:, None] + PATHS[tt + MAX_DRIFT][None, :]
        ok = ((left >= 0) & (left + width <= n_local)).all(axis=1)
        if ok.any():
            sums = (cumulative[np.arange(N), left[ok] + width] - cumulative[np.arange(N), left[ok]]).sum(axis=1)
            k = int(np.argmax(sums))
            if sums[k] > best[0]:
                best = (sums[k], int(starts[ok][k]) - lo, tt)
    return best[1], best[2]


def one_fine_line(local, centre, total, half_width):
    """The straight line on the grid (centre +-1.5 channels, drift +-2 channels, quarter steps)
    whose window of +-half_width channels holds the most power, partial channels pro rata."""
    n_local = local.shape[1]
    cumulative = np.concatenate([np.zeros((N, 1)), np.cumsum(local, axis=1, dtype=np.float64)], axis=1)
    t = np.arange(N)
    centres = centre + np.arange(-6, 7) * 0.25
    drifts = total + np.arange(-8, 9) * 0.25
    drifts = drifts[np.abs(drifts) <= MAX_DRIFT + 0.5]
    pos = centres[:, None, None] + drifts[None, :, None] * t[None, None, :] / (N - 1)

    def cum(y):
        y = np.clip(y + 0.5, 0, n_local)
        k = np.minimum(np.floor(y).astype(int), n_local - 1)
        return cumulative[t, k] + (y - k) * local[t, k]

    sums = (cum(pos + half_width) - cum(pos - half_width)).sum(axis=2)
    inside = ((pos - half_width >= -0.5) & (pos + half_width <= n_local - 0.5)).all(axis=2)
    sums[~inside] = -np.inf
    c, d = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return (centre, float(total)) if not np.isfinite(sums[c, d]) else (float(centres[c]), float(drifts[d]))


def one_centroid_line(local, centre, total, half_width, median, passes=2):
    """Least-squares line (weights: power above the noise floor) through each step's centroid."""
    t = np.arange(N)
    reach = int(np.ceil(half_width))
    for _ in range(passes):
        cols = np.round(centre + total * t / (N - 1)).astype(int)[:, None] + np.arange(-reach, reach + 1)[None, :]
        if (cols < 0).any() or (cols >= local.shape[1]).any():
            break
        w = np.clip(local[t[:, None], cols] - median / N, 0, None)
        mass = w.sum(axis=1)
        if (mass <= 0).any():
            break
        centre, total = np.polyfit(t / (N - 1), (w * cols).sum(axis=1) / mass, 1, w=np.sqrt(mass))[::-1]
    return float(centre), float(total)


def test_refine_fine_line_and_centroid_line(power):
    median, _ = stats(power)
    rng = np.random.default_rng(23)
    k = 60
    a0 = rng.integers(100, 3700, k)
    a1 = np.minimum(a0 + rng.integers(30, 220, k), 4000)
    win = Windows(power, a0, a1)
    lo, hi = -rng.integers(0, 5, k), rng.integers(0, 5, k)
    total = rng.integers(-60, 61, k)
    start = np.where(total < 0, a0 + (a1 - a0) * 3 // 4, a0 + (a1 - a0) // 4)
    new_start, new_total = refine(win, np.arange(k), start, total, lo, hi, PATHS, MAX_DRIFT)
    centre = start - a0 + (lo + hi) / 2
    fine_c, fine_d = fine_line(win, centre, total, lo, hi, N, MAX_DRIFT)
    half_width = (hi - lo + 1) / 2
    line_c, line_d = centroid_line(win, fine_c, fine_d, half_width, N, median)
    for i in range(k):
        local = power[:, a0[i]:a1[i]]
        s, tt = one_refine(local, int(start[i] - a0[i]), int(total[i]), int(lo[i]), int(hi[i]))
        assert (new_start[i], new_total[i]) == (s + a0[i], tt)
        assert (fine_c[i], fine_d[i]) == pytest.approx(one_fine_line(local, centre[i], int(total[i]), half_width[i]),
                                                       abs=1e-9)
        assert (line_c[i], line_d[i]) == pytest.approx(
            one_centroid_line(local, fine_c[i], fine_d[i], half_width[i], median), abs=1e-3)
    assert (new_start != start).any() and (fine_c != centre).any()
