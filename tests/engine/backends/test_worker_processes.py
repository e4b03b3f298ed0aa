"""The shared-memory slots that carry a batch's arguments to the worker processes."""

import numpy as np
import pyarrow as pa

from engine.backends.worker_processes import SharedSlots, evaluate_shared, read_results


def _views_into(big: bytes, spans: list[tuple[int, int]]) -> pa.Array:
    """A binary_view array whose values are ``spans`` (offset, length > 12) of one large buffer,
    as the pre-pass makes them over a mapped data file."""
    raw = np.zeros((len(spans), 4), dtype=np.int32)
    for i, (offset, length) in enumerate(spans):
        raw[i, 0] = length
        raw[i, 1] = np.frombuffer(big[offset:offset + 4], dtype=np.int32)[0]
        raw[i, 2], raw[i, 3] = 0, offset
    return pa.Array.from_buffers(pa.binary_view(), len(spans), [None, pa.py_buffer(raw.tobytes()), pa.py_buffer(big)])


def test_a_view_column_carries_only_its_rows_bytes():
    big = np.random.default_rng(1).bytes(8 << 20)
    spans = [(1000, 64), (5 << 20, 32)]
    column = _views_into(big, spans)
    slots = SharedSlots(2)
    try:
        name, size = slots.put([column])
        assert size < 4096, "the whole buffer behind the views was written"
    finally:
        slots.close()


def test_a_view_column_round_trips_through_a_worker_call():
    samples = np.arange(64, dtype=np.complex64).tobytes()
    big = bytes(100) + samples + bytes(1 << 20)
    column = _views_into(big, [(100, len(samples))])
    fft_len = pa.array([8], pa.int32())
    slots = SharedSlots(2)
    try:
        name, size = slots.put([column, fft_len, pa.array([1], pa.int32())])
        [power] = read_results(evaluate_shared(name, size, [("spectrogram", [0, 1, 2])]))
        expected = np.abs(np.fft.fftshift(np.fft.fft(np.frombuffer(samples, np.complex64).reshape(8, 8), axis=1),
                                          axes=1)) ** 2
        got = np.frombuffer(power[0]["power"].as_py(), dtype=np.float32).reshape(8, 8)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    finally:
        slots.close()
