"""Smoke test of the file ingest benchmark at a tiny scale: every workload and mode is reported
with its rates and ratio, in its own section of the page. Not a timed test."""

import re

import pytest

from bench.ingest_files_bench import main
from bench.sections import sections, write_section


@pytest.mark.slow
def test_tiny_run_reports_every_workload_and_mode(tmp_path):
    report_path = tmp_path / "benchmarks.md"
    write_section(report_path, "spine", "# Benchmarks\nthe spine's figures\n")
    assert main(["--scale", "0.002", "--work", str(tmp_path / "work"), "--output", str(report_path),
                 "--modes", "1 process,threads"]) == 0
    found = sections(report_path.read_text())
    assert found["spine"] == "# Benchmarks\nthe spine's figures\n"
    rows = [line for line in found["files_ingest"].splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3 * 2
    for workload in ("small FITS spectra", "images 2048 x 1489", "voltages"):
        assert sum(workload in row for row in rows) == 2
    for row in rows:
        assert re.search(r"\*\*\d+\.\d\d\*\*", row), row
