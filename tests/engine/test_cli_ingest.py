"""`astrolake ingest images|spectra|filterbank|voltages` as a user runs them."""

import sys

import pytest

from catalogs.lake import Lake
from tests.catalogs.ingest.builders import filterbank, image_fits, raw_iq, spectrum_fits
from tests.conftest import ROOT, run_astrolake

pytestmark = pytest.mark.slow  # each test starts the command as a subprocess (a few seconds)


def test_good_files_exit_0_and_a_rerun_reports_skips(tmp_path):
    lake = tmp_path / "lake"
    spectra = [spectrum_fits(tmp_path / f"s{i}.fits", seed=i) for i in range(3)]
    done = run_astrolake("--lake", str(lake), "ingest", "spectra", *map(str, spectra))
    assert done.returncode == 0, done.stderr
    assert "ingested 3 files: 3 rows into spectra (version 1)" in done.stdout
    assert done.stderr == ""  # no progress bar in a pipe
    again = run_astrolake("--lake", str(lake), "ingest", "spectra", str(tmp_path))
    assert again.returncode == 0 and again.stdout.count("already ingested into spectra") == 3


def test_a_bad_file_is_quarantined_and_the_exit_code_is_3(tmp_path):
    lake = tmp_path / "lake"
    good, _ = filterbank(tmp_path / "good.fil")
    bad, _ = filterbank(tmp_path / "bad.fil", extra_bytes=1)
    done = run_astrolake("--lake", str(lake), "ingest", "filterbank", str(good), str(bad), "--workers", "2")
    assert done.returncode == 3, done.stderr
    assert f"rejected {bad}: the data length" in done.stdout
    assert "ingested 1 file: 1 rows into spectrograms" in done.stdout
    assert done.stderr.startswith("error: 1 file rejected (quarantined in _rejected; exit code 3: partial)")
    rows = run_astrolake("--lake", str(lake), "sql", "SELECT source_file, source_size_bytes FROM _rejected",
                         "--format", "csv")
    assert f"\"{bad}\",{bad.stat().st_size}" in rows.stdout


def test_strict_commits_nothing_and_exits_1(tmp_path):
    lake = tmp_path / "lake"
    good = image_fits(tmp_path / "good.fits")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"")
    done = run_astrolake("--lake", str(lake), "ingest", "images", "--strict", "--extract", str(good), str(bad))
    assert done.returncode == 1
    assert done.stderr.startswith("error: rejected 1 file, nothing committed (--strict):")
    assert Lake(lake).delta_table("images").version() == 0 and Lake(lake).delta_table("_rejected").version() == 0


def test_voltages_and_missing_path(tmp_path):
    lake = tmp_path / "lake"
    path, _ = raw_iq(tmp_path / "rec.raw", n=100)
    done = run_astrolake("--lake", str(lake), "ingest", "voltages", "--chunk-samples", "40", str(path))
    assert done.returncode == 0 and "3 rows into voltages" in done.stdout
    missing = run_astrolake("--lake", str(lake), "ingest", "voltages", str(tmp_path / "nope.raw"))
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr


def test_progress_bar_on_a_terminal(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    paths = [str(spectrum_fits(tmp_path / f"s{i}.fits", seed=i)) for i in range(3)]
    child = pexpect.spawn(sys.executable, ["-m", "engine.cli", "--lake", str(tmp_path / "lake"), "ingest", "spectra",
                                           *paths], cwd=str(ROOT), encoding="utf-8", timeout=120,
                          dimensions=(24, 200))
    output = child.read()
    child.close()
    assert child.exitstatus == 0, output
    assert "files/s" in output and "MB/s" in output and "ingest spectra" in output
