"""The expected result a query file may carry: an ``expect`` block at its end.

In a ``.sky`` file the block starts with a line ``expect`` (optionally ``expect tolerance 1e-6``)
and runs to the end of the file; in a ``.sql`` file every line of it starts with ``--`` (``-- expect``
then ``-- target,snr`` ...). The lines after the header are CSV with a header row, like the
``NAME.expected.csv`` file that may sit beside a query instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = re.compile(r"^(?:--\s*)?expect\b(?:\s+tolerance\s+(?P<tol>\S+))?\s*$", re.I)


@dataclass
class Expectation:
    csv: str
    tolerance: float | None = None
    line: int = 0  # 1-based line of the ``expect`` header


def split_expect(text: str) -> tuple[str, Expectation | None]:
    """(the query text with the expect block blanked out, the expectation or None). Lines keep
    their numbers, so errors still point at the right line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = HEADER.match(line.strip())
        if not match or (line.lstrip().startswith("expect") and line[:1].isspace()):
            continue
        body = lines[i + 1:]
        if line.lstrip().startswith("--"):
            body = [re.sub(r"^\s*--\s?", "", b) for b in body]
        tolerance = None
        if match.group("tol"):
            try:
                tolerance = float(match.group("tol"))
            except ValueError:
                tolerance = None
        query = "\n".join(lines[:i])
        return query, Expectation("\n".join(b for b in body if b.strip()) + "\n", tolerance, i + 1)
    return text, None
