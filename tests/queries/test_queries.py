"""Every query in queries/ runs on every engine and finds what the demo lake hides."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.compute as pc
import pytest

from catalogs.demo import RFI_HZ
from catalogs.lake import Lake

QUERIES = sorted((Path(__file__).resolve().parents[2] / "queries").glob("*.sql"))


def run(session, name):
    path = next(q for q in QUERIES if q.name.startswith(name))
    return session.sql(path.read_text())


def test_there_are_at_least_five_queries():
    assert len(QUERIES) >= 5


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.stem)
def test_every_query_runs_and_answers(demo_session, path):
    result = demo_session.sql(path.read_text())
    assert result.num_rows > 0
    assert path.read_text().lstrip().startswith("--"), "each query starts with the question it answers"


def test_top_candidates(demo_session):
    rows = run(demo_session, "01").to_pylist()
    assert len(rows) == 10
    assert rows[0]["target"] == "Voyager-1" and rows[0]["snr"] == 1289.3
    assert "TRAPPIST-1" in [r["target"] for r in rows]
    assert all(abs(r["drift_hz_s"]) > 0.01 for r in rows)


def test_water_hole_finds_the_trappist_tone(demo_session):
    rows = run(demo_session, "02").to_pylist()
    assert [r["target"] for r in rows] == ["TRAPPIST-1"] * 3
    assert [r["snr"] for r in rows] == [93.0, 89.0, 85.0]
    assert all(1420 <= r["freq_mhz"] <= 1720 for r in rows)


def test_drift_histogram_counts_every_hit(demo_session, demo_lake_path):
    rows = run(demo_session, "03")
    events = pa.table(Lake(demo_lake_path).delta_table("signal_events").to_pyarrow_table())
    small = pc.sum(pc.less(pc.abs(events["drift_hz_s"]), 5)).as_py()
    assert sum(rows["hits"].to_pylist()) == small
    bins = rows["drift_bin_hz_s"].to_pylist()
    assert bins == sorted(bins)
    peak = rows["drift_bin_hz_s"][pc.index(rows["hits"], pc.max(rows["hits"])).as_py()].as_py()
    assert peak in (-1, 0)


def test_interference_is_at_known_transmitter_frequencies(demo_session):
    rows = run(demo_session, "04").to_pylist()
    assert len(rows) == 10
    for r in rows:
        assert min(abs(r["freq_mhz"] * 1e6 - f) for f in RFI_HZ) <= 10_000


def test_spacecraft_and_one_offs(demo_session):
    rows = run(demo_session, "05").to_pylist()
    assert [r["target"] for r in rows] == ["Voyager-1"] * 9 + ["Sgr A*"]
    assert rows[-1]["freq_mhz"] == 1420.4556


def test_hits_per_site_add_up(demo_session):
    rows = run(demo_session, "06")
    total = demo_session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py()
    assert sum(rows["hits"].to_pylist()) == total
    assert set(rows["site"].to_pylist()) == {"GBT", "Parkes", "ATA", "FAST", "MeerKAT"}


def test_time_travel_query_matches_the_log(demo_session, demo_lake_path):
    rows = run(demo_session, "07").to_pylist()
    lake = Lake(demo_lake_path)
    want = [pa.table(lake.delta_table("signal_events").to_pyarrow_table()).num_rows]
    assert rows[-1]["events"] == want[0]
    for r in rows:
        snapshot = lake.snapshot("signal_events", version=r["version"])
        assert r["events"] == sum(pq.read_metadata(f).num_rows for f in snapshot.files)


def test_proxima_repeats(demo_session):
    rows = run(demo_session, "08").to_pylist()
    assert len(rows) == 1
    assert rows[0]["freq_mhz"] == 982.002 and rows[0]["days"] == 5
