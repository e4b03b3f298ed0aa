"""De-Doppler drift search: turboSETI's Taylor-tree sums, vectorized in numpy, one hit per track.

``dedoppler(power, n_time, n_chans, tsamp_s, fch1_hz, foff_hz, max_drift_hz_s, snr_min)`` reads
``power`` as float32 little-endian C order [time, chan] (the ``spectrograms.power`` layout) and
searches it for narrow-band signals that drift linearly in frequency, as turboSETI 2.3.2 does:

- the spectrogram is padded with zero rows to N = the next power of two time steps;
- the sum of power along every straight drift path is computed with Taylor's tree (the paths are
  the tree's: drift index d moves d channels over the N - 1 steps); drifts beyond N - 1 channels
  come in blocks, each row i first shifted by b * i channels (turboSETI's "drift blocks");
  negative drifts are the same on the frequency-reversed spectrogram;
- SNR = (path sum - median) / std, where median and std are turboSETI's ``comp_stats`` of the
  time-summed spectrum: its median, and the standard deviation of its values between the 5th and
  95th percentiles;
- the drift step is |foff| / ((N - 1) * tsamp) Hz/s.

Where it differs: turboSETI keeps, per channel, the best drift, then only the strongest channel
within +-2 * max_drift / drift_step channels, which hides real neighbouring signals. Here every
cell above ``snr_min`` that is a local maximum over neighbouring channels and drifts is a
candidate; the strongest becomes a hit, and a candidate is merged
into the hits found so far only when it is their echo: its path sum outside the channels those
hits' tracks cover (each track with its width, +-1 channel) is no longer above ``snr_min`` (the
noise median and std scaled to the steps left). Each hit is then measured off the tree's grid
(the widest window of power along tree paths for wide signals, the best straight line on a
quarter-channel grid, a least-squares line through each step's centroid), so ``freq_hz`` and
``drift_hz_s`` are sub-channel; ``snr`` stays the tree's peak. Paths that leave the band are not
searched (turboSETI wraps them around), the DC channel is not blanked, zero drift is searched.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from udfs.registry import Arg, UdfSpec, register

HIT_TYPE = pa.struct([
    pa.field("freq_hz", pa.float64()),
    pa.field("drift_hz_s", pa.float64()),
    pa.field("snr", pa.float64()),
    pa.field("chan_index", pa.int32()),
    pa.field("freq_start_hz", pa.float64()),
    pa.field("freq_end_hz", pa.float64()),
])
HITS_TYPE = pa.list_(HIT_TYPE)

MAX_CANDIDATES = 1_000_000  # cells above the threshold kept per row before the merge


def comp_stats(spectrum: np.ndarray) -> tuple[float, float]:
    """turboSETI's noise statistics of a time-summed spectrum: the median, and the standard
    deviation of the values between the 5th and 95th percentiles."""
    low, median, high = np.percentile(spectrum, [5, 50, 95])
    kept = spectrum[(spectrum <= high) & (spectrum >= low)]
    return float(median), float(kept.std())


@lru_cache(maxsize=16)
def tree_offsets(n: int) -> np.ndarray:
    """[drift d, time t] channel offset of the Taylor tree's path of drift d over n (a power of
    two) steps: the first half follows drift d // 2, the second starts ceil(d / 2) channels on."""
    if n == 1:
        return np.zeros((1, 1), dtype=np.int64)
    half = tree_offsets(n // 2)
    d = np.arange(n)
    first = half[d // 2]
    second = half[d // 2] + ((d + 1) // 2)[:, None]
    out = np.concatenate([first, second], axis=1)
    out.setflags(write=False)
    return out


def taylor_sums(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Sums of ``x`` [N, W] (N a power of two, C-contiguous) along the tree's drift paths: [d, f] is
    the sum over t of x[t, f + tree_offsets(N)[d, t]], exact for f < W - N - log2(N) (the last
    columns are not meaningful). ``x`` is overwritten (it and ``scratch``, of x's shape, take
    turns holding each level).

    At each level, pairs of groups of m steps become groups of 2m: drift d of the pair is drift
    d // 2 of the first group plus drift d // 2 of the second, (d + 1) // 2 channels on. The
    shifted reads of all drifts of a level are one sheared (as_strided) view, so a level is two
    numpy additions."""
    n, width = x.shape
    src, dst = x, (np.empty_like(x) if scratch is None else scratch)
    item = x.itemsize
    m = 1
    while m < n:
        groups = src.reshape(n // m, m, width)
        a, b = groups[0::2], groups[1::2]
        out = dst.reshape(n // (2 * m), 2 * m, width)
        for parity in (0, 1):  # even drifts 2k: shift k; odd drifts 2k + 1: shift k + 1
            cols = width - m - parity
            sheared = np.lib.stride_tricks.as_strided(
                b[:, :, parity:], shape=(b.shape[0], m, cols), strides=(b.strides[0], b.strides[1] + item, item),
                writeable=False)
            np.add(a[:, :, :cols], sheared, out=out[:, parity::2, :cols])
            out[:, parity::2, cols:] = 0
        src, dst = dst, src
        m *= 2
    return src.reshape(n, width)


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def shape_problem(n_bytes, n_time, n_chans, tsamp_s, foff_hz, max_drift_hz_s) -> str | None:
    if n_time < 2:
        return f"n_time must be at least 2 to measure a drift, got {n_time}"
    if n_chans < 1:
        return f"n_chans must be positive, got {n_chans}"
    if n_bytes != 4 * n_time * n_chans:
        return (f"power has {n_bytes} bytes, not 4 * n_time * n_chans = 4 * {n_time} * {n_chans} = "
                f"{4 * n_time * n_chans} (float32 [time, chan])")
    if not np.isfinite(tsamp_s) or tsamp_s <= 0:
        return f"tsamp_s must be positive, got {tsamp_s}"
    if not np.isfinite(foff_hz) or foff_hz == 0:
        return f"foff_hz must be non-zero, got {foff_hz}"
    if not np.isfinite(max_drift_hz_s) or max_drift_hz_s < 0:
        return f"max_drift_hz_s must be zero or positive, got {max_drift_hz_s}"
    return None


class _Candidates:
    """Cells above the threshold: direction (+1 / -1), block, tree drift, start channel, snr."""

    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, sign, block, drifts, chans, snr):
        if len(snr):
            self.parts.append((np.full(len(snr), sign, np.int8), np.full(len(snr), block, np.int32),
                               drifts.astype(np.int32), chans.astype(np.int64), snr.astype(np.float64)))

    def arrays(self):
        if not self.parts:
            return [np.empty(0, t) for t in (np.int8, np.int32, np.int32, np.int64, np.float64)]
        return [np.concatenate(p) for p in zip(*self.parts)]


CHUNK_FLOATS = 1 << 19  # channels are searched in chunks of about this many values (2 MiB) per
# time step x chunk, so that the tree's levels stay in the CPU's cache


def search(power: np.ndarray, max_drift_chans: int, snr_min: float):
    """All drift-path cells of ``power`` [n_time, n_chans] with SNR > snr_min whose path stays in
    the band, as (sign, block, tree drift, start channel, snr) arrays, with (N, median, std)."""
    n_time, n_chans = power.shape
    n = next_pow2(n_time)
    median, std = comp_stats(power.sum(axis=0, dtype=np.float64))
    found = _Candidates()
    if std <= 0 or not np.isfinite(std):
        return found.arrays(), (n, median, std)
    n_blocks = max_drift_chans // (n - 1) + 1 if n > 1 else 1
    pad = max_drift_chans + n + n.bit_length() + 1  # the tree's last columns are not exact
    chunk = min(n_chans, max(1024, CHUNK_FLOATS // n))
    buffers = np.empty((2, n * (chunk + pad)), dtype=np.float32)
    offsets = tree_offsets(n)
    threshold = median + snr_min * std
    for sign in (1, -1):
        data = power if sign == 1 else power[:, ::-1]
        for block in range(n_blocks):
            total = block * (n - 1) + np.arange(n)  # channels moved over the N - 1 steps
            last = block * (n_time - 1) + offsets[:, n_time - 1]  # offset at the last real row
            keep = total <= max_drift_chans
            if block > 0:
                keep[0] = False  # the same path as drift N - 1 of the block before
            if sign == -1:
                keep[total == 0] = False  # zero drift is searched once, forwards
            if not keep.any():
                continue
            for c0 in range(0, n_chans, chunk):
                c1 = min(n_chans, c0 + chunk)
                width = c1 - c0 + pad
                x = buffers[0, :n * width].reshape(n, width)
                for t in range(n):  # shear: row t moves block * t channels left
                    lo = c0 + block * t
                    got = max(0, min(n_chans, lo + width) - lo) if t < n_time else 0
                    if got:
                        x[t, :got] = data[t, lo:lo + got]
                    x[t, got:] = 0
                sums = taylor_sums(x, buffers[1, :n * width].reshape(n, width))[:, :c1 - c0]
                above = sums > threshold
                above[~keep] = False
                flat = np.flatnonzero(above)
                if flat.size == 0:
                    continue
                d, f = np.divmod(flat, c1 - c0)
                # only local maxima over neighbouring channels and drifts can be hits or matter as
                # echoes; the cells on their slopes are not kept (ties are). Tested on the few
                # cells above the threshold only, not on the whole grid.
                peak = local_maxima(sums, d, f)
                d, f = d[peak], f[peak]
                inside = c0 + f + last[d] < n_chans  # the path stays in the band
                d, f = d[inside], f[inside]
                chans = c0 + f
                found.add(sign, block, d, chans if sign == 1 else n_chans - 1 - chans,
                          (sums[d, f].astype(np.float64) - median) / std)
    return found.arrays(), (n, median, std)


def local_maxima(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Which cells (rows[i], cols[i]) of ``grid`` are >= each of their 4 neighbours in it."""
    value = grid[rows, cols]
    keep = np.ones(len(rows), dtype=bool)
    n_rows, n_cols = grid.shape
    for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < n_rows) & (c >= 0) & (c < n_cols)
        keep[inside] &= value[inside] >= grid[r[inside], c[inside]]
    return keep


def paths(sign, block, drift, chan, n: int, n_time: int) -> np.ndarray:
    """[candidate, t] channel (in the original order) of each path at the real time steps."""
    t = np.arange(n_time)
    moved = block[:, None] * t[None, :] + tree_offsets(n)[drift][:, :n_time]
    return chan[:, None] + sign[:, None].astype(np.int64) * moved


def _gather_snr(power, cols, median, std, steps) -> np.ndarray:
    """SNR of the sums over ``steps`` (a boolean [k, n_time]; None: all) of power[t, cols[k, t]]."""
    n_time, n_chans = power.shape
    valid = (cols >= 0) & (cols < n_chans)
    if steps is not None:
        valid &= steps
    values = power[np.arange(n_time)[None, :], np.clip(cols, 0, n_chans - 1)]
    total = np.where(valid, values, 0.0).sum(axis=1)
    frac = valid.sum(axis=1) / n_time
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(frac > 0, (total - median * frac) / (std * np.sqrt(frac)), -np.inf)


RISE = 6.0  # a shifted track whose SNR rises this much (noise: about 1.8) above the one inside it meets another signal


def track_width(power, track, median, std, snr_min, max_width: int = 4096) -> tuple[int, int, int, int]:
    """The channel offsets around a track where its signal's power lies. From the brightest
    shifted track next to it (a hill climb from offset 0): (lo, hi), the run of offsets whose
    shifted sums stay above snr_min and keep falling (within RISE) going outwards, so that a signal
    the shifted tracks cross is not taken for this one's wings; and (lo_half, hi_half), the run
    within it at half the top SNR or more. Offsets are relative to ``track``."""
    n_time, n_chans = power.shape
    reach = 16
    while True:
        ks = np.arange(-reach, reach + 1)
        cols = track[None, :] + ks[:, None]
        inside = ((cols >= 0) & (cols < n_chans)).all(axis=1)
        snr = np.where(inside, _gather_snr(power, cols, median, std, None), -np.inf)
        top = reach
        while 0 < top < 2 * reach and max(snr[top - 1], snr[top + 1]) > snr[top]:
            top += 1 if snr[top + 1] > snr[top - 1] else -1
        bounds, halves, complete = [], [], 0 < top < 2 * reach or reach >= max_width
        for step in (-1, 1):
            k, half = top, top
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


def path_of(total_chans: int, n: int, n_time: int) -> np.ndarray:
    """Channel offsets at the real time steps of the tree path moving ``total_chans`` (signed)
    channels over the N - 1 steps."""
    moved = abs(total_chans)
    block, drift = divmod(moved, n - 1) if n > 1 else (0, 0)
    if drift == 0 and block > 0:
        block, drift = block - 1, n - 1
    t = np.arange(n_time)
    return np.sign(total_chans) * (block * t + tree_offsets(n)[drift, :n_time])


def refine(power, chan: int, total_chans: int, lo: int, hi: int, n: int, max_drift_chans: int):
    """A wide signal's plateau of SNR spans several drifts and channels, and noise picks the peak
    cell on it; the track whose window of the signal's width (hi - lo + 1 channels) holds the
    most power is the signal's centre line. (start channel, total drift) of that track."""
    n_time, n_chans = power.shape
    width = hi - lo + 1
    reach = max(2, width)
    cumulative = np.concatenate([np.zeros((n_time, 1)), np.cumsum(power, axis=1, dtype=np.float64)], axis=1)
    rows = np.arange(n_time)
    best = (-np.inf, chan, total_chans)
    starts = np.arange(chan + lo - reach, chan + lo + reach + 1)
    for total in range(max(-max_drift_chans, total_chans - reach), min(max_drift_chans, total_chans + reach) + 1):
        left = starts[:, None] + path_of(total, n, n_time)[None, :]  # window [left, left + width)
        ok = ((left >= 0) & (left + width <= n_chans)).all(axis=1)
        if not ok.any():
            continue
        left = left[ok]
        sums = (cumulative[rows, left + width] - cumulative[rows, left]).sum(axis=1)
        k = int(np.argmax(sums))
        if sums[k] > best[0]:
            best = (sums[k], int(starts[ok][k]) - lo, total)
    return best[1], best[2]


def fine_line(power, centre: float, total: float, half_width: float, n: int, max_drift_chans: int):
    """The straight line (centre channel at the first step, channels moved over N - 1 steps), on a
    grid of quarter channels around the tree's path, whose window of +-half_width channels holds
    the most power: the tree's paths are only straight to within a channel or so."""
    n_time, n_chans = power.shape
    cumulative = np.concatenate([np.zeros((n_time, 1)), np.cumsum(power, axis=1, dtype=np.float64)], axis=1)
    t = np.arange(n_time)
    shifts = np.arange(-6, 7) * 0.25
    centres = centre + shifts
    drifts = total + np.arange(-8, 9) * 0.25
    drifts = drifts[np.abs(drifts) <= max_drift_chans + 0.5]
    pos = centres[:, None, None] + drifts[None, :, None] * t[None, None, :] / (n - 1)  # [c, d, t]

    def cum(y):  # power summed over channels below position y (channel k spans k - 0.5 .. k + 0.5)
        y = np.clip(y + 0.5, 0, n_chans)
        k = np.minimum(np.floor(y).astype(int), n_chans - 1)
        return cumulative[t, k] + (y - k) * power[t, k]

    sums = (cum(pos + half_width) - cum(pos - half_width)).sum(axis=2)
    inside = ((pos - half_width >= -0.5) & (pos + half_width <= n_chans - 0.5)).all(axis=2)
    sums[~inside] = -np.inf
    c, d = np.unravel_index(int(np.argmax(sums)), sums.shape)
    if not np.isfinite(sums[c, d]):
        return centre, float(total)
    return float(centres[c]), float(drifts[d])


def centroid_line(power, centre: float, total: float, half_width: float, n: int, median: float,
                  passes: int = 2):
    """Least-squares line through the power-weighted centroids of each step within the window
    (+-ceil(half_width) channels) around the line: sub-channel start and drift."""
    n_time, n_chans = power.shape
    t = np.arange(n_time)
    floor = median / n_time  # the noise level of one pixel
    reach = int(np.ceil(half_width))
    for _ in range(passes):
        pos = centre + total * t / (n - 1)
        cols = np.round(pos).astype(int)[:, None] + np.arange(-reach, reach + 1)[None, :]
        if (cols < 0).any() or (cols >= n_chans).any():
            break
        w = np.clip(power[t[:, None], cols] - floor, 0, None)
        mass = w.sum(axis=1)
        if (mass <= 0).any():
            break
        c = (w * cols).sum(axis=1) / mass
        slope, intercept = np.polyfit(t / (n - 1), c, 1, w=np.sqrt(mass))
        centre, total = float(intercept), float(slope)
    return centre, total


def find_hits(power: np.ndarray, tsamp_s: float, fch1_hz: float, foff_hz: float,
              max_drift_hz_s: float, snr_min: float) -> list[dict]:
    """The hits of one spectrogram [n_time, n_chans], strongest first."""
    power = np.ascontiguousarray(power, dtype=np.float32)
    n_time, n_chans = power.shape
    n = next_pow2(n_time)
    drift_step_hz_s = abs(foff_hz) / ((n - 1) * tsamp_s)
    max_drift_chans = int(np.floor(max_drift_hz_s / drift_step_hz_s + 1e-9))
    (sign, block, drift, chan, snr), (n, median, std) = search(power, max_drift_chans, snr_min)
    if len(snr) > MAX_CANDIDATES:  # a flood of RFI: keep the strongest cells
        top = np.argpartition(-snr, MAX_CANDIDATES)[:MAX_CANDIDATES]
        sign, block, drift, chan, snr = sign[top], block[top], drift[top], chan[top], snr[top]
    order = np.argsort(-snr, kind="stable")
    sign, block, drift, chan, snr = sign[order], block[order], drift[order], chan[order], snr[order]
    by_chan = np.argsort(chan, kind="stable")  # candidates by start channel, to find those near a hit
    chan_sorted = chan[by_chan]
    free = np.ones((len(snr), n_time), dtype=bool)  # steps of each candidate not on a hit's track
    alive = np.ones(len(snr), dtype=bool)
    hits = []
    i = 0
    while True:
        while i < len(snr) and not alive[i]:  # the strongest candidate left
            ahead = np.flatnonzero(alive[i:i + 4096])
            i = i + int(ahead[0]) if ahead.size else i + 4096
        if i >= len(snr):
            return hits
        alive[i] = False
        start, total = int(chan[i]), int(sign[i]) * (int(block[i]) * (n - 1) + int(drift[i]))
        peak_track = track = start + path_of(total, n, n_time)
        lo, hi, lo_half, hi_half = track_width(power, track, median, std, snr_min)
        # the refinements look only near the track: a window of channels around it
        margin = 2 * max(2, hi_half - lo_half + 1) + 8
        a0 = max(0, int(track.min()) + lo_half - margin)
        local = power[:, a0:min(n_chans, int(track.max()) + hi_half + margin + 1)]
        if hi_half - lo_half >= 2:  # a wide signal: follow its centre line, not the noisiest cell on it
            start, total = refine(local, start - a0, total, lo_half, hi_half, n, max_drift_chans)
            start += a0
            track = start + path_of(total, n, n_time)
            lo, hi, lo_half, hi_half = track_width(power, track, median, std, snr_min)
        half_width = (hi_half - lo_half + 1) / 2
        centre, total = fine_line(local, start - a0 + (lo_half + hi_half) / 2, total, half_width, n, max_drift_chans)
        centre, total = centroid_line(local, centre, total, half_width, n, median)
        centre += a0
        low_chan, high_chan = int(track.min()) + lo, int(track.max()) + hi
        edges = (fch1_hz + low_chan * foff_hz, fch1_hz + high_chan * foff_hz)
        hits.append({
            "freq_hz": fch1_hz + centre * foff_hz,
            "drift_hz_s": total * foff_hz / ((n - 1) * tsamp_s) + 0.0,  # no -0.0
            "snr": float(snr[i]),
            "chan_index": int(np.floor(centre + 0.5)),
            "freq_start_hz": min(edges),
            "freq_end_hz": max(edges),
        })
        # echoes: candidates whose path, off the tracks of the hits so far, is no longer above snr_min
        # (only candidates starting within max_drift_chans of the track can touch it)
        first = min(peak_track.min(), track.min()) + lo - 1 - max_drift_chans
        last = max(peak_track.max(), track.max()) + hi + 1 + max_drift_chans
        a, b = np.searchsorted(chan_sorted, [first, last + 1])
        near = by_chan[a:b]
        near = near[alive[near]]
        if near.size == 0:
            continue
        cols = paths(sign[near], block[near], drift[near], chan[near], n, n_time)
        for line in (peak_track, track):  # the tree's paths of the hit
            rel = cols - line[None, :]
            free[near] &= ~((rel >= lo - 1) & (rel <= hi + 1))
        # and its measured straight line (tree paths stray from straight by up to a channel or so)
        line = centre + total * np.arange(n_time) / (n - 1)
        rel = cols - line[None, :]
        offset = (lo_half + hi_half) / 2
        free[near] &= ~((rel >= lo - offset - 1.5) & (rel <= hi - offset + 1.5))
        residual = _gather_snr(power, cols, median, std, free[near])
        alive[near[residual <= snr_min]] = False


def _dedoppler(power, n_time, n_chans, tsamp_s, fch1_hz, foff_hz, max_drift_hz_s, snr_min):
    results, errors = [], [None] * len(power)
    for i in range(len(power)):
        problem = shape_problem(len(power[i]), int(n_time[i]), int(n_chans[i]), float(tsamp_s[i]),
                                float(foff_hz[i]), float(max_drift_hz_s[i]))
        if problem is None and not np.isfinite(snr_min[i]):
            problem = f"snr_min must be a number, got {snr_min[i]}"
        if problem is not None:
            errors[i] = problem
            results.append(None)
            continue
        data = np.frombuffer(power[i], dtype="<f4").reshape(int(n_time[i]), int(n_chans[i]))
        if not np.isfinite(data).all():
            errors[i] = "power has NaN or infinite values"
            results.append(None)
            continue
        results.append(find_hits(data, float(tsamp_s[i]), float(fch1_hz[i]), float(foff_hz[i]),
                                 float(max_drift_hz_s[i]), float(snr_min[i])))
    return pa.array(results, HITS_TYPE), errors


DEDOPPLER = register(UdfSpec(
    name="dedoppler",
    args=(Arg("power", pa.binary(), "float32 little-endian C order [time, chan] (spectrograms.power)"),
          Arg("n_time", pa.int32(), "time steps"),
          Arg("n_chans", pa.int32(), "channels"),
          Arg("tsamp_s", pa.float64(), "seconds per time step"),
          Arg("fch1_hz", pa.float64(), "frequency of channel 0"),
          Arg("foff_hz", pa.float64(), "channel width, negative when frequency falls with index"),
          Arg("max_drift_hz_s", pa.float64(), "largest |drift| searched"),
          Arg("snr_min", pa.float64(), "hits need SNR above this")),
    returns=HITS_TYPE,
    kernel=_dedoppler,
    reports_errors=True,
    doc="Drifting narrow-band signals in a spectrogram (turboSETI's Taylor-tree de-Doppler search, "
        "both drift signs): an array of hits (freq_hz: the track's centre at the first time step, "
        "and drift_hz_s, both refined below the tree's grid; snr as "
        "turboSETI's (path sum - median) / trimmed std of the time-summed spectrum, chan_index, "
        "freq_start_hz <= freq_end_hz spanned by the track), strongest first, one per drift track "
        "(echoes of a track at neighbouring drifts and channels are merged, neighbouring signals "
        "are not). Drift step |foff_hz| / ((N - 1) * tsamp_s), N = n_time rounded up to a power of "
        "two. Bad shapes or values give NULL with the reason in dedoppler_error. NULL if any "
        "argument is NULL.",
))
