"""spectrogram / spectrogram_window: complex64 voltages to float32 power [time, chan], against numpy."""

import numpy as np
import pyarrow as pa
import pytest

from udfs.registry import call, evaluate, get
from udfs.spectrogram import SPECTROGRAM_TYPE, power_spectrogram, window

SAMPLE_RATE_HZ = 3_000_000.0


def voltages(n: int, tone_hz=(), seed=0, noise=1.0) -> np.ndarray:
    """Complex64 Gaussian noise with complex tones at ``tone_hz`` (baseband, SAMPLE_RATE_HZ)."""
    rng = np.random.default_rng(seed)
    x = noise * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    t = np.arange(n) / SAMPLE_RATE_HZ
    for f in tone_hz:
        x = x + 4.0 * np.exp(2j * np.pi * f * t)
    return x.astype(np.complex64)


def reference(x: np.ndarray, fft_len: int, n_integrate: int, taper=None) -> np.ndarray:
    """Plain numpy in double precision: reshape, FFT along rows, fftshift, |.|^2, sum runs."""
    n_time = len(x) // (fft_len * n_integrate)
    blocks = x[: n_time * n_integrate * fft_len].astype(np.complex128).reshape(n_time * n_integrate, fft_len)
    if taper is not None:
        blocks = blocks * taper
    power = np.abs(np.fft.fftshift(np.fft.fft(blocks, axis=1), axes=1)) ** 2
    return power.reshape(n_time, n_integrate, fft_len).sum(axis=1)


def decode(result: dict) -> np.ndarray:
    power = np.frombuffer(result["power"], dtype="<f4")
    assert power.size == result["n_time"] * result["n_chans"]
    return power.reshape(result["n_time"], result["n_chans"])


def assert_close(got: np.ndarray, want: np.ndarray):
    assert got.shape == want.shape and got.dtype == np.float32
    # single-precision FFT: errors are relative to the largest power of the spectrogram
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6 * want.max())


def test_ibmseti_layout_384_by_512():
    """ibmseti's SimCompamp: 196,608 samples reshaped to 384 x 512, FFT along the row, fftshift, |.|^2."""
    x = voltages(196_608, tone_hz=(218_750.0,), seed=1)
    got = decode(call("spectrogram", x.tobytes(), 512, 1))
    want = np.abs(np.fft.fftshift(np.fft.fft(x.reshape(384, 512)), 1)) ** 2
    assert got.shape == (384, 512)
    assert_close(got, want)
    # the tone (+218.75 kHz) lands 218750 / (3e6 / 512) = 37.33 channels above the centre, 256
    assert int(np.argmax(got.sum(axis=0))) == 256 + 37


@pytest.mark.parametrize("fft_len, n_integrate", [(1, 1), (2, 3), (5, 1), (7, 4), (64, 16), (512, 1), (1000, 2), (4096, 3)])
def test_matches_numpy_reference(fft_len, n_integrate):
    x = voltages(fft_len * n_integrate * 10 - 1, tone_hz=(-400_000.0, 123_456.0), seed=fft_len)
    result = call("spectrogram", x.tobytes(), fft_len, n_integrate)
    assert result["n_time"] == 9 and result["n_chans"] == fft_len
    assert_close(decode(result), reference(x, fft_len, n_integrate))


def test_long_rows_span_many_chunks():
    x = voltages(1 << 20, tone_hz=(1e5,), seed=3)
    for fft_len, n_integrate in ((64, 1), (64, 8), (65536, 1), (65536, 4)):
        assert_close(power_spectrogram(x.tobytes(), fft_len, n_integrate), reference(x, fft_len, n_integrate))


