"""The DuckDB backend's function pre-pass: which calls it takes, and that it changes no result.

Every query runs twice on the same lake, with the pre-pass and on DuckDB's UDF path
(``function_prepass=False``); the rows must be the same.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import engine
from catalogs.demo import build_demo
from catalogs.lake import Lake
from engine.backends import function_prepass
from engine.errors import EngineError, QueryError
from engine.sqlfront import parse_one


def stars(rng: np.random.Generator, height: int = 96, width: int = 128, n: int = 12) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    image = rng.normal(100.0, 3.0, (height, width))
    for _ in range(n):
        cx, cy, flux = rng.uniform(8, width - 8), rng.uniform(8, height - 8), rng.uniform(500, 5000)
        image += flux / (2 * np.pi * 1.5**2) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.5**2))
    return image.astype("<f4")


@pytest.fixture(scope="module")
def lake_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("prepass") / "lake"
    lake = Lake(path)
    build_demo(lake, n_events=3_000, seed=7)
    rng = np.random.default_rng(3)
    images = [stars(rng) for _ in range(7)]
    lake.append("images", pa.table({
        "image_id": [f"img-{i}" for i in range(7)] + ["img-empty", "img-null"],
        "pixels": pa.array([im.tobytes() for im in images] + [b"\x00\x00", None], pa.binary()),
        "width": pa.array([128] * 9, pa.int32()),
        "height": pa.array([96] * 9, pa.int32()),
        "exptime_s": [10.0 * i for i in range(9)],
    }))
    samples = [(rng.normal(size=4096) + 1j * rng.normal(size=4096)).astype("<c8") for _ in range(5)]
    lake.append("voltages", pa.table({
        "snapshot_id": [f"v{i}" for i in range(6)],
        "site": ["ATA"] * 6,
        "observed_at": pa.array([dt.datetime(2020, 1, 1, i, tzinfo=dt.timezone.utc) for i in range(6)],
                                pa.timestamp("us", tz="UTC")),
        "n_samples": pa.array([4096] * 5 + [1], pa.int64()),
        "samples": pa.array([s.tobytes() for s in samples] + [b"\x01\x02\x03"], pa.binary()),
    }))
    return path


@pytest.fixture(scope="module")
def sessions(lake_path):
    with_prepass = engine.connect(lake_path)
    without = engine.connect(lake_path, function_prepass=False)
    yield with_prepass, without
    with_prepass.close()
    without.close()


def rows(table: pa.Table) -> list:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def stages_of(session, text: str):
    backend = session.backend
    tree = session.bind(parse_one(text))
    library = {s.name: s for s in backend._library}
    return function_prepass.plan(tree, backend._snapshots, library)


SAME_RESULT = [
    # the bench's query: every event, one call, an aggregate over it
    "SELECT count(*) AS n, avg(doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) - freq_hz) AS shift "
    "FROM signal_events",
    # a filter the stage applies (with a partition column) and one it cannot
    "SELECT event_id, barycentric_velocity_ms(observed_at, ra_deg, dec_deg, site) AS v FROM signal_events "
    "WHERE snr > 20 AND obs_date >= DATE '2019-06-01' AND target LIKE 'T%' AND rand() < 2",
    # the call in WHERE, ORDER BY and LIMIT; a literal site argument
    "SELECT e.event_id, doppler_correct(e.freq_hz, e.observed_at, e.ra_deg, e.dec_deg, 'GBT') AS f "
    "FROM signal_events AS e WHERE distance(e.ra_deg, e.dec_deg, 0.0, 0.0) < 90 ORDER BY f DESC LIMIT 17",
    # grouped: the call inside an aggregate, in the GROUP BY, and a function of the group's keys
    "SELECT target, max(distance(ra_deg, dec_deg, 10.0, 20.0)) AS far FROM signal_events GROUP BY target",
    "SELECT healpix_index(ra_deg, dec_deg, 2) AS pixel, count(*) AS n FROM signal_events "
    "GROUP BY healpix_index(ra_deg, dec_deg, 2)",
    # SELECT * next to a call; a subquery using the call's alias
    "SELECT * FROM (SELECT *, distance(ra_deg, dec_deg, 1.0, 2.0) AS d FROM signal_events) WHERE d < 30",
    # blobs: a lateral view over sep_extract (an empty/malformed image and a NULL one among them)
    "SELECT image_id, s.x_pix, s.y_pix, s.flux FROM images LATERAL VIEW explode(sep_extract(pixels, width, height, 3.0)) t AS s",
    "SELECT image_id, sep_extract_error(pixels, width, height, 3.0) AS why FROM images WHERE exptime_s > 15",
    "SELECT image_id, size(sep_extract(pixels, width, height, 3.0)) AS n FROM images WHERE image_id <> 'img-3'",
    # a spectrogram (a struct with a blob), a malformed snapshot among them, and its error companion
    "SELECT snapshot_id, sp.n_time, sp.n_chans, sha2(sp.power, 256) AS digest "
    "FROM (SELECT snapshot_id, spectrogram(samples, 64, 2) AS sp FROM voltages)",
    "SELECT snapshot_id, spectrogram_error(samples, 64, 2) AS why FROM voltages WHERE n_samples < 100",
    # the blob itself next to its call (views cast back to binary), a filter that keeps nothing
    "SELECT snapshot_id, sha2(samples, 256) AS raw, spectrogram(samples, 64, 1).n_time AS n FROM voltages",
    "SELECT snapshot_id, spectrogram(samples, 64, 1).n_time AS n FROM voltages WHERE false",
    "SELECT image_id, pixels, size(sep_extract(pixels, width, height, 3.0)) AS n FROM images WHERE width > 0",
    # only some fields of a struct read: the stage carries only those (NULL structs stay NULL)
    "SELECT snapshot_id, sp.n_time * sp.n_chans AS cells FROM (SELECT snapshot_id, spectrogram(samples, 64, 2) AS sp "
    "FROM voltages)",
    "SELECT x.n FROM (SELECT t.sp.n_time AS n FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t) x",
    "SELECT sp.n_time, sp IS NULL AS missing FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t",
]


def test_blob_stages_read_views_into_the_files(sessions):
    """The lake's blob pages are read in place: the kernels get binary_view values, no copy."""
    session = sessions[0]
    _, (stage,) = stages_of(session, "SELECT spectrogram(samples, 64, 1) AS sp FROM voltages")
    batches = list(function_prepass.scan_batches(stage, lambda batch, predicate: None))
    assert batches and all(b.column("samples").type == pa.binary_view() for b in batches)


