"""docs/benchmarks.md: every figure next to its same-run reference, what it is, how to reproduce."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import BUSY_SHARE, GOAL_QUERY_RATIO
from bench.ingest_bench import IngestFigures
from bench.machine import CpuUse, Machine
from bench.query_bench import QueryBench


@dataclass(frozen=True)
class Settings:
    events: int
    csv_events: int
    runs: int
    ingest_runs: int
    seed: int
    command: str


def seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def rate_text(rows_per_s: float) -> str:
    return f"{rows_per_s:,.0f} rows/s"


def gib_text(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def mib_text(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def goal_verdict(ratio: float) -> str:
    met = "met" if ratio <= GOAL_QUERY_RATIO else "NOT met"
    return f"goal ≤ {GOAL_QUERY_RATIO}: **{met}**"


def _machine_section(machine: Machine, peak_rss_bytes: int, cpu: CpuUse) -> list[str]:
    rows = [
        ["CPU", f"{machine.cpu_model} (/proc/cpuinfo)"],
        ["cores", str(machine.cores)],
        ["memory", gib_text(machine.memory_bytes)],
        ["system", machine.system],
        ["Python", machine.python],
        *[[name, v] for name, v in machine.libraries.items()],
        ["peak memory of the benchmark process", gib_text(peak_rss_bytes)],
        ["CPU used by the benchmark", f"{cpu.own_s:.0f} core-seconds in {cpu.wall_s:.0f} s"],
        ["CPU used by other processes meanwhile", f"{cpu.others_share:.1%} of the machine ({cpu.others_s:.0f} core-seconds)"],
        ["CPU steal (hypervisor) meanwhile", f"{cpu.steal_share:.1%} of the machine"],
    ]
    return ["## Machine", "", *_table(["", ""], rows), ""]


def _summary_section(ingests: list[IngestFigures], queries: QueryBench) -> list[str]:
    rows = []
    for f in ingests:
        rows.append([
            f"Ingest {f.rows:,} events from {f.files} {f.kind} file{'s' if f.files != 1 else ''}",
            f"{rate_text(f.rows_per_s)} ({seconds_text(f.ingest_seconds)})",
            f"{rate_text(f.reference_rows_per_s)} ({seconds_text(f.reference_seconds)}): pyarrow read + write_deltalake",
            f"{f.ratio:.2f}",
        ])
    for q in queries.shapes:
        rows.append([
            f"Query, warm median of {len(q.astrolake_seconds)}: {q.shape.name}",
            seconds_text(q.astrolake_median_seconds),
            f"{seconds_text(q.duckdb_median_seconds)}: DuckDB read_parquet over the same {q.files} files",
            f"**{q.ratio:.2f}** ({goal_verdict(q.ratio)})",
        ])
    rows.append([
        "Query, cold: first query of a new session (for information)",
        seconds_text(queries.cold_astrolake_seconds),
        f"{seconds_text(queries.cold_duckdb_seconds)}: new DuckDB connection + Delta file list",
        f"{queries.cold_ratio:.2f}",
    ])
    return [
        "## Summary", "",
        "Ratio = astrolake's time / the reference's time, both measured in this run (1.00: as fast; lower is better).",
        "",
        *_table(["figure", "astrolake", "reference (same run)", "ratio"], rows),
        "",
    ]


def _rounds_text(rounds: int) -> str:
    if rounds == 1:
        return "Each side runs once"
    return f"{rounds} rounds of (reference, then ingest), the medians reported"


def _ingest_section(ingests: list[IngestFigures], settings: Settings) -> list[str]:
    lines = [
        "## Ingest", "",
        "What is timed: `catalogs.ingest.events.ingest_events(Lake(path), files)` into a fresh lake "
        "(creating the lake's empty catalog tables is not timed), one atomic Delta commit of every "
        "file's rows. That includes the SHA-256 of each file (its idempotency id), reading, "
        "converting and checking every row, deriving `event_id`, `source_file` and `obs_date`, "
        "casting to the table schema and the partitioned Delta write.",
        "",
        "Reference, same files, same run: `pyarrow` reads them (CSV with the column types given), "
        "`obs_date` is added (the partition column, so the layout is the same) and "
        "`deltalake.write_deltalake(..., partition_by=['obs_date'])` writes them to a fresh Delta "
        "table: no hashing, no checks, no ids. It is the bare cost of moving the rows.",
        "",
        f"The events are made like the demo lake's (`catalogs.demo.generate_year`, seed {settings.seed}): "
        f"{settings.events:,} events in one Parquet file per observing year, and a separate CSV file of "
        f"{settings.csv_events:,} events (CSV is slow to write, so it is smaller; its rows/s is comparable, "
        "its totals are not). "
        f"{_rounds_text(settings.ingest_runs)}, each into a fresh table, the files in the page cache for "
        "both and dirty pages flushed before each; single runs of these big calls vary by tens of per "
        "cent on a small shared machine.",
        "",
    ]
    for f in ingests:
        lines += [
            f"### {f.kind}: {f.rows:,} events, {f.files} file{'s' if f.files != 1 else ''}, {mib_text(f.input_bytes)}",
            "",
            f"astrolake {seconds_text(f.ingest_seconds)} ({rate_text(f.rows_per_s)}); "
            f"reference {seconds_text(f.reference_seconds)} ({rate_text(f.reference_rows_per_s)}); "
            f"ratio {f.ratio:.2f}." + (
                " Runs: astrolake " + ", ".join(seconds_text(x) for x in f.ingest_runs_seconds)
                + "; reference " + ", ".join(seconds_text(x) for x in f.reference_runs_seconds) + "."
                if len(f.ingest_runs_seconds) > 1 else ""),
            "",
            "Where the ingest's time went (the functions it calls, clocked during the timed runs; "
            "mean over the runs):",
            "",
            *_table(["stage", "seconds", "share"], [
                [name, f"{s:.2f}", f"{s / f.ingest_seconds:.0%}"] for name, s in f.stage_seconds.items()
            ]),
            "",
        ]
    return lines


def _range_ms(seconds: list[float]) -> str:
    return f"{min(seconds) * 1000:.1f}-{max(seconds) * 1000:.1f} ms"


def _query_section(queries: QueryBench, settings: Settings) -> list[str]:
    first = queries.shapes[0]
    lines = [
        "## Queries", "",
        f"The lake: `catalogs.demo.build_demo(Lake(path), n_events={settings.events:_})`, "
        f"{queries.lake_rows:,} events in {queries.lake_versions} versions (one commit per observing "
        f"year), built in {seconds_text(queries.build_seconds)} (not a benchmark figure).",
        "",
        "The query (Spark SQL, as a user writes it):",
        "", "```sql", first.shape.astrolake_sql, "```", "",
        "astrolake: `engine.connect(lake)` once, then `session.sql(text)` each run: a fresh query, "
        "so every run pays parsing (sqlglot), binding (the Delta log refresh in `Lake.snapshot`), "
        "compiling to DuckDB SQL and running it on the session's DuckDB view over the snapshot's files.",
        "",
        "Reference: one plain `duckdb.connect()`, the same query with `signal_events` replaced by "
        "`read_parquet([...the snapshot's files...], hive_partitioning = true)`, the file list read "
        "from the Delta log with deltalake before timing. Time travel: `signal_events VERSION AS OF 2` "
        "against `read_parquet` over version 2's files.",
        "",
        f"Warm: one warm-up run each, then {len(first.astrolake_seconds)} runs alternating the two "
        "sides; the medians. Every run's rows are compared and must be equal (they were). Cold: a new "
        "session's first query (astrolake: connect + query; reference: open the Delta table for the "
        "file list + new DuckDB connection + query), median of a few new sessions, in the same warm "
        "Python process with the files in the page cache.",
        "",
        "On a small shared machine single runs vary a lot (see the run tables and their ranges): read "
        "the medians and their ratio, which alternating the sides keeps fair, rather than one run.",
        "",
    ]
    for q in queries.shapes:
        lines += [
            f"### {q.shape.name}", "",
            f"{q.files} files, {q.result_rows} result rows. astrolake median "
            f"{seconds_text(q.astrolake_median_seconds)}, DuckDB median {seconds_text(q.duckdb_median_seconds)}, "
            f"ratio **{q.ratio:.2f}**: {goal_verdict(q.ratio)}. Range of the runs: astrolake "
            f"{_range_ms(q.astrolake_seconds)}, DuckDB {_range_ms(q.duckdb_seconds)}.",
            "",
            *_table(["run", "astrolake (ms)", "DuckDB (ms)"], [
                [str(i + 1), f"{a * 1000:.1f}", f"{b * 1000:.1f}"]
                for i, (a, b) in enumerate(zip(q.astrolake_seconds, q.duckdb_seconds))
            ]),
            "",
        ]
    whole = queries.stage_seconds.get("whole session.sql", 0.0)
    lines += [
        "### Where astrolake's query time goes", "",
        "Each step of `session.sql` for the first query, timed on its own (warm medians; the "
        "cheap steps over at least 50 calls). The steps are timed apart, at different moments, so "
        "the DuckDB run and the whole need not add up exactly; what matters is the size of the steps "
        "before the DuckDB run, astrolake's own cost per query:",
        "",
        *_table(["step", "median", "share of session.sql"], [
            [name, seconds_text(s), f"{s / whole:.1%}" if whole else ""]
            for name, s in queries.stage_seconds.items()
        ]),
        "",
    ]
    return lines


def _reproduce_section(settings: Settings) -> list[str]:
    return [
        "## Reproduce", "",
        "```sh",
        "make bench                           # = .venv/bin/python -m bench (10,000,000 events, 7 query runs, 2 ingest rounds)",
        ".venv/bin/python -m bench --quick    # smoke run: 200,000 events",
        ".venv/bin/python -m bench --help     # --events, --csv-events, --runs, --ingest-runs, --work, --output",
        "```", "",
        f"This file was written by `{settings.command}`. The work files (event files, lakes) go to "
        "`bench/work/` (gitignored, removed by `make clean`). The figures depend on the machine: "
        "compare ratios, which are measured in the same run, rather than absolute times across machines.",
        "",
    ]


def _busy_warning(cpu: CpuUse) -> list[str]:
    if cpu.others_share <= BUSY_SHARE:
        return []
    return [
        f"**Note:** other processes used {cpu.others_share:.0%} of the machine's CPU during this run, "
        "so the times are disturbed; the ratios less so (each figure's two sides run interleaved).",
        "",
    ]


def render(machine: Machine, settings: Settings, ingests: list[IngestFigures], queries: QueryBench,
           peak_rss_bytes: int, cpu: CpuUse) -> str:
    lines = [
        "# Benchmarks", "",
        f"Measured {machine.started_at:%Y-%m-%d %H:%M} UTC on a {machine.cores}-core {machine.cpu_model} "
        f"({settings.events:,} events, {settings.ingest_runs} round{'s' if settings.ingest_runs != 1 else ''} "
        f"per ingest, {settings.runs} warm runs per query; the whole run took {seconds_text(cpu.wall_s)}). "
        "Overwritten by each run of `make bench`.",
        "",
        *_busy_warning(cpu),
        *_summary_section(ingests, queries),
        *_machine_section(machine, peak_rss_bytes, cpu),
        *_ingest_section(ingests, settings),
        *_query_section(queries, settings),
        *_reproduce_section(settings),
    ]
    return "\n".join(lines) + "\n"


def write_report(path: Path, text: str) -> None:
    """Write the spine's section of the page; the other suites' sections are kept."""
    from bench.sections import write_section

    write_section(path, "spine", text)
