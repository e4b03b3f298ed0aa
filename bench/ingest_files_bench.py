"""File ingest rate (images, spectra, voltages) against the bare cost of reading the same files.

For each workload the same run times: the **bare read** (astropy / numpy read every file into an
array in a loop, nothing else: no hashing, no checks, no Parquet, no commit) and the **ingest**
(``catalogs.ingest.files.ingest_files`` into a fresh lake: hash, parse, write Parquet, one Delta
commit) in each parallel mode: one process, ``workers`` processes, ``workers`` threads. The ratio
is ingest rate / bare-read rate; the goal is >= 0.80 on 2 cores. The files sit in the page cache
for every measurement (each workload is read once before timing).

    python -m bench.ingest_files_bench                 # full size: 2,000 spectra, 200 images, 1 GB voltages
    python -m bench.ingest_files_bench --scale 0.01    # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.sections import write_section
from bench.timing import settle
from catalogs.ingest.files import FORMATS, ingest_files
from catalogs.lake import Lake

REPO = Path(__file__).resolve().parent.parent
GOAL = 0.80
IMAGE_SHAPE = (1489, 2048)  # height, width: 2048 x 1489 float32
SPECTRUM_PIXELS = 4096
VOLTAGE_FILE_BYTES = 64 << 20


@dataclass
class Workload:
    name: str
    fmt: str
    files: list[Path]
    read: object  # bare reader of one file
    bytes: int = 0
    bare_s: list[float] = field(default_factory=list)
    copy_s: list[float] = field(default_factory=list)  # bare read + writing the array's bytes once
    ingest_s: dict[str, list[float]] = field(default_factory=dict)


def _spectra(folder: Path, n: int) -> list[Path]:
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        header = fits.Header({"CRVAL1": 3.55, "CDELT1": 1e-4, "CRPIX1": 1, "DC-FLAG": 1, "OBJECT": f"star{i}",
                              "DATE-OBS": "2021-05-06T01:02:03", "RA": 10.0 + i * 1e-3, "DEC": -20.0})
        path = folder / f"spec{i:05d}.fits"
        fits.PrimaryHDU(rng.normal(1, 0.1, SPECTRUM_PIXELS).astype(np.float32), header).writeto(path, overwrite=True)
        paths.append(path)
    return paths


def _images(folder: Path, n: int) -> list[Path]:
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    base = rng.normal(1000, 30, IMAGE_SHAPE).astype(np.float32)
    paths = []
    for i in range(n):
        header = fits.Header({"DATE-OBS": "2021-05-06T01:02:03", "TELESCOP": "BENCH", "EXPTIME": 60.0,
                              "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0 + i * 0.1, "CRVAL2": 2.0,
                              "CRPIX1": 1024.5, "CRPIX2": 745.0, "CDELT1": -1e-4, "CDELT2": 1e-4})
        path = folder / f"img{i:04d}.fits"
        fits.PrimaryHDU(base + np.float32(i), header).writeto(path, overwrite=True)
        paths.append(path)
    return paths


def _voltages(folder: Path, total_bytes: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    size = min(VOLTAGE_FILE_BYTES, max(2, total_bytes)) // 2 * 2
    block = rng.integers(-128, 128, size, dtype=np.int8)
    paths = []
    for i in range(max(1, total_bytes // size)):
        path = folder / f"rec{i:03d}.raw"
        (block + np.int8(i)).tofile(path)
        path.with_suffix(".json").write_text(json.dumps({"dtype": "int8", "sample_rate_hz": 3e6,
                                                         "center_freq_hz": 1.42e9, "target": "bench"}))
        paths.append(path)
    return paths


def _read_fits(path: Path):
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False) as hdul:
            return hdul[0].header, np.asarray(hdul[0].data, dtype=np.float32)


def _read_raw(path: Path):
    return np.fromfile(path, dtype=np.int8).astype(np.float32).view(np.complex64)


def build(work: Path, scale: float) -> list[Workload]:
    data = work / "data"
    made = data / f"scale-{scale:g}"
    if not made.exists():
        shutil.rmtree(data, ignore_errors=True)
        _spectra(made / "spectra", max(4, round(2000 * scale)))
        _images(made / "images", max(2, round(200 * scale)))
        _voltages(made / "voltages", max(1 << 20, int((1 << 30) * scale)))
    loads = [
        Workload("small FITS spectra (4,096 px)", "spectra", sorted((made / "spectra").glob("*.fits")), _read_fits),
        Workload("images 2048 x 1489 float32", "images", sorted((made / "images").glob("*.fits")), _read_fits),
        Workload("voltages, raw int8 I/Q (64 MiB files)", "voltages", sorted((made / "voltages").glob("*.raw")), _read_raw),
    ]
    for w in loads:
        w.bytes = sum(p.stat().st_size for p in w.files)
    return loads


def warm_up(work: Path, loads: list[Workload], workers: int, modes: list[str]) -> None:
    """One untimed ingest of two files per workload and mode, as the bare read is warmed by reading
    every file once: the imports of a first call are not in the rates."""
    for w in loads:
        for mode in modes:
            lake_dir = work / "warm-lake"
            shutil.rmtree(lake_dir, ignore_errors=True)
            n = 1 if mode == "1 process" else workers
            ingest_files(Lake(lake_dir), FORMATS[w.fmt](), w.files[:2], workers=n,
                         parallel="thread" if mode.endswith("threads") else "process")
    shutil.rmtree(work / "warm-lake", ignore_errors=True)


def measure(work: Path, loads: list[Workload], workers: int, modes: list[str], runs: int) -> None:
    for w in loads:
        for p in w.files:  # into the page cache
            w.read(p)
        for _ in range(runs):
            settle()
            start = time.perf_counter()
            for p in w.files:
                w.read(p)
            w.bare_s.append(time.perf_counter() - start)
            scratch = work / "copy"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            settle()
            start = time.perf_counter()
            for i, p in enumerate(w.files):
                read = w.read(p)
                array = read[1] if isinstance(read, tuple) else read
                with open(scratch / f"{i}.bin", "wb") as f:
                    f.write(memoryview(np.ascontiguousarray(array)).cast("B"))
            w.copy_s.append(time.perf_counter() - start)
            shutil.rmtree(scratch, ignore_errors=True)
            for mode in modes:
                lake_dir = work / "lake"
                shutil.rmtree(lake_dir, ignore_errors=True)
                lake = Lake(lake_dir)
                settle()
                n = 1 if mode == "1 process" else workers
                parallel = "thread" if mode.endswith("threads") else "process"
                start = time.perf_counter()
                report = ingest_files(lake, FORMATS[w.fmt](), w.files, workers=n, parallel=parallel)
                w.ingest_s.setdefault(mode, []).append(time.perf_counter() - start)
                assert len(report.files) == len(w.files) and not report.rejected, report.summary()
        shutil.rmtree(work / "lake", ignore_errors=True)


def render(loads: list[Workload], workers: int, modes: list[str], scale: float, runs: int) -> str:
    lines = [
        "## File ingest (images, spectra, voltages)",
        "",
        f"`python -m bench.ingest_files_bench --scale {scale:g}` on {os.cpu_count()} CPUs "
        f"({platform.python_implementation()} {platform.python_version()}), median of {runs} run(s). "
        "Bare read: astropy / numpy read every file into an array in a loop (one process). Ingest: "
        "`ingest_files` into a fresh lake — SHA-256, parse, Parquet, one Delta commit. Ratio = ingest "
        f"rate / bare-read rate; goal >= {GOAL:.2f} with {workers} workers on 2 cores. Other processes "
        "may have shared the machine during the run. Read + write: the bare read, then the array's "
        "bytes written once to a file (no fsync, as ingest's Parquet files): the least any ingest that keeps a copy can do; "
        "floor ratio = ingest rate / that rate. Each mode ingests two files once before timing (as the bare read "
        "reads every file once), so a first call's imports are not in the rates. With N workers the calling "
        "process parses too, and starts its N - 1 helpers only when its own rate says the parsing left outlasts "
        "their start (about 1.5 s for the first helpers of a process, 0.1 s later), so a short call runs in one "
        "process.",
        "",
        "| workload | files | MB | bare read MB/s | read + write MB/s | mode | ingest MB/s | files/s | ratio | floor ratio |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for w in loads:
        bare = statistics.median(w.bare_s)
        copy = statistics.median(w.copy_s)
        mb = w.bytes / 1e6
        for mode in modes:
            s = statistics.median(w.ingest_s[mode])
            ratio = bare / s
            mark = " ✓" if ratio >= GOAL else ""
            lines.append(f"| {w.name} | {len(w.files):,} | {mb:,.1f} | {mb / bare:,.1f} | {mb / copy:,.1f} | {mode} | "
                         f"{mb / s:,.1f} | {len(w.files) / s:,.1f} | **{ratio:.2f}**{mark} | {copy / s:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_files_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full-size workloads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="1 process,processes,threads",
                        help="comma-separated: '1 process', 'processes', 'threads'")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "files")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    modes = [f"{args.workers} {m}" if m in ("processes", "threads") else m for m in modes]
    loads = build(args.work, args.scale)
    warm_up(args.work, loads, args.workers, modes)
    measure(args.work, loads, args.workers, modes, args.runs)
    text = render(loads, args.workers, modes, args.scale, args.runs)
    write_section(args.output, "files_ingest", text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
