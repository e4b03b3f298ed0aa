import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalogs.ingest.events import ingest_events
from catalogs.lake import Lake
from engine.errors import IngestError

HEADER = "observed_at,target,ra_deg,dec_deg,site,freq_hz,drift_hz_s,snr\n"
GOOD = [
    "2017-02-22T09:00:00Z,TRAPPIST-1,346.6223,-5.0413,ATA,1523611000.0,0.73,85\n",
    "2017-02-22 09:05:00,TRAPPIST-1,346.6223,-5.0413,ATA,1523611219.0,0.73,89\n",
    "2017-02-23T00:30:00+01:00,Tau Ceti,26.017,-15.9375,GBT,1420405751.7,-0.2,31.5\n",
]


def write(path: Path, *rows: str, header: str = HEADER) -> Path:
    path.write_text(header + "".join(rows))
    return path


def table_state(lake: Lake, name="signal_events"):
    """Everything a reader could see: version, the files and the bytes of the log."""
    log = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest())
                 for p in (lake.path(name) / "_delta_log").glob("*.json"))
    return lake.delta_table(name).version(), sorted(lake.snapshot(name).files), log


def rows(lake, name="signal_events"):
    return pa.table(lake.delta_table(name).to_pyarrow_table()).sort_by("observed_at")


def test_csv_rows_are_committed_in_one_version(lake, tmp_path):
    report = ingest_events(lake, [write(tmp_path / "a.csv", *GOOD)])
    assert (report.version, report.rows) == (1, 3)
    got = rows(lake)
    assert got["target"].to_pylist() == ["TRAPPIST-1", "TRAPPIST-1", "Tau Ceti"]
    # naive times are UTC, offsets are converted
    assert [t.isoformat() for t in got["observed_at"].to_pylist()] == [
        "2017-02-22T09:00:00+00:00", "2017-02-22T09:05:00+00:00", "2017-02-22T23:30:00+00:00"]
    assert got["obs_date"].to_pylist()[2].isoformat() == "2017-02-22"
    assert got["source_file"].to_pylist() == [str(tmp_path / "a.csv")] * 3
    assert len(set(got["event_id"].to_pylist())) == 3


def test_parquet_input_and_many_files_in_one_commit(lake, tmp_path):
    csv_path = write(tmp_path / "a.csv", GOOD[0])
    table = pa.table({
        "observed_at": pa.array(["2018-01-01T00:00:00Z"]).cast(pa.timestamp("us", tz="UTC")),
        "target": ["Ross 128"], "ra_deg": [176.935], "dec_deg": [0.8042], "freq_hz": [4.4e9],
        "drift_hz_s": [0.0], "snr": [12.0], "beam": pa.array([3], pa.int32()), "event_id": pa.array([77], pa.int64()),
    })
    pq.write_table(table, tmp_path / "b.parquet")
    report = ingest_events(lake, [csv_path, tmp_path / "b.parquet"])
    assert (report.version, report.rows, len(report.files)) == (1, 2, 2)
    got = rows(lake)
    assert got["event_id"].to_pylist()[1] == 77 and got["beam"].to_pylist()[1] == 3


def test_reingest_same_content_adds_nothing_and_says_so(lake, tmp_path):
    first = write(tmp_path / "a.csv", *GOOD)
    ingest_events(lake, [first])
    before = table_state(lake)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(first.read_bytes())
    report = ingest_events(lake, [first, copy])
    assert report.files == [] and report.version is None
    assert [why for _, why in report.skipped] == [
        f"already ingested into signal_events (sha256 {hashlib.sha256(first.read_bytes()).hexdigest()[:12]})"] * 2
    assert "skipped" in report.summary() and "already ingested" in report.summary()
    assert table_state(lake) == before


def test_same_content_twice_in_one_call_is_ingested_once(lake, tmp_path):
    a = write(tmp_path / "a.csv", *GOOD)
    b = tmp_path / "b.csv"
    b.write_bytes(a.read_bytes())
    report = ingest_events(lake, [a, b])
    assert report.rows == 3
    assert report.skipped == [(str(b), f"same content as {a}")]


def test_event_ids_are_stable_across_reingest_into_another_lake(tmp_path):
    path = write(tmp_path / "a.csv", *GOOD)
    ids = []
    for name in ("one", "two"):
        lake = Lake(tmp_path / name)
        ingest_events(lake, [path])
        ids.append(sorted(rows(lake)["event_id"].to_pylist()))
    assert ids[0] == ids[1]


BAD_CASES = [
    ("2017-02-22T09:00:00Z,T,346.6,-5.0,ATA,abc,0.7,85\n", "freq_hz: cannot read 'abc' as a number"),
    ("2017-02-22T09:00:00Z,T,361.0,-5.0,ATA,1e9,0.7,85\n", "ra_deg 361.0 outside [0, 360)"),
    ("2017-02-22T09:00:00Z,T,360,-5.0,ATA,1e9,0.7,85\n", "ra_deg 360.0 outside [0, 360)"),
    ("2017-02-22T09:00:00Z,T,-0.5,-5.0,ATA,1e9,0.7,85\n", "ra_deg -0.5 outside [0, 360)"),
    ("2017-02-22T09:00:00Z,T,10.0,91,ATA,1e9,0.7,85\n", "dec_deg 91.0 outside [-90, 90]"),
    ("2017-02-22T09:00:00Z,T,10.0,-90.5,ATA,1e9,0.7,85\n", "dec_deg -90.5 outside [-90, 90]"),
    ("2017-02-22T09:00:00Z,T,10.0,5,ATA,NaN,0.7,85\n", "freq_hz is NaN"),
    ("2017-02-22T09:00:00Z,T,10.0,5,ATA,,0.7,85\n", "freq_hz: missing value"),
    ("2017-13-45,T,10.0,5,ATA,1e9,0.7,85\n", "observed_at: cannot read '2017-13-45' as a UTC timestamp"),
    ("yesterday,T,10.0,5,ATA,1e9,0.7,85\n", "observed_at: cannot read 'yesterday' as a UTC timestamp"),
    ("2017-02-22T09:00:00Z,T,10.0\n", "malformed CSV line: expected 8 fields, got 3"),
]


