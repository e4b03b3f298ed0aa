"""The Sky commands: run, check (with --junit), explain FILE.sky, and Sky errors on stderr."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lake_args(demo_lake_path):
    return ["--lake", str(demo_lake_path)]


def call(capsys, *args):
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_run_a_sky_file_with_params(capsys, lake_args, tmp_path):
    path = tmp_path / "q.sky"
    path.write_text('param $target = "Vega"\nfrom signal_events near $target within 3 arcmin select count() as n')
    code, out, _ = call(capsys, *lake_args, "run", str(path), "--format", "csv")
    assert code == 0 and out.startswith('"n"\n')
    code, out2, _ = call(capsys, *lake_args, "run", str(path), "--param", "target=Tau Ceti", "--format", "csv")
    assert code == 0 and out2 != out


def test_run_a_sql_file(capsys, lake_args):
    code, out, _ = call(capsys, *lake_args, "run", str(ROOT / "queries" / "05_spacecraft_and_one_offs.sql"))
    assert code == 0 and "Voyager-1" in out


def test_sky_errors_show_the_line_and_a_caret(capsys, lake_args, tmp_path):
    path = tmp_path / "bad.sky"
    path.write_text("from signal_events\nwhere drift < 3 MHz\n")
    code, out, err = call(capsys, *lake_args, "run", str(path))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: line 2, column 13: cannot compare drift (a drift rate in Hz/s) with 3 MHz (a frequency)",
        "  where drift < 3 MHz", "              ^"]
    assert "Traceback" not in err


def test_bad_param_is_a_usage_error(capsys, lake_args, tmp_path):
    path = tmp_path / "q.sky"
    path.write_text("from signal_events")
    code, _, err = call(capsys, *lake_args, "run", str(path), "--param", "oops")
    assert code == 2 and "--param needs NAME=VALUE" in err


def test_explain_a_sky_file_and_sql(capsys, lake_args):
    code, out, _ = call(capsys, *lake_args, "explain", str(ROOT / "queries" / "09_trappist_water_hole_doppler.sky"))
    assert code == 0
    assert out.index("-- Spark SQL") < out.index("-- duckdb SQL") < out.index("-- duckdb plan")
    assert "DOPPLER_CORRECT(freq_hz" in out and "FROM signal_events" in out
    code, out, _ = call(capsys, *lake_args, "explain", "SELECT count(*) FROM signal_events")
    assert code == 0 and "-- duckdb plan" in out
    code, out, _ = call(capsys, *lake_args, "explain", str(ROOT / "queries" / "06_hits_per_site_and_year.sql"))
    assert code == 0 and "-- duckdb SQL" in out


def test_check_exit_codes_and_junit(capsys, lake_args, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.sky").write_text("from signal_events where snr > 1000 select count() as n\nexpect\nn\n3\n")
    code, out, _ = call(capsys, *lake_args, "check", str(good))
    assert code == 0 and "1 matched" in out
    (good / "b.sky").write_text("from signal_events where snr > 1000 select count() as n\nexpect\nn\n2\n")
    junit = tmp_path / "report.xml"
    code, out, err = call(capsys, *lake_args, "check", str(good), "--junit", str(junit))
    assert code == 1 and "row 1, n: expected '2', got '3'" in out
    assert err.startswith("error: 1 of 2 query files differ")
    assert ET.parse(junit).getroot().get("failures") == "1"


def test_shell_runs_sky(demo_lake_path):
    import io

    import engine
    from engine.shell import Shell

    out = io.StringIO()
    stdin = io.StringIO("\\sky\nfrom signal_events where snr > 1000\nselect target;\n\\sql\n"
                        "sky from signal_events where snr > 1000 select count() as n;\n")
    with engine.connect(demo_lake_path) as session:
        Shell(session, stdin=stdin, stdout=out).run()
    text = out.getvalue()
    assert "Sky mode" in text and text.count("Voyager-1") == 3 and "\n 3\n" in text
