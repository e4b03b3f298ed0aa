"""``astrolake check``: run every .sky and .sql file under some paths and compare each result with
the one the file expects (an ``expect`` block at its end, or ``NAME.expected.csv`` beside it).

Cells compare as numbers when both sides read as numbers (within a relative tolerance, default
1e-9, or the file's ``expect tolerance X``), otherwise as text; rows compare in order. Both sides
go through the same CSV writer as ``--format csv``, so an expected file is what
``astrolake run FILE --format csv`` printed when the result was checked.
"""

from __future__ import annotations

import csv
import io
import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from engine.dsl.expect import Expectation, split_expect
from engine.errors import EngineError
from engine.output import write_result

DEFAULT_TOLERANCE = 1e-9
SUFFIXES = (".sky", ".sql")


@dataclass
class Outcome:
    path: Path
    status: str  # passed | failed | error | unchecked
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)


def query_files(paths) -> list[Path]:
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise EngineError(f"no such file or directory: {path}")
    return found


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise EngineError(f"cannot read {path}: {e}") from e


def expectation(path: Path) -> Expectation | None:
    _, block = split_expect(read_text(path))
    if block is not None:
        return block
    beside = path.with_name(path.stem + ".expected.csv")
    if beside.is_file():
        return Expectation(read_text(beside))
    return None


def run_file(session, path: Path, params: dict | None = None) -> pa.Table:
    text = read_text(path)
    if path.suffix == ".sky":
        return session.sky(text, params)
    return session.sql(split_expect(text)[0])


def to_csv(table: pa.Table) -> str:
    buffer = io.BytesIO()
    write_result(table, "csv", buffer)
    return buffer.getvalue().decode()


def compare(actual_csv: str, expected_csv: str, tolerance: float) -> list[str]:
    """Readable differences between two CSV texts (header row first); [] when they match."""
    got = list(csv.reader(io.StringIO(actual_csv)))
    want = list(csv.reader(io.StringIO(expected_csv)))
    got = [r for r in got if r]
    want = [r for r in want if r]
    if not want:
        return ["the expected result is empty (it needs at least a header row)"]
    problems = []
    if got[:1] != want[:1]:
        problems.append(f"columns: expected {','.join(want[0])}, got {','.join(got[0]) if got else '(none)'}")
        return problems
    header = want[0]
    if len(got) != len(want):
        problems.append(f"rows: expected {len(want) - 1}, got {len(got) - 1}")
    for i, (g, w) in enumerate(zip(got[1:], want[1:]), start=1):
        for name, a, b in zip(header, g, w):
            if not _same(a, b, tolerance):
                problems.append(f"row {i}, {name}: expected {b!r}, got {a!r}")
        if len(problems) >= 20:
            problems.append("...")
            break
    return problems


def _same(a: str, b: str, tolerance: float) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance * 1e-3)


def check_file(session, path: Path, params: dict | None = None) -> Outcome:
    started = time.perf_counter()
    try:
        expected = expectation(path)
        result = run_file(session, path, params)
    except EngineError as e:
        return Outcome(path, "error", time.perf_counter() - started, str(e).splitlines())
    seconds = time.perf_counter() - started
    if expected is None:
        return Outcome(path, "unchecked", seconds, [f"ran: {result.num_rows} rows (no expected result)"])
    tolerance = expected.tolerance if expected.tolerance is not None else DEFAULT_TOLERANCE
    problems = compare(to_csv(result), expected.csv, tolerance)
    return Outcome(path, "failed" if problems else "passed", seconds, problems)


def check(session, paths, params: dict | None = None) -> list[Outcome]:
    return [check_file(session, p, params) for p in query_files(paths)]


def report(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        mark = {"passed": "ok  ", "unchecked": "ran ", "failed": "FAIL", "error": "ERR "}[o.status]
        lines.append(f"{mark} {o.path} ({o.seconds:.2f} s)")
        if o.status in ("failed", "error"):
            lines += [f"       {d}" for d in o.details]
    bad = sum(o.status in ("failed", "error") for o in outcomes)
    unchecked = sum(o.status == "unchecked" for o in outcomes)
    lines.append(f"{len(outcomes)} files: {len(outcomes) - bad - unchecked} matched, {unchecked} without an "
                 f"expected result, {bad} failed")
    return "\n".join(lines) + "\n"


def junit(outcomes: list[Outcome], engine: str) -> str:
    suite = ET.Element("testsuite", name=f"astrolake check ({engine})", tests=str(len(outcomes)),
                       failures=str(sum(o.status == "failed" for o in outcomes)),
                       errors=str(sum(o.status == "error" for o in outcomes)),
                       skipped="0", time=f"{sum(o.seconds for o in outcomes):.3f}")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=str(o.path.parent).replace("/", "."),
                             name=o.path.name, time=f"{o.seconds:.3f}")
        if o.status in ("failed", "error"):
            tag = "failure" if o.status == "failed" else "error"
            element = ET.SubElement(case, tag, message=o.details[0] if o.details else o.status)
            element.text = "\n".join(o.details)
        elif o.status == "unchecked":
            ET.SubElement(case, "system-out").text = "\n".join(o.details)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
