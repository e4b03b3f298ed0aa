"""The file-level ingest pipeline shared by images, spectra, filterbank and voltages.

A format is a pure parse function ``parse(path, sha256, options) -> iterator of (table, Arrow
rows)`` that raises ``Rejected(reason)`` for a file it cannot or must not read; it never touches
the lake, so a Spark ``mapInArrow`` job can call it too (``parse_or_reject``).

One call of ``ingest_files``:

1. hashes every file (SHA-256, read in 1 MiB blocks, in threads: hashlib releases the GIL) and
   skips files whose content is already in the lake (Delta app transactions, read from the log
   once) or given twice;
2. parses the rest in worker processes (``workers`` > 1) or in this process, a run of files as
   soon as it is hashed (steps 1 and 2 overlap); each worker gathers the rows of many small files
   into one Parquet row group inside the table folders (invisible until committed) and keeps a
   file's rows in memory only while they are small (a big file gets Parquet files of its own,
   deleted again if the file is rejected half-way);
3. quarantines the rejected files in ``_rejected`` (one row per file: path, size, hash, reason);
4. commits the Parquet files of each table in one Delta commit that also records the files'
   app-transaction ids; tables are committed in ``FileFormat.tables`` order (``sources`` before
   ``images``), each file's rows only into the tables that do not have its id yet, so a crash
   between two commits is repaired by running the same ingest again.

A crash or Ctrl-C before step 4 leaves every table at its previous version (the Parquet files
already written are never referenced by the log; ``VACUUM`` removes them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalogs.app_transactions import app_transaction_ids
from catalogs.ingest.commit import QUARANTINE, app_id
from catalogs.lake import Lake
from catalogs.schemas import CATALOG
from engine.errors import IngestError

MAIN_PARSES = True          # the calling process parses too (tests set False: every run to the helpers)
# what starting helper processes costs, in seconds of this process's parsing: the first start of
# their fork server in a process imports for a second or more; later starts fork in tens of ms and
# warm up for as long again. Helpers start when the parsing left is at least twice that.
HELPER_START_S = {"cold": 1.5, "warm": 0.1, "thread": 0.01}
_pool_started = False       # a helper pool has started in this process: its fork server is up
SPILL_BYTES = 64 << 20      # a file's rows are buffered up to this size, then streamed to its own files
BATCH_BYTES = 32 << 20      # the rows of small files are written together, a row group per this many bytes
PART_BYTES = 256 << 20      # a worker starts a new shared Parquet file after this many bytes
HASH_BLOCK = 1 << 20


class Rejected(Exception):
    """A file that cannot be ingested; the message is the human-readable reason."""


Parse = Callable[[str, str, dict], Iterable[tuple[str, pa.Table]]]


@dataclass(frozen=True)
class FileFormat:
    name: str                 # the CLI word: images, spectra, filterbank, voltages
    table: str                # the table whose app ids say "this file is ingested"
    parse: Parse
    suffixes: tuple[str, ...]  # used to pick files inside a directory given as PATH

    def tables(self, options: dict) -> tuple[str, ...]:
        """The tables one call writes, in commit order (the main table last)."""
        extra = tuple(options.get("also_tables", ()))
        return (*extra, self.table)


def sha256_and_size(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def parse_or_reject(fmt: FileFormat, path: str, sha256: str, options: dict | None = None
                    ) -> tuple[list[tuple[str, pa.Table]] | None, str | None]:
    """The file's rows, or the reason it is rejected (for callers that hold rows in memory)."""
    try:
        return list(fmt.parse(path, sha256, options or {})), None
    except Rejected as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001  (any reader failure is this file's, not the batch's)
        return None, unreadable(e)


