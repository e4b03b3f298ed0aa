"""The command line, end to end: in-process through main() and as a real subprocess."""

import json
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.cli import main
from tests.conftest import run_astrolake


@pytest.fixture
def cli(capsys):
    def invoke(*args):
        try:
            main(list(map(str, args)))
            code = 0
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def demo_copy(demo_lake_path, tmp_path):
    path = tmp_path / "lake"
    shutil.copytree(demo_lake_path, path)
    return path


def test_sql_prints_an_aligned_table(cli, demo_lake_path):
    code, out, err = cli("--lake", demo_lake_path, "sql",
                         "SELECT target, count(*) AS n FROM signal_events WHERE snr > 1000 GROUP BY target")
    assert (code, err) == (0, "")
    assert out.splitlines() == [" target    | n", "-----------+---", " Voyager-1 | 3", "(1 row)"]


def test_lake_option_after_the_command_and_from_the_environment(cli, demo_lake_path, monkeypatch):
    q = "SELECT count(*) AS n FROM signal_events WHERE snr > 1000"
    assert cli("sql", q, "--lake", demo_lake_path)[1].splitlines()[2] == " 3"
    monkeypatch.setenv("ASTROLAKE_LAKE", str(demo_lake_path))
    assert cli("sql", q)[1].splitlines()[2] == " 3"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "arrow"])
def test_formats_to_a_file(cli, demo_lake_path, tmp_path, fmt):
    out_file = tmp_path / f"r.{fmt}"
    q = "SELECT target, snr FROM signal_events WHERE snr > 1000 ORDER BY snr DESC"
    code, out, err = cli("--lake", demo_lake_path, "sql", q, "--format", fmt, "--output", out_file)
    assert (code, out, err) == (0, "", "")
    if fmt == "csv":
        assert out_file.read_text().splitlines() == ['"target","snr"', '"Voyager-1",1289.3',
                                                     '"Voyager-1",1263.51', '"Voyager-1",1237.73']
    elif fmt == "json":
        assert json.loads(out_file.read_text())[0] == {"target": "Voyager-1", "snr": 1289.3}
    elif fmt == "parquet":
        assert pq.read_table(out_file)["snr"].to_pylist() == [1289.3, 1263.51, 1237.73]
    else:
        assert pa.ipc.open_file(out_file).read_all().num_rows == 3


def test_csv_to_stdout_and_sql_from_a_file_and_stdin(demo_lake_path, tmp_path):
    q = tmp_path / "q.sql"
    q.write_text("-- a comment\nSELECT count(*) AS n\nFROM signal_events\nWHERE snr > 1000;\n")
    done = run_astrolake("--lake", str(demo_lake_path), "sql", "--file", str(q), "--format", "csv")
    assert (done.returncode, done.stdout, done.stderr) == (0, '"n"\n3\n', "")
    done = run_astrolake("--lake", str(demo_lake_path), "sql", "--format", "json", input=q.read_text())
    assert json.loads(done.stdout) == [{"n": 3}]


def test_several_statements_print_each_result(cli, demo_lake_path):
    code, out, _ = cli("--lake", demo_lake_path, "sql", "SELECT 1 AS a; SELECT 2 AS b")
    assert code == 0 and " a" in out and " b" in out


@pytest.mark.parametrize("query, message", [
    ("SELECT snrr FROM signal_events", "error: unknown column 'snrr' (did you mean 'snr'?)"),
    ("SELECT * FROM signal_event", "error: unknown table 'signal_event' (did you mean 'signal_events'?)"),
    ("SELECT frobnicate(snr) FROM signal_events", "error: function 'frobnicate' is not supported on duckdb"),
    ("SELECT * FROM\nWHERE snr > 3", "error: syntax error at line 2, column 5"),
])
def test_query_errors_are_one_line_and_exit_1(demo_lake_path, query, message):
    done = run_astrolake("--lake", str(demo_lake_path), "sql", query)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(demo_lake_path):
    done = run_astrolake("--lake", str(demo_lake_path), "--debug", "sql", "SELECT nope FROM signal_events")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "UnknownColumnError" in done.stderr


