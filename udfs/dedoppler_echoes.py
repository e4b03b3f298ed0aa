"""Which candidate cells of the drift search are hits, and which are echoes of hits.

A candidate (a tree cell: displacement, start channel, path sum) is an echo of the hits found so
far when its path sum over the steps no hit covers is no longer above snr_min, the noise median
and std scaled to the steps left (all steps covered: an echo). At each step a hit covers the
channels of its tracks (the tree paths of its peak cell and of its refined cell, each with the
hit's width and +-1 channel) and of its measured line (its width, +-1.5 channels). Candidates
are taken strongest first: each hit's coverage goes to the candidates after it
(``Echoes.kill``), in a batch measured together to the later ones of the batch first
(``Echoes.accept``); a candidate checked after several hits takes them one at a time, in order.

Only the steps where a candidate's path may meet a hit's coverage are looked at: paths are
within ``deviation`` channels of their straight lines, so where the straight lines are further
apart than the coverage and the deviations no step is covered (``Echoes._ranges``). The work is
numpy over (hit, candidate, step) arrays, in slices that stay in the CPU's cache.

This is the reference: the search runs its C form (udfs/dedoppler_echoes.c), one candidate at a
time, and the tests compare the two hit for hit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BAND_TABLE = 48  # channels: a batch's coverage this wide at most has its power tabulated
SLICE = 1 << 15  # (hit, candidate, step) values handled at once


class Coverage(NamedTuple):
    """The channels the hits of a batch cover, per [hit, step] (flattened): ``low`` ..
    ``low + width``, one run of channels unless ``split`` (then the union of the bands ``lows``
    .. ``highs`` [hit * step, band]); ``line``: per hit a straight line (start channel, channels
    per step) and offsets (low, high) around it within which every band lies, widened by the
    paths' deviations; ``table``: the power on low .. low + width [hit * step, channel - low],
    flattened, with its row length (None when too wide)."""

    line: tuple
    low: np.ndarray
    width: np.ndarray
    split: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    table: tuple | None


def _runs(values: np.ndarray):
    """(start, length) of the runs of equal neighbours in ``values`` (not empty)."""
    change = np.empty(len(values), dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    return starts, np.diff(starts, append=len(values))


def _expand(begin, counts):
    """begin[i] .. begin[i] + counts[i] - 1 for each i, concatenated, and the i of each."""
    owner = np.repeat(np.arange(len(counts)), counts)
    ends = np.cumsum(counts)
    return np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(begin - ends + counts, counts), owner


class Echoes:
    """The candidates (strongest first: displacement, start channel, float32 path sum) and which
    are still alive; for each, the steps that hits cover and the power on them."""

    def __init__(self, power, delta, chan, value, n, offsets, max_drift, median, std, snr_min):
        self.power, self.delta, self.chan, self.value = power, delta, chan, value.astype(np.float64)
        self.n, self.max_drift, self.n_time = n, max_drift, power.shape[0]
        self.median, self.std, self.snr_min = median, std, snr_min
        self.offsets = offsets.reshape(-1)  # [delta + D, t]
        self.alive = np.ones(len(delta), dtype=bool)
        self.free = np.ones(len(delta) * self.n_time, dtype=bool)  # [candidate, t]: not covered
        self.covered_sum = np.zeros(len(delta))  # the power on the covered steps
        self.covered = np.zeros(len(delta), dtype=np.intp)
        self.by_chan = np.argsort(chan)
        self.chan_sorted = chan[self.by_chan]
        t = np.arange(self.n_time)
        straight = np.arange(-max_drift, max_drift + 1)[:, None] * t[None, :] / (n - 1)
        self.deviation = float(np.abs(offsets - straight).max()) + 1e-9

    def residual(self, cand, covered_sum, covered):
        """SNR of the candidates' path sums over the steps not covered (-inf: all covered)."""
        frac = (self.n_time - covered) / self.n_time
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(frac > 0, (self.value[cand] - covered_sum - self.median * frac)
                            / (self.std * np.sqrt(frac)), -np.inf)

    def reach(self, hits: dict):
        """The channels first .. last where a candidate may start to meet each hit's coverage."""
        peak, lo, hi = hits["peak_track"], hits["lo"], hits["hi"]
        track = hits.get("track", peak)
        first = np.minimum(peak.min(axis=1), track.min(axis=1)) + lo - 1 - self.max_drift
        last = np.maximum(peak.max(axis=1), track.max(axis=1)) + hi + 1 + self.max_drift
        return first, last

    def kill(self, hits: dict, which: np.ndarray):
        """Apply the coverage of the hits ``which`` (indices into ``hits``, in order) to the
        alive candidates that may meet them; those no longer above snr_min die."""
        first, last = self.reach(hits)
        a = np.searchsorted(self.chan_sorted, first[which])
        b = np.searchsorted(self.chan_sorted, last[which], side="right")
        counts = np.maximum(b - a, 0)
        at, owner = _expand(a, counts)
        hit, cand = which[owner], self.by_chan[at]
        keep = self.alive[cand]
        hit, cand = hit[keep], cand[keep]
        if hit.size == 0:
            return
        # a candidate near several hits takes them in rounds, one per round, in hit order
        several = np.bincount(cand, minlength=len(self.alive))[cand] > 1
        self.cover(hits, hit[~several], cand[~several])
        if several.any():
            hit, cand = hit[several], cand[several]
            order = np.argsort(cand, kind="stable")
            hit, cand = hit[order], cand[order]
            starts, lengths = _runs(cand)
            rank = np.arange(len(cand)) - np.repeat(starts, lengths)
            for r in range(int(rank.max()) + 1):
                now = (rank == r) & self.alive[cand]
                self.cover(hits, hit[now], cand[now])

    def accept(self, hits: dict, batch: np.ndarray, measured=None, commit: bool = True):
        """Which of the alive candidates ``batch`` (strongest first; ``hits`` the measurements
        of those ``measured``) are hits: each in turn unless the coverage of the hits before it
        in the batch killed it, up to the first one alive that was not measured. Returns (the
        hits' positions in the batch, the position where it stopped). With ``commit`` the
        coverage is kept and the batch's candidates before the stop are no longer alive; without,
        nothing changes and only the peak tracks' coverage counts (a guess of the echoes)."""
        b, n_time = len(batch), self.n_time
        measured = np.ones(b, dtype=bool) if measured is None else measured
        first, last = self.reach(hits)
        starts = self.chan[batch]
        near = (starts[None, :] >= first[:, None]) & (starts[None, :] <= last[:, None]) & measured[:, None]
        near &= np.arange(b)[None, :] > np.arange(b)[:, None]
        k, l = np.divmod(np.flatnonzero(near), b)  # (hit, later candidate) positions, by hit
        free = self.free.reshape(-1, n_time)[batch].reshape(-1)  # copies, [position, t]
        covered_sum, covered = self.covered_sum[batch], self.covered[batch]
        if k.size:
            pair, t, col = self.steps(hits, k, batch[l], peak_only=not commit)
            bounds = np.searchsorted(pair, np.arange(len(k) + 1))
            has = np.flatnonzero(bounds[1:] > bounds[:-1])  # the pairs with steps covered
            k, l, first_step = k[has], l[has], bounds[has]
            values = self.power.reshape(-1)[t * self.power.shape[1] + col].astype(np.float64)
            cell = l[np.searchsorted(first_step, np.arange(len(t)), side="right") - 1] * n_time + t
        by_hit = np.searchsorted(k, np.arange(b + 1)).tolist()  # pairs of each hit, in order
        alive, stop = np.ones(b, dtype=bool), b
        for i in range(b):
            if not alive[i]:
                continue
            if not measured[i]:
                stop = i
                break
            p0, p1 = by_hit[i], by_hit[i + 1]
            if p0 == p1:
                continue
            later = l[p0:p1]
            e0 = first_step[p0]
            e1 = first_step[p1] if p1 < len(first_step) else len(t)
            new = free[cell[e0:e1]] & np.repeat(alive[later], np.diff(first_step[p0:p1], append=e1))
            if not new.any():
                continue
            free[cell[e0:e1][new]] = False
            segments = first_step[p0:p1] - e0
            counts = np.add.reduceat(new, segments, dtype=np.intp)
            covered_sum[later] += np.add.reduceat(values[e0:e1] * new, segments)
            covered[later] += counts
            touched = later[counts > 0]
            dead = self.residual(batch[touched], covered_sum[touched], covered[touched]) <= self.snr_min
            alive[touched[dead]] = False
        free = free.reshape(b, n_time)
        if commit:
            rows = batch[:stop]
            self.free.reshape(-1, n_time)[rows] = free[:stop]
            self.covered_sum[rows], self.covered[rows] = covered_sum[:stop], covered[:stop]
            self.alive[rows] = False
        return np.flatnonzero(alive[:stop] & measured[:stop]), stop

    def coverage(self, hits: dict, peak_only: bool) -> Coverage:
        """The hits' coverage (kept in ``hits``)."""
        key = "_coverage_peak" if peak_only else "_coverage"
        if key in hits:
            return hits[key]
        n_time, scale, dev = self.n_time, 1.0 / (self.n - 1), self.deviation
        lo, hi = hits["lo"], hits["hi"]
        start, slope = hits["peak_start"].astype(np.float64), hits["peak_delta"] * scale
        lows = [hits["peak_track"] + lo[:, None] - 1]
        highs = [hits["peak_track"] + hi[:, None] + 1]
        lines = [(start, slope, lo - 1 - 2 * dev, hi + 1 + 2 * dev)]  # a tree path on each side
        if not peak_only:
            offset = (hits["lo_half"] + hits["hi_half"]) / 2
            line = hits["centre"][:, None] + hits["drift"][:, None] * (np.arange(n_time) * scale)
            lows += [hits["track"] + lo[:, None] - 1, np.ceil(line + (lo - offset - 1.5)[:, None]).astype(np.intp)]
            highs += [hits["track"] + hi[:, None] + 1, np.floor(line + (hi - offset + 1.5)[:, None]).astype(np.intp)]
            lines += [(hits["start"], hits["total"] * scale, lo - 1 - 2 * dev, hi + 1 + 2 * dev),
                      (hits["centre"], hits["drift"] * scale, lo - offset - 1.5 - dev, hi - offset + 1.5 + dev)]
        lows, highs = np.stack(lows, axis=2), np.stack(highs, axis=2)
        low, high = lows.min(axis=2), highs.max(axis=2)
        bands = lows.shape[2]  # one run of channels when (of 3 bands) 2 pairs touch
        pairs = [(a, b) for a in range(bands) for b in range(a + 1, bands)]
        touching = sum(((lows[:, :, a] <= highs[:, :, b] + 1) & (lows[:, :, b] <= highs[:, :, a] + 1)).astype(np.int8)
                       for a, b in pairs)
        split = touching < bands - 1 if pairs else np.zeros(low.shape, dtype=bool)
        hull_low, hull_high = np.full(len(lo), np.inf), np.full(len(lo), -np.inf)
        for band_start, band_slope, band_low, band_high in lines:
            o0 = band_start - start  # the band's line from the reference line, at both ends
            o1 = o0 + (band_slope - slope) * (n_time - 1)
            hull_low = np.minimum(hull_low, band_low + np.minimum(o0, o1))
            hull_high = np.maximum(hull_high, band_high + np.maximum(o0, o1))
        width = (high - low).reshape(-1)
        table, span = None, int(width.max()) + 1 if width.size else 0
        if not peak_only and span <= BAND_TABLE:
            n_chans = self.power.shape[1]
            cols = np.minimum(np.maximum(low.reshape(-1)[:, None] + np.arange(span), 0), n_chans - 1)
            rows = np.tile(np.arange(n_time) * n_chans, len(lo))[:, None]
            table = (self.power.reshape(-1).take(rows + cols).reshape(-1), span)
        hits[key] = Coverage((start, slope, hull_low, hull_high), low.reshape(-1), width.astype(np.uintp),
                             split.reshape(-1), lows.reshape(-1, bands), highs.reshape(-1, bands), table)
        return hits[key]

    def steps(self, hits, hit, cand, peak_only: bool = False):
        """(pair, t, channel) of the steps of the (hit, candidate) pairs that the hits cover
        (pair: the index of the pair, increasing); ``peak_only``: the peak tracks' coverage."""
        t0, counts = self._ranges(hits, hit, cand, peak_only)
        parts = [(p, self._covered(hits, hit[p], cand[p], t0[p], counts[p], peak_only)) for p in _slices(counts)]
        if not parts:
            return (np.empty(0, np.intp),) * 3
        return tuple(np.concatenate([c[i] + (p.start if i == 0 else 0) for p, c in parts]) for i in range(3))

    def cover(self, hits, hit, cand):
        """One hit (an index into ``hits``) per candidate: cover the candidate's steps the hit
        covers; kill those no longer above snr_min."""
        t0, counts = self._ranges(hits, hit, cand, False)
        for p in _slices(counts):
            self._cover(hits, hit[p], cand[p], t0[p], counts[p])

    def _ranges(self, hits, hit, cand, peak_only):
        """The steps t0 .. t0 + count - 1 where each candidate's path may meet its hit's
        coverage: its line is a + b * t from the hit's, within low .. high."""
        start, slope, low, high = self.coverage(hits, peak_only).line
        a = self.chan[cand] - start[hit]
        b = self.delta[cand] * (1.0 / (self.n - 1)) - slope[hit]
        b = np.where(b == 0, 1e-300, b)  # parallel: all steps or none
        with np.errstate(over="ignore"):
            u, v = (low[hit] - a) / b, (high[hit] - a) / b
        t0 = np.maximum(np.ceil(np.minimum(u, v) - 1e-9), 0)
        t1 = np.minimum(np.floor(np.maximum(u, v) + 1e-9), self.n_time - 1)
        counts = np.maximum(t1 - t0 + 1, 0).astype(np.intp)
        return np.where(counts > 0, t0, 0).astype(np.intp), counts

    def _covered(self, hits, hit, cand, t0, counts, peak_only):
        """(pair, t, channel, [hit, t] index, channel - low) of the steps the hits cover."""
        n_time, cov = self.n_time, self.coverage(hits, peak_only)
        t, pair = _expand(t0, counts)
        path = np.repeat((self.delta[cand] + self.max_drift) * n_time, counts) + t
        col = np.repeat(self.chan[cand], counts) + self.offsets[path]
        at = np.repeat(hit * n_time, counts) + t
        rel = col - cov.low[at]
        covered = rel.astype(np.uintp) <= cov.width[at]  # (negative: past the width)
        odd = np.flatnonzero(cov.split[at])
        if odd.size:  # where the bands leave a gap, band by band
            c = col[odd, None]
            covered[odd] = ((c >= cov.lows[at[odd]]) & (c <= cov.highs[at[odd]])).any(axis=1)
        keep = np.flatnonzero(covered)
        return pair[keep], t[keep], col[keep], at[keep], rel[keep]

    def _cover(self, hits, hit, cand, t0, counts):
        n_time, n_chans = self.power.shape
        pair, t, col, at, rel = self._covered(hits, hit, cand, t0, counts, False)
        if pair.size == 0:
            return
        j = cand[pair]
        cell = j * n_time + t
        new = np.ones(len(pair), dtype=bool)
        seen = np.flatnonzero((self.covered[cand] > 0)[pair])  # covered before: which steps are free
        new[seen] = self.free[cell[seen]]
        if not new.all():
            keep = np.flatnonzero(new)
            pair, t, col, at, rel, j, cell = pair[keep], t[keep], col[keep], at[keep], rel[keep], j[keep], cell[keep]
            if pair.size == 0:
                return
        table = self.coverage(hits, False).table
        if table is not None:
            values = table[0].take(at * table[1] + rel)
        else:
            values = self.power.reshape(-1).take(t * n_chans + col)
        runs, lengths = _runs(pair)  # a candidate's steps are together
        touched = j[runs]
        self.covered_sum[touched] += np.add.reduceat(values.astype(np.float64), runs)
        self.covered[touched] += lengths
        dead = self.residual(touched, self.covered_sum[touched], self.covered[touched]) <= self.snr_min
        self.alive[touched[dead]] = False
        if not dead.all():  # the covered steps of those alive are no longer free
            self.free[cell[np.repeat(~dead, lengths)]] = False


def _slices(counts):
    """Slices of the pairs with about SLICE steps each."""
    total = int(counts.sum())
    if total <= SLICE:
        return [slice(0, len(counts))] if total else []
    cuts = np.searchsorted(np.cumsum(counts), np.arange(SLICE, total, SLICE), side="right").tolist()
    bounds = sorted(set([0] + cuts + [len(counts)]))
    return [slice(i, j) for i, j in zip(bounds[:-1], bounds[1:])]