def unreadable(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"cannot read the file: {type(error).__name__}: {text}" if text else \
        f"cannot read the file: {type(error).__name__}"


# ---- reports ------------------------------------------------------------------------------


@dataclass
class RejectedFile:
    path: str
    size_bytes: int
    sha256: str
    reason: str


@dataclass
class FileIngestReport:
    table: str
    files: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    quarantine_version: int | None = None
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def partial(self) -> bool:
        return bool(self.rejected)

    def summary(self) -> str:
        lines = [f"skipped {path}: {why}" for path, why in self.skipped]
        lines += [f"rejected {r.path}: {r.reason}" for r in self.rejected]
        if self.files:
            parts = [f"{self.rows.get(t, 0)} rows into {t} (version {v})" for t, v in self.versions.items()]
            n = len(self.files)
            lines.append(f"ingested {n} file{'s' if n != 1 else ''}: " + ", ".join(parts))
        elif not self.skipped and not self.rejected:
            lines.append("nothing to ingest")
        if self.rejected:
            n = len(self.rejected)
            lines.append(
                f"quarantined {n} rejected file{'s' if n != 1 else ''} in {QUARANTINE} (version "
                f"{self.quarantine_version}); see: SELECT * FROM {QUARANTINE} WHERE target_table = '{self.table}'")
        return "\n".join(lines)


# ---- the worker side: parse files, stream rows into Parquet files ------------------------------


@dataclass
class _Outcome:
    path: str
    sha256: str
    size_bytes: int
    reason: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict)  # table -> relpaths (own files)


class _Writers:
    """Parquet files inside the table folders of one lake, written by one worker.

    The rows of the files that fit in memory are gathered per table and written together, one row
    group per ``BATCH_BYTES`` (a row group per file made thousands of small files slow to write,
    to commit and to read); a worker starts a new shared file after ``PART_BYTES``."""

    def __init__(self, root: str):
        self.root = Path(root)
        self.shared: dict[str, _SharedPart] = {}

    def open(self, table: str) -> tuple[pq.ParquetWriter, str]:
        rel = f"part-ingest-{uuid.uuid4().hex}.parquet"
        return self.writer(table, rel), rel

    def writer(self, table: str, rel: str) -> pq.ParquetWriter:
        schema = CATALOG[table].schema
        binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_list(f.type)]
        # array blobs (pixels, power, samples) barely compress and snappy writes them at ~40 MB/s
        return pq.ParquetWriter(
            self.root / table / rel, schema,
            compression={f.name: "none" if pa.types.is_binary(f.type) else "snappy" for f in schema},
            use_dictionary=[f.name for f in schema if f.name not in binary],
            write_statistics=[f.name for f in schema if f.name not in binary],
        )

    def write_shared(self, table: str, rows: pa.Table, nbytes: int) -> str:
        """Queue ``rows`` (a whole, parsed file's, ``nbytes`` big) for the worker's shared file of
        ``table``; its name."""
        part = self.shared.get(table)
        if part is None:
            part = self.shared[table] = _SharedPart(self, table)
        rel = part.rel
        part.add(rows, nbytes)
        if part.size >= PART_BYTES:
            part.close()
            del self.shared[table]
        return rel

    def close(self) -> None:
        try:
            for part in self.shared.values():
                part.close()
        finally:
            self.shared.clear()

    def discard(self) -> None:
        """Close the files without writing what is still buffered (after an error: the caller
        deletes them)."""
        for part in self.shared.values():
            part.buffer.clear()
            try:
                part.writer.close()
            except Exception:  # noqa: BLE001  (cleanup after an error: the first error is the one to see)
                pass
        self.shared.clear()

    def delete(self, table: str, rel: str) -> None:
        (self.root / table / rel).unlink(missing_ok=True)


