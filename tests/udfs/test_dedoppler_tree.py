"""dedoppler_tree: turboSETI's drift paths summed for all drifts in one tree, checked against
sums taken path by path, and the candidate cells against a plain scan of the whole grid."""

import numpy as np
import pytest

from udfs import dedoppler_tree
from udfs.dedoppler_tree import Plan, drift_sums_above, path_offsets, tree_offsets


@pytest.mark.parametrize("n, max_drift", [(2, 5), (4, 0), (8, 30), (16, 100), (32, 127)])
def test_paths_are_turbosetis_blocks(n, max_drift):
    """Path delta moves delta channels over the n - 1 steps, by b or b + 1 channels a step in
    block b = |delta| // (n - 1), follows the tree's path for |delta| < n, and mirrors for
    negative delta."""
    paths = path_offsets(n, max_drift)
    for delta in range(-max_drift, max_drift + 1):
        p = paths[delta + max_drift]
        assert p[0] == 0 and p[-1] == delta
        block = abs(delta) // (n - 1)
        assert set(np.diff(np.sign(delta) * p)) <= {block, block + 1}
        np.testing.assert_array_equal(p, -paths[-delta + max_drift])
        if 0 <= delta < n:
            np.testing.assert_array_equal(p, tree_offsets(n)[delta])


def _path_sums(power, max_drift, n):
    """[delta + D, channel] sum of power along each path (zero past the band), and whether the
    path stays in the band."""
    n_time, n_chans = power.shape
    paths = path_offsets(n, max_drift)[:, :n_time]
    sums = np.zeros((2 * max_drift + 1, n_chans), dtype=np.float32)
    inside = np.zeros(sums.shape, dtype=bool)
    for r, p in enumerate(paths):
        for f in range(n_chans):
            cols = f + p
            ok = (cols >= 0) & (cols < n_chans)
            sums[r, f] = power[np.arange(n_time)[ok], cols[ok]].sum()
            inside[r, f] = ok.all()
    return sums, inside


def _local_maxima(sums, inside, max_drift, n, threshold):
    """Cells above threshold, >= the cells beside them (channels +-1) and at the next drifts in
    the same direction, except past the last drift of one of turboSETI's blocks."""
    found = set()
    n_chans = sums.shape[1]
    for r in range(sums.shape[0]):
        delta = r - max_drift
        for f in range(n_chans):
            v = sums[r, f]
            if not inside[r, f] or v <= threshold:
                continue
            beside = [sums[r, g] for g in (f - 1, f + 1) if 0 <= g < n_chans]
            nexts = [abs(delta) - 1] if delta else []
            if abs(delta) % (n - 1) or delta == 0:
                nexts.append(abs(delta) + 1)
            for d in nexts:
                if 0 <= d <= max_drift:
                    beside.append(sums[max_drift + (d if delta >= 0 else -d), f])
            if all(v >= b for b in beside):
                found.add((delta, f))
    return found


@pytest.mark.parametrize("n_time, n_chans, max_drift, chunk", [
    (32, 300, 127, 8192), (32, 700, 40, 256), (16, 400, 100, 128), (5, 300, 30, 100), (2, 60, 7, 16),
    (3, 90, 9, 30), (4, 64, 0, 8192)])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_cells_are_the_local_maxima_of_the_path_sums(n_time, n_chans, max_drift, chunk, compiled, monkeypatch):
    monkeypatch.setattr(dedoppler_tree, "CHUNK_CHANNELS", chunk)  # several chunks, and their edges
    monkeypatch.setattr(dedoppler_tree, "COMPILED_CHUNK_CHANNELS", chunk)
    rng = np.random.default_rng(n_time * 1000 + n_chans)
    power = rng.random((n_time, n_chans)).astype(np.float32)
    n = 1 << max(1, (n_time - 1).bit_length())
    sums, inside = _path_sums(power, max_drift, n)
    threshold = float(np.quantile(sums[inside], 0.97))
    delta, chan, value = drift_sums_above(power, max_drift, threshold, compiled=compiled)
    np.testing.assert_allclose(value, sums[delta + max_drift, chan], rtol=1e-5)
    assert set(zip(delta.tolist(), chan.tolist())) == _local_maxima(sums, inside, max_drift, n, threshold)
    assert len(delta) > 0


def test_a_plan_keeps_nothing_from_one_run_to_the_next():
    """A plan's buffers are reused chunk after chunk: each run's sums are those of its input."""
    rng = np.random.default_rng(3)
    plan = Plan(32, 127, 600)
    a, b = (rng.random(plan.x.shape).astype(np.float32) * 1e6 for _ in range(2))
    plan.x[:] = a
    first = plan.run().copy()
    for _ in range(50):
        plan.x[:] = b
        plan.run()
    plan.x[:] = a
    np.testing.assert_array_equal(plan.run(), first)
    assert np.isfinite(plan.top).all()
    np.testing.assert_array_equal(plan.best, first.max(axis=0))


def test_a_tone_is_found_at_its_drift():
    """A tone moving 50 channels over 32 steps (block 1 of turboSETI's) in noise: the strongest
    cell is its path."""
    rng = np.random.default_rng(4)
    power = rng.random((32, 2000)).astype(np.float32)
    path = 800 + path_offsets(32, 127)[127 + 50]
    power[np.arange(32), path] += 10
    delta, chan, value = drift_sums_above(power, 127, 32 * 0.5 + 100)
    best = np.argmax(value)
    assert (delta[best], chan[best]) == (50, 800)


@pytest.mark.parametrize("n_time, n_chans, max_drift, chunk", [
    (32, 5000, 127, 512), (32, 3000, 127, 8192), (16, 2000, 60, 300), (7, 1000, 20, 128), (2, 500, 3, 64),
    (64, 3000, 250, 512), (40, 1500, 70, 256), (128, 1200, 300, 256)])
