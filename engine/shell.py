"""``astrolake shell``: an interactive SQL shell in the style of psql and duckdb.

Statements may span lines and end with ``;``. Backslash commands: ``\\d`` lists tables,
``\\d TABLE`` describes one, ``\\timing`` toggles timing, ``\\?`` helps,
``\\q`` quits. History persists in ``$ASTROLAKE_HISTORY`` (default ``~/.astrolake_history``).
An error prints one line and the shell goes on.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from engine.errors import EngineError
from engine.output import format_table

PROMPT = "astrolake> "
CONTINUE = "       ...> "
HISTORY_LENGTH = 2000

HELP = """\
  SQL ending with ;   run it (Spark SQL dialect; statements may span lines)
  \\d                  list tables
  \\d TABLE            describe a table: columns, units, rows, version
  \\history TABLE      the table's Delta commits (for VERSION AS OF n)
  \\timing [on|off]    show how long each statement takes
  \\c                  clear the statement being typed
  \\?                  this help
  \\q                  quit (also Ctrl-D)
"""


def history_path() -> Path:
    return Path(os.environ.get("ASTROLAKE_HISTORY", Path.home() / ".astrolake_history"))


class Shell:
    def __init__(self, session, stdin=None, stdout=None):
        self.session = session
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.timing = False
        self.interactive = self.stdin.isatty()
        self._readline = None

    # ---- input ---------------------------------------------------------------------------

    def _setup_history(self) -> None:
        if not self.interactive:
            return
        try:
            import readline
        except ImportError:  # pragma: no cover - Python built without readline
            return
        self._readline = readline
        readline.set_history_length(HISTORY_LENGTH)
        path = history_path()
        if path.exists():
            try:
                readline.read_history_file(path)
            except OSError:
                pass

    def _save_history(self) -> None:
        if self._readline is None:
            return
        path = history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._readline.write_history_file(path)
        except OSError as e:
            self.print(f"warning: history not saved: {e}", err=True)

    def _read_line(self, prompt: str) -> str | None:
        if self.interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = self.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    def print(self, text: str, err: bool = False) -> None:
        stream = sys.stderr if err else self.stdout
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()

    # ---- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        self._setup_history()
        if self.interactive:
            self.print(f"astrolake shell on {self.session.engine}, lake {self.session.lake.root}. "
                       "Statements end with ';'. \\? for help, \\q to quit.")
        buffer: list[str] = []
        try:
            while True:
                try:
                    line = self._read_line(CONTINUE if buffer else PROMPT)
                except KeyboardInterrupt:
                    self.print("")
                    buffer = []
                    continue
                if line is None:
                    if buffer:
                        self.run_sql("\n".join(buffer))
                    break
                stripped = line.strip()
                if not buffer and stripped.startswith("\\"):
                    if not self.command(stripped):
                        break
                    continue
                if not buffer and stripped.lower() in ("quit", "exit", "quit;", "exit;"):
                    break
                if stripped == "\\c":
                    buffer = []
                    continue
                if stripped or buffer:
                    buffer.append(line)
                if stripped.endswith(";"):
                    self.run_sql("\n".join(buffer))
                    buffer = []
        finally:
            self._save_history()

    def run_sql(self, text: str) -> None:
        from engine.sqlfront import parse_statements

        if not text.strip().strip(";").strip():
            return
        try:
            for statement in parse_statements(text):
                started = time.perf_counter()
                result = self.session.execute(statement)
                self.print(format_table(result, max_rows=1000))
                if self.timing:
                    self.print(f"Time: {time.perf_counter() - started:.3f} s")
        except EngineError as e:
            self.print(f"error: {str(e).splitlines()[0]}", err=True)
        except KeyboardInterrupt:
            self.print("cancelled", err=True)

    def command(self, text: str) -> bool:
        """Run a backslash command; False to quit."""
        from engine.cli import describe_text

        name, _, argument = text.partition(" ")
        argument = argument.strip().rstrip(";")
        try:
            if name == "\\q":
                return False
            if name == "\\?":
                self.print(HELP)
            elif name == "\\d" and not argument:
                self.print(format_table(self.session.tables()))
            elif name == "\\d":
                self.print(describe_text(self.session, argument))
            elif name == "\\history" and argument:
                self.print(format_table(self.session.history(argument)))
            elif name == "\\timing":
                self.timing = {"on": True, "off": False}.get(argument.lower(), not self.timing)
                self.print(f"Timing is {'on' if self.timing else 'off'}.")
            elif name == "\\c":
                pass
            else:
                self.print(f"error: unknown command {name} (\\? for help)", err=True)
        except EngineError as e:
            self.print(f"error: {str(e).splitlines()[0]}", err=True)
        return True