class _SharedPart:
    """One Parquet file that many files' rows go to, buffered up to ``BATCH_BYTES`` a row group."""

    def __init__(self, writers: _Writers, table: str):
        self.rel = f"part-ingest-{uuid.uuid4().hex}.parquet"
        self.writer = writers.writer(table, self.rel)
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.size = 0

    def add(self, rows: pa.Table, nbytes: int) -> None:
        self.buffer.append(rows)
        self.buffered += nbytes
        self.size += nbytes
        if self.buffered >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            rows = pa.concat_tables(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
            self.writer.write_table(rows, row_group_size=max(1, rows.num_rows))
            self.buffer.clear()
            self.buffered = 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()


def _conform(lake: Lake, table: str, rows: pa.Table) -> pa.Table:
    return lake.conform(table, rows)


def _parse_one(fmt: FileFormat, lake: Lake, writers: _Writers, item: tuple, options: dict) -> _Outcome:
    path, sha, size, tables = item
    outcome = _Outcome(path, sha, size)
    pending: dict[str, list[tuple[pa.Table, int]]] = {}
    pending_bytes = 0
    own: dict[str, tuple[pq.ParquetWriter, str]] = {}
    try:
        for table, rows in fmt.parse(path, sha, options):
            if table not in tables:
                continue  # already committed by an earlier, interrupted call
            rows = _conform(lake, table, rows)
            outcome.rows[table] = outcome.rows.get(table, 0) + rows.num_rows
            nbytes = rows.get_total_buffer_size()  # (Table.nbytes walks the buffers: 20 us a call)
            if not own and pending_bytes + nbytes <= SPILL_BYTES:
                pending.setdefault(table, []).append((rows, nbytes))
                pending_bytes += nbytes
                continue
            for t, buffered in [*pending.items(), (table, [(rows, nbytes)])]:
                if t not in own:
                    own[t] = writers.open(t)
                for b, _ in buffered:
                    own[t][0].write_table(b)
            pending.clear()
    except BaseException as e:
        for t, (writer, rel) in own.items():
            writer.close()
            writers.delete(t, rel)
        if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        outcome.reason = str(e) if isinstance(e, Rejected) else unreadable(e)
        outcome.rows.clear()
        return outcome
    for t, (writer, rel) in own.items():
        writer.close()
        outcome.parts.setdefault(t, []).append(rel)
    for t, buffered in pending.items():
        for b, nbytes in buffered:
            outcome.parts.setdefault(t, [])
            rel = writers.write_shared(t, b, nbytes)
            if rel not in outcome.parts[t]:
                outcome.parts[t].append(rel)
    return outcome


def parse_group(fmt_name: str, root: str, items: list[tuple], options: dict) -> list[_Outcome]:
    """Parse ``items`` (path, sha256, size, tables to write) into Parquet files of the lake."""
    fmt = FORMATS[fmt_name]()
    lake = Lake(root, create=False)
    writers = _Writers(root)
    try:
        outcomes = [_parse_one(fmt, lake, writers, item, options) for item in items]
    except BaseException:
        writers.discard()
        raise
    writers.close()
    return outcomes


def _format_images():
    from catalogs.ingest.fits_images import FORMAT
    return FORMAT


def _format_spectra():
    from catalogs.ingest.fits_spectra import FORMAT
    return FORMAT


def _format_filterbank():
    from catalogs.ingest.filterbank import FORMAT
    return FORMAT


def _format_voltages():
    from catalogs.ingest.voltages import FORMAT
    return FORMAT


FORMATS: dict[str, Callable[[], FileFormat]] = {
    "images": _format_images, "spectra": _format_spectra,
    "filterbank": _format_filterbank, "voltages": _format_voltages,
}


# ---- the caller's side ---------------------------------------------------------------------


def expand_paths(paths: Iterable[str | os.PathLike], suffixes: tuple[str, ...]) -> list[str]:
    """Files as given, and the matching files inside directories (sorted); missing paths fail."""
    found: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(str(f) for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(suffixes))
        elif p.is_file():
            found.append(str(p))
        else:
            raise IngestError(f"cannot read {p}: no such file or directory")
    return found


class _Progress:
    """A progress bar on a terminal (files, MB and their rates); silent in pipes."""

    def __init__(self, label: str, files: int, total_bytes: int, enabled: bool):
        self.bar = None
        self.started = time.perf_counter()
        self.files = 0
        if enabled and files:
            from tqdm import tqdm

            self.bar = tqdm(total=round(total_bytes / 1e6, 3), desc=label, unit="MB", file=sys.stderr, leave=False,
                            dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} MB "
                                                           "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")

    def advance(self, files: int, nbytes: int) -> None:
        self.files += files
        if self.bar is not None:
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"{self.files} files, {self.files / elapsed:.1f} files/s", refresh=False)
            self.bar.update(nbytes / 1e6)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _hash_files(files: list[str], workers: int) -> list[tuple[str, int]]:
    """(sha256, size) of each file; big files in ``workers`` threads (hashlib releases the GIL),
    a thread's files in runs (a task per small file cost more in thread hand-offs than its hash)."""
    if workers == 1 or len(files) == 1:
        return [sha256_and_size(f) for f in files]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = pool.map(lambda run: [sha256_and_size(f) for f in run], _groups(files, workers))
        return [h for run in runs for h in run]


