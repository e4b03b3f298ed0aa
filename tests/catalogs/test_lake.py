import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pytest

from catalogs.lake import Lake, parse_timestamp
from catalogs.schemas import CATALOG
from engine.errors import LakeError, SchemaMismatchError, UnknownTableError, VersionNotFoundError

UTC = dt.timezone.utc


def events(n=3, start=0, day=1):
    return pa.table({
        "event_id": pa.array(range(start, start + n), pa.int64()),
        "observed_at": pa.array([dt.datetime(2017, 2, day, 10, i, tzinfo=UTC) for i in range(n)]),
        "target": ["TRAPPIST-1"] * n,
        "ra_deg": [346.6223] * n,
        "dec_deg": [-5.0413] * n,
        "freq_hz": [1.42e9 + i for i in range(n)],
        "drift_hz_s": [0.1] * n,
        "snr": [20.0 + i for i in range(n)],
    })


def test_catalog_tables_are_created_on_first_use(lake_path):
    lake = Lake(lake_path)
    assert set(lake.table_names()) == set(CATALOG)
    for name in CATALOG:
        assert (lake_path / name / "_delta_log").is_dir()
        assert lake.snapshot(name).version == 0
        assert lake.snapshot(name).files == ()


def test_missing_lake_without_create(tmp_path):
    with pytest.raises(LakeError, match="no lake at"):
        Lake(tmp_path / "nope", create=False)


def test_append_derives_partition_and_commits_one_version(lake):
    version = lake.append("signal_events", events())
    assert version == 1
    snap = lake.snapshot("signal_events")
    assert snap.partition_by == ("obs_date",)
    assert all("obs_date=2017-02-01" in f for f in snap.files)
    info = lake.info("signal_events")
    assert (info.rows, info.version, info.files) == (3, 1, 1)
    assert info.size_bytes > 0


def test_unknown_table_suggests_a_name(lake):
    with pytest.raises(UnknownTableError, match="unknown table 'signal_event' \\(did you mean 'signal_events'\\?\\)"):
        lake.snapshot("signal_event")


def test_schema_check_rejects_unknown_column(lake):
    with pytest.raises(SchemaMismatchError, match="has no column 'snrr' \\(did you mean 'snr'\\?\\)"):
        lake.append("signal_events", events().append_column("snrr", pa.array([1.0] * 3)))
    assert lake.snapshot("signal_events").version == 0


def test_schema_check_rejects_missing_required_column(lake):
    with pytest.raises(SchemaMismatchError, match="needs column 'snr'"):
        lake.append("signal_events", events().drop_columns(["snr"]))


def test_schema_check_rejects_nulls_in_non_nullable(lake):
    bad = events().set_column(5, "freq_hz", pa.array([1.0, None, 2.0]))
    with pytest.raises(SchemaMismatchError, match="'freq_hz' of table 'signal_events' may not be null"):
        lake.append("signal_events", bad)


def test_rows_already_in_the_table_schema_are_kept_as_they_are_but_still_checked(lake):
    schema = lake.schema("spectra")
    rows = pa.table({"spectrum_id": ["a"], "wavelength_aa": [[1.0, 2.0]], "flux": [[3.0, 4.0]]})
    conformed = lake.conform("spectra", rows)
    assert conformed.schema.equals(schema) and lake.conform("spectra", conformed) is conformed
    nulls = conformed.set_column(0, schema.field("spectrum_id"), pa.array([None], pa.string()))
    with pytest.raises(SchemaMismatchError, match="'spectrum_id' of table 'spectra' may not be null"):
        lake.conform("spectra", nulls)


def test_schema_check_rejects_unconvertible_type(lake):
    bad = events().set_column(2, "target", pa.array([1, 2, 3]))
    bad = bad.set_column(7, "snr", pa.array(["a", "b", "c"]))
    with pytest.raises(SchemaMismatchError, match="column 'snr' of table 'signal_events' is double"):
        lake.append("signal_events", bad)


def test_time_travel_by_version_and_timestamp(lake):
    lake.append("signal_events", events(2, 0, day=1))
    between = dt.datetime.now(UTC)
    time.sleep(0.05)
    lake.append("signal_events", events(3, 10, day=2))
    assert lake.snapshot("signal_events").version == 2
    assert len(lake.snapshot("signal_events", version=1).files) == 1
    assert len(lake.snapshot("signal_events", version=2).files) == 2
    assert lake.version_at("signal_events", between) == 1
    assert lake.version_at("signal_events", between.isoformat()) == 1
    with pytest.raises(VersionNotFoundError, match="has no version 7 \\(versions 0..2\\)"):
        lake.snapshot("signal_events", version=7)
    with pytest.raises(VersionNotFoundError, match="did not exist at 2001-01-01"):
        lake.snapshot("signal_events", timestamp="2001-01-01")