@pytest.mark.parametrize("query", SAME_RESULT)
def test_the_prepass_changes_no_result(sessions, query):
    with_prepass, without = sessions
    _, stages = stages_of(with_prepass, query)
    assert stages, "the pre-pass should take this query"
    got, expected = with_prepass.sql(query), without.sql(query)
    assert got.column_names == expected.column_names
    if "LIMIT" in query:
        assert got.to_pylist() == expected.to_pylist()
    else:
        assert rows(got) == rows(expected)


def test_a_stage_reads_only_what_the_query_needs(sessions):
    session = sessions[0]
    _, (stage,) = stages_of(session, "SELECT snapshot_id, spectrogram(samples, 64, 1) AS sp FROM voltages")
    assert stage.passthrough == ["snapshot_id"]  # the samples never cross into DuckDB
    assert stage.read_columns == ["snapshot_id", "samples"]
    assert function_prepass.reads_blobs(stage)
    tree, (stage,) = stages_of(
        session, "SELECT count(*) FROM signal_events WHERE snr > 20 AND distance(ra_deg, dec_deg, 0.0, 0.0) < 5")
    assert stage.passthrough == []
    assert stage.predicate.sql(dialect="spark") == "snr > 20"  # applied while scanning
    assert "snr" not in tree.sql(dialect="spark")  # and not again
    assert not function_prepass.reads_blobs(stage)