@pytest.mark.parametrize("args", [
    ["sql"],
    ["sql", "SELECT 1", "--format", "xml"],
    ["describe"],
    ["no-such-command"],
    ["--engine", "oracle", "tables"],
    ["sql", "SELECT 1", "--max-rows", "0"],
])
def test_bad_usage_exits_2(cli, demo_lake_path, args, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    code, _, err = cli("--lake", demo_lake_path, *args)
    assert code == 2
    assert err.strip()


def test_tables_describe_history(cli, demo_lake_path):
    code, out, _ = cli("--lake", demo_lake_path, "tables")
    assert code == 0
    assert out.splitlines()[0].split("|")[0].strip() == "table"
    assert any(line.startswith(" signal_events ") for line in out.splitlines())
    code, out, _ = cli("--lake", demo_lake_path, "describe", "signal_events")
    assert code == 0
    assert "version:      4" in out and "partitioned:  obs_date" in out
    assert re.search(r" freq_hz +\| double +\| Hz ", out)
    code, out, _ = cli("--lake", demo_lake_path, "history", "signal_events")
    assert code == 0
    lines = out.splitlines()
    assert lines[2].split("|")[0].strip() == "4" and "demo events 2019" in lines[2]
    assert "CREATE TABLE" in lines[-2]
    code, _, err = cli("--lake", demo_lake_path, "describe", "signal_event")
    assert code == 1 and err == "error: unknown table 'signal_event' (did you mean 'signal_events'?)\n"


def test_ingest_events_end_to_end(tmp_path):
    lake = tmp_path / "lake"
    good = tmp_path / "good.csv"
    good.write_text("observed_at,target,ra_deg,dec_deg,freq_hz,drift_hz_s,snr\n"
                    "2017-02-22T09:00:00Z,TRAPPIST-1,346.6223,-5.0413,1523611000,0.73,85\n")
    done = run_astrolake("--lake", str(lake), "ingest", "events", str(good))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ingested 1 rows from 1 file into signal_events (version 1)\n"
    done = run_astrolake("ingest", "events", str(good), "--lake", str(lake))
    assert done.returncode == 0
    assert "skipped" in done.stdout and "already ingested into signal_events" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("observed_at,target,ra_deg,dec_deg,freq_hz,drift_hz_s,snr\n"
                   "2017-02-22T09:00:00Z,TRAPPIST-1,400,-5.0413,1523611000,0.73,85\n"
                   "2017-02-22T09:01:00Z,TRAPPIST-1,346.6223,-5.0413,1523611000,0.73,86\n")
    done = run_astrolake("--lake", str(lake), "ingest", "events", str(bad))
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith("error: rejected 1 row, nothing committed")
    assert f"{bad} row 1: ra_deg 400.0 outside [0, 360)" in done.stderr
    done = run_astrolake("--lake", str(lake), "ingest", "events", "--skip-bad", str(bad))
    assert done.returncode == 0
    assert "ingested 1 rows" in done.stdout and "quarantined 1 rejected rows in _rejected" in done.stdout
    done = run_astrolake("--lake", str(lake), "sql", "SELECT row_number, reason FROM _rejected", "--format", "csv")
    assert done.stdout == '"row_number","reason"\n1,"ra_deg 400.0 outside [0, 360)"\n'


def test_demo_is_deterministic_and_idempotent(cli, tmp_path):
    sums = []  # every row, in order
    for name in ("a", "b"):
        lake = tmp_path / name
        code, out, _ = cli("--lake", lake, "demo", "--events", 4000, "--seed", 7)
        assert code == 0 and "2019: 1005 events (version 4)" in out
        code, out, _ = cli("--lake", lake, "sql", "SELECT * FROM signal_events ORDER BY event_id", "--format", "csv")
        sums.append(out)
    assert len(sums[0].splitlines()) == 4019
    assert sums[0] == sums[1]
    code, out, _ = cli("--lake", tmp_path / "a", "demo", "--events", 4000, "--seed", 7)
    assert code == 0 and out.startswith("demo lake already built")


def test_explain(cli, demo_lake_path):
    code, out, _ = cli("--lake", demo_lake_path, "explain", "SELECT count(*) FROM signal_events WHERE obs_date = DATE'2016-09-26'")
    assert code == 0
    assert '"signal_events@v4"' in out and "READ_PARQUET" in out.upper()


def test_writes_through_sql(cli, demo_copy):
    code, out, _ = cli("--lake", demo_copy, "sql",
                       "CREATE TABLE voyager AS SELECT * FROM signal_events WHERE target = 'Voyager-1' AND snr > 250")
    assert code == 0 and "voyager" in out
    code, out, _ = cli("--lake", demo_copy, "sql", "SELECT count(*) AS n FROM voyager", "--format", "csv")
    assert out == '"n"\n9\n'


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and "astrolake" in out
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("sql", "shell", "tables", "describe", "history", "ingest", "demo", "explain", "functions"):
        assert f"  {command}" in out


def test_functions_lists_the_library(cli):
    code, out, _ = cli("functions")
    assert code == 0
    assert "distance(ra1_deg double, dec1_deg double, ra2_deg double, dec2_deg double) -> double" in out
    code, out, _ = cli("functions", "distance")
    assert code == 0 and "Vincenty" in out and "e.g. SELECT distance(" in out
    code, _, err = cli("functions", "distanse")
    assert code == 1 and "did you mean 'distance'" in err