def test_the_compiled_kernel_finds_the_numpy_paths_cells(n_time, n_chans, max_drift, chunk, monkeypatch):
    """The same cells, in the same order, with the same float32 sums (the same additions), on
    noise with tones, whatever the chunk; and again after a larger and a smaller search have
    used the kernel's kept buffers."""
    monkeypatch.setattr(dedoppler_tree, "CHUNK_CHANNELS", chunk)
    monkeypatch.setattr(dedoppler_tree, "COMPILED_CHUNK_CHANNELS", chunk)
    rng = np.random.default_rng(n_chans)
    power = rng.chisquare(4, (n_time, n_chans)).astype(np.float32) * 1e5
    n = 1 << max(1, (n_time - 1).bit_length())
    paths = path_offsets(n, max_drift)[:, :n_time]
    for c in range(50, n_chans - max_drift - 50, 400):
        power[np.arange(n_time), c + paths[rng.integers(0, 2 * max_drift + 1)]] += 2e6
    threshold = float(power.sum(axis=0).mean() + 4 * power.sum(axis=0).std())
    expected = drift_sums_above(power, max_drift, threshold, compiled=False)
    assert len(expected[0]) > 0
    for other in ((32, 20000), (4, 100)):
        drift_sums_above(rng.random(other, dtype=np.float32), min(max_drift, 10), 0.0)
        got = drift_sums_above(power, max_drift, threshold)
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("offset, sigmas", [(0.0, 10.0), (0.0, 6.0), (-3e5, 10.0), (-3e5, -40.0)])
def test_chunks_of_noise_give_the_same_cells(offset, sigmas, monkeypatch):
    """Where no cell of a chunk can be above the threshold (the largest half-sums of the level
    below the top add up to no more), the compiled kernel does not make the chunk's top: the
    cells are still the numpy path's, with two tones among chunks of noise, with power below
    zero, and with a threshold below zero (no chunk skipped)."""
    monkeypatch.setattr(dedoppler_tree, "CHUNK_CHANNELS", 512)  # (the order of the cells is by chunk)
    monkeypatch.setattr(dedoppler_tree, "COMPILED_CHUNK_CHANNELS", 512)
    rng = np.random.default_rng(int(sigmas) + 100)
    n_time, n_chans, max_drift = 32, 12000, 127
    power = rng.chisquare(2, (n_time, n_chans)).astype(np.float32) * 1e5 + np.float32(offset)
    paths = path_offsets(32, max_drift)
    for c, delta in ((600, 40), (9000, -90)):
        power[np.arange(n_time), c + paths[max_drift + delta]] += 3e6
    spectrum = power.sum(axis=0)
    threshold = float(np.median(spectrum) + sigmas * spectrum.std())
    expected = drift_sums_above(power, max_drift, threshold, compiled=False)
    assert len(expected[0]) > 0
    for a, b in zip(drift_sums_above(power, max_drift, threshold), expected):
        np.testing.assert_array_equal(a, b)


def test_the_compiled_kernel_refuses_a_plan_out_of_its_buffers():
    """A plan the kernel would read or write past its buffers with is a ValueError, not a crash."""
    from udfs import _dedoppler_tree_c

    plan = dedoppler_tree.compiled_plan(32, 127, 512 + 130)
    raw, n_ops, size0, size1, size2, top_buffer, steps, rows, ends, split_op, split_second, top_op = plan.compiled_args()
    power = np.zeros((32, 512), dtype=np.float32)
    reach = path_offsets(32, 127)[127:].max(axis=1).astype(np.int64)
    args = [power, 32, 512, 32, plan.width, 512, 127, raw, n_ops, size0, size1, size2, top_buffer, steps, rows, ends,
            reach, 1.0, split_op, split_second, top_op]
    assert _dedoppler_tree_c.peaks(*args)[0] == b""
    with pytest.raises(ValueError, match="first op is out of the plan"):  # the level below after the top
        _dedoppler_tree_c.peaks(*args[:-3], top_op + 1, split_second, top_op)
    bad = raw.copy()
    bad[-1, 6] = size1 * 2  # an add longer than its buffer
    with pytest.raises(ValueError, match="out of its buffers"):
        _dedoppler_tree_c.peaks(*args[:7], bad, *args[8:])
    with pytest.raises(ValueError, match="too small"):  # rows wider than the plan's
        _dedoppler_tree_c.peaks(*args[:4], plan.width + 1000, *args[5:])
    with pytest.raises(ValueError, match="bytes"):
        _dedoppler_tree_c.peaks(power[:, :100].copy(), *args[1:])


@pytest.mark.parametrize("n, max_drift", [(32, 127), (16, 60), (64, 250)])
def test_the_compiled_order_adds_fewer_columns_through_scratch(n, max_drift):
    """The kernel's op list (dedoppler_tree._fused): every other level below the top goes through
    the scratch rows (buffer 2) only, no add reads the buffer it writes, and the cut to the
    columns read later leaves fewer additions than the plan's own."""
    plan = dedoppler_tree.Plan(n, max_drift, 512 + max_drift + 3)
    raw = plan.compiled_args()[0]
    adds = raw[raw[:, 0] == 0]
    assert (adds[:, 1] != adds[:, 4]).all()
    assert (adds[:, 4] == dedoppler_tree.SCRATCH).any() and (adds[:, 1] == dedoppler_tree.SCRATCH).any()
    planned = sum(op[6] for op in plan.raw if op[0] == 0)
    assert adds[:, 6].sum() < 0.95 * planned