@pytest.mark.parametrize("query, fields", [
    ("SELECT sum(sp.n_time * sp.n_chans) AS cells FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages)",
     ("n_time", "n_chans")),
    ("SELECT spectrogram(samples, 64, 1).n_time AS n FROM voltages", ("n_time",)),
    ("SELECT t.sp.n_chans, sp.power FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t", ("power", "n_chans")),
    ("SELECT x.n FROM (SELECT sp.n_time AS n FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t) x",
     ("n_time",)),
    # the whole struct may be read: every field
    ("SELECT sp FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t", None),
    ("SELECT * FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t", None),
    ("SELECT spectrogram(samples, 64, 1) AS sp FROM voltages", None),
    ("SELECT sp.n_time, sp IS NULL AS missing FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t", None),
    ("SELECT sp.n_time FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages ORDER BY sp) t", None),
    ("WITH s AS (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) SELECT sp.n_time FROM s", None),
    ("SELECT sp.n_time, sp.n_chans, sp.power FROM (SELECT spectrogram(samples, 64, 1) AS sp FROM voltages) t", None),
])
def test_a_stage_carries_only_the_struct_fields_read(sessions, query, fields):
    """A spectrogram's power is most of its bytes: a query that reads only its shape leaves it
    in the stage (on Spark it would cross from the Python workers into the JVM)."""
    _, (stage,) = stages_of(sessions[0], query)
    (call,) = stage.calls
    assert call.fields == fields
    names = [f.name for f in stage.schema.field(call.column).type]
    assert names == list(fields or ("power", "n_time", "n_chans"))
    assert sessions[0].sql(query).num_rows == sessions[1].sql(query).num_rows


@pytest.mark.parametrize("query, computed", [
    # a join: a stage reads one table
    ("SELECT distance(a.ra_deg, a.dec_deg, b.ra_deg, b.dec_deg) FROM signal_events a JOIN signal_events b "
     "ON a.event_id = b.event_id", []),
    # an argument that is an expression
    ("SELECT distance(ra_deg + 1, dec_deg, 0.0, 0.0) FROM signal_events", []),
    # a library call as an argument: the inner call is computed, the outer stays a UDF over it
    ("SELECT distance(doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site), dec_deg, 0.0, 0.0) "
     "FROM signal_events", ["doppler_correct"]),
    # only constants: DuckDB folds it
    ("SELECT distance(1.0, 2.0, 3.0, 4.0), count(*) FROM signal_events", []),
    # a function of the group's keys (the keys, not the call, are grouped)
    ("SELECT target, distance(ra_deg, dec_deg, 0.0, 0.0) FROM signal_events GROUP BY target, ra_deg, dec_deg", []),
    # a string column where a number is declared: DuckDB's cast rules apply, on its UDF path
    ("SELECT distance(target, dec_deg, 0.0, 0.0) FROM signal_events", []),
])
def test_calls_the_prepass_leaves_to_the_udf_path(sessions, query, computed):
    with_prepass, without = sessions
    tree, stages = stages_of(with_prepass, query)
    assert [c.spec.name for stage in stages for c in stage.calls] == computed
    if "+ 1" not in query and "target, dec_deg" not in query:
        assert rows(with_prepass.sql(query)) == rows(without.sql(query))


def test_an_error_in_a_stage_is_the_functions_own(sessions):
    with_prepass, without = sessions
    query = "SELECT spectrogram(samples, 3000000000, 1) FROM voltages"
    with pytest.raises(EngineError) as ours:
        with_prepass.sql(query)
    with pytest.raises(EngineError):
        without.sql(query)
    assert "\n" not in str(ours.value)
    assert ours.value.exit_code == 1


