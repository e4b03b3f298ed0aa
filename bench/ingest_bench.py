"""Ingest rate: ``ingest_events`` into a fresh lake against the bare read-and-write cost.

The reference is what ingest cannot do with less: pyarrow reads the same files (CSV with the
table's column types given), the one derived column the table is partitioned by (``obs_date``)
is added, and ``deltalake.write_deltalake`` writes the rows into a fresh Delta table with the same
partitioning, with no hashing, no checks, no ids and no schema conformance. Each round runs the
reference, then the ingest, each into a fresh table, the files in the page cache for both.
"""

from __future__ import annotations

import shutil
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from deltalake import write_deltalake

import catalogs.ingest.events as events_module
import catalogs.lake as lake_module
from bench.timing import settle, stage_clock, timed
from bench.workload import EventFiles
from catalogs.ingest.events import ingest_events
from catalogs.lake import Lake
from catalogs.schemas import SIGNAL_EVENTS

# The functions ingest_events spends its time in, timed during the measured run itself.
INGEST_STAGES = [
    (events_module, "sha256_of", "hash files (SHA-256 of the content)"),
    (events_module, "read_table_file", "read files (pyarrow)"),
    (events_module, "check_rows", "convert and check rows (rows.check_rows)"),
    (Lake, "conform", "conform to the table schema (Lake.conform)"),
    (lake_module, "write_deltalake", "Delta write (write_deltalake)"),
]
OTHER_STAGE = "the rest (event ids, source_file column, concat, log reads)"


@dataclass
class IngestFigures:
    kind: str
    files: int
    input_bytes: int
    rows: int
    ingest_runs_seconds: list[float]
    reference_runs_seconds: list[float]
    stage_seconds: dict[str, float] = field(default_factory=dict)  # mean over the runs

    @property
    def ingest_seconds(self) -> float:
        return statistics.median(self.ingest_runs_seconds)

    @property
    def reference_seconds(self) -> float:
        return statistics.median(self.reference_runs_seconds)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.ingest_seconds

    @property
    def reference_rows_per_s(self) -> float:
        return self.rows / self.reference_seconds

    @property
    def ratio(self) -> float:
        """Time of astrolake's ingest over time of the bare read and write (medians)."""
        return self.ingest_seconds / self.reference_seconds


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def _read(path: Path) -> pa.Table:
    if path.suffix == ".csv":
        types = {f.name: f.type for f in SIGNAL_EVENTS.schema}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    return pq.read_table(path)


def reference_load(files: EventFiles, table_path: Path) -> int:
    """The bare cost: read the files, add the partition column, write one Delta commit."""
    rows = pa.concat_tables([_read(p) for p in files.paths])
    obs_date = rows["observed_at"].cast(pa.timestamp("us")).cast(pa.date32())  # UTC date, as Lake does
    rows = rows.append_column("obs_date", obs_date)
    write_deltalake(str(table_path), rows, partition_by=list(SIGNAL_EVENTS.partition_by), mode="error")
    return rows.num_rows


def _ingest_once(files: EventFiles, lake_path: Path) -> tuple[float, dict[str, float]]:
    lake = Lake(_fresh(lake_path))  # creating the empty catalog tables is not timed
    paths = list(files.paths)
    settle()
    with stage_clock(INGEST_STAGES) as stages:
        seconds, report = timed(lambda: ingest_events(lake, paths))
    if report.rows != files.rows or report.rejects:
        raise AssertionError(f"{files.kind} ingest wrote {report.rows} rows ({len(report.rejects)} rejected); "
                             f"the files hold {files.rows}")
    stage_seconds = dict(stages)
    stage_seconds[OTHER_STAGE] = max(0.0, seconds - sum(stage_seconds.values()))
    return seconds, stage_seconds


def _reference_once(files: EventFiles, table_path: Path) -> float:
    _fresh(table_path)
    settle()
    seconds, rows = timed(lambda: reference_load(files, table_path))
    if rows != files.rows:
        raise AssertionError(f"{files.kind} reference wrote {rows} rows; the files hold {files.rows}")
    return seconds


def bench_ingest(files: EventFiles, work_dir: Path, runs: int = 1) -> IngestFigures:
    """``runs`` rounds of (reference, ingest), each into a fresh table; medians, mean stage times."""
    tag = files.kind.lower()
    reference_runs, ingest_runs, stage_totals = [], [], defaultdict(float)
    for _ in range(runs):
        reference_runs.append(_reference_once(files, work_dir / f"reference-{tag}"))
        seconds, stages = _ingest_once(files, work_dir / f"ingest-{tag}-lake")
        ingest_runs.append(seconds)
        for name, stage in stages.items():
            stage_totals[name] += stage
    stage_seconds = {name: total / runs for name, total in stage_totals.items()}
    return IngestFigures(files.kind, len(files.paths), files.size_bytes, files.rows,
                         ingest_runs, reference_runs, stage_seconds)
