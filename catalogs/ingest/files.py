"""The file-level ingest pipeline shared by images, spectra, filterbank and voltages.

A format is a pure parse function ``parse(path, sha256, options) -> iterator of (table, Arrow
rows)`` that raises ``Rejected(reason)`` for a file it cannot or must not read; it never touches
the lake, so a Spark ``mapInArrow`` job can call it too (``parse_or_reject``).

One call of ``ingest_files``:

1. hashes every file (SHA-256, read in 1 MiB blocks, in threads: hashlib releases the GIL) and
   skips files whose content is already in the lake (Delta app transactions) or given twice;
2. parses the rest in worker processes (``workers`` > 1) or in this process; each worker streams
   the rows into Parquet files inside the table folders (invisible until committed) and keeps a
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
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalogs.ingest.commit import QUARANTINE, app_id
from catalogs.lake import Lake
from catalogs.schemas import CATALOG
from engine.errors import IngestError

SPILL_BYTES = 64 << 20      # a file's rows are buffered up to this size, then streamed to its own files
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
    """Parquet files inside the table folders of one lake, written by one worker."""

    def __init__(self, root: str):
        self.root = Path(root)
        self.shared: dict[str, tuple[pq.ParquetWriter, str, int]] = {}
        self.closed: dict[str, list[str]] = {}

    def open(self, table: str) -> tuple[pq.ParquetWriter, str]:
        rel = f"part-ingest-{uuid.uuid4().hex}.parquet"
        schema = CATALOG[table].schema
        binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_list(f.type)]
        # array blobs (pixels, power, samples) barely compress and snappy writes them at ~40 MB/s
        writer = pq.ParquetWriter(
            self.root / table / rel, schema,
            compression={f.name: "none" if pa.types.is_binary(f.type) else "snappy" for f in schema},
            use_dictionary=[f.name for f in schema if f.name not in binary],
            write_statistics=[f.name for f in schema if f.name not in binary],
        )
        return writer, rel

    def write_shared(self, table: str, rows: pa.Table) -> str:
        writer, rel, size = self.shared.get(table) or (*self.open(table), 0)
        writer.write_table(rows)
        size += rows.nbytes
        if size >= PART_BYTES:
            writer.close()
            self.closed.setdefault(table, []).append(rel)
            self.shared.pop(table, None)
        else:
            self.shared[table] = (writer, rel, size)
        return rel

    def close(self) -> None:
        for table, (writer, rel, _) in self.shared.items():
            writer.close()
            self.closed.setdefault(table, []).append(rel)
        self.shared.clear()

    def delete(self, table: str, rel: str) -> None:
        (self.root / table / rel).unlink(missing_ok=True)


def _conform(lake: Lake, table: str, rows: pa.Table) -> pa.Table:
    return lake.conform(table, rows)


def _parse_one(fmt: FileFormat, lake: Lake, writers: _Writers, item: tuple, options: dict) -> _Outcome:
    path, sha, size, tables = item
    outcome = _Outcome(path, sha, size)
    pending: dict[str, list[pa.Table]] = {}
    pending_bytes = 0
    own: dict[str, tuple[pq.ParquetWriter, str]] = {}
    try:
        for table, rows in fmt.parse(path, sha, options):
            if table not in tables:
                continue  # already committed by an earlier, interrupted call
            rows = _conform(lake, table, rows)
            outcome.rows[table] = outcome.rows.get(table, 0) + rows.num_rows
            if not own and pending_bytes + rows.nbytes <= SPILL_BYTES:
                pending.setdefault(table, []).append(rows)
                pending_bytes += rows.nbytes
                continue
            for t, buffered in [*pending.items(), (table, [rows])]:
                if t not in own:
                    own[t] = writers.open(t)
                for b in buffered:
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
        for b in buffered:
            outcome.parts.setdefault(t, [])
            rel = writers.write_shared(t, b)
            if rel not in outcome.parts[t]:
                outcome.parts[t].append(rel)
    return outcome


def parse_group(fmt_name: str, root: str, items: list[tuple], options: dict) -> list[_Outcome]:
    """Parse ``items`` (path, sha256, size, tables to write) into Parquet files of the lake."""
    fmt = FORMATS[fmt_name]()
    lake = Lake(root, create=False)
    writers = _Writers(root)
    try:
        return [_parse_one(fmt, lake, writers, item, options) for item in items]
    finally:
        writers.close()


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

    # 1. hash, skip what is in already
    with ThreadPoolExecutor(max_workers=workers) as pool:
        hashed = list(pool.map(sha256_and_size, files))
    items, seen = [], {}
    snapshots = {t: lake.delta_table(t) for t in tables}  # one log read per table, not per file

    def committed(table: str, ids: str) -> bool:
        return snapshots[table].transaction_version(ids) is not None

    for path, (sha, size) in zip(files, hashed):
        ids = app_id(fmt.table, sha)
        if sha in seen:
            report.skipped.append((path, f"same content as {seen[sha]}"))
        elif committed(fmt.table, ids):
            report.skipped.append((path, f"already ingested into {fmt.table} (sha256 {sha[:12]})"))
        else:
            seen[sha] = path
            todo = tuple(t for t in tables if not committed(t, ids))
            items.append((path, sha, size, todo))
    for t in tables:
        lake.add_missing_columns(t)  # an older table gets the new nullable columns first

    # 2. parse into Parquet files inside the table folders
    outcomes: list[_Outcome] = []
    bar = _Progress(f"ingest {fmt.name}", len(items), sum(i[2] for i in items), progress)
    try:
        groups = _groups(items, spark.sparkContext.defaultParallelism if spark is not None else workers)
        if spark is not None and groups:
            outcomes += _parse_on_spark(spark, fmt, lake, groups, options)
            bar.advance(len(items), sum(i[2] for i in items))
        elif workers > 1 and len(groups) > 1:
            executor = (ProcessPoolExecutor(max_workers=workers, mp_context=_spawn())
                        if parallel == "process" else ThreadPoolExecutor(max_workers=workers))
            with executor:
                futures = [executor.submit(parse_group, fmt.name, str(lake.root), g, options) for g in groups]
                for future in as_completed(futures):
                    done = future.result()
                    outcomes += done
                    bar.advance(len(done), sum(o.size_bytes for o in done))
        else:
            lake_ = Lake(lake.root, create=False)
            writers = _Writers(str(lake.root))
            try:
                for item in items:
                    outcomes.append(_parse_one(fmt, lake_, writers, item, options))
                    bar.advance(1, item[2])
            finally:
                writers.close()
        bar.close()
        order = {item[0]: i for i, item in enumerate(items)}
        outcomes.sort(key=lambda o: order[o.path])
        _commit(lake, fmt, tables, items, outcomes, strict, report)
    except BaseException:
        bar.close()
        _delete_parts(lake, outcomes)
        raise
    report.bytes_read = sum(size for _, (_, size) in zip(files, hashed))
    report.seconds = time.perf_counter() - started
    return report


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


def _spawn():
    """Worker processes forked from a server that has imported the readers once (a fresh
    interpreter per worker would spend seconds importing astropy; a plain fork would copy the
    threads of delta-rs' runtime)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["catalogs.ingest.files", "catalogs.ingest.fits_images",
                                    "catalogs.ingest.fits_spectra", "catalogs.ingest.filterbank",
                                    "catalogs.ingest.voltages", "astropy.io.fits", "astropy.wcs",
                                    "astropy.time", "astropy.coordinates"])
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
        quarantine = lake.delta_table(QUARANTINE)
        new = [o for o in rejected if quarantine.transaction_version(app_id(fmt.table, o.sha256)) is None]
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
