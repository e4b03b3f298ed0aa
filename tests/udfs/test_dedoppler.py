"""dedoppler: truth from setigen (a third-party simulator) in chi-squared noise and in real GBT data."""

import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import REAL_DATA
from udfs.dedoppler import HITS_TYPE, comp_stats, find_hits, percentiles, taylor_sums, tree_offsets
from udfs.registry import call, evaluate, get

stg = pytest.importorskip("setigen", reason="setigen (a dev dependency) is needed to simulate signals")
u = pytest.importorskip("astropy.units")

GBT_FIL = REAL_DATA / "seti" / "setigen_sample_gbt_cband.fil"
DF_HZ, DT_S = 1.3969838619232178, 1.431655765333332  # the GBT C-band cut-out's channels and steps
N_TIME, N_CHANS = 32, 1024
DRIFT_STEP = DF_HZ / ((N_TIME - 1) * DT_S)
SNR_MIN, MAX_DRIFT = 10.0, 4.0


def noise_frame(seed: int):
    frame = stg.Frame(fchans=N_CHANS, tchans=N_TIME, df=DF_HZ * u.Hz, dt=DT_S * u.s, fch1=6000 * u.MHz,
                      ascending=True, seed=seed)
    frame.add_noise(x_mean=10, noise_type="chi2")
    return frame


@pytest.fixture(scope="module")
def gbt():
    if not GBT_FIL.exists():
        pytest.skip(f"real GBT filterbank not found at {GBT_FIL}")
    frame = stg.Frame(waterfall=str(GBT_FIL))  # blimpy reads it; setigen keeps frequency ascending
    assert frame.data.shape == (N_TIME, N_CHANS)
    return frame


def gbt_frame(gbt):
    frame = stg.Frame.from_data(gbt.df, gbt.dt, gbt.fmin, True, gbt.data.copy())
    # the file's noise, sigma-clipped (the values setigen's own tests assert for this file)
    frame.noise_mean, frame.noise_std = 461739.75, 217443.1
    return frame


def inject(frame, chan: int, drift_hz_s: float, snr: float, width_hz: float) -> float:
    f_start = frame.get_frequency(index=chan)
    frame.add_signal(stg.constant_path(f_start=f_start, drift_rate=drift_hz_s * u.Hz / u.s),
                     stg.constant_t_profile(level=frame.get_intensity(snr=snr)),
                     stg.gaussian_f_profile(width=width_hz * u.Hz), stg.constant_bp_profile(level=1))
    return f_start


def hits_of(frame, snr_min=SNR_MIN):
    return find_hits(frame.data.astype(np.float32), frame.dt, frame.fmin, frame.df, MAX_DRIFT, snr_min)


def matches(hits, f_start, drift_hz_s, drift_steps=1.0):
    return [h for h in hits if abs(h["freq_hz"] - f_start) <= DF_HZ * 1.001
            and abs(h["drift_hz_s"] - drift_hz_s) <= drift_steps * DRIFT_STEP * 1.001]


# ---- the Taylor tree ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32])
def test_taylor_tree_sums_its_paths(n):
    rng = np.random.default_rng(n)
    x = rng.random((n, 40)).astype(np.float32)
    sums = taylor_sums(np.pad(x, ((0, 0), (0, n))))
    offsets = tree_offsets(n)
    for d in range(n):
        assert offsets[d, 0] == 0 and offsets[d, -1] == d  # drift d moves d channels over n - 1 steps
        assert np.all(np.diff(offsets[d]) >= 0) and np.all(np.diff(offsets[d]) <= 1)
        want = [x[np.arange(n), f + offsets[d]].sum() for f in range(40 - n)]
        np.testing.assert_allclose(sums[d, :40 - n], want, rtol=1e-5)


@pytest.mark.parametrize("kind", ["chi2", "ties", "normal", "lognormal"])
def test_percentiles_are_numpys_to_the_bit(kind):
    """comp_stats' percentiles (order statistics picked in C, numpy's interpolation) equal
    np.percentile exactly, on spectra of many sizes, with ties, negative and tiny values."""
    rng = np.random.default_rng(len(kind))
    for _ in range(25):
        n = int(rng.integers(4096, 40000))
        v = {"chi2": lambda: rng.chisquare(2, n) * 1e6, "ties": lambda: rng.integers(-5, 5, n) * 0.5,
             "normal": lambda: rng.standard_normal(n), "lognormal": lambda: np.exp(rng.standard_normal(n) * 3)}[kind]()
        v = v.astype(np.float32)
        for q in ([5, 50, 95], [0, 100, 33.3, 99.99]):
            np.testing.assert_array_equal(percentiles(v, q), np.percentile(v, q))
    small = rng.random(10).astype(np.float32)  # below the C's size, and non-finite: numpy itself
    np.testing.assert_array_equal(percentiles(small, [5, 50, 95]), np.percentile(small, [5, 50, 95]))
    big = rng.random(5000).astype(np.float32)
    big[7] = np.inf
    np.testing.assert_array_equal(percentiles(big, [5, 50, 95]), np.percentile(big, [5, 50, 95]))