def _groups(items: list, workers: int) -> list[list]:
    if not items:
        return []
    n = max(1, min(len(items), workers * 4))
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]


def ingest_files(lake: Lake, fmt: FileFormat, paths: Iterable[str | os.PathLike], options: dict | None = None,
                 workers: int = 1, strict: bool = False, progress: bool = False,
                 parallel: str = "process", spark=None) -> FileIngestReport:
    """Ingest files of one format in one commit per table (see the module docstring).

    With ``spark`` (a SparkSession) step 2 is a Spark job: the groups of files are the tasks, and
    each task runs ``parse_group`` in a Spark Python worker, writing Parquet into the lake's table
    folders. The executors must see the files and the lake at the same paths (one machine, or a
    shared file system); the commit is still the driver's, once."""
    options = dict(options or {})
    started = time.perf_counter()
    files = expand_paths(paths, fmt.suffixes)
    if not files:
        raise IngestError("no files given (or no matching files in the directories given)")
    tables = fmt.tables(options)
    report = FileIngestReport(fmt.table)
    workers = max(1, int(workers))
    pool = "spark" if spark is not None else "main" if workers == 1 or len(files) == 1 else parallel
    total = sum(os.path.getsize(f) for f in files) if progress else 0
    bar = _Progress(f"ingest {fmt.name}", len(files), total, progress)
    items: list[tuple] = []
    outcomes: list[_Outcome] = []
    plan = _Plan(lake, fmt, tables, report)
    try:
        if pool == "spark":
            items += plan.todo(files, _hash_files(files, workers))
            groups = _groups(items, spark.sparkContext.defaultParallelism)
            if groups:
                outcomes += _parse_on_spark(spark, fmt, lake, groups, options)
            bar.advance(len(files), total)
        else:
            _hash_and_parse(plan, files, pool, workers, options, bar, items, outcomes)
        bar.close()
        order = {item[0]: i for i, item in enumerate(items)}
        outcomes.sort(key=lambda o: order[o.path])
        _commit(lake, fmt, tables, items, outcomes, strict, report)
    except BaseException:
        bar.close()
        _delete_parts(lake, outcomes)
        raise
    report.bytes_read = plan.bytes_read
    report.seconds = time.perf_counter() - started
    return report


class _Plan:
    """Step 1 for the files of one call, in their order: which to skip (and why), which to parse
    and into which tables. The committed app ids are read from the log at the first file."""

    def __init__(self, lake: Lake, fmt: FileFormat, tables: tuple[str, ...], report: FileIngestReport):
        self.lake, self.fmt, self.tables, self.report = lake, fmt, tables, report
        self.seen: dict[str, str] = {}
        self.committed: dict[str, Callable[[str], bool]] | None = None
        self.bytes_read = 0

    def todo(self, paths: list[str], hashed: list[tuple[str, int]]) -> list[tuple]:
        """(path, sha256, size, tables to write) of the files of ``paths`` to parse."""
        fmt, out = self.fmt, []
        if self.committed is None and hashed:
            probe = app_id(fmt.table, hashed[0][0])
            self.committed = {t: committed_ids(self.lake, t, probe) for t in self.tables}  # one log read each
            for t in self.tables:
                self.lake.add_missing_columns(t)  # an older table gets the new nullable columns first
        for path, (sha, size) in zip(paths, hashed):
            self.bytes_read += size
            ids = app_id(fmt.table, sha)
            if sha in self.seen:
                self.report.skipped.append((path, f"same content as {self.seen[sha]}"))
            elif self.committed[fmt.table](ids):
                self.report.skipped.append((path, f"already ingested into {fmt.table} (sha256 {sha[:12]})"))
            else:
                self.seen[sha] = path
                todo = tuple(t for t in self.tables if t == fmt.table or not self.committed[t](ids))
                out.append((path, sha, size, todo))
        return out


