"""dedoppler_echoes: which candidates are echoes of hits, checked step by step."""

import numpy as np
import pytest

from udfs.dedoppler import comp_stats
from udfs.dedoppler_echoes import Echoes
from udfs.dedoppler_tracks import measure
from udfs.dedoppler_tree import path_offsets

N, MAX_DRIFT = 32, 127
PATHS = path_offsets(N, MAX_DRIFT)
T = np.arange(N)


def path_sum(power, delta, chan):
    return power[T, chan + PATHS[delta + MAX_DRIFT]].astype(np.float32).sum()


def echoes_of(power, cells, snr_min=10.0):
    """Echoes over the candidate cells [(delta, chan), ...] with their path sums."""
    delta = np.array([c[0] for c in cells])
    chan = np.array([c[1] for c in cells])
    value = np.array([path_sum(power, d, c) for d, c in cells], dtype=np.float32)
    median, std = comp_stats(power.sum(axis=0))
    return Echoes(power, delta, chan, value, N, PATHS, MAX_DRIFT, median, std, snr_min)


def hits_at(power, echoes, cells):
    """The measured hits of the tree cells [(delta, chan), ...]."""
    delta = np.array([c[0] for c in cells])
    chan = np.array([c[1] for c in cells])
    m = measure(power, delta, chan, N, PATHS, MAX_DRIFT, echoes.median, echoes.std, echoes.snr_min)
    m.update(peak_start=chan, peak_delta=delta)
    return m


def covered_steps(hits, h, delta, chan):
    """The steps where the path of (delta, chan) is on hit h's tracks (each with its width and
    +-1 channel) or its measured line (+-1.5 channels past its width), one step at a time."""
    cols = chan + PATHS[delta + MAX_DRIFT]
    lo, hi = hits["lo"][h], hits["hi"][h]
    offset = (hits["lo_half"][h] + hits["hi_half"][h]) / 2
    line = hits["centre"][h] + hits["drift"][h] * T / (N - 1)
    out = set()
    for t in range(N):
        for track in (hits["peak_track"][h], hits["track"][h]):
            if lo - 1 <= cols[t] - track[t] <= hi + 1:
                out.add(t)
        if lo - offset - 1.5 <= cols[t] - line[t] <= hi - offset + 1.5:
            out.add(t)
    return out


@pytest.fixture(scope="module")
def field():
    """Noise with three tones: bright and wide, crossing drifts, and one far away."""
    rng = np.random.default_rng(31)
    power = rng.chisquare(8, size=(N, 3000)).astype(np.float32)
    x = np.arange(3000)
    for chan, drift, level, sigma in ((1000, 1.5, 300.0, 3.0), (1030, -1.2, 15.0, 1.0), (2200, 0.3, 20.0, 6.0)):
        for t in range(N):
            power[t] += level * np.exp(-0.5 * ((x - chan - drift * t) / sigma) ** 2)
    return power


def test_steps_are_those_covered(field):
    """The steps found (only near where the straight lines meet) are exactly those covered."""
    cells = [(46, 1000), (-37, 1030), (9, 2200)]
    echoes = echoes_of(field, cells)
    hits = hits_at(field, echoes, cells)
    rng = np.random.default_rng(32)
    hit = rng.integers(0, 3, 4000)
    cand_cells = [(int(rng.integers(-MAX_DRIFT, MAX_DRIFT + 1)), int(hits["peak_start"][h] + rng.integers(-160, 160)))
                  for h in hit]
    cand_cells = [(d, c) for d, c in cand_cells if 0 <= c + PATHS[d + MAX_DRIFT].min() and
                  c + PATHS[d + MAX_DRIFT].max() < field.shape[1]]
    hit = hit[:len(cand_cells)]
    many = echoes_of(field, cand_cells)
    pair, t, col = many.steps(hits, hit, np.arange(len(cand_cells)))
    got = {}
    for p, tt in zip(pair.tolist(), t.tolist()):
        got.setdefault(p, set()).add(tt)
    for p, (d, c) in enumerate(cand_cells):
        assert got.get(p, set()) == covered_steps(hits, hit[p], d, c), (p, d, c)
    assert len(got) > 100


def crossing_noise_cell(power, echoes, avoid):
    """The strongest cell above snr_min whose path crosses the bright tone (not along it) at
    its middle step and stays more than 10 channels from the path of ``avoid`` (delta, chan)."""
    best, found = -np.inf, None
    other = avoid[1] + PATHS[avoid[0] + MAX_DRIFT]
    for delta in [d for d in range(-MAX_DRIFT, MAX_DRIFT + 1) if abs(d - 46) >= 12]:
        for chan in range(900, 1150):
            cols = chan + PATHS[delta + MAX_DRIFT]
            if abs(cols[16] - (1000 + 1.5 * 16)) > 1 or np.abs(cols - other).min() <= 10:
                continue
            snr = (path_sum(power, delta, chan) - echoes.median) / echoes.std
            if snr > max(best, echoes.snr_min):
                best, found = snr, (delta, chan)
    return found


def test_echoes_die_and_crossing_signals_stay(field):
    """After the bright tone's hit: a parallel cell one channel off dies (all its steps
    covered), a cell crossing it on noise dies (its power was the tone's), and the tone that
    crosses it stays."""
    probe = echoes_of(field, [(46, 1000)])
    cells = [(46, 1000), (46, 1001), crossing_noise_cell(field, probe, (-37, 1030)), (-37, 1030)]
    echoes = echoes_of(field, cells)
    hits = hits_at(field, echoes, cells[:1])
    echoes.alive[0] = False
    before = [(echoes.value[i] - echoes.median) / echoes.std for i in range(1, 4)]
    assert min(before) > echoes.snr_min  # all above the threshold before the hit
    echoes.kill(hits, np.array([0]))
    assert echoes.alive.tolist() == [False, False, False, True]
    assert echoes.covered[1] == N and 0 < echoes.covered[2] < N and 0 < echoes.covered[3] < N
    residual = echoes.residual(np.array([3]), echoes.covered_sum[3:4], echoes.covered[3:4])[0]
    free = np.array(sorted(set(range(N)) - covered_steps(hits, 0, -37, 1030)))
    cols = 1030 + PATHS[-37 + MAX_DRIFT]
    frac = len(free) / N
    want = (field[free, cols[free]].astype(np.float64).sum() - echoes.median * frac) / (echoes.std * np.sqrt(frac))
    assert residual == pytest.approx(want, rel=1e-5)


def test_accept_takes_the_batch_in_order(field):
    """In a batch, the parallel echo of the first cell is not a hit; the far tone is; a cell not
    measured and still alive stops the batch there."""
    cells = [(46, 1000), (46, 1001), (9, 2200), (0, 500)]
    echoes = echoes_of(field, cells)
    batch = np.arange(4)
    hits = hits_at(field, echoes, cells)
    measured = np.array([True, True, True, False])
    accepted, stop = echoes.accept(hits, batch, measured)
    assert accepted.tolist() == [0, 2] and stop == 3
    assert echoes.alive.tolist() == [False, False, False, True]
