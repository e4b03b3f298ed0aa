"""Large kernel outputs in memory that is used again, not fresh pages each call.

A spectrogram batch writes tens of megabytes; fresh memory for it is zeroed by the kernel page by
page on first touch, and glibc hands big blocks back to the system when they are freed (measured
on the spectrogram query: the zeroing took a third of its CPU, more than the FFT). ``empty``
returns a buffer from a small pool instead: one whose previous result is no longer referenced
by anybody (no Arrow array, no engine: Python's reference count says so) is written again.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

POOL_BYTES = 256 << 20  # idle memory kept at most
MIN_BYTES = 1 << 20  # smaller buffers come from the allocator as usual

_lock = threading.Lock()
_pool: list[np.ndarray] = []
_FREE_REFS = 3  # a pooled array nobody else holds: the pool's list, the loop's name, getrefcount's argument


def empty(nbytes: int, dtype) -> np.ndarray:
    """An uninitialised 1-d array of ``nbytes`` bytes viewed as ``dtype``: its contents may be
    those of an earlier result nobody holds any more. The array keeps its pool buffer busy until
    it and every view of it (an Arrow buffer over it, say) are gone."""
    if nbytes < MIN_BYTES:
        return np.empty(nbytes, dtype=np.uint8).view(dtype)
    with _lock:
        for block in _pool:
            if nbytes <= block.nbytes <= 2 * nbytes and sys.getrefcount(block) == _FREE_REFS:
                return block[:nbytes].view(dtype)
        block = np.empty(nbytes, dtype=np.uint8)
        _pool.append(block)
        _trim()
        return block[:nbytes].view(dtype)


def _trim() -> None:
    """Drop free buffers, oldest first, while the pool holds more than POOL_BYTES."""
    total = sum(b.nbytes for b in _pool)
    i = 0
    while total > POOL_BYTES and i < len(_pool):
        if sys.getrefcount(_pool[i]) == _FREE_REFS - 1:  # (no loop name here)
            total -= _pool.pop(i).nbytes
        else:
            i += 1


def pooled_bytes() -> int:
    """Bytes the pool holds, busy or free (for tests)."""
    with _lock:
        return sum(b.nbytes for b in _pool)