def _hash_and_parse(plan: _Plan, files: list[str], pool: str, workers: int, options: dict, bar: _Progress,
                    items: list[tuple], outcomes: list[_Outcome]) -> None:
    """Steps 1 and 2 as a pipeline. Threads hash the files run by run, in order; each run, once
    hashed and planned, is parsed by this process or -- with ``workers`` > 1 -- by one of
    ``workers - 1`` helper processes (or threads) as soon as one is free. This process is one of
    the workers: it parses while the helpers start and takes the runs they are not free for; and
    it starts them only when its own rate says the rest of the call outlasts their start
    (``HELPER_START_S``), so a small call is not slowed by processes that cannot pay for
    themselves. On an error the parts already written are added to ``outcomes`` (for the caller to
    delete), after the helpers' running tasks end."""
    fmt, lake, root = plan.fmt, plan.lake, str(plan.lake.root)
    runs = _groups(files, 2 * workers)  # 8 runs a worker: the last ones end close together
    hasher = ThreadPoolExecutor(max_workers=max(1, min(workers, len(runs))))
    helpers: _Helpers | None = None
    writers = _Writers(root)
    ready: list[list[tuple]] = []
    futures: list = []
    consumed: set = set()
    planned = parsed = 0
    parse_s = 0.0

    def parse_here(todo: list[tuple]) -> None:
        nonlocal parsed, parse_s
        started = time.perf_counter()
        for item in todo:
            outcomes.append(_parse_one(fmt, lake, writers, item, options))
            bar.advance(1, item[2])
        parsed, parse_s = parsed + len(todo), parse_s + time.perf_counter() - started

    def start_helpers_if_they_pay() -> None:
        nonlocal helpers
        if helpers is not None or pool == "main" or len(runs) < 2:
            return
        left = sum(map(len, ready)) + sum(map(len, runs[planned:]))
        if not MAIN_PARSES or helpers_pay(parsed, parse_s, left, pool, _pool_started):
            helpers = _Helpers(pool, workers - 1)

    def hand_out() -> None:
        while ready and helpers is not None and helpers.free(futures):
            futures.append(helpers.submit(parse_group, fmt.name, root, ready.pop(0), options))

    try:
        hashes = [hasher.submit(_hash_run, run) for run in runs]
        while planned < len(runs) or ready:
            # plan every run already hashed (at least one when there is nothing to parse)
            while planned < len(runs) and (not ready or hashes[planned].done()):
                hashed = hashes[planned].result()
                todo = plan.todo(runs[planned], hashed)
                bar.advance(len(hashed) - len(todo), sum(h[1] for h in hashed) - sum(i[2] for i in todo))
                items += todo
                if todo:
                    ready.append(todo)
                planned += 1
            start_helpers_if_they_pay()
            hand_out()
            if ready and (MAIN_PARSES or helpers is None or helpers.failed):
                parse_here(ready.pop(0))
            elif ready:
                helpers.wait(futures)
        writers, closing = None, writers
        closing.close()
        for future in as_completed(futures):
            done = future.result()
            consumed.add(future)
            outcomes += done
            bar.advance(len(done), sum(o.size_bytes for o in done))
    except BaseException:
        if writers is not None:
            writers.discard()  # its files are in ``outcomes``
        for future in futures:
            future.cancel()
        if helpers is not None:
            helpers.shutdown()
        for future in futures:
            if future not in consumed and not future.cancelled() and future.exception() is None:
                outcomes += future.result()
        raise
    finally:
        hasher.shutdown(wait=False, cancel_futures=True)
        if helpers is not None:
            helpers.shutdown()


