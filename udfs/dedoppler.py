"""De-Doppler drift search: turboSETI's Taylor-tree sums, one hit per track, its loops in C.

``dedoppler(power, n_time, n_chans, tsamp_s, fch1_hz, foff_hz, max_drift_hz_s, snr_min)`` reads
``power`` as float32 little-endian C order [time, chan] (the ``spectrograms.power`` layout) and
searches it for narrow-band signals that drift linearly in frequency, as turboSETI 2.3.2 does:

- the spectrogram is padded with zero rows to N = the next power of two time steps;
- the sum of power along every drift path is computed with Taylor's tree: turboSETI's paths
  (drift index d moves d channels over the N - 1 steps; drifts beyond N - 1 channels in blocks,
  each row i first shifted by b * i channels; negative drifts mirrored), all drifts of a
  direction in one tree (``udfs.dedoppler_tree``);
- SNR = (path sum - median) / std, where median and std are turboSETI's ``comp_stats`` of the
  time-summed spectrum (summed in float32, as turboSETI does): its median, and the standard
  deviation of its values between the 5th and 95th percentiles;
- the drift step is |foff| / ((N - 1) * tsamp) Hz/s.

Where it differs: turboSETI keeps, per channel, the best drift, then only the strongest channel
within +-2 * max_drift / drift_step channels, which hides real neighbouring signals. Here every
cell above ``snr_min`` that is a local maximum over its neighbouring channels and drifts on
turboSETI's grids is a candidate; candidates are taken strongest first, and one is merged into
the hits found so far only when it is their echo: its path sum outside the channels their
tracks cover (each track with its width, +-1 channel) is no longer above ``snr_min``, the noise
median and std scaled to the steps left (``udfs.dedoppler_echoes``). Each hit is measured off
the tree's grid (the widest window of power along tree paths for wide signals, the best
straight line on a quarter-channel grid, a least-squares line through each step's centroid:
``udfs.dedoppler_tracks``), so ``freq_hz`` and ``drift_hz_s`` are sub-channel; ``snr`` stays the
tree's peak. Paths that leave the band are not searched (turboSETI wraps them around), the DC
channel is not blanked, zero drift is searched.

By default the walk over the candidates runs in C (``udfs._dedoppler_hits_c``: one candidate at a
time, strongest first; a hit is measured, then its coverage applied to the alive candidates
within its reach). ``compiled=False`` is the numpy reference the tests compare it with, which
takes candidates in batches: a first guess of which ones in a batch are echoes of the ones before
them (their peak tracks' coverage), the others measured together, then the exact echo test in
order; each batch's hits then merge their echoes among the candidates after it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from udfs import _dedoppler_hits_c
from udfs.dedoppler_echoes import Echoes
from udfs.dedoppler_tracks import HIT_ROW, measure, track_widths
from udfs.dedoppler_tree import drift_sums_above, path_offsets, taylor_sums, tree_offsets  # noqa: F401
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

MAX_CANDIDATES = 1_000_000  # tree cells above the threshold kept before the merge (the strongest)
BATCH = 32, 128  # candidates taken at once, at least and at most
PERCENTILE_DIRECT = 4096  # values from which comp_stats picks its percentiles' order statistics in C


def percentiles(values: np.ndarray, q) -> np.ndarray:
    """``np.percentile(values, q)`` (linear interpolation) of a float32 array, the same float64
    values: the order statistics come from a histogram select in C (udfs/dedoppler_hits.c)
    rather than numpy's partition on eight ranks, and are interpolated as numpy does."""
    values = np.ascontiguousarray(values)
    if values.dtype != np.float32 or len(values) < PERCENTILE_DIRECT or not np.isfinite(values).all():
        return np.percentile(values, q)
    n = len(values)
    q = np.true_divide(np.asarray(q, dtype=np.float64), 100)
    virtual = (n - 1) * q  # numpy's virtual index (method linear)
    previous = np.floor(virtual)
    following = previous + 1
    last = virtual >= n - 1
    previous[last] = following[last] = -1
    previous, following = previous.astype(np.intp), following.astype(np.intp)
    ranks = np.concatenate([previous, following]) % n
    picked = np.frombuffer(_dedoppler_hits_c.order_statistics(values, n, ranks.astype(np.int64), len(ranks)),
                           np.float32)
    a, b = picked[:len(q)], picked[len(q):]
    gamma = np.asanyarray(virtual - previous, dtype=virtual.dtype)
    diff = b - a  # numpy's _lerp
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe", dtype=out.dtype)
    return out


def comp_stats(spectrum: np.ndarray) -> tuple[float, float]:
    """turboSETI's noise statistics of a time-summed spectrum: the median, and the standard
    deviation of the values between the 5th and 95th percentiles (in float64: turboSETI's numpy
    std of float32 sums in float32, which agrees to about 1e-7)."""
    low, median, high = percentiles(spectrum, [5, 50, 95])
    values = np.ascontiguousarray(spectrum)
    if values.dtype == np.float32:  # one pass in C, no copy of the values kept
        _, std = _dedoppler_hits_c.trimmed_std(values, len(values), float(low), float(high))
        return float(median), float(std)
    kept = values[(values <= high) & (values >= low)]
    return float(median), float(kept.astype(np.float64).std())


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


def _next_alive(alive: np.ndarray, i: int, count: int) -> np.ndarray:
    """The first ``count`` indices from i on that are alive."""
    found, step = [], max(64, 4 * count)
    while i < len(alive) and sum(len(f) for f in found) < count:
        found.append(np.flatnonzero(alive[i:i + step]) + i)
        i, step = i + step, step * 2
    return np.concatenate(found)[:count] if found else np.empty(0, np.intp)