def test_comp_stats_is_turboseti_median_and_trimmed_std():
    values = np.arange(1000, dtype=np.float64)
    median, std = comp_stats(values)
    low, high = np.percentile(values, [5, 95])
    assert median == 499.5 and std == pytest.approx(values[(values >= low) & (values <= high)].std())
    # float32 spectra (the search's) take the std in C, in float64: numpy's, to rounding
    rng = np.random.default_rng(2)
    for spectrum in (rng.chisquare(64, 131072).astype(np.float32) * 1e5, (values - 300).astype(np.float32)):
        median, std = comp_stats(spectrum)
        low, want_median, high = np.percentile(spectrum, [5, 50, 95])
        kept = spectrum[(spectrum >= low) & (spectrum <= high)].astype(np.float64)
        assert median == want_median and std == pytest.approx(kept.std(), rel=1e-12)


# ---- recall on setigen truth ---------------------------------------------------------------------


CASES = [(snr, width, k) for snr in (15, 20, 30, 60, 100) for width in (1.5, 3.0, 6.0) for k in range(2)]


def _case(rng):
    return float(rng.uniform(-MAX_DRIFT, MAX_DRIFT)), int(rng.integers(200, N_CHANS - 200))


def test_recall_in_chi2_noise():
    """Every injected tone, SNR 15-100, drift -4..4 Hz/s, 1.5-6 Hz wide, is found within one channel
    and one drift step, and is the only hit of its frame."""
    rng = np.random.default_rng(8)
    for snr, width, _ in CASES:
        drift, chan = _case(rng)
        frame = noise_frame(int(rng.integers(2**31)))
        f_start = inject(frame, chan, drift, snr, width)
        hits = hits_of(frame)
        assert len(matches(hits, f_start, drift)) == 1, (snr, width, drift, chan, hits)
        assert len(hits) == 1, (snr, width, drift, chan, hits)


def test_recall_in_real_gbt_background(gbt):
    rng = np.random.default_rng(9)
    assert hits_of(gbt_frame(gbt)) == []  # the cut-out itself has nothing above SNR 10
    for snr, width, _ in CASES:
        drift, chan = _case(rng)
        frame = gbt_frame(gbt)
        f_start = inject(frame, chan, drift, snr, width)
        hits = hits_of(frame)
        assert len(matches(hits, f_start, drift)) == 1, (snr, width, drift, chan, hits)


def test_wide_signals_within_two_drift_steps(gbt):
    """12 Hz (8.6 channels) wide tones: their SNR plateau spans drifts; found within one channel and
    two drift steps (the tolerance for narrow tones is one step)."""
    rng = np.random.default_rng(10)
    for snr in (15, 30, 60, 100):
        for frame in (noise_frame(int(rng.integers(2**31))), gbt_frame(gbt)):
            drift, chan = _case(rng)
            f_start = inject(frame, chan, drift, snr, 12.0)
            assert len(matches(hits_of(frame), f_start, drift, drift_steps=2)) == 1


def test_false_positives_on_pure_noise():
    """20 frames of chi-squared noise, 32 x 1024, +-4 Hz/s: the false hits above SNR 10 are counted
    (turboSETI's SNR over-states a Gaussian's by about 1.27, the trimmed std being smaller)."""
    false_hits = sum(len(hits_of(noise_frame(seed))) for seed in range(20))
    assert false_hits <= 2, false_hits


def test_neighbouring_signals_are_all_reported():
    """Two tones 12 channels apart, and a third crossing them: turboSETI keeps only the strongest
    within +-2 * max_drift / drift_step channels (here 254); all three are hits here."""
    frame = noise_frame(11)
    truth = [(500, 0.5, 40.0), (512, 0.5, 25.0), (560, -1.2, 30.0)]
    starts = [inject(frame, chan, drift, snr, 2.0) for chan, drift, snr in truth]
    hits = hits_of(frame)
    for f_start, (_, drift, _) in zip(starts, truth):
        assert len(matches(hits, f_start, drift)) == 1, hits
    assert len(hits) == 3
    assert [h["snr"] for h in hits] == sorted((h["snr"] for h in hits), reverse=True)


def test_descending_frequency_gives_the_same_hits():
    frame = noise_frame(12)
    f_start = inject(frame, 400, -2.5, 30.0, 3.0)
    up = hits_of(frame)
    down = find_hits(frame.data[:, ::-1].astype(np.float32), frame.dt, frame.fmax, -frame.df, MAX_DRIFT, SNR_MIN)
    assert len(up) == len(down) == 1
    assert down[0]["freq_hz"] == pytest.approx(up[0]["freq_hz"], abs=DF_HZ)
    assert down[0]["drift_hz_s"] == pytest.approx(-2.5, abs=DRIFT_STEP)
    assert down[0]["chan_index"] == N_CHANS - 1 - up[0]["chan_index"]
    assert up[0]["freq_start_hz"] <= f_start <= up[0]["freq_end_hz"]
    assert up[0]["freq_start_hz"] == pytest.approx(f_start - 2.5 * (N_TIME - 1) * DT_S, abs=10 * DF_HZ)