@pytest.mark.parametrize("bad_row, reason", BAD_CASES)
def test_bad_row_commits_nothing_and_names_row_and_reason(lake, tmp_path, bad_row, reason):
    path = write(tmp_path / "e.csv", GOOD[0], bad_row, GOOD[1])
    before = table_state(lake)
    with pytest.raises(IngestError, match="rejected 1 row, nothing committed") as e:
        ingest_events(lake, [path])
    assert f"{path} row 2: {reason}" in str(e.value)
    assert [(r.row_number, reason in r.reason) for r in e.value.rejects] == [(2, True)]
    assert table_state(lake) == before
    assert table_state(lake, "_rejected") == table_state(Lake(lake.root), "_rejected")
    assert lake.info("_rejected").rows == 0


def test_missing_required_column_rejects_every_row(lake, tmp_path):
    path = write(tmp_path / "e.csv", "2017-02-22T09:00:00Z,T,1,2,ATA,1e9,0.7\n",
                 header="observed_at,target,ra_deg,dec_deg,site,freq_hz,drift_hz_s\n")
    with pytest.raises(IngestError, match="row 1: missing required column 'snr'"):
        ingest_events(lake, [path])
    assert lake.info("signal_events").rows == 0


def test_unknown_column_is_named_with_a_suggestion(lake, tmp_path):
    path = write(tmp_path / "e.csv", GOOD[0].rstrip("\n") + ",1\n", header=HEADER.rstrip("\n") + ",snrr\n")
    with pytest.raises(IngestError, match="unknown column 'snrr' \\(did you mean 'snr'\\?\\)"):
        ingest_events(lake, [path])


def test_one_bad_file_stops_the_whole_call(lake, tmp_path):
    good = write(tmp_path / "good.csv", *GOOD)
    bad = write(tmp_path / "bad.csv", BAD_CASES[0][0])
    with pytest.raises(IngestError):
        ingest_events(lake, [good, bad])
    assert lake.info("signal_events").rows == 0
    # the good file was not marked as ingested
    assert ingest_events(lake, [good]).rows == 3


def test_skip_bad_commits_good_rows_and_quarantines_the_rest(lake, tmp_path):
    path = write(tmp_path / "e.csv", GOOD[0], BAD_CASES[1][0], GOOD[1], BAD_CASES[10][0], BAD_CASES[6][0])
    report = ingest_events(lake, [path], skip_bad=True)
    assert report.rows == 2 and len(report.rejects) == 3
    assert "quarantined 3 rejected rows in _rejected" in report.summary()
    quarantine = pa.table(lake.delta_table("_rejected").to_pyarrow_table()).sort_by("row_number")
    assert quarantine["row_number"].to_pylist() == [2, 4, 5]
    assert quarantine["reason"].to_pylist() == [
        "ra_deg 361.0 outside [0, 360)", "malformed CSV line: expected 8 fields, got 3", "freq_hz is NaN"]
    assert set(quarantine["source_file"].to_pylist()) == {str(path)}
    assert json.loads(quarantine["record_json"][0].as_py())["ra_deg"] == "361.0"
    assert json.loads(quarantine["record_json"][1].as_py()) == {"line": "2017-02-22T09:00:00Z,T,10.0"}
    # nothing lost: every input row is either committed or quarantined
    assert report.rows + len(report.rejects) == 5
    # and again: nothing added anywhere
    state = table_state(lake), table_state(lake, "_rejected")
    again = ingest_events(lake, [path], skip_bad=True)
    assert again.files == [] and (table_state(lake), table_state(lake, "_rejected")) == state


def test_quarantine_is_not_duplicated_when_a_retry_follows_a_failed_commit(lake, tmp_path, monkeypatch):
    path = write(tmp_path / "e.csv", GOOD[0], BAD_CASES[1][0])
    real_append = Lake.append

    def fail_on_events(self, name, *args, **kwargs):
        if name == "signal_events":
            raise RuntimeError("disk full")
        return real_append(self, name, *args, **kwargs)

    monkeypatch.setattr(Lake, "append", fail_on_events)
    with pytest.raises(RuntimeError):
        ingest_events(lake, [path], skip_bad=True)
    monkeypatch.setattr(Lake, "append", real_append)
    assert lake.info("signal_events").rows == 0 and lake.info("_rejected").rows == 1
    report = ingest_events(lake, [path], skip_bad=True)
    assert report.rows == 1
    assert lake.info("_rejected").rows == 1


def test_missing_and_unreadable_files(lake, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ingest_events(lake, [tmp_path / "absent.csv"])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="the file is empty"):
        ingest_events(lake, [empty])
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(IngestError, match=f"cannot read {junk}"):
        ingest_events(lake, [junk])
    assert lake.info("signal_events").rows == 0


def test_gzipped_csv(lake, tmp_path):
    import gzip

    path = tmp_path / "e.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(HEADER + "".join(GOOD))
    assert ingest_events(lake, [path]).rows == 3
