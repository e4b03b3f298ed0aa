"""The measurement of hits off the tree's grid, for many hits at once (``measure``):

- ``track_widths``: the channel offsets around its track where its power lies: from the brightest
  shifted track next to it (a hill climb from offset 0), (lo, hi), the run of offsets whose
  shifted sums stay above snr_min and keep falling (within RISE) going outwards, so that a signal
  the shifted tracks cross is not taken for this one's wings, and (lo_half, hi_half), the run
  within it at half the top SNR or more;
- a wide signal's plateau of SNR spans several drifts and channels and noise picks the peak cell
  on it: the track whose window of the signal's width holds the most power is its centre line
  (``refine``), whose widths are measured again;
- ``fine_line``: the straight line, on a grid of quarter channels and quarter drift steps around
  the track, whose window of the signal's half width holds the most power;
- ``centroid_line``: a least-squares line through each step's power-weighted centroid.

Each is numpy over arrays [hit, ...]: no Python loop per hit. This is the reference: the search
measures each hit with its C form (udfs/dedoppler_measure.c, ``measure_compiled``), which the
tests compare with it.
"""

from __future__ import annotations

import numpy as np

RISE = 6.0  # a shifted track whose SNR rises this much (noise: about 1.8) above the one inside it
# meets another signal
FINE_CENTRES = np.arange(-6, 7) * 0.25  # channels around the track, fine_line's grid
FINE_DRIFTS = np.arange(-8, 9) * 0.25  # channels of drift around the track's
FINE_SPAN = 10  # channels fine_line reads at each step: 3 of centres, 4 of drifts, and some
GROUP = 64  # hits measured together, at most (of similar widths: the arrays are as wide as the widest)
# udfs/dedoppler_hits.h's HitRow: a hit's candidate and measurement, as the compiled kernels give them
HIT_ROW = np.dtype([("index", np.int64), ("start", np.int64), ("total", np.int64), ("lo", np.int64),
                    ("hi", np.int64), ("lo_half", np.int64), ("hi_half", np.int64), ("track_min", np.int64),
                    ("track_max", np.int64), ("centre", np.float64), ("drift", np.float64)])


def track_snrs(power: np.ndarray, cols: np.ndarray, median: float, std: float) -> np.ndarray:
    """SNR of the sums of power[t, cols[..., t]] over all steps; -inf where a step is outside."""
    n_time, n_chans = power.shape
    inside = ((cols >= 0) & (cols < n_chans)).all(axis=-1)
    values = power.reshape(-1).take(cols + np.arange(n_time) * n_chans, mode="clip")  # (outside: -inf)
    return np.where(inside, (values.sum(axis=-1, dtype=np.float64) - median) / std, -np.inf)


