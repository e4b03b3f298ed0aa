"""Clocks: one timed call, the median of several, and the time a call spends in named stages."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

T = TypeVar("T")


def settle() -> None:
    """Before a timed section: collect garbage and flush dirty pages, so that the kernel's
    write-back of files just written does not compete with what is timed."""
    gc.collect()
    if hasattr(os, "sync"):
        os.sync()


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call of ``fn``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_seconds(fn: Callable[[], Any], runs: int) -> float:
    """The median wall time of ``runs`` calls of ``fn`` (call it once before to warm up)."""
    return statistics.median(timed(fn)[0] for _ in range(runs))


@contextmanager
def stage_clock(stages: list[tuple[object, str, str]]):
    """Time spent in named functions while the block runs: {stage: seconds}.

    ``stages`` lists (owner, attribute, stage name): ``owner.attribute`` (a module's function or
    a class's method) is wrapped for the duration of the block, then restored. A stage whose
    function no longer exists is left out rather than failing the benchmark. Only the outermost
    call of a stage is counted, so recursion does not count twice.
    """
    seconds: dict[str, float] = defaultdict(float)
    depth: dict[str, int] = defaultdict(int)
    originals = []
    for owner, attribute, name in stages:
        original = getattr(owner, attribute, None)
        if original is None:
            continue
        originals.append((owner, attribute, original))
        setattr(owner, attribute, _clocked(original, name, seconds, depth))
    try:
        yield seconds
    finally:
        for owner, attribute, original in reversed(originals):
            setattr(owner, attribute, original)


def _clocked(fn, name, seconds, depth):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        depth[name] += 1
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[name] -= 1
            if depth[name] == 0:
                seconds[name] += time.perf_counter() - start

    return wrapper
