"""What a benchmark ran on: date, CPU, cores, memory, Python and library versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

LIBRARIES = ("duckdb", "deltalake", "pyarrow", "sqlglot", "numpy", "pyspark")


@dataclass(frozen=True)
class Machine:
    started_at: dt.datetime
    cpu_model: str
    cores: int
    memory_bytes: int
    system: str
    python: str
    libraries: dict[str, str]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _library_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def describe_machine() -> Machine:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    return Machine(
        started_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        cpu_model=_cpu_model(),
        cores=cores,
        memory_bytes=_memory_bytes(),
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        libraries={name: _library_version(name) for name in LIBRARIES},
    )


def peak_rss_bytes() -> int:
    """The peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class CpuSample:
    """Machine-wide CPU jiffies (/proc/stat) and this process's own CPU seconds, at one moment."""

    busy_s: float
    steal_s: float
    own_s: float
    wall_s: float


def cpu_sample() -> CpuSample:
    busy = steal = 0.0
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal ...
        busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / tick
        steal = (fields[7] if len(fields) > 7 else 0) / tick
    except (OSError, ValueError, IndexError):
        pass
    times = os.times()
    return CpuSample(busy, steal, times.user + times.system, time.monotonic())


@dataclass(frozen=True)
class CpuUse:
    """What else the machine did while the benchmark ran (other processes compete for the cores)."""

    wall_s: float
    cores: int
    own_s: float
    others_s: float
    steal_s: float

    @property
    def others_share(self) -> float:
        """Other processes' CPU time over the machine's capacity during the run (0..1)."""
        capacity = self.wall_s * max(self.cores, 1)
        return self.others_s / capacity if capacity else 0.0

    @property
    def steal_share(self) -> float:
        capacity = self.wall_s * max(self.cores, 1)
        return self.steal_s / capacity if capacity else 0.0


def cpu_use_since(start: CpuSample, cores: int) -> CpuUse:
    end = cpu_sample()
    own = end.own_s - start.own_s
    return CpuUse(end.wall_s - start.wall_s, cores, own,
                  max(0.0, end.busy_s - start.busy_s - own), end.steal_s - start.steal_s)


def tree_cpu_s(root: int | None = None) -> float:
    """CPU seconds (user + system) of a process and all its living descendants (the JVM and
    Python workers Spark starts, a pool of worker processes) plus the children it has reaped."""
    root = root or os.getpid()
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    total = 0.0
    for pid in used:
        node = pid
        while node and node != root and node in parents:
            node = parents[node]
        if node == root:
            total += used[pid]
    times = os.times()
    return total + times.children_user + times.children_system
