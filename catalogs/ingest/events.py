"""Signal events from CSV or Parquet files into ``signal_events``.

Columns are matched by name to the table (units in the names: freq_hz, drift_hz_s, ra_deg ...).
Required: observed_at, target, ra_deg, dec_deg, freq_hz, drift_hz_s, snr. Optional: event_id
(derived from the file's content hash and row number when absent), site, beam, bandwidth_hz,
source_file (defaults to the file's path); obs_date is derived from observed_at.
A row is rejected for an unparseable value, a missing required value or column, ra outside
[0, 360), dec outside [-90, 90], or a NaN frequency, drift or SNR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalogs.ingest.commit import IngestReport, app_id, commit_files
from catalogs.ingest.rows import ParsedFile, check_rows, read_table_file, sha256_of
from catalogs.lake import Lake
from catalogs.schemas import SIGNAL_EVENTS
from engine.errors import IngestError

TABLE = SIGNAL_EVENTS.name
ROW_BITS = 28  # event ids: 35 bits of the file's hash, then 28 bits of row number

CHECKS = [
    ("ra_deg", lambda a: pc.and_(pc.greater_equal(a, 0.0), pc.less(a, 360.0)),
     lambda v: f"ra_deg {v!r} outside [0, 360)"),
    ("dec_deg", lambda a: pc.and_(pc.greater_equal(a, -90.0), pc.less_equal(a, 90.0)),
     lambda v: f"dec_deg {v!r} outside [-90, 90]"),
    ("freq_hz", lambda a: pc.invert(pc.is_nan(a)), lambda v: "freq_hz is NaN"),
    ("drift_hz_s", lambda a: pc.invert(pc.is_nan(a)), lambda v: "drift_hz_s is NaN"),
    ("snr", lambda a: pc.invert(pc.is_nan(a)), lambda v: "snr is NaN"),
]


def parse_events_file(path: str | Path, sha256: str | None = None) -> ParsedFile:
    path = Path(path)
    raw, malformed = read_table_file(path)
    parsed = check_rows(path, SIGNAL_EVENTS, raw, malformed, CHECKS, sha256)
    rows = parsed.rows
    if "source_file" not in rows.column_names:
        rows = rows.append_column("source_file", pa.repeat(pa.scalar(str(path)), rows.num_rows))
    derived_ids = pa.array((int(parsed.sha256[:9], 16) >> 1 << ROW_BITS) + parsed.row_numbers.astype(np.int64), pa.int64())
    if "event_id" in rows.column_names:
        rows = rows.set_column(rows.column_names.index("event_id"), "event_id",
                               pc.coalesce(rows["event_id"], derived_ids))
    else:
        rows = rows.append_column("event_id", derived_ids)
    parsed.rows = rows
    return parsed


def ingest_events(lake: Lake, paths: list[str | Path], skip_bad: bool = False) -> IngestReport:
    """Ingest event files into ``signal_events`` in one atomic commit."""
    if not paths:
        raise IngestError("no files given")
    parsed, skipped = [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise IngestError(f"cannot read {path}: no such file")
        sha = sha256_of(path)
        if lake.already_committed(TABLE, app_id(TABLE, sha)):
            skipped.append((str(path), f"already ingested into {TABLE} (sha256 {sha[:12]})"))
        else:
            parsed.append(parse_events_file(path, sha))
    return commit_files(lake, TABLE, parsed, skip_bad=skip_bad, skipped=skipped)