def test_channel_zero_is_the_lowest_frequency():
    fft_len = 8
    for k in range(fft_len):
        f = (k - fft_len // 2) * SAMPLE_RATE_HZ / fft_len  # channel k's frequency after the shift
        x = (np.exp(2j * np.pi * f * np.arange(fft_len * 4) / SAMPLE_RATE_HZ)).astype(np.complex64)
        power = decode(call("spectrogram", x.tobytes(), fft_len, 4))
        assert power.shape == (1, fft_len)
        assert int(np.argmax(power[0])) == k
        # summed, not averaged: 4 spectra of |X|^2 = fft_len^2 each
        assert power[0, k] == pytest.approx(4 * fft_len ** 2, rel=1e-5)


def test_odd_fft_len_shift_matches_numpy():
    x = voltages(5 * 3, seed=9)
    assert_close(decode(call("spectrogram", x.tobytes(), 5, 1)),
                 np.abs(np.fft.fftshift(np.fft.fft(x.reshape(3, 5).astype(np.complex128)), axes=1)) ** 2)


def test_integration_sums_consecutive_spectra():
    x = voltages(256 * 12, tone_hz=(3e5,), seed=4)
    single = decode(call("spectrogram", x.tobytes(), 256, 1))
    summed = decode(call("spectrogram", x.tobytes(), 256, 4))
    np.testing.assert_allclose(summed, single.reshape(3, 4, 256).sum(axis=1), rtol=1e-5, atol=1e-5 * summed.max())


def test_trailing_partial_block_and_integration_are_dropped():
    x = voltages(16 * 7 + 15, seed=5)  # 7 whole blocks of 16, 15 samples over
    full = decode(call("spectrogram", x.tobytes(), 16, 1))
    assert full.shape == (7, 16)
    assert_close(full, reference(x[: 16 * 7], 16, 1))
    integrated = decode(call("spectrogram", x.tobytes(), 16, 3))  # 2 rows of 3 spectra; the 7th dropped
    assert integrated.shape == (2, 16)
    np.testing.assert_allclose(integrated, full[:6].reshape(2, 3, 16).sum(axis=1), rtol=1e-5, atol=1e-5 * full.max())


def test_power_is_little_endian_float32_c_order():
    x = np.ones(8, dtype=np.complex64)
    result = call("spectrogram", x.tobytes(), 4, 2)
    assert (result["n_time"], result["n_chans"]) == (1, 4)
    assert result["power"] == np.array([[0, 0, 32, 0]], dtype="<f4").tobytes()


@pytest.mark.parametrize("samples, fft_len, n_integrate, reason", [
    (b"\x00" * 12, 1, 1, "not a multiple of 8"),
    (b"\x00" * 64, 0, 1, "fft_len must be positive"),
    (b"\x00" * 64, -4, 1, "fft_len must be positive"),
    (b"\x00" * 64, 4, 0, "n_integrate must be positive"),
    (b"\x00" * 64, 4, 3, "8 samples are fewer than fft_len * n_integrate = 4 * 3 = 12"),
    (b"", 1, 1, "fewer than"),
])
def test_bad_input_is_null_with_reason(samples, fft_len, n_integrate, reason):
    assert call("spectrogram", samples, fft_len, n_integrate) is None
    assert reason in call("spectrogram_error", samples, fft_len, n_integrate)
    assert call("spectrogram_window", samples, fft_len, n_integrate, "hann") is None
    assert reason in call("spectrogram_window_error", samples, fft_len, n_integrate, "hann")


def test_a_batch_with_nulls_and_bad_rows():
    good = voltages(64, seed=6)
    samples = pa.array([good.tobytes(), None, b"\x00" * 7, good.tobytes(), good.tobytes()], pa.binary())
    fft_len = pa.array([16, 16, 16, None, 8], pa.int32())
    n_integrate = pa.array([2, 2, 2, 2, 1], pa.int32())
    result = evaluate(get("spectrogram"), [samples, fft_len, n_integrate])
    assert result.type == SPECTROGRAM_TYPE
    rows = result.to_pylist()
    assert [r is None for r in rows] == [False, True, True, True, False]
    assert_close(decode(rows[0]), reference(good, 16, 2))
    assert_close(decode(rows[4]), reference(good, 8, 1))
    errors = evaluate(get("spectrogram_error"), [samples, fft_len, n_integrate]).to_pylist()
    assert errors[0] is None and errors[1] is None and "multiple of 8" in errors[2] and errors[4] is None


def test_rows_with_different_shapes_share_one_batch():
    rows = [voltages(n, seed=n) for n in (100, 1000, 4096)]
    shapes = [(10, 1), (64, 4), (256, 2)]
    result = evaluate(get("spectrogram"), [pa.array([r.tobytes() for r in rows], pa.binary()),
                                           pa.array([s[0] for s in shapes], pa.int32()),
                                           pa.array([s[1] for s in shapes], pa.int32())])
    for x, (fft_len, n_integrate), got in zip(rows, shapes, result.to_pylist()):
        assert_close(decode(got), reference(x, fft_len, n_integrate))


# ---- windows -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "rect"])
@pytest.mark.parametrize("n", [1, 4, 5, 512])
def test_windows_are_scipys_periodic_windows(name, n):
    from scipy.signal import get_window

    np.testing.assert_allclose(window(name, n), get_window("boxcar" if name == "rect" else name, n), atol=1e-7)


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "rect", "HANN", " Blackman "])
def test_spectrogram_window_matches_numpy(name):
    from scipy.signal import get_window

    x = voltages(256 * 6 + 3, tone_hz=(2e5,), seed=7)
    key = name.strip().lower()
    taper = get_window("boxcar" if key == "rect" else key, 256)
    got = decode(call("spectrogram_window", x.tobytes(), 256, 2, name))
    assert_close(got, reference(x, 256, 2, taper))


def test_rect_window_is_the_plain_spectrogram():
    x = voltages(1024, seed=8)
    assert call("spectrogram_window", x.tobytes(), 64, 2, "rect") == call("spectrogram", x.tobytes(), 64, 2)


def test_window_lowers_leakage():
    # a tone between two channels leaks far into the band without a window, not with Hann
    x = voltages(512 * 8, tone_hz=(100.5 * SAMPLE_RATE_HZ / 512,), noise=0.0)
    plain = decode(call("spectrogram", x.tobytes(), 512, 8))[0]
    hann = decode(call("spectrogram_window", x.tobytes(), 512, 8, "hann"))[0]
    far = 256 + 100 + 60
    assert hann[far] / hann.max() < 1e-3 * plain[far] / plain.max()


def test_unknown_window_is_null_with_reason():
    x = voltages(64).tobytes()
    assert call("spectrogram_window", x, 16, 1, "kaiser") is None
    assert "unknown window 'kaiser'" in call("spectrogram_window_error", x, 16, 1, "kaiser")


# ---- through SQL ---------------------------------------------------------------------------


def test_spectrogram_through_sql(demo_session):
    got = demo_session.sql(
        "SELECT s.n_time, s.n_chans, s.power FROM "
        "(SELECT spectrogram(unhex(repeat('0000803F00000000', 8)), 4, 2) AS s) AS t").to_pylist()
    assert got == [{"n_time": 1, "n_chans": 4, "power": np.array([0, 0, 32, 0], "<f4").tobytes()}]
    why = demo_session.sql("SELECT spectrogram_error(unhex('00'), 4, 1) AS why, spectrogram(unhex('00'), 4, 1) AS s")
    assert why.to_pylist() == [{"why": "samples has 1 bytes, not a multiple of 8 (complex64 samples)", "s": None}]
    empty = demo_session.sql("SELECT snapshot_id, spectrogram_window(samples, 1024, 4, 'hann').n_time AS n_time "
                             "FROM voltages")
    assert empty.num_rows == 0 and empty.column_names == ["snapshot_id", "n_time"]
