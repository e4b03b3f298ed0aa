"""Blob columns read as views into the Parquet pages: the same values pyarrow decodes, or None."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalogs import parquet_blobs

VALUES = [b"", b"a", b"twelve bytes", b"thirteen byte", None, bytes(range(256)) * 40, b"x" * 5000, None, b"0123"]


def _write(path, values, **options):
    table = pa.table({"id": pa.array(range(len(values)), pa.int64()), "blob": pa.array(values, pa.binary())})
    pq.write_table(table, path, **options)
    return pq.ParquetFile(path).metadata


@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
@pytest.mark.parametrize("page_size", [64, 1 << 20])  # many values a page, or one
def test_views_equal_what_pyarrow_reads(tmp_path, page_version, page_size):
    values = VALUES * 7
    path = str(tmp_path / "t.parquet")
    meta = _write(path, values, compression="NONE", use_dictionary=False, data_page_version=page_version,
                  data_page_size=page_size, write_statistics=False)
    got = parquet_blobs.blob_column(path, meta, 0, "blob")
    assert got is not None and got.type == pa.binary_view()
    assert got.cast(pa.binary()).to_pylist() == values
    rows = np.array([0, 3, 4, 5, 20, len(values) - 1])
    assert parquet_blobs.blob_column(path, meta, 0, "blob", rows).cast(pa.binary()).to_pylist() == \
        [values[i] for i in rows]


def test_every_row_group(tmp_path):
    values = [bytes([i]) * (i * 37) for i in range(100)]
    path = str(tmp_path / "t.parquet")
    meta = _write(path, values, compression="NONE", use_dictionary=False, row_group_size=30)
    got = [parquet_blobs.blob_column(path, meta, g, "blob").cast(pa.binary()).to_pylist()
           for g in range(meta.num_row_groups)]
    assert sum(got, []) == values


@pytest.mark.parametrize("options", [dict(compression="snappy", use_dictionary=False),
                                     dict(compression="NONE", use_dictionary=True)])
def test_other_layouts_are_left_to_pyarrow(tmp_path, options):
    path = str(tmp_path / "t.parquet")
    meta = _write(path, [b"same"] * 50, **options)
    assert parquet_blobs.blob_column(path, meta, 0, "blob") is None
    assert parquet_blobs.blob_column(path, meta, 0, "id") is None  # not a binary column
    assert parquet_blobs.blob_column(path, meta, 0, "missing") is None


def test_a_file_gone_is_an_error_not_stale_bytes(tmp_path):
    path = str(tmp_path / "t.parquet")
    meta = _write(path, [b"abc" * 10], compression="NONE", use_dictionary=False)
    assert parquet_blobs.blob_column(path, meta, 0, "blob") is not None
    (tmp_path / "t.parquet").unlink()
    with pytest.raises(FileNotFoundError):
        parquet_blobs.blob_column(path, meta, 0, "blob")


def test_lake_blob_tables_are_read_as_views(tmp_path):
    """The lake writes voltages so that the pre-pass reads them without a copy."""
    from catalogs.lake import Lake

    lake = Lake(tmp_path / "lake")
    samples = [np.arange(64, dtype=np.complex64).tobytes(), np.ones(32, dtype=np.complex64).tobytes()]
    table = pa.table({"snapshot_id": ["a", "b"], "samples": samples, "n_samples": pa.array([64, 32], pa.int64()),
                      "sample_rate_hz": [1e6, 1e6]})
    lake.append("voltages", table)
    snapshot = lake.snapshot("voltages")
    path = snapshot.files[0]
    got = parquet_blobs.blob_column(path, pq.ParquetFile(path).metadata, 0, "samples")
    assert got is not None and sorted(got.cast(pa.binary()).to_pylist()) == sorted(samples)
