"""The file ingest pipeline's promises: atomic, idempotent, nothing dropped, schema evolution."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from catalogs.ingest import files as files_module
from catalogs.ingest.files import FORMATS, ingest_files, parse_or_reject, sha256_and_size
from catalogs.ingest.fits_images import ingest_images
from catalogs.ingest.fits_spectra import FORMAT as SPECTRA, ingest_spectra
from catalogs.lake import Lake
from catalogs.schemas import REJECTED
from engine.errors import IngestError
from tests.catalogs.ingest.builders import broken_corpus, compamp, filterbank, image_fits, raw_iq, simulated_dat, \
    spectrum_fits
from tests.conftest import ROOT


def table(lake, name):
    return pa.table(lake.delta_table(name).to_pyarrow_table())


def good_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "images": [image_fits(folder / "good_image.fits")],
        "spectra": [spectrum_fits(folder / "good_spectrum.fits")],
        "filterbank": [filterbank(folder / "good.fil")[0]],
        "voltages": [simulated_dat(folder / "good.dat")[0], compamp(folder / "good.compamp")[0],
                     raw_iq(folder / "good.raw")[0]],
    }


@pytest.mark.slow
def test_broken_corpus_each_rejected_with_its_reason_and_the_good_files_committed(tmp_path):
    lake = Lake(tmp_path / "lake")
    corpus = broken_corpus(tmp_path / "broken")
    assert len(corpus) >= 15
    good = good_files(tmp_path / "good")
    for fmt_name in ("images", "spectra", "filterbank", "voltages"):
        bad = {str(path): why for _, (f, path, why) in corpus.items() if f == fmt_name}
        report = ingest_files(lake, FORMATS[fmt_name](), [*good[fmt_name], *bad])
        assert report.partial
        assert sorted(r.path for r in report.rejected) == sorted(bad)
        for r in report.rejected:
            assert bad[r.path] in r.reason
            assert r.size_bytes == os.path.getsize(r.path)
            assert r.sha256 == hashlib.sha256(open(r.path, "rb").read()).hexdigest()
        assert sorted(report.files) == sorted(map(str, good[fmt_name]))
        assert f"rejected {next(iter(bad))}" in report.summary()
    quarantine = table(lake, "_rejected").to_pylist()
    assert len(quarantine) == len(corpus)
    by_path = {q["source_file"]: q for q in quarantine}
    for _, (fmt_name, path, why) in corpus.items():
        q = by_path[str(path)]
        assert why in q["reason"] and q["source_size_bytes"] == os.path.getsize(path) and q["row_number"] == 0
    assert table(lake, "voltages").num_rows == 1 + 2 + 1  # sim, compamp (2 subbands), raw


def test_strict_commits_nothing(lake, tmp_path):
    good = spectrum_fits(tmp_path / "a.fits")
    bad = tmp_path / "b.fits"
    bad.write_text("not fits")
    versions = {t: lake.delta_table(t).version() for t in ("spectra", "_rejected")}
    with pytest.raises(IngestError, match="rejected 1 file, nothing committed") as e:
        ingest_spectra(lake, [good, bad], strict=True)
    assert str(bad) in str(e.value)
    assert {t: lake.delta_table(t).version() for t in versions} == versions
    assert not list(lake.path("spectra").glob("*.parquet"))


def test_rerun_skips_what_is_in_and_reports_it(lake, tmp_path):
    a, b = spectrum_fits(tmp_path / "a.fits", seed=1), spectrum_fits(tmp_path / "b.fits", seed=2)
    first = ingest_spectra(lake, [a])
    copy = tmp_path / "copy.fits"
    copy.write_bytes(a.read_bytes())
    second = ingest_spectra(lake, [a, copy, b, b])
    sha = sha256_and_size(str(a))[0]
    assert second.skipped == [(str(a), f"already ingested into spectra (sha256 {sha[:12]})"),
                              (str(copy), f"already ingested into spectra (sha256 {sha[:12]})"),
                              (str(b), f"same content as {b}")]
    assert second.files == [str(b)] and second.versions["spectra"] == first.versions["spectra"] + 1
    assert table(lake, "spectra").num_rows == 2
    third = ingest_spectra(lake, [a, b])
    assert third.files == [] and third.versions == {} and "nothing" not in third.summary()


@pytest.mark.slow
def test_worker_processes_give_the_same_rows(tmp_path):
    paths = [spectrum_fits(tmp_path / f"s{i}.fits", seed=i) for i in range(12)]
    got = []
    for workers in (1, 2):
        lake = Lake(tmp_path / f"lake{workers}")
        report = ingest_spectra(lake, paths, workers=workers)
        assert report.rows == {"spectra": 12} and report.versions == {"spectra": 1}
        got.append(table(lake, "spectra").sort_by("spectrum_id").drop(["source_file"]))
    assert got[0].equals(got[1])


def test_crash_between_sources_and_images_is_repaired_by_a_retry(lake, tmp_path, monkeypatch):
    paths = [image_fits(tmp_path / "a.fits"), image_fits(tmp_path / "b.fits", seed=1)]
    real_commit = Lake.commit_files

    def crash_on_images(self, name, *args, **kwargs):
        if name == "images":
            raise KeyboardInterrupt  # the process dies between the two commits
        return real_commit(self, name, *args, **kwargs)

    monkeypatch.setattr(Lake, "commit_files", crash_on_images)
    with pytest.raises(KeyboardInterrupt):
        ingest_images(lake, paths, extract=True, thresh_sigma=5.0)
    monkeypatch.undo()
    assert table(lake, "images").num_rows == 0 and table(lake, "sources").num_rows == 2
    sources_version = lake.delta_table("sources").version()
    report = ingest_images(lake, paths, extract=True, thresh_sigma=5.0)
    assert report.rows == {"images": 2} and lake.delta_table("sources").version() == sources_version
    assert table(lake, "sources").num_rows == 2 and table(lake, "images").num_rows == 2
    images = set(table(lake, "images")["image_id"].to_pylist())
    assert set(table(lake, "sources")["image_id"].to_pylist()) == images


def test_appends_to_an_older_rejected_table_without_the_size_column(tmp_path):
    root = tmp_path / "lake"
    old = pa.schema([f for f in REJECTED.schema if f.name != "source_size_bytes"])
    write_deltalake(str(root / "_rejected"), pa.table({
        "target_table": ["signal_events"], "source_file": ["old.csv"], "source_sha256": ["0" * 64],
        "row_number": pa.array([3], pa.int64()), "reason": ["old reason"], "record_json": [None],
        "rejected_at": pa.array([0], pa.timestamp("us", tz="UTC")),
    }, schema=old))
    old_spectrograms = pa.schema([f for f in Lake(tmp_path / "scratch").schema("spectrograms")
                                  if f.name not in ("parent_id", "chunk_index", "n_chunks")])
    write_deltalake(str(root / "spectrograms"), old_spectrograms.empty_table())
    lake = Lake(root)
    bad = tmp_path / "bad.fil"
    bad.write_bytes(b"\0" * 10)
    good, _ = filterbank(tmp_path / "good.fil")
    report = ingest_files(lake, FORMATS["filterbank"](), [good, bad])
    assert report.partial
    rows = sorted(table(lake, "_rejected").to_pylist(), key=lambda r: r["source_file"])
    assert [(r["source_file"], r["source_size_bytes"]) for r in rows] == [(str(bad), 10), ("old.csv", None)]
    assert table(lake, "spectrograms").to_pylist()[0]["n_chunks"] == 1


def test_parse_is_a_pure_function_of_the_file(tmp_path):
    path = spectrum_fits(tmp_path / "a.fits")
    sha = sha256_and_size(str(path))[0]
    rows, reason = parse_or_reject(SPECTRA, str(path), sha)
    assert reason is None and rows[0][0] == "spectra" and rows[0][1].num_rows == 1
    assert parse_or_reject(SPECTRA, str(path), sha)[0][0][1].equals(rows[0][1])


def test_a_rejected_big_file_leaves_no_parquet_behind(lake, tmp_path, monkeypatch):
    monkeypatch.setattr(files_module, "SPILL_BYTES", 1)  # every row goes to the file's own Parquet file

    def parse(path, sha, options):
        yield "spectra", pa.table({"spectrum_id": ["x"], "wavelength_aa": [[1.0, 2.0]], "flux": [[1.0, 1.0]]})
        raise files_module.Rejected("broken half-way")

    fmt = files_module.FileFormat("spectra", "spectra", parse, (".x",))
    (tmp_path / "a.x").write_text("a")
    report = ingest_files(lake, fmt, [tmp_path / "a.x"])
    assert [r.reason for r in report.rejected] == ["broken half-way"]
    assert not list(lake.path("spectra").glob("*.parquet"))


@pytest.mark.slow
def test_sigkill_mid_ingest_leaves_the_table_at_its_old_version_and_a_rerun_commits_once(tmp_path):
    lake_path = tmp_path / "lake"
    lake = Lake(lake_path)
    folder = tmp_path / "many"
    folder.mkdir()
    n = 400
    for i in range(n):
        spectrum_fits(folder / f"s{i:04d}.fits", n=2000, seed=i)
    before = lake.delta_table("spectra").version()
    process = subprocess.Popen([sys.executable, "-m", "engine.cli", "--lake", str(lake_path), "ingest", "spectra",
                                str(folder)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(lake_path.joinpath("spectra").glob("part-*.parquet")) and time.time() < deadline:
        assert process.poll() is None, "the ingest finished before it could be killed"
        time.sleep(0.005)
    time.sleep(0.05)  # some files parsed (the ingest runs on for about 0.4 s more here)
    assert process.poll() is None, "the ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert Lake(lake_path).delta_table("spectra").version() == before
    assert table(Lake(lake_path), "spectra").num_rows == 0
    report = ingest_spectra(Lake(lake_path), [folder])
    assert report.rows == {"spectra": n} and report.versions == {"spectra": before + 1}
    again = ingest_spectra(Lake(lake_path), [folder])
    assert again.files == [] and len(again.skipped) == n
    spectra = table(Lake(lake_path), "spectra")
    assert spectra.num_rows == n and len(set(spectra["spectrum_id"].to_pylist())) == n


@pytest.mark.slow
def test_helper_processes_parse_what_this_process_leaves_them(tmp_path, monkeypatch):
    paths = [spectrum_fits(tmp_path / f"s{i}.fits", seed=i) for i in range(12)]
    alone = Lake(tmp_path / "alone")
    ingest_spectra(alone, paths, workers=1)
    monkeypatch.setattr(files_module, "MAIN_PARSES", False)

    def not_here(*args, **kwargs):
        raise AssertionError("parsed in the calling process")

    monkeypatch.setattr(files_module, "_parse_one", not_here)  # the helpers have their own
    helped = Lake(tmp_path / "helped")
    report = ingest_spectra(helped, paths, workers=3)
    assert report.rows == {"spectra": 12} and report.versions == {"spectra": 1} and not report.rejected
    got = [table(lake, "spectra").sort_by("spectrum_id").drop(["source_file"]) for lake in (alone, helped)]
    assert got[0].equals(got[1])


def test_small_files_share_one_parquet_file_and_row_group(lake, tmp_path):
    paths = [spectrum_fits(tmp_path / f"s{i}.fits", seed=i) for i in range(30)]
    ingest_spectra(lake, paths)
    [part] = [Path(f) for f in lake.snapshot("spectra").files]
    assert pq.ParquetFile(part).metadata.num_row_groups == 1
    assert pq.ParquetFile(part).metadata.num_rows == 30


def test_an_interrupt_mid_ingest_leaves_no_parquet_and_no_commit(lake, tmp_path):
    spectra = FORMATS["spectra"]()
    paths = [spectrum_fits(tmp_path / f"s{i}.fits", seed=i) for i in range(6)]

    def parse(path, sha, options):
        if path.endswith("s4.fits"):
            raise KeyboardInterrupt
        yield from spectra.parse(path, sha, options)

    fmt = files_module.FileFormat("spectra", "spectra", parse, (".fits",))
    with pytest.raises(KeyboardInterrupt):
        ingest_files(lake, fmt, paths)
    assert lake.delta_table("spectra").version() == 0
    assert not list(lake.path("spectra").glob("*.parquet"))


def test_helpers_start_only_when_the_parsing_left_outlasts_their_start():
    helpers_pay = files_module.helpers_pay
    assert not helpers_pay(0, 0.0, 1000, "process", True)  # no rate yet
    assert not helpers_pay(10, 0.01, 190, "process", True)  # 0.19 s left: a warm start costs 0.1 s
    assert helpers_pay(10, 0.01, 1990, "process", True)
    assert not helpers_pay(10, 0.01, 1990, "process", False)  # the fork server's first start: 1.5 s
    assert helpers_pay(10, 0.01, 4000, "process", False)
    assert helpers_pay(10, 0.01, 190, "thread", False)
