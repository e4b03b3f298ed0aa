"""The benchmark's input: signal-event files made the way the demo lake makes its events.

Events come from ``catalogs.demo.generate_year`` (deterministic in the seed), split over the
demo's observing years like ``build_demo`` does, one Parquet file per year. The CSV file is
separate and may be smaller (writing CSV is slow), made from the first year with another seed.
Timestamps in the CSV are ISO 8601 with a ``Z`` (pyarrow's CSV writer), as a user's would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalogs.demo import YEARS, generate_year


@dataclass(frozen=True)
class EventFiles:
    kind: str  # "Parquet" or "CSV"
    paths: tuple[Path, ...]
    rows: int

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)


def split_by_year(n_events: int) -> list[tuple[int, int]]:
    """(year, events) pairs that add up to ``n_events``, as ``build_demo`` splits them."""
    per_year = n_events // len(YEARS)
    return [(year, per_year if i < len(YEARS) - 1 else n_events - per_year * (len(YEARS) - 1))
            for i, year in enumerate(YEARS)]


def write_parquet_files(directory: Path, n_events: int, seed: int) -> EventFiles:
    directory.mkdir(parents=True, exist_ok=True)
    paths, rows = [], 0
    for year, n in split_by_year(n_events):
        events = generate_year(year, n, seed)
        path = directory / f"events-{year}.parquet"
        pq.write_table(events, path)
        paths.append(path)
        rows += events.num_rows
    return EventFiles("Parquet", tuple(paths), rows)


def write_csv_file(directory: Path, n_events: int, seed: int) -> EventFiles:
    directory.mkdir(parents=True, exist_ok=True)
    events = generate_year(YEARS[0], n_events, seed + 1)
    path = directory / f"events-{YEARS[0]}.csv"
    pacsv.write_csv(events, path)
    return EventFiles("CSV", (path,), events.num_rows)