def find_hits(power: np.ndarray, tsamp_s: float, fch1_hz: float, foff_hz: float,
              max_drift_hz_s: float, snr_min: float, compiled: bool = True, spectrum=None) -> list[dict]:
    """The hits of one spectrogram [n_time, n_chans], strongest first. ``compiled`` walks the
    candidates in C (udfs/dedoppler_echoes.c, one candidate at a time); without it, in numpy
    batches (``Echoes``): the same hits. ``spectrum``: power summed over time, if known."""
    power = np.ascontiguousarray(power, dtype=np.float32)
    n_time, n_chans = power.shape
    n = max(2, next_pow2(n_time))
    drift_step_hz_s = abs(foff_hz) / ((n - 1) * tsamp_s)
    max_drift = int(np.floor(max_drift_hz_s / drift_step_hz_s + 1e-9))
    median, std = comp_stats(power.sum(axis=0) if spectrum is None else spectrum)  # float32, as turboSETI's
    if std <= 0 or not np.isfinite(std):
        return []
    delta, chan, value = drift_sums_above(power, max_drift, median + snr_min * std)
    if len(value) > MAX_CANDIDATES:  # a flood of RFI: keep the strongest cells
        top = np.argpartition(-value, MAX_CANDIDATES)[:MAX_CANDIDATES]
        delta, chan, value = delta[top], chan[top], value[top]
    offsets = path_offsets(n, max_drift)[:, :n_time]
    if compiled:  # (sorted strongest first there)
        rows = np.frombuffer(_dedoppler_hits_c.find_hits(
            power, n_time, n_chans, n, np.ascontiguousarray(offsets, np.int64), max_drift, median, std,
            float(snr_min), delta, chan, len(delta), value), HIT_ROW)
        snr = (value[rows["index"]].astype(np.float64) - median) / std
        return _hit_rows(rows["centre"], rows["drift"], rows["track_min"] + rows["lo"],
                         rows["track_max"] + rows["hi"], snr, n, tsamp_s, fch1_hz, foff_hz)
    order = np.argsort(-value, kind="stable")  # strongest first, equal sums by position
    delta, chan, value = delta[order], chan[order], value[order]
    snr = (value.astype(np.float64) - median) / std
    echoes = Echoes(power, delta, chan, value, n, offsets, max_drift, median, std, snr_min)
    hits, i, size = [], 0, int(np.clip(len(snr) // 8, *BATCH))
    while True:
        batch = _next_alive(echoes.alive, i, size)
        if batch.size == 0:
            return hits
        # a first guess of which are echoes of the ones before them, to measure only the others
        peak = {"peak_track": chan[batch][:, None] + offsets[delta[batch] + max_drift],
                "peak_start": chan[batch], "peak_delta": delta[batch]}
        widths = track_widths(power, peak["peak_track"], median, std, snr_min)
        peak.update(zip(("lo", "hi", "lo_half", "hi_half"), widths))
        guess, _ = echoes.accept(peak, batch, commit=False)
        m = measure(power, delta[batch[guess]], chan[batch[guess]], n, offsets, max_drift, median, std, snr_min,
                    widths=[w[guess] for w in widths])
        m.update(peak_start=chan[batch[guess]], peak_delta=delta[batch[guess]])
        measured = np.zeros(len(batch), dtype=bool)
        measured[guess] = True
        full = {key: np.zeros((len(batch),) + v.shape[1:], v.dtype) for key, v in m.items()}
        for key, v in m.items():
            full[key][guess] = v
        accepted, stop = echoes.accept(full, batch, measured)
        echoes.kill(full, accepted)  # the echoes of this batch's hits among the candidates after them
        track = full["track"][accepted]
        hits += _hit_rows(full["centre"][accepted], full["drift"][accepted],
                          track.min(axis=1) + full["lo"][accepted], track.max(axis=1) + full["hi"][accepted],
                          snr[batch[accepted]], n, tsamp_s, fch1_hz, foff_hz)
        i = int(batch[stop - 1]) + 1  # (the first of a batch is always measured: stop > 0)
        grow = len(accepted) * 4 >= 3 * len(guess)  # the guess was good
        size = min(BATCH[1], 2 * size) if grow else max(BATCH[0], size // 2)


def _hit_rows(centre, drift, low_chan, high_chan, snr, n: int, tsamp_s: float, fch1_hz: float,
              foff_hz: float) -> list[dict]:
    """The rows of the hits whose centre lines are (centre, drift) and whose tracks span the
    channels low_chan .. high_chan."""
    low = fch1_hz + low_chan * foff_hz
    high = fch1_hz + high_chan * foff_hz
    rows = []
    for k in range(len(snr)):
        rows.append({
            "freq_hz": float(fch1_hz + centre[k] * foff_hz),
            "drift_hz_s": float(drift[k] * foff_hz / ((n - 1) * tsamp_s)) + 0.0,  # no -0.0
            "snr": float(snr[k]),
            "chan_index": int(np.floor(centre[k] + 0.5)),
            "freq_start_hz": float(min(low[k], high[k])),
            "freq_end_hz": float(max(low[k], high[k])),
        })
    return rows


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
        with np.errstate(over="ignore", invalid="ignore"):
            spectrum = data.sum(axis=0)
        # a NaN or an infinity makes its column's sum one (finite sums: finite power, no pass over it)
        if not np.isfinite(spectrum).all() and not np.isfinite(data).all():
            errors[i] = "power has NaN or infinite values"
            results.append(None)
            continue
        results.append(find_hits(data, float(tsamp_s[i]), float(fch1_hz[i]), float(foff_hz[i]),
                                 float(max_drift_hz_s[i]), float(snr_min[i]), spectrum=spectrum))
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