def test_max_drift_bounds_the_search():
    frame = noise_frame(13)
    f_start = inject(frame, 300, 3.0, 50.0, 2.0)
    assert matches(hits_of(frame), f_start, 3.0)
    slow = find_hits(frame.data.astype(np.float32), frame.dt, frame.fmin, frame.df, 1.0, SNR_MIN)
    assert not any(abs(h["drift_hz_s"]) > 1.0 + 1e-9 for h in slow)
    assert not matches(slow, f_start, 3.0)


# ---- the registered function ---------------------------------------------------------------------


def test_registered_function_and_bad_rows():
    frame = noise_frame(14)
    f_start = inject(frame, 600, 1.0, 40.0, 2.0)
    power = frame.data.astype("<f4").tobytes()
    args = [pa.array([power, power[:-4], None, power], pa.binary()),
            pa.array([N_TIME, N_TIME, N_TIME, 1], pa.int32()), pa.array([N_CHANS] * 4, pa.int32()),
            pa.array([DT_S] * 4), pa.array([frame.fmin] * 4), pa.array([DF_HZ] * 4),
            pa.array([MAX_DRIFT] * 4), pa.array([SNR_MIN] * 4)]
    rows = evaluate(get("dedoppler"), args)
    assert rows.type == HITS_TYPE
    rows = rows.to_pylist()
    assert len(matches(rows[0], f_start, 1.0)) == 1 and rows[1:] == [None, None, None]
    why = evaluate(get("dedoppler_error"), args).to_pylist()
    assert why[0] is None and why[2] is None
    assert "not 4 * n_time * n_chans" in why[1] and "n_time must be at least 2" in why[3]
    assert "foff_hz must be non-zero" in call("dedoppler_error", power, N_TIME, N_CHANS, DT_S, 1e9, 0.0, 4.0, 10.0)


def test_non_finite_power_is_a_bad_row_and_huge_finite_power_is_not():
    """A NaN or an infinity anywhere gives NULL and the reason; finite values whose sums
    overflow float32 are searched (the check does not take an infinite sum for bad power)."""
    frame = noise_frame(15)
    good = frame.data.astype("<f4")
    rows = []
    for value, at in ((np.nan, (3, 100)), (np.inf, (31, 0)), (-np.inf, (0, 1023))):
        bad = good.copy()
        bad[at] = value
        rows.append(bad.tobytes())
    huge = good.copy()
    huge[:, 500] = 3e38  # finite, their sum is not
    rows.append(huge.tobytes())
    n = len(rows)
    args = [pa.array(rows, pa.binary()), pa.array([N_TIME] * n, pa.int32()), pa.array([N_CHANS] * n, pa.int32()),
            pa.array([DT_S] * n), pa.array([frame.fmin] * n), pa.array([DF_HZ] * n), pa.array([MAX_DRIFT] * n),
            pa.array([SNR_MIN] * n)]
    why = evaluate(get("dedoppler_error"), args).to_pylist()
    assert why[:3] == ["power has NaN or infinite values"] * 3 and why[3] is None
    assert evaluate(get("dedoppler"), args).to_pylist()[:3] == [None] * 3


def test_dedoppler_through_sql(demo_session):
    power = np.zeros((4, 16), "<f4")
    power[:, 3] = 100.0  # one steady tone in channel 3 on a flat floor
    power += np.linspace(0, 1, 64, dtype="<f4").reshape(4, 16)
    got = demo_session.sql(
        "SELECT h.chan_index, h.drift_hz_s FROM (SELECT explode(dedoppler(unhex('" + power.tobytes().hex()
        + "'), 4, 16, 1.0, 1000.0, 1.0, 1.0, 10.0)) AS h) AS t").to_pylist()
    assert len(got) == 1 and got[0]["chan_index"] == 3
    assert abs(got[0]["drift_hz_s"]) < 0.25  # the drift step here is 1 Hz / (3 * 1 s)


def test_time_steps_not_a_power_of_two():
    """24 steps are padded with zero rows to 32, as turboSETI does; the drift step stays
    |foff| / (31 * tsamp)."""
    frame = stg.Frame(fchans=512, tchans=24, df=DF_HZ * u.Hz, dt=DT_S * u.s, fch1=6000 * u.MHz,
                      ascending=True, seed=15)
    frame.add_noise(x_mean=10, noise_type="chi2")
    f_start = inject(frame, 250, -1.7, 40.0, 2.0)
    hits = hits_of(frame)
    assert len(hits) == 1 and len(matches(hits, f_start, -1.7)) == 1, hits