def helpers_pay(parsed: int, parse_s: float, left: int, pool: str, pool_started: bool) -> bool:
    """Whether helpers are worth starting: this process parsed ``parsed`` files in ``parse_s``
    seconds and ``left`` files remain; helpers pay when that is at least twice their start."""
    if not parsed:
        return False  # no rate yet
    cost = HELPER_START_S["thread" if pool == "thread" else "warm" if pool_started else "cold"]
    return parse_s / parsed * left >= 2 * cost


class _Helpers:
    """``count`` helper processes (or threads) for ``_hash_and_parse``, started by a thread of
    their own so that the caller parses meanwhile; ``free`` says whether one could take a task now."""

    def __init__(self, pool: str, count: int):
        self.count = count
        self.executor = None
        self.ready = threading.Event()
        self.starter = threading.Thread(target=self._start, args=(pool,), name="ingest-helpers", daemon=True)
        self.starter.start()

    def _start(self, pool: str) -> None:
        global _pool_started
        try:
            if pool == "process":
                executor = ProcessPoolExecutor(max_workers=self.count, mp_context=_spawn())
                self.executor = executor
                for started in [executor.submit(os.getpid) for _ in range(self.count)]:
                    started.result()  # each helper is forked and answers
                _pool_started = True
            else:
                self.executor = ThreadPoolExecutor(max_workers=self.count)
        except Exception:  # noqa: BLE001  (no helpers: the caller parses everything)
            if self.executor is not None:
                self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
        finally:
            self.ready.set()

    @property
    def failed(self) -> bool:
        return self.ready.is_set() and self.executor is None

    def wait(self, futures: list) -> None:
        """Until a helper could take a task."""
        self.ready.wait()
        running = [f for f in futures if not f.done()]
        if self.executor is not None and len(running) >= self.count:
            wait(running, return_when=FIRST_COMPLETED)

    def free(self, futures: list) -> bool:
        if not self.ready.is_set() or self.executor is None:
            return False
        return sum(not f.done() for f in futures) < self.count

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def shutdown(self) -> None:
        """Stop the helpers once their tasks end (after they have started: a call smaller than a
        fork server's first start waits for that start, as it always has)."""
        self.starter.join()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None


def _hash_run(run: list[str]) -> list[tuple[str, int]]:
    return [sha256_and_size(f) for f in run]


def _parse_on_spark(spark, fmt: FileFormat, lake: Lake, groups: list[list], options: dict) -> list[_Outcome]:
    """``parse_group`` over ``groups`` as one Spark job, a task per group."""
    root, name = str(lake.root.resolve()), fmt.name
    tasks = spark.sparkContext.parallelize(list(enumerate(groups)), len(groups))
    try:
        done = tasks.map(lambda group: parse_group(name, root, group[1], options)).collect()
    except Exception as e:  # Py4J wraps the worker's traceback; a task failure is not one file's
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise IngestError(f"the Spark ingest job failed: {text}") from e
    return [outcome for group in done for outcome in group]


def committed_ids(lake: Lake, table: str, probe: str | None = None) -> Callable[[str], bool]:
    """``app_id -> bool``: is it committed in the latest version of ``table``? The ids are read
    from the Delta log once (``catalogs.app_transactions``), not one delta-rs log replay per file;
    delta-rs answers when that reader cannot be sure, or disagrees with it about ``probe``."""
    delta = lake.delta_table(table)

    def ask_delta(ids: str) -> bool:
        return delta.transaction_version(ids) is not None

    found = app_transaction_ids(lake.path(table), delta.version(), delta.metadata().configuration)
    if found is None or (probe is not None and (probe in found) != ask_delta(probe)):
        return ask_delta
    return found.__contains__


