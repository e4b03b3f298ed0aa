"""``python -m bench.jdbc_bench``: `astrolake serve` under a BI-like load, through a real client.

Starts ``astrolake serve`` (Spark Thrift Server) over a demo lake and runs ``--clients`` PyHive
connections in parallel, each sending ``--queries`` statements drawn in turn from a mix of point
lookups, aggregates and library-function (UDF) queries. Records per-query latency (p50, p95, max),
queries per second and errors; the cost of the per-statement freshness check (measured in-process
on the same lake: the ``stat`` calls that look for each table's next Delta log entry) and the mean
time a statement spends in the server's gate (reported by the server when it stops).

Writes the ``jdbc`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import threading
import time
from pathlib import Path

from bench import DEFAULT_OUTPUT, DEFAULT_WORK_DIR
from bench.machine import describe_machine
from bench.sections import write_section

MIX = [
    ("point", "SELECT target, freq_hz, snr FROM signal_events WHERE event_id = {k}"),
    ("aggregate", "SELECT site, count(*) AS hits, max(snr) AS best FROM signal_events GROUP BY site ORDER BY site"),
    ("udf", "SELECT event_id, doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) AS bary_hz "
            "FROM signal_events WHERE snr > 150 ORDER BY event_id"),
    ("point", "SELECT count(*) FROM signal_events WHERE target = 'Proxima Centauri' AND snr > {k}"),
    ("aggregate", "SELECT year(observed_at) AS year, count(DISTINCT target) AS targets FROM signal_events "
                  "GROUP BY year(observed_at) ORDER BY year"),
    ("udf", "SELECT count(*) FROM signal_events WHERE distance(ra_deg, dec_deg, 217.42895, -62.67949) < 1"),
]


def freshness_check_us(lake_path: Path, runs: int = 2000) -> tuple[float, int]:
    """Mean microseconds of one freshness check over every table (nothing moved), and the tables."""
    from catalogs.lake import Lake
    from engine.server_views import LakeViews

    lake = Lake(lake_path, create=False)
    views = LakeViews(spark=None, lake=lake)
    views.versions = {n: lake.snapshot(n).version for n in lake.table_names()}
    views.refresh()
    started = time.perf_counter()
    for _ in range(runs):
        assert views.refresh() == []
    return (time.perf_counter() - started) / runs * 1e6, len(views.versions)


def run_load(served, clients: int, queries: int) -> dict:
    from tests.engine.serving import connect

    latencies: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
    errors: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        try:
            with connect(served) as conn:
                cursor = conn.cursor()
                for i in range(queries):
                    kind, sql = MIX[(c + i) % len(MIX)]
                    started = time.perf_counter()
                    try:
                        cursor.execute(sql.format(k=(c * queries + i) % 20000))
                        cursor.fetchall()
                    except Exception as e:  # noqa: BLE001 - counted, the load goes on
                        with lock:
                            errors.append(str(e).splitlines()[0][:200])
                        continue
                    with lock:
                        latencies[kind].append(time.perf_counter() - started)
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(f"client {c}: {str(e).splitlines()[0][:200]}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "wall_s": wall}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(args, load: dict, alone: dict, check_us: float, n_tables: int, gate: str, machine) -> str:
    every = [v for values in load["latencies"].values() for v in values]
    done = len(every)
    lines = [
        "## JDBC: `astrolake serve` under load (`python -m bench.jdbc_bench`)",
        "",
        f"{args.clients} PyHive clients in parallel, {args.queries} statements each, against `astrolake serve` "
        f"(Spark Thrift Server, `local[*]`) over a demo lake of {args.events:,} events; statements in turn from a mix of "
        "point lookups, aggregates and library-function queries (`doppler_correct`, `distance`). "
        f"Measured {machine.started_at:%Y-%m-%d} on {machine.cores} cores ({machine.cpu_model}); "
        "other work on the machine inflates these figures.",
        "",
        "| statements | kind | p50 (ms) | p95 (ms) | max (ms) |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for kind, values in [*load["latencies"].items(), ("all", every)]:
        if values:
            lines.append(f"| {len(values)} | {kind} | {1000 * statistics.median(values):.0f} | "
                         f"{1000 * _pct(values, 0.95):.0f} | {1000 * max(values):.0f} |")
    alone_all = [v for values in alone["latencies"].values() for v in values]
    lines += [
        "",
        "One client alone (no contention), p50 per kind: " + ", ".join(
            f"{kind} {1000 * statistics.median(v):.0f} ms" for kind, v in alone["latencies"].items() if v)
        + f"; all {1000 * statistics.median(alone_all):.0f} ms ({len(alone_all)} statements, "
        f"{len(alone['errors'])} errors).",
        "",
        f"- throughput: **{done / load['wall_s']:.1f} queries/s** ({done} statements in {load['wall_s']:.1f} s)",
        f"- errors: **{len(load['errors'])}**" + (f" (first: `{load['errors'][0]}`)" if load["errors"] else ""),
        f"- freshness check per statement: **{check_us:.0f} µs** for {n_tables} tables (a `stat` of each "
        "table's next Delta log entry; measured in-process, 2,000 checks)",
        f"- server's own account at shutdown: {gate}",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR / "jdbc")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    from catalogs.demo import build_demo
    from catalogs.lake import Lake
    from tests.engine.serving import start_server

    machine = describe_machine()
    lake_path = args.work / f"lake-{args.events}"
    if not (lake_path / "signal_events" / "_delta_log").is_dir():
        shutil.rmtree(lake_path, ignore_errors=True)
        build_demo(Lake(lake_path), n_events=args.events, seed=42)
    check_us, n_tables = freshness_check_us(lake_path)
    served = start_server(lake_path, args.work, "--query-timeout", "600")
    try:
        run_load(served, 2, 3)  # warm up: JIT, Python workers
        alone = run_load(served, 1, 2 * len(MIX))  # one client: latency without contention
        load = run_load(served, args.clients, args.queries)
    finally:
        served.stop()
    found = re.search(r"stopped \((.*)\)", served.output())
    gate = found.group(1) if found else "not reported"
    body = report(args, load, alone, check_us, n_tables, gate, machine)
    write_section(args.output, "jdbc", body)
    print(body)


if __name__ == "__main__":
    main()