def test_parse_timestamp_forms():
    assert parse_timestamp("2024-05-01") == dt.datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_timestamp("2024-05-01T02:00:00+02:00") == dt.datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_timestamp("2024-05-01 00:00:00Z") == dt.datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(VersionNotFoundError, match="not a timestamp: 'yesterday'"):
        parse_timestamp("yesterday")


def test_a_new_commit_is_seen_without_reopening(lake_path):
    reader, writer = Lake(lake_path), Lake(lake_path)
    assert reader.snapshot("signal_events").version == 0
    writer.append("signal_events", events())
    assert reader.snapshot("signal_events").version == 1


def test_create_table_and_replace_reads_only_live_files(lake):
    lake.create_table("picked", pa.table({"x": [1, 2]}))
    with pytest.raises(LakeError, match="already exists"):
        lake.create_table("picked", pa.table({"x": [3]}))
    lake.create_table("picked", pa.table({"y": ["a"]}), replace=True)
    snap = lake.snapshot("picked")
    assert snap.schema.names == ["y"] and len(snap.files) == 1
    on_disk = list(Path(lake.path("picked")).glob("*.parquet"))
    assert len(on_disk) == 2  # the overwritten file is still there, and must not be read


@pytest.mark.parametrize("name, message", [
    ("signal_events", "is a catalog table"),
    ("bad-name", "not a valid table name"),
    ("1abc", "not a valid table name"),
])
def test_create_table_refuses(lake, name, message):
    with pytest.raises(LakeError, match=message):
        lake.create_table(name, pa.table({"x": [1]}))


def test_app_transactions_mark_commits(lake):
    assert not lake.already_committed("signal_events", "app:1")
    lake.append("signal_events", events(), app_ids=("app:1",))
    assert lake.already_committed("signal_events", "app:1")
    assert not lake.already_committed("signal_events", "app:2")


def test_history_lists_commits_newest_first(lake):
    lake.append("signal_events", events(), note="first batch")
    history = lake.history("signal_events")
    assert [h["version"] for h in history] == [1, 0]
    assert history[0]["astrolake.note"] == "first batch"


def test_create_or_replace_of_a_new_table(lake):
    assert lake.create_table("fresh", pa.table({"x": [1]}), replace=True) == 0
    assert lake.append("fresh", pa.table({"x": [2]})) == 1


def test_prune_skips_files_by_their_log_statistics(lake):
    from engine.rewrites import Bound

    lake.append("signal_events", events(3, 0, day=1))  # snr 20, 21, 22
    lake.append("signal_events", events(3, 10, day=2).set_column(7, "snr", pa.array([50.0, 60.0, 70.0])))
    snap = lake.snapshot("signal_events")
    assert len(lake.prune(snap, (Bound("snr", ">", 30.0),)).files) == 1
    assert len(lake.prune(snap, (Bound("snr", "<=", 20.0),)).files) == 1
    assert len(lake.prune(snap, (Bound("snr", "=", 40.0),)).files) == 0
    assert lake.prune(snap, (Bound("snr", ">=", 22.0),)) == snap  # both files may hold such rows
    assert lake.prune(snap, (Bound("target", "=", 1.0),)) == snap  # not a numeric column: no pruning
    assert lake.prune(snap, ()) == snap
    old = lake.snapshot("signal_events", version=1)
    assert lake.prune(old, (Bound("snr", ">", 30.0),)).files == ()


def test_tables_with_blobs_are_written_uncompressed_without_blob_statistics(lake):
    import pyarrow.parquet as pq

    lake.append("voltages", pa.table({
        "snapshot_id": ["a", "b"],
        "samples": pa.array([bytes(range(256)) * 64, b"\x00" * 16384], pa.binary()),
    }))
    lake.create_table("plain", pa.table({"x": [1, 2, 3]}))
    (path,) = lake.snapshot("voltages").files
    meta = pq.ParquetFile(path).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert columns["samples"].compression == "UNCOMPRESSED"
    assert not columns["samples"].is_stats_set
    assert "PLAIN_DICTIONARY" not in columns["samples"].encodings and "RLE_DICTIONARY" not in columns["samples"].encodings
    (plain,) = lake.snapshot("plain").files
    assert pq.ParquetFile(plain).metadata.row_group(0).column(0).compression == "SNAPPY"
    assert lake.snapshot("voltages").files and lake.delta_table("voltages").to_pyarrow_table(
        columns=["samples"])["samples"].to_pylist()[1] == b"\x00" * 16384
