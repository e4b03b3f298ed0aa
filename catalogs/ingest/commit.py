"""Committing parsed input files to the lake: all or nothing, idempotent, nothing lost.

One call is one atomic Delta commit of every new file's good rows. A file is known by the
SHA-256 of its content; its application-transaction id is committed with its rows, so ingesting
the same content again (under any name) adds nothing. Rejected rows either stop the whole call
(nothing committed) or, with ``skip_bad``, go to the ``_rejected`` quarantine table first, under
the same content id, so a retry after a failure neither loses nor duplicates them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa

from catalogs.ingest.rows import ParsedFile, Reject, rejects_table
from catalogs.lake import Lake
from engine.errors import IngestError

QUARANTINE = "_rejected"
MAX_LISTED_REJECTS = 20


def app_id(table: str, sha256: str) -> str:
    return f"astrolake.ingest.{table}:{sha256}"


@dataclass
class IngestReport:
    table: str
    version: int | None = None
    rows: int = 0
    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    rejects: list[Reject] = field(default_factory=list)
    quarantine_version: int | None = None

    def summary(self) -> str:
        lines = [f"skipped {path}: {why}" for path, why in self.skipped]
        if self.files:
            lines.append(
                f"ingested {self.rows} rows from {len(self.files)} file{'s' if len(self.files) != 1 else ''} "
                f"into {self.table} (version {self.version})"
            )
        elif not self.skipped:
            lines.append("nothing to ingest")
        if self.rejects:
            lines.append(
                f"quarantined {len(self.rejects)} rejected rows in {QUARANTINE} (version {self.quarantine_version}); "
                f"see: SELECT * FROM {QUARANTINE} WHERE target_table = '{self.table}'"
            )
        return "\n".join(lines)


def describe_rejects(rejects: list[Reject], limit: int = MAX_LISTED_REJECTS) -> str:
    lines = [f"  {r.source_file} row {r.row_number}: {r.reason}" for r in rejects[:limit]]
    if len(rejects) > limit:
        lines.append(f"  ... and {len(rejects) - limit} more")
    return "\n".join(lines)


def commit_files(lake: Lake, table: str, parsed: list[ParsedFile], skip_bad: bool = False,
                 skipped: list[tuple[str, str]] | None = None) -> IngestReport:
    """Commit the good rows of ``parsed`` in one Delta commit (see the module docstring)."""
    report = IngestReport(table, skipped=list(skipped or []))
    fresh, seen = [], {}
    for p in parsed:
        if p.sha256 in seen:
            report.skipped.append((p.path, f"same content as {seen[p.sha256]}"))
        elif lake.already_committed(table, app_id(table, p.sha256)):
            report.skipped.append((p.path, f"already ingested into {table} (sha256 {p.sha256[:12]})"))
        else:
            seen[p.sha256] = p.path
            fresh.append(p)
    rejects = [r for p in fresh for r in p.rejects]
    if rejects and not skip_bad:
        raise IngestError(
            f"rejected {len(rejects)} row{'s' if len(rejects) != 1 else ''}, nothing committed "
            f"(fix them, or use --skip-bad to commit the good rows and quarantine the rest):\n"
            + describe_rejects(rejects),
            rejects,
        )
    if not fresh:
        return report
    if rejects:
        quarantined = [p for p in fresh if p.rejects and not lake.already_committed(QUARANTINE, app_id(table, p.sha256))]
        if quarantined:
            now = dt.datetime.now(dt.timezone.utc)
            rows = rejects_table(table, [r for p in quarantined for r in p.rejects], {p.path: p.sha256 for p in quarantined}, now)
            report.quarantine_version = lake.append(
                QUARANTINE, rows, app_ids=tuple(app_id(table, p.sha256) for p in quarantined),
                note=f"rejects of {table} ingest",
            )
        else:
            report.quarantine_version = lake.delta_table(QUARANTINE).version()
        report.rejects = rejects
    good = pa.concat_tables([p.rows for p in fresh], promote_options="permissive")
    report.version = lake.append(
        table, good, app_ids=tuple(app_id(table, p.sha256) for p in fresh),
        note="ingest " + ", ".join(p.path.rsplit("/", 1)[-1] for p in fresh)[:500],
    )
    report.rows = good.num_rows
    report.files = [p.path for p in fresh]
    return report
