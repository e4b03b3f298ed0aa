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
  \\sky / \\sql         switch to Sky queries (also ending with ;) / back to SQL;
                      in SQL mode, "sky from ... ;" runs one Sky query
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
        self.language = "sql"  # or "sky" (\\sky switches)
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
                        self.run_text("\n".join(buffer))
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
                    self.run_text("\n".join(buffer))
                    buffer = []
        finally:
            self._save_history()

    def run_text(self, text: str) -> None:
        """Run what was typed: Sky in Sky mode or after a ``sky`` prefix, else SQL."""
        head = text.lstrip()
        if self.language == "sky" or head[:4].lower() == "sky " or head[:4].lower() == "sky\n":
            body = head[4:] if head[:4].lower() in ("sky ", "sky\n") else text
            self.run_sky(body.strip().rstrip(";"))
        else:
            self.run_sql(text)

    def run_sky(self, text: str) -> None:
        if not text.strip():
            return
        try:
            started = time.perf_counter()
            result = self.session.sky(text)
            self.print(format_table(result, max_rows=1000))
            if self.timing:
                self.print(f"Time: {time.perf_counter() - started:.3f} s")
        except EngineError as e:
            self.print(f"error: {e}", err=True)
        except KeyboardInterrupt:
            self.print("cancelled", err=True)

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
            elif name in ("\\sky", "\\sql"):
                self.language = name[1:]
                self.print(f"{'Sky' if self.language == 'sky' else 'SQL'} mode: queries end with ';'.")
            elif name == "\\c":
                pass
            else:
                self.print(f"error: unknown command {name} (\\? for help)", err=True)
        except EngineError as e:
            self.print(f"error: {str(e).splitlines()[0]}", err=True)
        return True