def _run_end(ok: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per row, the last index of the run of True in ``ok`` that continues past ``start``."""
    idx = np.arange(ok.shape[1])
    return np.logical_and.accumulate(ok | (idx <= start[:, None]), axis=1).sum(axis=1) - 1


def track_widths(power, tracks, median, std, snr_min, reach: int = 16, max_width: int = 4096):
    """(lo, hi, lo_half, hi_half) int arrays, offsets relative to each of ``tracks`` [k, n_time]."""
    k = len(tracks)
    ks = np.arange(-reach, reach + 1)
    snr = track_snrs(power, tracks[:, None, :] + ks[None, :, None], median, std)
    rows, last = np.arange(k), 2 * reach
    # hill climb from offset 0 to the brightest shifted track next to it: towards the brighter
    # neighbour, then on while the next one is brighter still
    left, mid, right = snr[:, reach - 1], snr[:, reach], snr[:, reach + 1]
    rising = np.zeros(snr.shape, dtype=bool)
    rising[:, 1:] = snr[:, 1:] > snr[:, :-1]
    up = _run_end(rising, np.full(k, reach))
    rising_left = np.zeros(snr.shape, dtype=bool)
    rising_left[:, :-1] = snr[:, :-1] > snr[:, 1:]
    down = last - _run_end(rising_left[:, ::-1], np.full(k, reach))
    move = np.maximum(left, right) > mid
    top = np.where(move, np.where(right > left, up, down), reach)
    peak = snr[rows, top][:, None]
    bounds, halves = [], []
    for values, start in ((snr[:, ::-1], last - top), (snr, top)):  # outwards to lower, then higher offsets
        falling = np.zeros_like(values, dtype=bool)
        falling[:, 1:] = (values[:, 1:] > snr_min) & (values[:, 1:] <= values[:, :-1] + RISE)
        end = _run_end(falling, start)
        within = np.arange(values.shape[1]) <= end[:, None]
        bounds.append(end)
        halves.append(_run_end(within & (values >= 0.5 * peak), start))
    complete = ((top > 0) & (top < last) & (bounds[0] < last) & (bounds[1] < last)) | (reach >= max_width)
    lo, hi = np.minimum(reach - bounds[0], 0), np.maximum(bounds[1] - reach, 0)
    lo_half, hi_half = reach - halves[0], halves[1] - reach
    out = np.stack([lo, hi, lo_half, hi_half])
    if not complete.all():  # the signal reaches past the shifted tracks: look further
        again = ~complete
        out[:, again] = np.stack(track_widths(power, tracks[again], median, std, snr_min, reach * 4, max_width))
    return tuple(out)


class Windows:
    """Each hit's channels a0 .. a0 + size - 1 (the refinements look only near the track): its
    power at each step, [hit, step, channel], and cumulative power (float64, from 0, one channel
    more), zero past size."""

    def __init__(self, power, a0, a1):
        n_time, n_chans = power.shape
        self.a0, self.size = a0, a1 - a0
        self.width = width = int(self.size.max())
        j = np.arange(width + 1)
        cols = np.minimum(a0[:, None] + j[None, :], n_chans - 1)
        local = power.reshape(-1).take(cols[:, None, :] + (np.arange(n_time) * n_chans)[None, :, None])
        local *= (j[None, :] < self.size[:, None])[:, None, :]  # zero past each window
        self.power = local  # [hit, step, width + 1]
        self.cumulative = np.zeros(local.shape)
        np.cumsum(local[:, :, :width], axis=2, dtype=np.float64, out=self.cumulative[:, :, 1:])
        self.base = np.arange(len(a0) * n_time).reshape(len(a0), n_time) * (width + 1)  # [hit, step]

    def value(self, at):
        return self.power.reshape(-1).take(at, mode="clip")

    def cum(self, at):
        return self.cumulative.reshape(-1).take(at, mode="clip")

    def sums(self, span, sel):
        """[hit, step, j] for the hits ``sel``: the power (float64) in channels j .. j + span - 1
        of each one's window (span: one per hit), and the flat index of [hit, step, 0] in it."""
        j = np.arange(self.width + 1)
        end = self.base[sel][:, :, None] + np.minimum(j[None, :] + span[:, None], self.width)[:, None, :]
        window = self.cumulative.reshape(-1).take(end) - self.cumulative[sel]
        return window.reshape(-1), np.arange(len(sel) * self.base.shape[1]).reshape(len(sel), -1) * (self.width + 1)


def refine(win: Windows, sel, start, total, lo, hi, offsets, max_drift):
    """(start, total drift) in channels of the track whose window of hi - lo + 1 channels holds the
    most power, among starts within +-reach of ``start`` and drifts within +-reach of ``total``
    (reach = max(2, width)): a wide signal's centre line. ``sel`` picks each hit's window."""
    k = len(sel)
    width = hi - lo + 1
    reach = np.maximum(2, width)
    r = int(reach.max())
    steps = np.arange(-r, r + 1)
    totals = total[:, None] + steps[None, :]  # [hit, T]
    t_ok = (np.abs(steps)[None, :] <= reach[:, None]) & (np.abs(totals) <= max_drift)
    starts = (start - win.a0[sel] + lo)[:, None] + steps[None, :]  # [hit, S], window coordinates
    s_ok = np.abs(steps)[None, :] <= reach[:, None]
    paths = offsets[np.minimum(np.maximum(totals, -max_drift), max_drift) + max_drift]  # [hit, T, t]
    low = paths.min(axis=2)[:, :, None] + starts[:, None, :]  # [hit, T, S]
    high = paths.max(axis=2)[:, :, None] + starts[:, None, :] + width[:, None, None]
    ok = (low >= 0) & (high <= win.size[sel][:, None, None]) & t_ok[:, :, None] & s_ok[:, None, :]
    window, base = win.sums(width, sel)
    at = starts[:, None, :, None] + paths[:, :, None, :] + base[:, None, None, :]  # [hit, T, S, t]
    sums = window.take(at, mode="clip").sum(axis=3)  # (out of the window: not ok)
    sums = np.where(ok, sums, -np.inf).reshape(k, -1)
    best = sums.argmax(axis=1)
    found = np.isfinite(sums[np.arange(k), best])
    bt, bs = np.divmod(best, 2 * r + 1)
    new_start = starts[np.arange(k), bs] - lo + win.a0[sel]
    new_total = totals[np.arange(k), bt]
    return np.where(found, new_start, start), np.where(found, new_total, total)


def fine_line(win: Windows, centre, total, lo, hi, n, max_drift):
    """The straight line (centre channel at the first step in window coordinates, channels moved
    over the N - 1 steps), on a grid of quarter channels around ``centre`` and quarter channels of
    drift around ``total``, whose window of +-half_width channels (half_width = (hi - lo + 1) / 2)
    holds the most power, channels counted in part where the window covers them in part.

    The power in a window whose lower edge is at x (from the lower edge of channel 0) is linear
    between quarter channels, so it is tabulated on quarter channels near the lines at each step,
    and a line's quarter-spaced neighbours read a run of that table: the grid's sums are then
    matrix products over the steps."""
    k = len(centre)
    span = hi - lo + 1
    n_time = win.base.shape[1]
    n_c, n_d = len(FINE_CENTRES), len(FINE_DRIFTS)
    slope = np.arange(n_time) / (n - 1)
    drifts = total[:, None] + FINE_DRIFTS[None, :]  # [hit, d]
    # lower edge of the first centre's window, [hit, t, d]
    edge = (centre + FINE_CENTRES[0] + 0.5 - span / 2)[:, None, None] + slope[None, :, None] * drifts[:, None, :]
    origin = np.floor(edge.min(axis=2)).astype(np.intp)  # [hit, t]
    quarter = 4 * (edge - origin[:, :, None])
    first = np.minimum(quarter.astype(np.intp), 4 * (FINE_SPAN - 1) - n_c)  # quarter >= 0
    frac = quarter - first
    # the window's power with its lower edge at each channel origin .. origin + FINE_SPAN, then
    # on quarter channels
    j = origin[:, :, None] + np.arange(FINE_SPAN + 1)[None, None, :]
    at = win.base[:, :, None] + j
    power = win.cum(at + span[:, None, None]) - win.cum(at)  # [hit, t, j]
    q = np.arange(4 * FINE_SPAN)
    table = power[:, :, q // 4] + (q % 4 / 4) * (power[:, :, q // 4 + 1] - power[:, :, q // 4])  # [hit, t, q]
    runs = np.lib.stride_tricks.sliding_window_view(table, n_c + 1, axis=2)  # [hit, t, q, c + 1]
    rows = runs[np.arange(k)[:, None, None], np.arange(n_time)[None, :, None], first]  # [hit, t, d, c + 1]
    rows = rows.transpose(0, 2, 1, 3)  # [hit, d, t, c + 1]
    w = frac.transpose(0, 2, 1)[:, :, None, :]  # [hit, d, 1, t]
    low = np.matmul(1 - w, rows)[:, :, 0, :]  # [hit, d, c + 1]
    high = np.matmul(w, rows)[:, :, 0, :]
    sums = (low[:, :, :-1] + high[:, :, 1:]).transpose(0, 2, 1)  # [hit, c, d]
    # a line counts where its window is inside the hit's window at the first and last steps
    centres = centre[:, None] + FINE_CENTRES[None, :]
    lower = (centres + (0.5 - span / 2)[:, None])[:, :, None] + np.minimum(0, drifts * slope[-1])[:, None, :]
    upper = (centres + (0.5 + span / 2)[:, None])[:, :, None] + np.maximum(0, drifts * slope[-1])[:, None, :]
    inside = (lower >= 0) & (upper <= win.size[:, None, None]) & (np.abs(drifts) <= max_drift + 0.5)[:, None, :]
    sums = np.where(inside, sums, -np.inf).reshape(k, -1)
    best = sums.argmax(axis=1)
    found = np.isfinite(sums[np.arange(k), best])
    c, d = np.divmod(best, n_d)
    hits = np.arange(k)
    return (np.where(found, centres[hits, c], centre), np.where(found, drifts[hits, d], total.astype(np.float64)))


def centroid_line(win: Windows, centre, total, half_width, n, median, passes: int = 2):
    """Least-squares line through the power-weighted centroids of each step within the window
    (+-ceil(half_width) channels) around the line: sub-channel start and drift."""
    k = len(centre)
    n_time = win.base.shape[1]
    x = np.arange(n_time) / (n - 1)
    floor = median / n_time  # the noise level of one pixel
    reach = np.ceil(half_width).astype(np.intp)
    r = int(reach.max())
    offs = np.arange(-r, r + 1)
    used = np.abs(offs)[None, None, :] <= reach[:, None, None]  # [hit, 1, o]
    centre, total = centre.astype(np.float64), total.astype(np.float64)
    going = np.ones(k, dtype=bool)
    for _ in range(passes):
        pos = centre[:, None] + total[:, None] * x[None, :]
        cols = np.round(pos).astype(np.intp)[:, :, None] + offs[None, None, :]  # [hit, t, o]
        outside = ((cols < 0) | (cols >= win.size[:, None, None])) & used
        going &= ~outside.any(axis=(1, 2))
        values = win.value(cols + win.base[:, :, None])  # (outside: not going)
        weight = np.where(used, np.maximum(values - floor, 0), 0)
        mass = weight.sum(axis=2, dtype=np.float64)
        going &= (mass > 0).all(axis=1)
        if not going.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            c = (weight * cols).sum(axis=2) / mass  # [hit, t]
            # weighted least squares (weights mass), about the weighted means
            s = mass.sum(1)
            mx, my = (mass * x).sum(1) / s, (mass * c).sum(1) / s
            dx, dy = x[None, :] - mx[:, None], c - my[:, None]
            slope = (mass * dx * dy).sum(1) / (mass * dx * dx).sum(1)
            intercept = my - slope * mx
        centre = np.where(going, intercept, centre)
        total = np.where(going, slope, total)
    return centre, total


def measure(power, delta, chan, n, offsets, max_drift, median, std, snr_min, widths=None) -> dict:
    """The measurements of the hits whose tree cells are (delta, chan) (arrays, ``offsets`` the
    paths' ``path_offsets``; ``widths`` their ``track_widths`` if known): [hit] arrays of the
    peak cell's track ``peak_track`` [hit, t], the refined cell (``start``, ``total``) and its
    ``track``, the widths (``lo``, ``hi``, ``lo_half``, ``hi_half``) and the centre line
    (``centre``: channel at the first step, ``drift``: channels moved over the N - 1 steps)."""
    peak_track = chan[:, None] + offsets[delta + max_drift]
    lo, hi, lo_half, hi_half = (np.array(w) for w in widths) if widths is not None else \
        track_widths(power, peak_track, median, std, snr_min)
    out = {"peak_track": peak_track, "track": peak_track.copy(), "start": chan.copy(), "total": delta.copy(),
           "lo": lo, "hi": hi, "lo_half": lo_half, "hi_half": hi_half,
           "centre": np.zeros(len(chan)), "drift": np.zeros(len(chan))}
    width = hi_half - lo_half + 1
    order = np.argsort(width, kind="stable")
    begin = 0
    while begin < len(order):
        end = begin + 1
        while end < len(order) and end - begin < GROUP and (width[order[end]] <= 2 * width[order[begin]] + 8
                                                            or end - begin < 8):
            end += 1
        _measure_group(power, out, order[begin:end], n, offsets, max_drift, median, std, snr_min)
        begin = end
    return out


def _measure_group(power, out, sel, n, offsets, max_drift, median, std, snr_min):
    """``measure`` the hits ``sel`` of ``out`` together."""
    n_chans = power.shape[1]
    peak_track = out["peak_track"][sel]
    lo, hi, lo_half, hi_half = (out[key][sel] for key in ("lo", "hi", "lo_half", "hi_half"))
    margin = 2 * np.maximum(2, hi_half - lo_half + 1) + 8  # the refinements look only near the track
    a0 = np.maximum(0, peak_track.min(axis=1) + lo_half - margin)
    a1 = np.minimum(n_chans, peak_track.max(axis=1) + hi_half + margin + 1)
    win = Windows(power, a0, a1)
    start, total, track = out["start"][sel], out["total"][sel], peak_track
    wide = np.flatnonzero(hi_half - lo_half >= 2)  # follow a wide signal's centre line
    if wide.size:
        s, tt = refine(win, wide, start[wide], total[wide], lo_half[wide], hi_half[wide], offsets, max_drift)
        start[wide], total[wide] = s, tt
        track = start[:, None] + offsets[total + max_drift]
        widths = track_widths(power, track[wide], median, std, snr_min)
        for full, part in zip((lo, hi, lo_half, hi_half), widths):
            full[wide] = part
    centre, drift = fine_line(win, start - a0 + (lo_half + hi_half) / 2, total, lo_half, hi_half, n, max_drift)
    centre, drift = centroid_line(win, centre, drift, (hi_half - lo_half + 1) / 2, n, median)
    for key, value in (("track", track), ("start", start), ("total", total), ("lo", lo), ("hi", hi),
                       ("lo_half", lo_half), ("hi_half", hi_half), ("centre", centre + a0), ("drift", drift)):
        out[key][sel] = value


def measure_compiled(power, delta, chan, n, offsets, max_drift, median, std, snr_min) -> dict:
    """``measure``, one hit at a time in C (udfs/dedoppler_measure.c): the same keys."""
    from udfs import _dedoppler_hits_c

    n_time, n_chans = power.shape
    delta, chan = np.ascontiguousarray(delta, np.int64), np.ascontiguousarray(chan, np.int64)
    rows, peaks, tracks = _dedoppler_hits_c.measure(
        np.ascontiguousarray(power, np.float32), n_time, n_chans, n, np.ascontiguousarray(offsets, np.int64),
        max_drift, float(median), float(std), float(snr_min), delta, chan, len(delta))
    rows = np.frombuffer(rows, HIT_ROW)
    out = {"peak_track": np.frombuffer(peaks, np.int64).reshape(-1, n_time).copy(),
           "track": np.frombuffer(tracks, np.int64).reshape(-1, n_time).copy()}
    for key in ("start", "total", "lo", "hi", "lo_half", "hi_half", "centre", "drift"):
        out[key] = rows[key].copy()
    return out
