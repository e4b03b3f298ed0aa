"""Results out: an aligned table for people, CSV / JSON / Parquet / Arrow IPC for programs."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import sys
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from engine.errors import UsageError

FORMATS = ("table", "csv", "json", "parquet", "arrow")
BINARY_FORMATS = ("parquet", "arrow")


def _cell(value) -> str:
    """A value as the aligned table shows it."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return repr(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
        return text + ("Z" if value.tzinfo is not None else "")
    if isinstance(value, list):
        inner = ", ".join(_cell(v) for v in value[:6])
        return f"[{inner}, ... ({len(value)} items)]" if len(value) > 6 else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) + "}"
    return str(value)


def _is_numeric(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)


def format_table(table: pa.Table, max_rows: int | None = None) -> str:
    """psql-style aligned text: header, rule, right-aligned numbers, and a row count footer."""
    shown = table if max_rows is None or table.num_rows <= max_rows else table.slice(0, max_rows)
    columns = [[_cell(v) for v in column.to_pylist()] for column in shown.columns]
    headers = table.column_names
    widths = [max([len(h)] + [len(c) for c in col]) for h, col in zip(headers, columns)]
    numeric = [_is_numeric(f.type) for f in table.schema]
    lines = [" " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("-" + "-+-".join("-" * w for w in widths) + "-")
    for i in range(shown.num_rows):
        cells = [col[i].rjust(w) if num else col[i].ljust(w) for col, w, num in zip(columns, widths, numeric)]
        lines.append(" " + " | ".join(cells).rstrip())
    n = table.num_rows
    footer = f"({n} row{'s' if n != 1 else ''})"
    if shown.num_rows < n:
        footer = f"({n} rows, first {shown.num_rows} shown; use --max-rows or --format csv for all)"
    lines.append(footer)
    return "\n".join(lines) + "\n"


def _json_value(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _flat_for_csv(table: pa.Table) -> pa.Table:
    """Nested and binary columns as JSON / base64 text, which CSV can hold."""
    columns = []
    for column in table.columns:
        t = column.type
        if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            as_text = _json_value if pa.types.is_binary(t) or pa.types.is_large_binary(t) else (
                lambda v: json.dumps(_json_value(v)))
            column = pa.array([None if v is None else as_text(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def write_result(table: pa.Table, fmt: str, out: BinaryIO, max_rows: int | None = None) -> None:
    """Write ``table`` to the binary stream ``out`` in ``fmt``."""
    if fmt == "table":
        out.write(format_table(table, max_rows).encode())
    elif fmt == "csv":
        buffer = io.BytesIO()
        pacsv.write_csv(_flat_for_csv(table), buffer)
        out.write(buffer.getvalue())
    elif fmt == "json":
        rows = [{k: _json_value(v) for k, v in row.items()} for row in table.to_pylist()]
        out.write((json.dumps(rows, indent=None) + "\n").encode())
    elif fmt == "parquet":
        pq.write_table(table, out)
    elif fmt == "arrow":
        with pa.ipc.new_file(out, table.schema) as writer:
            writer.write_table(table)
    else:
        raise UsageError(f"unknown format '{fmt}' (choose one of: {', '.join(FORMATS)})")


def emit(table: pa.Table, fmt: str = "table", output: str | None = None, max_rows: int | None = None) -> None:
    """Write a result to ``output`` (a path) or standard output."""
    if output:
        with open(output, "wb") as f:
            write_result(table, fmt, f, max_rows)
        return
    if fmt in BINARY_FORMATS and sys.stdout.isatty():
        raise UsageError(f"--format {fmt} is binary: give --output FILE or redirect standard output")
    sys.stdout.flush()
    write_result(table, fmt, sys.stdout.buffer, max_rows)
    sys.stdout.buffer.flush()
