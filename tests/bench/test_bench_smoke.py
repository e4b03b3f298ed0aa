"""Smoke test of the benchmark harness: `python -m bench --quick` on a few events writes a report.

Not a timed test: nothing here asserts a speed, only that every figure and its ratio is reported.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_writes_every_figure_with_a_ratio(tmp_path):
    report_path = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--events", "20000", "--runs", "2",
         "--work", str(tmp_path / "work"), "--output", str(report_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = report_path.read_text()

    for heading in ("## Summary", "## Machine", "## Ingest", "## Queries", "## Reproduce"):
        assert heading in report
    assert "make bench" in report
    assert "deltalake" in report and "duckdb" in report and "pyarrow" in report
    summary = report.split("## Summary", 1)[1].split("## Machine", 1)[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| figure")]
    assert len(rows) == 5  # Parquet ingest, CSV ingest, two warm queries, the cold query
    for row in rows:
        ratio = row.rstrip(" |").rsplit("|", 1)[1]
        assert re.search(r"\d+\.\d\d", ratio), row
    assert sum("rows/s" in row for row in rows) == 2
    assert sum("goal ≤ 1.2" in row for row in rows) == 2
    assert "VERSION AS OF 2" in report


@pytest.mark.slow
@pytest.mark.spark
def test_spark_bench_keeps_the_other_sections(tmp_path):
    from tests.conftest import SPARK_MISSING

    if SPARK_MISSING:
        pytest.skip(SPARK_MISSING)
    from bench.sections import sections, write_section
    from bench.spark_bench import main

    report_path = tmp_path / "benchmarks.md"
    write_section(report_path, "spine", "# Benchmarks\nthe spine's figures\n")
    assert main(["--sizes", "20000", "--runs", "1", "--work", str(tmp_path / "work"),
                 "--output", str(report_path)]) == 0
    found = sections(report_path.read_text())
    assert found["spine"] == "# Benchmarks\nthe spine's figures\n"
    spark = found["spark"]
    assert "Session start" in spark and "| 20,000 |" in spark
    assert re.search(r"\*\*\d+\.\d\d\*\* \(goal ≤ 1.2", spark)
    assert "data files committed" in spark and "Delta log entries added | 1 (one commit)" in spark


@pytest.mark.slow
def test_functions_bench_quick_run_reports_each_function_next_to_its_reference(tmp_path):
    report_path = tmp_path / "benchmarks.md"
    report_path.write_text("<!-- bench:spine -->\nkept\n<!-- /bench:spine -->\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.functions_bench", "--quick", "--work", str(tmp_path / "work"),
         "--output", str(report_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = report_path.read_text()
    assert "kept" in report  # the other sections stay
    for heading in ("### Doppler: the kernel next to astropy row by row", "### Spectrogram: SQL next to bare scipy.fft",
                    "### SEP: SQL next to a bare loop"):
        assert heading in report
    assert "× astropy row by row" in report and re.search(r"\| duckdb \| 512 \| 1 \| .* \| \d+% \|", report)
    assert re.search(r"The same over \d+ MiB \(8 snapshots\)", report)  # the throughput run, smaller
    assert re.search(r"\| duckdb \| [\d.]+ s \| [\d.]+ s \| \d+\.\d\d \|", report)
    assert re.search(r"Largest difference on those rows: \d+\.\d{3} mm/s", report)
