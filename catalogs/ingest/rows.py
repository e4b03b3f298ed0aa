"""Reading tabular input files (CSV, Parquet) and checking their rows against a catalog table.

Everything here is vectorized: a file's rows are parsed column by column with pyarrow, and a
rejected row is found by a mask, so checking 10 million rows costs seconds, not minutes.
Row numbers in reports are 1-based data rows (the CSV header is not a row; row N is line N+1).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalogs.schemas import TableSpec
from engine.errors import IngestError, did_you_mean

NULL_STRINGS = ["", "NULL", "null", "NA"]
_FLOAT = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf|infinity)\s*$"
_INT = r"^\s*[-+]?\d+\s*$"
_TIMESTAMP = r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*([Zz]|[+-]\d{2}:?\d{2})?\s*$"
_HAS_OFFSET = r"([Zz]|[+-]\d{2}:?\d{2})\s*$"


@dataclass(frozen=True)
class Reject:
    source_file: str
    row_number: int
    reason: str
    record: dict


@dataclass
class ParsedFile:
    """A file's rows converted to the table's types, and the rows that could not be."""

    path: str
    sha256: str
    rows: pa.Table
    row_numbers: np.ndarray
    rejects: list[Reject] = field(default_factory=list)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    if path.suffix.lower() in (".csv", ".txt", ".gz", ".bz2"):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def read_table_file(path: Path) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """The file's rows (CSV as strings, Parquet as typed) and its malformed CSV lines."""
    try:
        if _is_parquet(path):
            return pq.read_table(path), []
        return _read_csv(path)
    except (OSError, UnicodeDecodeError, pa.ArrowException) as e:
        raise IngestError(f"cannot read {path}: {str(e).splitlines()[0]}") from e


def _read_csv(path: Path) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", newline="") as f:
        names = next(csv.reader(f), None)
    if not names:
        raise IngestError(f"cannot read {path}: the file is empty (a CSV file needs a header line)")
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, null_values=NULL_STRINGS, strings_can_be_null=True
    )
    try:
        return pacsv.read_csv(path, convert_options=convert), []
    except pa.ArrowInvalid:
        malformed: list[tuple[int, str, str]] = []

        def keep_note(row) -> str:
            malformed.append((row.number - 1, f"malformed CSV line: expected {row.expected_columns} "
                                              f"fields, got {row.actual_columns}", row.text))
            return "skip"

        table = pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(use_threads=False), convert_options=convert,
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep_note),
        )
        return table, malformed


