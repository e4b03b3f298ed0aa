import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.errors import UsageError
from engine.output import format_table, write_result

TABLE = pa.table({
    "target": ["TRAPPIST-1", None],
    "snr": [85.25, 1289.3],
    "n": pa.array([3, 12], pa.int64()),
    "at": pa.array([dt.datetime(2017, 2, 22, 9, 0, tzinfo=dt.timezone.utc), None]),
    "wl": pa.array([[1.0, 2.0], list(range(10))], pa.list_(pa.float64())),
    "raw": pa.array([b"\x00\x01", None], pa.binary()),
})


def test_aligned_table():
    text = format_table(TABLE.select(["target", "snr", "n"]))
    assert text.splitlines() == [
        " target     | snr    | n",
        "------------+--------+----",
        " TRAPPIST-1 |  85.25 |  3",
        " NULL       | 1289.3 | 12",
        "(2 rows)",
    ]


def test_table_shows_nested_binary_and_times():
    text = format_table(TABLE)
    assert "2017-02-22 09:00:00Z" in text
    assert "<2 bytes>" in text
    assert "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, ... (10 items)]" in text


def test_truncation_is_said():
    text = format_table(pa.table({"x": list(range(5))}), max_rows=2)
    assert text.splitlines()[-1] == "(5 rows, first 2 shown; use --max-rows or --format csv for all)"


def test_one_row_footer():
    assert format_table(pa.table({"x": [1]})).endswith("(1 row)\n")


def test_csv_and_json():
    out = io.BytesIO()
    write_result(TABLE, "csv", out)
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == '"target","snr","n","at","wl","raw"'
    assert lines[1].startswith('"TRAPPIST-1",85.25,3,2017-02-22 09:00:00')
    assert '"[1.0, 2.0]","AAE="' in lines[1]
    out = io.BytesIO()
    write_result(TABLE, "json", out)
    rows = json.loads(out.getvalue())
    assert rows[0] == {"target": "TRAPPIST-1", "snr": 85.25, "n": 3, "at": "2017-02-22T09:00:00+00:00",
                       "wl": [1.0, 2.0], "raw": "AAE="}
    assert rows[1]["target"] is None


def test_parquet_and_arrow_round_trip():
    out = io.BytesIO()
    write_result(TABLE, "parquet", out)
    assert pq.read_table(io.BytesIO(out.getvalue())).equals(TABLE)
    out = io.BytesIO()
    write_result(TABLE, "arrow", out)
    assert pa.ipc.open_file(io.BytesIO(out.getvalue())).read_all().equals(TABLE)


def test_unknown_format():
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        write_result(TABLE, "xml", io.BytesIO())
