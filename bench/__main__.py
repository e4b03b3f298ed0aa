"""``python -m bench``: run the benchmarks and write docs/benchmarks.md (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from bench import BUSY_SHARE, DEFAULT_OUTPUT, DEFAULT_WORK_DIR
from bench.ingest_bench import bench_ingest
from bench.machine import cpu_sample, cpu_use_since, describe_machine, peak_rss_bytes
from bench.query_bench import bench_queries
from bench.report import Settings, render, write_report
from bench.workload import write_csv_file, write_parquet_files

FULL_EVENTS = 10_000_000
QUICK_EVENTS = 200_000
CSV_EVENTS_MAX = 2_000_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, help=f"events to ingest and query (default {FULL_EVENTS:_}, "
                                                    f"{QUICK_EVENTS:_} with --quick)")
    parser.add_argument("--csv-events", type=int,
                        help=f"events in the CSV ingest file (default: --events, at most {CSV_EVENTS_MAX:_}; 0: no CSV)")
    parser.add_argument("--runs", type=int, help="warm runs per query, after one warm-up (default 7, 3 with --quick)")
    parser.add_argument("--ingest-runs", type=int,
                        help="rounds of each ingest benchmark, median reported (default 2, 1 with --quick)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic events (default 42)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR, help="work directory (default bench/work)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the report (default docs/benchmarks.md)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_EVENTS:_} events, 3 runs")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = QUICK_EVENTS if args.quick else FULL_EVENTS
    if args.runs is None:
        args.runs = 3 if args.quick else 7
    if args.ingest_runs is None:
        args.ingest_runs = 1 if args.quick else 2
    if args.csv_events is None:
        args.csv_events = min(args.events, CSV_EVENTS_MAX)
    if args.events < 1000 or args.runs < 1 or args.ingest_runs < 1 or args.csv_events < 0:
        parser.error("--events must be at least 1000, --runs and --ingest-runs at least 1, --csv-events at least 0")
    return args


def log(start: float, message: str) -> None:
    print(f"[bench {time.perf_counter() - start:7.1f} s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    cpu_start = cpu_sample()
    machine = describe_machine()
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    settings = Settings(args.events, args.csv_events, args.runs, args.ingest_runs, args.seed, command)
    work = args.work.absolute()
    inputs = work / "inputs"

    log(start, f"writing {args.events:,} events as Parquet in {inputs}")
    event_files = [write_parquet_files(inputs, args.events, args.seed)]
    if args.csv_events:
        log(start, f"writing {args.csv_events:,} events as CSV")
        event_files.append(write_csv_file(inputs, args.csv_events, args.seed))
    ingests = []
    for files in event_files:
        log(start, f"ingest benchmark, {files.kind}: {files.rows:,} rows, {args.ingest_runs} round(s)")
        ingests.append(bench_ingest(files, work, args.ingest_runs))
        log(start, f"  {ingests[-1].rows_per_s:,.0f} rows/s, ratio {ingests[-1].ratio:.2f}")

    log(start, f"building the demo lake ({args.events:,} events) and timing queries, {args.runs} runs each")
    queries = bench_queries(work, args.events, args.runs, args.seed)
    for q in queries.shapes:
        log(start, f"  {q.shape.name}: astrolake {q.astrolake_median_seconds * 1000:.1f} ms, "
                   f"duckdb {q.duckdb_median_seconds * 1000:.1f} ms, ratio {q.ratio:.2f}")

    cpu = cpu_use_since(cpu_start, machine.cores)
    if cpu.others_share > BUSY_SHARE:
        log(start, f"warning: other processes used {cpu.others_share:.0%} of the CPU during the run")
    text = render(machine, settings, ingests, queries, peak_rss_bytes(), cpu)
    write_report(args.output, text)
    log(start, f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