def test_a_kernel_failing_mid_stream_fails_the_query_with_its_message(sessions, monkeypatch):
    session = sessions[0]
    from udfs import registry

    calls = {"n": 0}
    real = registry.evaluate

    def failing(spec, columns):
        calls["n"] += 1
        if calls["n"] == 2:
            raise registry.UdfError("the second batch failed")
        return real(spec, columns)

    monkeypatch.setattr(function_prepass, "evaluate", failing)
    monkeypatch.setattr(function_prepass, "BATCH_ROWS", 500)
    with pytest.raises(EngineError, match="the second batch failed"):
        session.sql("SELECT sum(distance(ra_deg, dec_deg, 0.0, 0.0)) FROM signal_events")
    monkeypatch.undo()
    # the session is still usable
    assert session.sql("SELECT sum(distance(ra_deg, dec_deg, 0.0, 0.0)) AS d FROM signal_events").num_rows == 1


def test_writes_take_the_prepass_too(lake_path, tmp_path):
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake_path, copy)
    with engine.connect(copy) as session:
        session.sql("CREATE TABLE corrected AS SELECT event_id, doppler_correct(freq_hz, observed_at, ra_deg, "
                    "dec_deg, site) AS freq_bary_hz FROM signal_events WHERE snr > 30")
        got = session.sql("SELECT * FROM corrected")
    with engine.connect(copy, function_prepass=False) as session:
        expected = session.sql("SELECT event_id, doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) "
                               "AS freq_bary_hz FROM signal_events WHERE snr > 30")
    assert rows(got) == rows(expected)
    assert got.num_rows > 0


@pytest.mark.parametrize("prepass", [True, False])
def test_a_data_file_gone_mid_session_is_a_query_error(lake_path, tmp_path, prepass):
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake_path, copy)
    query = "SELECT max(distance(ra_deg, dec_deg, 0.0, 0.0)) AS d FROM signal_events WHERE snr > 1"
    with engine.connect(copy, function_prepass=prepass) as session:
        assert session.sql(query).num_rows == 1  # the snapshot's relation exists now
        victim = next((copy / "signal_events").rglob("*.parquet"))
        victim.unlink()
        with pytest.raises(QueryError) as error:
            session.sql(query)
    assert victim.name in str(error.value) and "\n" not in str(error.value)


SEP_QUERIES = [q for q in SAME_RESULT if "sep_extract" in q]


@pytest.mark.parametrize("query", SEP_QUERIES)
def test_a_kernel_that_holds_the_gil_runs_in_worker_processes(sessions, query, monkeypatch):
    """sep keeps the GIL: over a large table its calls go to worker processes, the arguments
    through shared memory; the rows are the same."""
    with_prepass, without = sessions
    monkeypatch.setattr(function_prepass, "PROCESSES_FROM_BYTES", 0)  # this table is small
    monkeypatch.setattr(function_prepass, "BATCH_BYTES", 100_000)  # a few images per batch
    _, (stage,) = stages_of(with_prepass, query)
    if function_prepass.IN_FLIGHT < 2:
        pytest.skip("one core: no worker processes")
    run = function_prepass.StageRun(stage, None, lambda a, t: pa.scalar(1.0, t))
    assert run.in_processes
    assert rows(with_prepass.sql(query)) == rows(without.sql(query))
    import glob
    import os

    leftover = [p for p in glob.glob("/dev/shm/psm_*") if os.stat(p).st_uid == os.getuid()]
    assert not leftover or all(os.path.getmtime(p) < __import__("time").time() - 600 for p in leftover)


def test_a_limit_stops_the_stage_early_and_leaves_nothing_running(sessions, monkeypatch):
    import threading

    session = sessions[0]
    monkeypatch.setattr(function_prepass, "BATCH_ROWS", 256)  # many batches, few read
    before = threading.active_count()
    for _ in range(3):
        got = session.sql("SELECT event_id, distance(ra_deg, dec_deg, 0.0, 0.0) AS d FROM signal_events LIMIT 5")
        assert got.num_rows == 5
    assert threading.active_count() <= before + 1
    assert session.sql("SELECT count(*) AS n FROM signal_events WHERE distance(ra_deg, dec_deg, 0.0, 0.0) >= 0"
                       ).to_pylist()[0]["n"] > 0
