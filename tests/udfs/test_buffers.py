"""The kernel output pool: a buffer is written again only when nothing holds its last result."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from udfs import buffers


def test_a_held_buffer_is_never_handed_out_again():
    first = buffers.empty(4 << 20, np.float32)
    first[:] = 1.0
    held = pa.py_buffer(first)  # an Arrow array over it, say
    del first
    second = buffers.empty(4 << 20, np.float32)
    second[:] = 2.0
    assert np.frombuffer(held, np.float32).min() == 1.0  # untouched
    assert not np.shares_memory(np.frombuffer(held, np.float32), second)


def test_a_free_buffer_is_used_again():
    first = buffers.empty(3 << 20, np.uint8)
    address = first.__array_interface__["data"][0]
    del first
    again = buffers.empty(3 << 20, np.uint8)
    assert again.__array_interface__["data"][0] == address
    assert again.nbytes == 3 << 20


def test_small_requests_and_the_cap():
    small = buffers.empty(100, np.float32)
    assert small.nbytes == 100 and small.dtype == np.float32
    held = [buffers.empty(64 << 20, np.uint8) for _ in range(5)]  # 320 MiB busy: all kept while held
    assert buffers.pooled_bytes() >= 5 * (64 << 20)
    del held
    big = buffers.empty(200 << 20, np.uint8)  # fits none of the free ones: the free ones go first
    assert buffers.pooled_bytes() <= buffers.POOL_BYTES + big.nbytes
