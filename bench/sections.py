"""docs/benchmarks.md holds one section per benchmark suite; each run rewrites only its own.

A section is the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``. The spine's
suite (``python -m bench``) writes the page's head and its section; the others
(``python -m bench.spark_bench`` ...) replace theirs and keep the rest.
"""

from __future__ import annotations

import re
from pathlib import Path


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def sections(text: str) -> dict[str, str]:
    found = {}
    for match in re.finditer(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n?", text, re.S):
        found[match.group(1)] = match.group(2)
    return found


def write_section(path: Path, name: str, body: str, order: tuple[str, ...] = ("spine", "spark", "functions")) -> None:
    """Replace section ``name`` of the page at ``path`` (creating it), keeping the others."""
    existing = sections(path.read_text()) if path.exists() else {}
    existing[name] = body.rstrip("\n") + "\n"
    names = [n for n in order if n in existing] + sorted(n for n in existing if n not in order)
    parts = []
    for n in names:
        start, end = _markers(n)
        parts.append(f"{start}\n{existing[n]}{end}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
