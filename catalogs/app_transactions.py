"""Every application-transaction id of one Delta table version, read from its log in one pass.

delta-rs answers ``transaction_version(app_id)`` one id at a time, replaying the log for each call
(about 1 ms on a new table, several ms after a few dozen commits), which made "is this file already
ingested?" the biggest per-file cost of ingesting many small files. Here the log is read once:
the newest complete classic checkpoint at or before the version (its ``txn`` column), then every
JSON commit after it, in order. Anything this reader does not know for certain -- a V2 (UUID)
checkpoint, a missing commit file, a transaction retention period that expires old ids, a line it
cannot parse -- makes it return None, and the caller asks delta-rs id by id as before.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CLASSIC = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_MULTI_PART = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_V2 = re.compile(r"^(\d{20})\.checkpoint\.[0-9A-Fa-f-]{36}\.(json|parquet)$")
RETENTION_KEY = "delta.setTransactionRetentionDuration"


def app_transaction_ids(table_root: str | Path, version: int, configuration: dict | None = None) -> set[str] | None:
    """The app ids committed in the table up to ``version``, or None when only delta-rs can tell."""
    if configuration and RETENTION_KEY in configuration:
        return None  # ids expire by age: delta-rs applies the rule
    log = Path(table_root) / "_delta_log"
    try:
        names = [p.name for p in log.iterdir()]
    except OSError:
        return None
    commits: set[int] = set()
    singles: set[int] = set()
    parts: dict[tuple[int, int], set[int]] = {}
    for name in names:
        if found := _COMMIT.match(name):
            commits.add(int(found[1]))
        elif found := _CLASSIC.match(name):
            singles.add(int(found[1]))
        elif found := _MULTI_PART.match(name):
            parts.setdefault((int(found[1]), int(found[3])), set()).add(int(found[2]))
        elif (found := _V2.match(name)) and int(found[1]) <= version:
            return None
    complete = {v: [f"{v:020d}.checkpoint.parquet"] for v in singles}
    for (v, total), have in parts.items():
        if have == set(range(1, total + 1)) and v not in complete:
            complete[v] = [f"{v:020d}.checkpoint.{i:010d}.{total:010d}.parquet" for i in range(1, total + 1)]
    usable = [v for v in complete if v <= version]
    start = max(usable) if usable else -1
    if any(v not in commits for v in range(start + 1, version + 1)):
        return None  # a gap in the log (cleaned up without a checkpoint?)
    ids: set[str] = set()
    try:
        if start >= 0:
            for name in complete[start]:
                schema = pq.read_schema(log / name)
                if "txn" not in schema.names:
                    continue
                txn = pq.read_table(log / name, columns=["txn"]).column("txn").combine_chunks()
                ids.update(a for a in txn.field("appId").filter(txn.is_valid()).to_pylist() if a is not None)
        for v in range(start + 1, version + 1):
            with open(log / f"{v:020d}.json", "rb") as f:
                for line in f:
                    if b'"txn"' not in line:
                        continue
                    action = json.loads(line)
                    if "txn" in action:
                        ids.add(action["txn"]["appId"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    except Exception:  # noqa: BLE001  (an unreadable checkpoint: delta-rs decides)
        return None
    return ids