# what a worker needs, imported once by the server the workers are forked from; ``__main__`` is
# the caller's script when it is one (the ``astrolake`` command imports the whole CLI), which each
# worker would otherwise import again; pandas (and pyarrow's shim of it) is what pyarrow imports at its
# first ``pa.array``, half a second in every new worker otherwise
_PRELOAD = ["__main__", "catalogs.ingest.files", "catalogs.ingest.fits_images", "catalogs.ingest.fits_spectra",
            "catalogs.ingest.filterbank", "catalogs.ingest.voltages", "astropy.io.fits", "astropy.wcs",
            "astropy.time", "astropy.coordinates", "pandas", "pyarrow.pandas_compat"]


def _spawn():
    """Worker processes forked from a server that has imported the readers once (a fresh
    interpreter per worker would spend seconds importing astropy; a plain fork would copy the
    threads of delta-rs' runtime)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def binary_column(array) -> pa.Array:
    """One BINARY value holding the bytes of a contiguous numpy array, without a copy."""
    buffer = pa.py_buffer(array)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, buffer])


def _delete_parts(lake: Lake, outcomes: list[_Outcome]) -> None:
    for o in outcomes:
        for table, rels in o.parts.items():
            for rel in rels:
                (lake.path(table) / rel).unlink(missing_ok=True)


def _commit(lake: Lake, fmt: FileFormat, tables: tuple[str, ...], items: list, outcomes: list[_Outcome],
            strict: bool, report: FileIngestReport) -> None:
    rejected = [o for o in outcomes if o.reason is not None]
    good = [o for o in outcomes if o.reason is None]
    report.rejected = [RejectedFile(o.path, o.size_bytes, o.sha256, o.reason) for o in rejected]
    if rejected and strict:
        _delete_parts(lake, outcomes)
        lines = "\n".join(f"  {r.path}: {r.reason}" for r in report.rejected[:20])
        more = f"\n  ... and {len(rejected) - 20} more" if len(rejected) > 20 else ""
        raise IngestError(f"rejected {len(rejected)} file{'s' if len(rejected) != 1 else ''}, nothing committed "
                          f"(--strict):\n{lines}{more}", report.rejected)
    if rejected:
        in_quarantine = committed_ids(lake, QUARANTINE, app_id(fmt.table, rejected[0].sha256))
        new = [o for o in rejected if not in_quarantine(app_id(fmt.table, o.sha256))]
        if new:
            now = dt.datetime.now(dt.timezone.utc)
            rows = pa.table({
                "target_table": [fmt.table] * len(new),
                "source_file": [o.path for o in new],
                "source_sha256": [o.sha256 for o in new],
                "source_size_bytes": pa.array([o.size_bytes for o in new], pa.int64()),
                "row_number": pa.array([0] * len(new), pa.int64()),
                "reason": [o.reason for o in new],
                "record_json": [json.dumps({"file": o.path}) for o in new],
                "rejected_at": pa.array([now] * len(new), pa.timestamp("us", tz="UTC")),
            })
            report.quarantine_version = lake.append(
                QUARANTINE, rows, app_ids=tuple(app_id(fmt.table, o.sha256) for o in new),
                note=f"rejected files of {fmt.table} ingest")
        else:
            report.quarantine_version = lake.delta_table(QUARANTINE).version()
    if not good:
        return
    todo = {item[0]: item[3] for item in items}
    schema_of = {t: CATALOG[t].schema for t in tables}
    for table in tables:
        mine = [o for o in good if table in todo[o.path]]
        if not mine:
            continue
        rels = list(dict.fromkeys(rel for o in mine for rel in o.parts.get(table, [])))
        note = f"ingest {fmt.name}: " + ", ".join(Path(o.path).name for o in mine)
        report.versions[table] = lake.commit_files(
            table, rels, "append", schema_of[table], note=note[:500],
            app_ids=tuple(app_id(fmt.table, o.sha256) for o in mine))
        report.rows[table] = sum(o.rows.get(table, 0) for o in mine)
        for o in mine:  # committed: no longer ours to delete if a later commit fails
            o.parts.pop(table, None)
    report.files = [o.path for o in good]


def iter_chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive chunks of at most ``size`` covering range(total)."""
    for start in range(0, total, max(1, size)):
        yield start, min(total, start + size)
