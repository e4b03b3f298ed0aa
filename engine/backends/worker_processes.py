"""Library calls in worker processes, their arguments passed through shared memory.

A kernel that keeps the GIL (sep's C calls do) uses one core however many threads call it; the
function pre-pass gives such calls over a large table to a pool of worker processes instead.
Pickling a batch of images through a pipe cost more than extracting their sources (here about
250 MB/s), so a batch's argument columns are written once, as an Arrow IPC stream, into a
shared-memory slot the worker maps and reads without a copy; the results (small: a list of
sources per image) come back as Arrow IPC bytes. Slots are reused round robin: IN_FLIGHT + 1 of
them, as at most IN_FLIGHT batches are in flight while the next is written.
"""

from __future__ import annotations

import atexit
import multiprocessing
import sys
import time
import types
from multiprocessing import resource_tracker, shared_memory

import pyarrow as pa

from udfs.registry import evaluate, get

_POOL: list = []


def pool(workers: int):
    """The process's pool of ``workers`` processes, started on first use (forkserver: the
    workers import the library once and do not inherit DuckDB's threads)."""
    from concurrent.futures import ProcessPoolExecutor, wait

    if not _POOL:
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
        # multiprocessing re-runs the parent's __main__ script in each new process (and in the
        # fork server): a user's script without a main guard would run again. The workers need
        # only the library, so they start while __main__ is an empty module.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            wait([executor.submit(_warm) for _ in range(workers)])
        finally:
            sys.modules["__main__"] = main
        _POOL.append(executor)
        atexit.register(_shutdown)
    return _POOL[0]


def _shutdown() -> None:
    """Stop the workers before the interpreter tears its modules down (the executor's own
    clean-up then fails noisily)."""
    while _POOL:
        _POOL.pop().shutdown(wait=True, cancel_futures=True)


def _warm() -> None:
    from udfs.registry import all_functions

    all_functions()
    time.sleep(0.05)  # so that each of the first tasks starts its own process


class SharedSlots:
    """Shared-memory segments holding batches of arguments for the workers, reused in turn."""

    def __init__(self, count: int):
        self._segments: list[shared_memory.SharedMemory | None] = [None] * count
        self._next = 0

    def put(self, arrays: list[pa.Array]) -> tuple[str, int]:
        """Write ``arrays`` into the next slot; (segment name, bytes written). A binary_view
        column (the pre-pass's views into a mapped data file) is made plain binary first: the
        IPC stream would carry every buffer it points into, the whole file, not the bytes of
        its rows."""
        arrays = [a.cast(pa.large_binary()) if pa.types.is_binary_view(a.type) else a for a in arrays]
        batch = pa.RecordBatch.from_arrays(arrays, names=[f"a{i}" for i in range(len(arrays))])
        mock = pa.MockOutputStream()
        with pa.ipc.new_stream(mock, batch.schema) as writer:
            writer.write_batch(batch)
        size = mock.size()
        index = self._next
        self._next = (self._next + 1) % len(self._segments)
        segment = self._segments[index]
        if segment is None or segment.size < size:
            if segment is not None:
                segment.close()
                segment.unlink()
            segment = shared_memory.SharedMemory(create=True, size=max(1 << 20, 1 << (size - 1).bit_length()))
            self._segments[index] = segment
        target = pa.py_buffer(segment.buf)
        sink = pa.FixedSizeBufferWriter(target)
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        sink.close()
        del sink, target  # no buffer may stay exported, or the segment cannot be closed
        return segment.name, size

    def close(self) -> None:
        for segment in self._segments:
            if segment is not None:
                segment.close()
                segment.unlink()
        self._segments = [None] * len(self._segments)


def evaluate_shared(name: str, size: int, calls: list[tuple[str, list[int]]]) -> bytes:
    """In a worker: the calls over the argument columns in shared-memory segment ``name``;
    the results as Arrow IPC bytes (one column per call)."""
    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None  # the parent owns and unlinks it
    try:
        segment = shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register
    try:
        view = pa.py_buffer(segment.buf)
        batch = pa.ipc.open_stream(view.slice(0, size)).read_next_batch()
        results = [evaluate(get(function), [batch.column(i) for i in columns]) for function, columns in calls]
        out = pa.RecordBatch.from_arrays(results, names=[f"r{i}" for i in range(len(results))])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, out.schema) as writer:
            writer.write_batch(out)
        data = sink.getvalue().to_pybytes()
        del view, batch, results, out
        return data
    finally:
        segment.close()


def read_results(data: bytes) -> list[pa.Array]:
    batch = pa.ipc.open_stream(pa.py_buffer(data)).read_next_batch()
    return list(batch.columns)