def _convert(column: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """``column`` as ``target``, with nulls where a value did not parse, and the mask of those."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) and not (
            pa.types.is_string(target) or pa.types.is_large_string(target)):
        try:  # the common case: every value parses, no need to look at each one
            return column.cast(target), np.zeros(len(column), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        if pa.types.is_floating(target):
            pattern = _FLOAT
        elif pa.types.is_integer(target):
            pattern = _INT
        elif pa.types.is_timestamp(target):
            pattern = _TIMESTAMP
        else:
            pattern = None
        if pattern is not None:
            ok = pc.fill_null(pc.match_substring_regex(column, pattern, ignore_case=True), True)
            bad = ~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
            clean = pc.utf8_trim_whitespace(pc.if_else(ok, column, None))
            if pa.types.is_timestamp(target):
                return _parse_timestamps(clean, target, bad)
            try:
                return clean.cast(target), bad
            except pa.ArrowInvalid:  # e.g. an integer too large: find the rows one by one
                return _convert_one_by_one(clean, target, bad)
    try:
        return column.cast(target, safe=True), np.zeros(len(column), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _convert_one_by_one(column, target, np.zeros(len(column), dtype=bool))


def _parse_timestamps(clean: pa.Array, target: pa.DataType, bad: np.ndarray):
    with_offset = pc.fill_null(pc.match_substring_regex(clean, _HAS_OFFSET), False)
    text = pc.if_else(with_offset, clean, pc.binary_join_element_wise(clean, "Z", ""))
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})Z$", r"\1T00:00:00Z")
    try:
        return text.cast(target), bad
    except pa.ArrowInvalid:  # a well-formed but impossible date such as 2017-13-45
        return _convert_one_by_one(text, target, bad)


def _convert_one_by_one(column: pa.Array, target: pa.DataType, bad: np.ndarray):
    values, bad = [], bad.copy()
    for i, value in enumerate(column):
        try:
            values.append(value.cast(target) if value.is_valid else pa.scalar(None, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values.append(pa.scalar(None, target))
            bad[i] = True
    return pa.array([v.as_py() for v in values], target), bad


def check_rows(path: Path, spec: TableSpec, raw: pa.Table, malformed: list[tuple[int, str, str]],
               checks, sha256: str | None = None) -> ParsedFile:
    """Convert ``raw`` to the table's types and apply ``checks``; bad rows become Rejects.

    ``checks`` is a list of (column, predicate(array) -> ok mask, reason(value) -> str).
    """
    sha = sha256 or sha256_of(path)
    n = raw.num_rows
    numbers = np.arange(1, n + 1)
    if malformed:  # rows after a malformed line keep their place in the file
        numbers = np.setdiff1d(np.arange(1, n + len(malformed) + 1), [m for m, _, _ in malformed])
    reasons: dict[int, list[str]] = defaultdict(list)  # only the bad rows, so it stays small
    schema = spec.schema
    unknown = [c for c in raw.column_names if c not in schema.names]
    missing = [c for c in spec.required if c not in raw.column_names]
    if unknown:
        u = unknown[0]
        raise IngestError(f"{path}: unknown column '{u}'{did_you_mean(u, schema.names)} "
                          f"(columns of {spec.name}: {', '.join(schema.names)})")
    file_reasons = [f"missing required column '{c}'" for c in missing]
    columns = {}
    for name in raw.column_names:
        target = schema.field(name).type
        converted, bad = _convert(raw[name], target)
        for i in np.flatnonzero(bad):
            reasons[i].append(f"{name}: cannot read {raw[name][i].as_py()!r} as {_kind(target)}")
        columns[name] = converted
        if name in spec.required:
            for i in np.flatnonzero(~bad & ~np.asarray(converted.is_valid().to_numpy(zero_copy_only=False))):
                reasons[i].append(f"{name}: missing value")
    for name, ok_of, reason in checks:
        if name in columns:
            ok = np.asarray(pc.fill_null(ok_of(columns[name]), True).to_numpy(zero_copy_only=False), dtype=bool)
            for i in np.flatnonzero(~ok):
                reasons[i].append(reason(columns[name][i].as_py()))
    rejects = [Reject(str(path), int(line), why, {"line": text}) for line, why, text in malformed]
    bad_rows = np.zeros(n, dtype=bool)
    bad_rows[list(reasons)] = True
    if file_reasons:
        bad_rows[:] = True
    for i in np.flatnonzero(bad_rows):
        record = {k: _jsonable(raw[k][i].as_py()) for k in raw.column_names}
        rejects.append(Reject(str(path), int(numbers[i]), "; ".join(file_reasons + reasons[i]), record))
    rejects.sort(key=lambda r: r.row_number)
    keep = pa.array(~bad_rows)
    good = pa.table({k: v for k, v in columns.items()}).filter(keep) if columns else raw
    return ParsedFile(str(path), sha, good, numbers[~bad_rows], rejects)


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_floating(arrow_type):
        return "a number"
    if pa.types.is_integer(arrow_type):
        return "an integer"
    if pa.types.is_timestamp(arrow_type):
        return "a UTC timestamp (ISO 8601)"
    return str(arrow_type)


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def rejects_table(target_table: str, rejects: list[Reject], sha_of: dict[str, str], when) -> pa.Table:
    """Rejects as rows of the ``_rejected`` quarantine table."""
    return pa.table({
        "target_table": [target_table] * len(rejects),
        "source_file": [r.source_file for r in rejects],
        "source_sha256": [sha_of[r.source_file] for r in rejects],
        "row_number": pa.array([r.row_number for r in rejects], pa.int64()),
        "reason": [r.reason for r in rejects],
        "record_json": [json.dumps(r.record) if r.record else None for r in rejects],
        "rejected_at": pa.array([when] * len(rejects), pa.timestamp("us", tz="UTC")),
    })
