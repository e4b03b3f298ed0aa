"""``python -m bench.sky_bench``: how long Sky takes to compile a 50-line query (goal: under
50 ms), written to the ``sky`` section of docs/benchmarks.md. No lake and no engine: the parse
(Lark, LALR) and the compile to a sqlglot tree, with the built-in catalog and target table."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench import DEFAULT_OUTPUT
from bench.machine import describe_machine
from bench.sections import write_section

GOAL_MS = 50.0


def fifty_line_query() -> str:
    """A realistic 50-line Sky query: a cone, a window, many unit-carrying filters, a stage, an
    aggregate and comments."""
    lines = [
        "# strongest drifting candidates near TRAPPIST-1, per site, Doppler-corrected",
        "param $min_snr = 25",
        "from signal_events",
        'near "TRAPPIST-1" within 5 arcmin      # the beam',
        "during 2017-02-01 .. 2017-03-01",
        "where freq between 1420 MHz and 1720 MHz",
    ]
    bands = [(1420.0 + 7 * i, 1420.0 + 7 * i + 3.5) for i in range(32)]
    for low, high in bands:
        lines.append(f"  and not (freq between {low} MHz and {high} MHz and abs(drift) < 10 mHz/s)")
    lines += [
        "  and snr > $min_snr and abs(drift) < 4 Hz/s and bandwidth < 3 kHz",
        '  and site in ("GBT", "Parkes", "ATA", "FAST", "MeerKAT")',
        "correct doppler",
        "where freq_bary > 1.4 GHz",
        "group by site, target",
        "select site, target, count() as hits,",
        "       max(snr) as best_snr, avg(freq_bary) as MHz,",
        "       min(drift) as mHz/s",
        "having hits > 0",
        "order by best_snr desc, site",
        "limit 100",
        "# end",
    ]
    assert len(lines) == 50, len(lines)
    return "\n".join(lines)


def measure(runs: int) -> dict:
    from engine.dsl.catalog import StaticCatalog
    from engine.dsl.compiler import compile_sky
    from engine.dsl.parser import parse

    text = fifty_line_query()
    catalog = StaticCatalog()
    started = time.perf_counter()
    compile_sky(text, catalog=catalog)  # the first call also imports astropy.units, sqlglot, the UDF registry
    first = time.perf_counter() - started
    parse_s, compile_s = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        parse(text)
        t1 = time.perf_counter()
        compile_sky(text, catalog=catalog)
        t2 = time.perf_counter()
        parse_s.append(t1 - t0)
        compile_s.append(t2 - t1)
    return {"lines": len(text.splitlines()), "first_ms": first * 1e3, "parse_ms": statistics.median(parse_s) * 1e3,
            "compile_ms": statistics.median(compile_s) * 1e3, "worst_ms": max(compile_s) * 1e3, "runs": runs}


def render(result: dict) -> str:
    verdict = "meets" if result["compile_ms"] < GOAL_MS else "misses"
    return f"""## Sky compile time

A {result['lines']}-line Sky query (a named cone, a time window, 36 unit-carrying filters,
`correct doppler`, a filter on its output, group/aggregate with unit-annotated outputs, order and
limit) from text to the sqlglot tree, median of {result['runs']} runs; no engine involved. Goal:
under {GOAL_MS:.0f} ms - this run {verdict} it.

| step | time |
| --- | ---: |
| parse (Lark LALR -> AST) | {result['parse_ms']:.2f} ms |
| parse + compile (-> sqlglot tree) | {result['compile_ms']:.2f} ms |
| slowest of the runs | {result['worst_ms']:.2f} ms |
| first call in a process (imports astropy.units, sqlglot, the function registry) | {result['first_ms']:.0f} ms |

Machine: {_machine()}. Reproduce: `python -m bench.sky_bench`.
"""


def _machine() -> str:
    import os

    m = describe_machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{m.cpu_model}, {m.cores} cores, Python {m.python}, load average {load:.1f} during the run"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sky_bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    result = measure(args.runs)
    write_section(args.output, "sky", render(result))
    print(render(result))


if __name__ == "__main__":
    main()
