"""The drift-path sums of a spectrogram for all drifts at once, and their local maxima above a threshold.

turboSETI sums power along drift paths with Taylor's tree: N (a power of two) time steps give the
N drifts 0 .. N - 1 channels over the N - 1 steps; larger drifts come in "blocks" (row t first
shifted by b * t channels), negative ones from the frequency-reversed spectrogram, so +-D
channels cost 2 * (D // (N - 1) + 1) whole trees. Here the same paths (``path_offsets``) come
from one tree per direction whose levels are indexed by displacement (channels moved from a
group's first step to its last) rather than by block: the path of displacement
``b * (2m - 1) + d`` (d < 2m - 1) over 2m steps is the path of displacement ``b * (m - 1) + d // 2``
over each half, the second half starting ``b * m + (d + 1) // 2`` channels on -- turboSETI's block
b, tree drift d. A level holds only the displacements the next one needs, so the blocks share
their lower levels: for D = 127, N = 32, 552 rows of additions per direction where turboSETI's
5 trees of 5 levels add 800.

Every addition is one numpy call on contiguous memory: a level stores [displacement, group, channel]
with its groups in bit-reversed order (the first and second halves of the next level's groups are
then two contiguous blocks), and the top level adds a whole class of displacements at once, its
source's second halves stored with rows one value shorter so that the shear is contiguous too.
Channels are searched in chunks that keep the levels in the CPU's cache; the padding is
turboSETI's (zero time steps up to N, zero channels past the band). By default the plan's
additions run in C (``dedoppler_tree.c``), which spares the call per addition; the numpy run is
the reference it is tested against. The C takes them in another order (``_fused``): every other
level below the top is never stored, each of its rows made into L1-sized scratch just before
the two or three rows of the level above that add it, and each addition cut to the columns
that the additions after it read (``_trimmed``). The sums are the same additions.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from udfs import _dedoppler_tree_c

CHUNK_CHANNELS = 8192  # channels per chunk, at most (the levels of a chunk then take ~8 MiB)
COMPILED_CHUNK_CHANNELS = 512  # the same for the compiled kernel (fastest here: its levels stay in L2)


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


@lru_cache(maxsize=16)
def path_offsets(n: int, max_drift: int) -> np.ndarray:
    """[delta + D, t] (int32) channel offset at step t of the path moving delta channels
    (-D .. D) over the n - 1 steps: block b = |delta| // (n - 1) shifted by b * t, plus the
    tree's drift |delta| % (n - 1), mirrored for negative delta (turboSETI's paths)."""
    t = np.arange(n)
    delta = np.arange(-max_drift, max_drift + 1)
    block, drift = np.divmod(np.abs(delta), n - 1) if n > 1 else (np.zeros_like(delta),) * 2
    out = (np.sign(delta)[:, None] * (block[:, None] * t[None, :] + tree_offsets(n)[drift])).astype(np.int32)
    out.setflags(write=False)
    return out


def _half(delta: int, m: int) -> tuple[int, int]:
    """(displacement of each half, channel where the second half starts) of the path of
    displacement ``delta`` >= 0 over 2m steps."""
    b, d = divmod(delta, 2 * m - 1)
    return b * (m - 1) + d // 2, b * m + (d + 1) // 2


_MAX = object()  # an op of the plan: the top's maximum so far


def _bit_reversed(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    out = np.zeros(n, dtype=np.intp)
    for i in range(n):
        out[i] = int(format(i, f"0{bits}b")[::-1], 2) if bits else 0
    return out


class Plan:
    """The additions of the tree for n >= 2 steps, displacements 0 .. D, on ``width`` channels
    (the chunk plus D + 3), with buffers of its own. Load ``x`` ([position, channel]: position p
    holds time step ``steps[p]``), ``run()``, read ``top`` ([row, channel]: row r holds
    displacement ``delta_of_row[r]``; column j the paths starting at column j of x)."""

    def __init__(self, n: int, max_drift: int, width: int):
        self.n, self.max_drift, self.width = n, max_drift, width
        w, levels = width, n.bit_length() - 1
        reach = [max_drift]  # largest displacement each level needs, from the top down
        for lv in range(levels - 1, -1, -1):
            reach.append(_half(reach[-1], 1 << lv)[0])
        reach.reverse()  # reach[lv]: groups of 2**lv steps

        def size(lv):
            rows = reach[lv] + 1
            if lv == levels:
                return rows * w
            if lv == levels - 1:  # first halves, rows of w, then second halves, rows of w - 1
                return rows * w + rows * (w - 1) + 1
            return rows * (n >> lv) * w

        sizes = [0, 0]  # levels alternate between two buffers
        for lv in range(levels + 1):
            sizes[lv % 2] = max(sizes[lv % 2], size(lv))
        slack = 2 * w + max_drift + n  # reads past a level's end land here (unused columns)
        self.buffers = [np.zeros(s + slack, dtype=np.float32) for s in sizes]
        self.x = self.buffers[0][:n * w].reshape(n, w)
        self.steps = _bit_reversed(n)
        self.ops, self.raw, self._compiled = [], [], None  # raw: the ops as integers (compiled_args)
        self.raw_level, self._level = [], 1  # the level each raw op makes (a clear: the level about to be made)
        self.split_second = -1  # where the level below the top keeps its second halves
        for lv in range(levels - 1):  # groups of 2m steps from pairs of groups of m
            m, src, dst = 1 << lv, self.buffers[lv % 2], self.buffers[(lv + 1) % 2]
            self._level = lv + 1
            self._clear(src, size(lv), sizes[lv % 2])
            groups = n >> (lv + 1)  # of the level made
            block = 2 * groups * w  # one displacement of the source
            split = lv + 1 == levels - 1
            if split:
                self.split_second = (reach[lv + 1] + 1) * w
            second = (reach[lv + 1] + 1) * w  # where the made level's second halves start
            for delta in range(reach[lv + 1] + 1):
                h, s = _half(delta, m)
                a, b = h * block, h * block + groups * w + s
                if not split:
                    self._add(src, a, b, groups * w, dst, delta * groups * w)
                else:  # the group-pair that the top adds: first halves, then second halves
                    self._add(src, a, b, w, dst, delta * w)
                    self._add(src, a + w, b + w, w, dst, second + delta * (w - 1))
        m, src, dst = n // 2, self.buffers[(levels - 1) % 2], self.buffers[levels % 2]
        self._level = levels
        self._clear(src, size(levels - 1), sizes[(levels - 1) % 2])
        second = (reach[levels - 1] + 1) * w if levels > 1 else w
        rows = []
        for b in range(max_drift // (2 * m - 1) + 1):  # the top: a class of displacements at once
            for parity in (0, 1):
                first = b * (2 * m - 1) + parity
                last = min(max_drift, b * (2 * m - 1) + 2 * m - 2)
                if first > last:
                    continue
                k = (last - first) // 2 + 1
                h, s = _half(first, m)  # both grow by one with each displacement of the class
                self._add(src, h * w, second + h * (w - 1) + s, k * w, dst, len(rows) * w)
                self.ops.append((_MAX, self.ops[-1][2].reshape(k, w), None))  # while it is in the cache
                rows += range(first, last + 1, 2)
        self.delta_of_row = np.array(rows, dtype=np.intp)
        self.row_of_delta = np.argsort(self.delta_of_row)
        # turboSETI's blocks of N - 1 drifts: the last of a block is not compared with the next
        self.block_ends = np.flatnonzero((np.arange(max_drift) % (n - 1) == 0) & (np.arange(max_drift) > 0))
        self.top = dst[:(max_drift + 1) * w].reshape(max_drift + 1, w)
        self.best, self.part = np.zeros(w, dtype=np.float32), np.zeros(w, dtype=np.float32)

    def _id(self, buffer) -> int:
        return 0 if buffer is self.buffers[0] else 1

    def _add(self, src, a: int, b: int, length: int, dst, out: int):
        self.ops.append((src[a:a + length], src[b:b + length], dst[out:out + length]))
        self.raw.append((0, self._id(src), a, b, self._id(dst), out, length))
        self.raw_level.append(self._level)

    def _clear(self, buffer, end: int, largest: int):
        """Zero what a level's reads past its end reach, where a larger level left its values
        (only columns past the paths that count read them, but they must not grow run by run)."""
        if end < largest:
            length = self.width + self.max_drift + self.n + 8
            self.ops.append((None, None, buffer[end:end + length]))
            self.raw.append((1, self._id(buffer), end, 0, 0, 0, length))
            self.raw_level.append(self._level)

    def compiled_args(self) -> tuple:
        """The plan as the compiled kernel reads it (``_dedoppler_tree_c.peaks``' plan arguments):
        its additions in the order of ``_fused``, with three buffers."""
        if self._compiled is None:
            block_end = np.zeros(self.max_drift + 1, dtype=np.uint8)
            block_end[self.block_ends] = 1
            ops, sizes, top_buffer, (split_op, top_op) = _fused(self)
            raw = np.array(ops, dtype=np.int64).reshape(-1, 7)
            self._compiled = (raw, len(raw), *sizes, top_buffer, self.steps.astype(np.int64),
                              self.row_of_delta.astype(np.int64), block_end, split_op, self.split_second, top_op)
        return self._compiled

    def run(self) -> np.ndarray:
        """The top level; ``best`` is its maximum over displacements, per column."""
        add, maximum, best, started = np.add, np.maximum, self.best, False
        for a, b, out in self.ops:
            if a is None:
                out.fill(0)
            elif a is _MAX:
                if started:
                    maximum.reduce(b, axis=0, out=self.part)
                    maximum(best, self.part, out=best)
                else:
                    maximum.reduce(b, axis=0, out=best)
                    started = True
            else:
                add(a, b, out=out)
        return self.top


SCRATCH = 2  # the compiled kernel's third buffer: rows made just before the rows that add them


def _fused(plan: Plan) -> tuple[list, list, int, list]:
    """The plan's additions for the compiled kernel, with every other level below the top's
    (levels 1, 3, ... that a stored level adds) never stored: each row of the level above is
    made from two of that level's rows, which are made just before it into two rows of scratch
    (buffer ``SCRATCH``, in the core's L1 cache) rather than read back from the level's buffer
    in L2. The rows that add the same two are made one after the other (by position, then
    displacement, then as the plan orders them), so a pair is made once; a level's rows take
    the same two rows and columns as in the plan, so every sum is the plan's. The stored levels
    alternate between buffers 0 (x) and 1. Returns (ops, buffer sizes, the top's buffer, [the
    first op of the level below the top or -1, the first op of the top])."""
    n, w, levels = plan.n, plan.width, plan.n.bit_length() - 1
    adds = {}
    for op, lv in zip(plan.raw, plan.raw_level):
        if op[0] == 0:
            adds.setdefault(lv, []).append(op)
    temps = set(range(1, levels - 1, 2))  # each added by the level above it, at most the one below the top
    buffer_of, last = {0: 0}, 0
    for lv in range(1, levels + 1):
        if lv in temps:
            buffer_of[lv] = SCRATCH
        else:
            buffer_of[lv], last = 1 - buffer_of[last], lv
    ends = {0: n * w} | {lv: max(op[5] + op[6] for op in level) for lv, level in adds.items()}
    clear_length = w + plan.max_drift + n + 8  # what reads past a level's end reach (as Plan._clear)

    def rows(op):  # an add of whole rows: (a, b, out) of each
        assert op[6] % w == 0
        return [(op[2] + r * w, op[3] + r * w, op[5] + r * w) for r in range(op[6] // w)]

    ops, part = [], []  # part: 0 below the level below the top, 1 that level, 2 the top
    top_columns = w - plan.max_drift - 1  # a top row's columns that the peaks read (0 .. chunk + 1)
    for lv in range(1, levels + 1):
        if lv in temps:
            continue
        part += [0] * (len(ops) - len(part))
        below = lv - 1
        if below not in temps:
            ops.append((1, buffer_of[below], ends[below], 0, 0, 0, clear_length))
            if lv == levels:
                ops += [(0, buffer_of[below], a, b, buffer_of[lv], out, top_columns)
                        for op in adds[lv] for a, b, out in rows(op)]
            else:
                ops += [(0, buffer_of[below], op[2], op[3], buffer_of[lv], op[5], op[6]) for op in adds[lv]]
            part += [2 if lv == levels else 1 if lv == levels - 1 else 0] * (len(ops) - len(part))
            continue
        source = below - 1
        ops.append((1, buffer_of[source], ends[source], 0, 0, 0, clear_length))
        made = {out // w: (a, b) for op in adds[below] for a, b, out in rows(op)}
        positions = n >> below  # of the level not stored
        users = [(a // w, b // w, b % w, out, k) for k, op in enumerate(adds[lv]) for a, b, out in rows(op)]
        assert all(a % w == 0 for op in adds[lv] for a, _, _ in rows(op))  # (a first half: a whole row)
        users.sort(key=lambda u: (u[0] % positions, u[0] // positions, u[4], u[3]))
        pair = None
        for first, second, shift, out, _ in users:
            if (first, second) != pair:
                for slot, row in ((0, first), (1, second)):
                    ops.append((0, buffer_of[source], *made[row], SCRATCH, slot * w, w))
                pair = (first, second)
            ops.append((0, SCRATCH, 0, w + shift, buffer_of[lv], out, w))
        part += [1 if lv == levels - 1 else 0] * (len(ops) - len(part))
    sizes = [0, 0, 3 * w]  # scratch: two rows, and zeros past them for the second's shifted read
    for op in ops:
        if op[0] == 0:
            sizes[op[1]] = max(sizes[op[1]], max(op[2], op[3]) + op[6])
            sizes[op[4]] = max(sizes[op[4]], op[5] + op[6])
        else:
            sizes[op[1]] = max(sizes[op[1]], op[2] + op[6])
    sizes[0] = max(sizes[0], n * w)
    top = buffer_of[levels]
    sizes[top] = max(sizes[top], (plan.max_drift + 1) * w)  # (the top's rows: whole rows apart)
    ops, part = _trimmed(ops, part, sizes, n * w, w)
    marks = [part.index(1) if 1 in part else -1, part.index(2)]
    return ops, sizes, buffer_of[levels], marks


def _trimmed(ops: list, part: list, sizes: list, x_size: int, w: int) -> tuple[list, list]:
    """The ops with each add below the top cut to the columns that the ops after it read (the
    top's rows, from the end back): a row of the level below the top is read up to the top's
    columns plus its shift, and so on down, so the lower levels need fewer columns than the
    chunk's width. An add's whole output is taken as read by what comes before it, so every
    value made, read or not, comes from values made in the same chunk; what is read and made by
    no op must be x (loaded) or the scratch past its two rows (zeros): checked here."""
    needed = [np.zeros(size, dtype=bool) for size in sizes]
    kept = []
    for op, where in zip(reversed(ops), reversed(part)):
        kind, src, a, b, dst, out, length = op
        if kind == 1:
            needed[src][a:a + length] = False
            kept.append((op, where))
            continue
        if where != 2:  # (the top's rows are what the search reads)
            made = np.flatnonzero(needed[dst][out:out + length])
            if made.size == 0:
                continue
            length = int(made[-1]) + 1
        needed[dst][out:out + length] = False
        needed[src][a:a + length] = True
        needed[src][b:b + length] = True
        kept.append(((kind, src, a, b, dst, out, length), where))
    if needed[0][x_size:].any() or needed[1].any() or needed[SCRATCH][:2 * w].any():  # (a bug in the plan)
        raise AssertionError("the compiled tree would read a value that no op of the chunk made")
    kept.reverse()
    return [op for op, _ in kept], [where for _, where in kept]


_local = threading.local()


@lru_cache(maxsize=8)
def compiled_plan(n: int, max_drift: int, width: int) -> Plan:
    """A plan of this shape for the compiled kernel, which reads only its ops (the kernel keeps
    level buffers of its own, per thread), so one plan serves every thread."""
    plan = Plan(n, max_drift, width)
    plan.compiled_args()
    return plan


def plan_for(n: int, max_drift: int, width: int) -> Plan:
    """A plan of this shape for this thread (plans own their buffers); the last few are kept."""
    cache = getattr(_local, "plans", None)
    if cache is None:
        cache = _local.plans = {}
    key = (n, max_drift, width)
    plan = cache.pop(key, None) or Plan(n, max_drift, width)
    cache[key] = plan
    while len(cache) > 2:
        cache.pop(next(iter(cache)))
    return plan


def taylor_sums(x: np.ndarray) -> np.ndarray:
    """Sums of ``x`` [N, W] (N a power of two) along the tree's drift paths: [d, f] is the sum
    over t of x[t, f + tree_offsets(N)[d, t]] (zero past column W - 1)."""
    n, width = x.shape
    if n == 1:
        return np.array(x, dtype=np.float32)
    plan = Plan(n, n - 1, width + n + 2)
    plan.x[:, 1:width + 1] = x[plan.steps]
    return plan.run()[plan.row_of_delta, 1:width + 1].copy()


def _load(plan: Plan, data: np.ndarray, first: int):
    """x = data's channels first - 1 .. (zero outside the band and past its steps)."""
    x, n_time, n_chans = plan.x, data.shape[0], data.shape[1]
    lo = first - 1
    a, b = max(0, lo), min(n_chans, lo + plan.width)
    if a == lo and b == lo + plan.width and n_time == plan.n:
        np.take(data[:, a:b], plan.steps, axis=0, out=x, mode="clip")
        return
    x[:] = 0
    for pos, t in enumerate(plan.steps):
        if t < n_time:
            x[pos, a - lo:b - lo] = data[t, a:b]


def _peaks(top: np.ndarray, plan: Plan, span: int, threshold: np.float32):
    """(displacement, column, value) of the cells of top's columns 1 .. span above threshold that
    are >= their 4 neighbours on turboSETI's grids: channels +-1, and displacements +-1 in the
    same block of N - 1 (a block's last displacement, a multiple of N - 1, has none above)."""
    best = plan.best[:span + 2]
    cols = np.flatnonzero(best > threshold)  # the columns with a cell above the threshold
    if not ((cols >= 1) & (cols <= span)).any():
        return None
    sub = top[:, cols][plan.row_of_delta]  # [displacement, column]
    peak = sub > threshold
    # channel neighbours: a column not in cols has no cell above the threshold
    after = cols[1:] == cols[:-1] + 1
    peak[:, :-1] &= (sub[:, :-1] >= sub[:, 1:]) | ~after
    peak[:, 1:] &= (sub[:, 1:] >= sub[:, :-1]) | ~after
    peak[:, (cols == 0) | (cols == span + 1)] = False  # the neighbouring chunks' columns
    # displacement neighbours
    peak[1:] &= sub[1:] >= sub[:-1]
    below = sub[:-1] >= sub[1:]
    below[plan.block_ends] = True
    peak[:-1] &= below
    at = np.flatnonzero(peak)  # (np.nonzero of a 2-d array is much slower)
    delta, i = np.divmod(at, cols.size)
    return delta, cols[i], sub.reshape(-1)[at]


def drift_sums_above(power: np.ndarray, max_drift: int, threshold: float, compiled: bool = True):
    """The drift-path cells of ``power`` [n_time, n_chans] (float32, C order) whose sum is above
    ``threshold``, is a local maximum (``_peaks``, in each direction), and whose path stays in
    the band: (displacement -D .. D, start channel, float32 sum) arrays, positive displacements
    first, each direction by chunk of channels, then displacement. Zero drift is searched once.

    ``compiled`` runs the plan's additions and the peak test in C (``dedoppler_tree.c``), on
    chunks of ``COMPILED_CHUNK_CHANNELS`` that keep a chunk's levels in the core's L2 cache; the
    cells, their order and their sums are those of the numpy path."""
    n_time, n_chans = power.shape
    n = 1 << max(1, (n_time - 1).bit_length())
    chunk = min(n_chans, COMPILED_CHUNK_CHANNELS if compiled else CHUNK_CHANNELS)
    chunk = -(-n_chans // -(-n_chans // chunk))  # equal chunks
    offsets = path_offsets(n, max_drift)[max_drift:, :n_time]  # displacements 0 .. D
    reach = offsets.max(axis=1)
    threshold = np.float32(threshold)
    if compiled:
        plan = compiled_plan(n, max_drift, chunk + max_drift + 3)
        *ops, split_op, split_second, top_op = plan.compiled_args()
        delta, chan, value = _dedoppler_tree_c.peaks(
            np.ascontiguousarray(power, dtype=np.float32), n_time, n_chans, n, plan.width, chunk, max_drift,
            *ops, reach.astype(np.int64), float(threshold), split_op, split_second, top_op)
        return (np.frombuffer(delta, np.int64).copy(), np.frombuffer(chan, np.int64).copy(),
                np.frombuffer(value, np.float32).copy())
    plan = plan_for(n, max_drift, chunk + max_drift + 3)
    found = []
    for sign, data in ((1, power), (-1, power[:, ::-1])):
        for c0 in range(0, n_chans, chunk):
            _load(plan, data, c0)
            span = min(chunk, n_chans - c0)
            peaks = _peaks(plan.run(), plan, span, threshold)
            if peaks is None:
                continue
            delta, j, value = peaks
            start = c0 - 1 + j  # in this direction's channel order
            keep = start + reach[delta] < n_chans  # the path stays in the band
            if sign == -1:
                keep &= delta > 0
            delta, start, value = delta[keep], start[keep], value[keep]
            found.append((sign * delta, start if sign == 1 else n_chans - 1 - start, value))
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    delta, chan, value = (np.concatenate(p) for p in zip(*found))
    return delta.astype(np.int64), chan.astype(np.int64), value
