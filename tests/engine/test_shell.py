"""The interactive shell, driven through a real pseudo-terminal with pexpect."""

import os
import re
import sys

import pexpect
import pytest

from tests.conftest import run_astrolake

PROMPT = "astrolake> "


@pytest.fixture
def shell(demo_lake_path, tmp_path):
    history = tmp_path / "history"

    def start():
        env = {**os.environ, "ASTROLAKE_HISTORY": str(history), "TERM": "dumb"}
        child = pexpect.spawn(sys.executable, ["-m", "engine.cli", "--lake", str(demo_lake_path), "shell"],
                              env=env, encoding="utf-8", timeout=60, dimensions=(50, 250))
        child.expect_exact(PROMPT)
        return child

    start.history = history
    return start


def run(child, line, until=PROMPT):
    child.sendline(line)
    child.expect_exact(until)
    return child.before


def test_multi_line_statement_error_and_recovery(shell):
    child = shell()
    child.sendline("SELECT target, count(*) AS n")
    child.expect_exact("...> ")
    out = run(child, "FROM signal_events WHERE snr > 1000 GROUP BY target;")
    assert "Voyager-1 | 3" in out and "(1 row)" in out
    out = run(child, "SELECT snrr FROM signal_events;")
    assert "error: unknown column 'snrr' (did you mean 'snr'?)" in out
    assert "Traceback" not in out
    out = run(child, "SELECT * FROM\nWHERE;")
    assert "error: syntax error at line 2" in out
    out = run(child, "SELECT 40 + 2 AS answer;")
    assert re.search(r"answer\s*\r?\n-+\r?\n\s*42", out)
    child.sendline("\\q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_backslash_commands(shell):
    child = shell()
    out = run(child, "\\d")
    assert "signal_events" in out and "_rejected" in out
    out = run(child, "\\d signal_events")
    assert "partitioned:  obs_date" in out and "drift_hz_s" in out and "Hz/s" in out
    out = run(child, "\\d nosuch")
    assert "error: unknown table 'nosuch'" in out
    out = run(child, "\\timing on")
    assert "Timing is on." in out
    out = run(child, "SELECT 1 AS x;")
    assert re.search(r"Time: \d+\.\d{3} s", out)
    out = run(child, "\\history signal_events")
    assert "demo events 2019" in out
    out = run(child, "\\?")
    assert "\\d TABLE" in out and "\\q" in out
    out = run(child, "\\frob")
    assert "unknown command \\frob" in out
    child.sendeof()
    child.expect(pexpect.EOF)


def test_history_persists_across_sessions(shell):
    child = shell()
    run(child, "SELECT 'first session' AS marker;")
    child.sendline("\\q")
    child.expect(pexpect.EOF)
    assert "SELECT 'first session' AS marker;" in shell.history.read_text()
    child = shell()
    child.send("\x1b[A\x1b[A")  # up, up: past "\q" to the previous session's statement
    child.send("\r")
    child.expect_exact("first session")
    child.expect_exact(PROMPT)
    child.sendline("\\q")
    child.expect(pexpect.EOF)


def test_ctrl_c_clears_the_statement_and_keeps_the_shell(shell):
    child = shell()
    child.sendline("SELECT 1")
    child.expect_exact("...> ")
    child.sendintr()
    child.expect_exact(PROMPT)
    out = run(child, "SELECT 7 AS seven;")
    assert "(1 row)" in out
    child.sendline("\\q")
    child.expect(pexpect.EOF)


def test_piped_input(demo_lake_path):
    done = run_astrolake("--lake", str(demo_lake_path), "shell",
                         input="SELECT count(*) AS n\nFROM signal_events WHERE snr > 1000;\nSELECT nope;\n\\d\n")
    assert done.returncode == 0
    assert " 3\n(1 row)" in done.stdout
    assert "error:" in done.stderr
    assert "signal_events" in done.stdout
    assert PROMPT not in done.stdout
