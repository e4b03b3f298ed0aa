"""``python -m bench.dedoppler_bench``: astrolake's dedoppler next to turboSETI 2.3.2, same files, one run.

turboSETI runs in its own virtualenv (bench/.turbo-venv: it needs numpy < 2), on one core, on
SIGPROC filterbank files: the real GBT C-band cut-out, the same with setigen-injected tones, and
a larger simulated file (chi-squared noise with tones, some 12 channels from a neighbour). The
hit lists are compared (with the injected truth where there is one) and the wall times of the
searches (turboSETI's ``FindDoppler.search()`` after a warm-up run that compiles its numba
kernels, and astrolake's ``dedoppler`` function on the file's bytes, each the median of 5) are reported in the
``dedoppler`` section of docs/benchmarks.md. Needs setigen in .venv (a dev dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# one core for both tools: turboSETI gets the same in its own process (run_turbo); set before
# numpy loads OpenBLAS, whose idle threads otherwise spin on the other core
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench import DEFAULT_OUTPUT, DEFAULT_WORK_DIR  # noqa: E402
from bench.machine import cpu_sample, describe_machine  # noqa: E402
from bench.sections import write_section  # noqa: E402
from bench.sigproc import read_filterbank, write_filterbank  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REAL_FIL = ROOT.parent / "shared" / "data" / "real" / "seti" / "setigen_sample_gbt_cband.fil"
TURBO_PYTHON = ROOT / "bench" / ".turbo-venv" / "bin" / "python"
MAX_DRIFT_HZ_S, SNR_MIN = 4.0, 10.0
SEED = 2026
RUNS = 5  # timed searches per file, each tool; the median is reported

TURBO_SCRIPT = r"""
import json, logging, sys, time
from turbo_seti.find_doppler.find_doppler import FindDoppler
jobs = json.loads(sys.argv[1])
out = {}
for name, path, out_dir in jobs:
    seconds = []
    for _ in range(%(runs)d):
        fd = FindDoppler(path, max_drift=%(max_drift)r, min_drift=0, snr=%(snr)r, out_dir=out_dir,
                         n_coarse_chan=1, blank_dc=False, log_level_int=logging.WARNING)
        start = time.perf_counter()
        fd.search(n_partitions=1, progress_bar='n')
        seconds.append(time.perf_counter() - start)
    out[name] = sorted(seconds)[len(seconds) // 2]
print("TIMES " + json.dumps(out))
"""


def read_dat(path: Path) -> list[dict]:
    """turboSETI's .dat hits: drift_hz_s, snr, freq_hz (at the first time step), chan_index."""
    hits = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split()
        hits.append({"drift_hz_s": float(cols[1]), "snr": float(cols[2]), "freq_hz": float(cols[3]) * 1e6,
                     "chan_index": int(cols[5])})
    return hits


def inject(data_desc: np.ndarray, header: dict, signals, seed: int) -> tuple[np.ndarray, list[dict]]:
    """setigen tones into a descending-frequency [time, chan] array: (new data, truth)."""
    import setigen as stg
    from astropy import units as u

    df, dt = abs(header["foff"]) * 1e6, header["tsamp"]
    n_chans = data_desc.shape[1]
    fmin = header["fch1"] * 1e6 + (n_chans - 1) * header["foff"] * 1e6
    frame = stg.Frame.from_data(df, dt, fmin, True, data_desc[:, ::-1].astype(np.float64).copy(), seed=seed)
    noise = frame.data[:, : min(n_chans, 4096)]
    frame.noise_mean, frame.noise_std = float(np.median(noise)), float(1.4826 * np.median(np.abs(noise - np.median(noise))))
    truth = []
    for chan, drift, snr, width in signals:
        f_start = frame.get_frequency(index=chan)
        frame.add_signal(stg.constant_path(f_start=f_start, drift_rate=drift * u.Hz / u.s),
                         stg.constant_t_profile(level=frame.get_intensity(snr=snr)),
                         stg.gaussian_f_profile(width=width * u.Hz), stg.constant_bp_profile(level=1))
        truth.append({"freq_hz": f_start, "drift_hz_s": drift, "snr": snr, "width_hz": width})
    return frame.data[:, ::-1].astype(np.float32), truth


def make_inputs(work: Path, wide_chans: int) -> list[tuple[str, Path, list[dict] | None]]:
    import setigen as stg
    from astropy import units as u

    rng = np.random.default_rng(SEED)
    header, data = read_filterbank(REAL_FIL)
    inputs = [("GBT C-band cut-out (real)", REAL_FIL, None)]
    signals = [(int(c), float(rng.uniform(-4, 4)), snr, float(rng.choice([1.5, 3.0, 6.0])))
               for c, snr in zip(np.linspace(150, 870, 6), (15, 20, 30, 50, 80, 100))]
    injected, truth = inject(data, header, signals, SEED)
    path = work / "gbt_cband_injected.fil"
    write_filterbank(path, header, injected)
    inputs.append(("the same with 6 setigen tones", path, truth))

    df, dt = abs(header["foff"]) * 1e6, header["tsamp"]
    frame = stg.Frame(fchans=wide_chans, tchans=32, df=df * u.Hz, dt=dt * u.s, fch1=6000 * u.MHz, ascending=True,
                      seed=SEED)
    frame.add_noise(x_mean=1e5, noise_type="chi2")
    noise_desc = frame.data[:, ::-1].astype(np.float32)
    wide_header = {**header, "fch1": (6000e6 + (wide_chans - 1) * df) / 1e6, "source_name": "SETIGEN_NOISE"}
    signals = []
    for k, chan in enumerate(np.linspace(300, wide_chans - 300, 24).astype(int)):
        snr = float(np.exp(rng.uniform(np.log(15), np.log(100))))
        signals.append((int(chan), float(rng.uniform(-4, 4)), snr, float(rng.choice([1.5, 3.0, 6.0]))))
        if k % 3 == 0:  # a neighbour 12 channels away, same drift: turboSETI keeps one of the two
            signals.append((int(chan) + 12, signals[-1][1], 0.8 * snr, 1.5))
    injected, truth = inject(noise_desc, wide_header, signals, SEED + 1)
    path = work / f"setigen_{wide_chans}_chans.fil"
    write_filterbank(path, wide_header, injected)
    inputs.append((f"setigen chi-squared noise, 32 x {wide_chans:,}, {len(truth)} tones", path, truth))

    # a crowded band, as interference makes it: 300 bright tones (SNR 50 to 3000) at random places
    signals = [(int(c), float(rng.uniform(-4, 4)), float(np.exp(rng.uniform(np.log(50), np.log(3000)))),
                float(rng.uniform(1.5, 6.0)))
               for c in np.sort(rng.choice(np.arange(300, wide_chans - 300), 300, replace=False))]
    injected, truth = inject(noise_desc, wide_header, signals, SEED + 2)
    path = work / f"setigen_{wide_chans}_chans_crowded.fil"
    write_filterbank(path, wide_header, injected)
    inputs.append((f"the same noise, {len(truth)} bright tones (SNR 50-3000)", path, truth))
    return inputs


def run_turbo(inputs, work: Path) -> tuple[dict, dict]:
    """({name: seconds}, {name: hits}) of turboSETI on each input, after a warm-up run."""
    if not TURBO_PYTHON.exists():
        raise SystemExit(f"turboSETI's virtualenv is missing: python3.11 -m venv bench/.turbo-venv && "
                         f"bench/.turbo-venv/bin/pip install 'numpy<2' turbo_seti==2.3.2")
    jobs = [("warm-up", str(REAL_FIL), str(work / "turbo" / "warm-up"))]
    jobs += [(name, str(path), str(work / "turbo" / f"in{i}")) for i, (name, path, _) in enumerate(inputs)]
    for _, _, out_dir in jobs:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for old in Path(out_dir).glob("*"):
            old.unlink()
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    script = TURBO_SCRIPT % {"max_drift": MAX_DRIFT_HZ_S, "snr": SNR_MIN, "runs": RUNS}
    done = subprocess.run([str(TURBO_PYTHON), "-c", script, json.dumps(jobs)], capture_output=True, text=True,
                          env=env, timeout=3600)
    times_line = [ln for ln in done.stdout.splitlines() if ln.startswith("TIMES ")]
    if done.returncode or not times_line:
        raise SystemExit(f"turboSETI failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    times = json.loads(times_line[0][6:])
    hits = {name: read_dat(next(Path(out_dir).glob("*.dat"))) for name, _, out_dir in jobs}
    return times, hits


def run_astrolake(path: Path, runs: int = RUNS) -> tuple[float, list[dict]]:
    from udfs.registry import evaluate, get

    header, data = read_filterbank(path)
    n_time, n_chans = data.shape
    columns = [pa.array([data.tobytes()], pa.binary()), pa.array([n_time], pa.int32()), pa.array([n_chans], pa.int32()),
               pa.array([header["tsamp"]]), pa.array([header["fch1"] * 1e6]), pa.array([header["foff"] * 1e6]),
               pa.array([MAX_DRIFT_HZ_S]), pa.array([SNR_MIN])]
    spec = get("dedoppler")
    evaluate(spec, columns)  # warm-up
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        hits = evaluate(spec, columns).to_pylist()[0]
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), hits


def same(a: dict, b: dict, df: float, step: float, chans: float = 2, steps: float = 2) -> bool:
    return abs(a["freq_hz"] - b["freq_hz"]) <= chans * df * 1.001 and abs(a["drift_hz_s"] - b["drift_hz_s"]) <= steps * step * 1.001


def recall(hits, truth, df, step) -> str:
    if truth is None:
        return "-"
    found = sum(any(same(h, t, df, step, 1, 1) for h in hits) for t in truth)
    return f"{found}/{len(truth)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dedoppler_bench", description=__doc__)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR / "dedoppler", help="work directory")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the report (default docs/benchmarks.md)")
    parser.add_argument("--chans", type=int, default=1 << 17, help="channels of the simulated file (default 131072)")
    args = parser.parse_args(argv)
    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    if not REAL_FIL.exists():
        raise SystemExit(f"the real GBT file is missing: {REAL_FIL}")
    started = time.perf_counter()
    cpu_start, times_start = cpu_sample(), os.times()
    inputs = make_inputs(work, args.chans)
    turbo_times, turbo_hits = run_turbo(inputs, work)
    rows, details = [], []
    for name, path, truth in inputs:
        header, data = read_filterbank(path)
        df = abs(header["foff"]) * 1e6
        n = 1 << (data.shape[0] - 1).bit_length()
        step = df / ((n - 1) * header["tsamp"])
        ours_s, ours = run_astrolake(path)
        theirs = turbo_hits[name]
        common = sum(any(same(h, t, df, step) for h in ours) for t in theirs)
        only_ours = [h for h in ours if not any(same(h, t, df, step) for t in theirs)]
        speedup = turbo_times[name] / ours_s
        rows.append(f"| {name} | {data.shape[0]} x {data.shape[1]:,} | {len(theirs)} | {len(ours)} | {common} | "
                    f"{len(theirs) - common} | {len(only_ours)} | {recall(theirs, truth, df, step)} | "
                    f"{recall(ours, truth, df, step)} | {turbo_times[name]:.3f} s | {ours_s:.3f} s | "
                    f"**{speedup:.1f}x** |")
        only_theirs = [t for t in theirs if not any(same(h, t, df, step) for h in ours)]
        for t in only_theirs:
            near = min(ours, key=lambda h: abs(h["freq_hz"] - t["freq_hz"]), default=None)
            details.append(f"- {name}: turboSETI's hit {t['freq_hz'] / 1e6:.6f} MHz {t['drift_hz_s']:+.3f} Hz/s "
                           f"SNR {t['snr']:.1f} is not within 2 channels and 2 drift steps of an astrolake hit"
                           + (f"; the nearest is {near['freq_hz'] / 1e6:.6f} MHz {near['drift_hz_s']:+.3f} Hz/s "
                              f"SNR {near['snr']:.1f}" if near else "")
                           + (" (injected)" if near and truth and any(same(near, x, df, step, 1, 1) for x in truth)
                              else ""))
        if only_ours:
            listed = ", ".join(f"{h['freq_hz'] / 1e6:.6f} MHz {h['drift_hz_s']:+.3f} Hz/s SNR {h['snr']:.1f}"
                               + (" (injected)" if truth and any(same(h, t, df, step, 1, 1) for t in truth) else "")
                               for h in only_ours[:12])
            details.append(f"- {name}: hits only astrolake reports: {listed}"
                           + (" ..." if len(only_ours) > 12 else ""))
        print(f"{name}: turboSETI {len(theirs)} hits {turbo_times[name]:.3f} s; astrolake {len(ours)} hits "
              f"{ours_s:.3f} s", file=sys.stderr)
    machine = describe_machine()
    cpu_end, times_end = cpu_sample(), os.times()
    ours_and_children = sum(getattr(times_end, k) - getattr(times_start, k)
                            for k in ("user", "system", "children_user", "children_system"))
    others = max(0.0, cpu_end.busy_s - cpu_start.busy_s - ours_and_children)
    others_share = others / max((cpu_end.wall_s - cpu_start.wall_s) * machine.cores, 1e-9)
    body = "\n".join([
        "## De-Doppler search: `dedoppler` next to turboSETI 2.3.2",
        "",
        f"Measured {machine.started_at:%Y-%m-%d %H:%M} UTC on a {machine.cores}-core {machine.cpu_model} by "
        f"`make bench-dedoppler` (`python -m bench.dedoppler_bench`, {time.perf_counter() - started:.0f} s in "
        f"all). Both search "
        f"+-{MAX_DRIFT_HZ_S:g} Hz/s above SNR {SNR_MIN:g} on one core: turboSETI 2.3.2 (numpy 1.26, its numba "
        "kernels, `n_coarse_chan=1`, `blank_dc=False`, `min_drift=0`, in bench/.turbo-venv), timed around "
        "`FindDoppler.search()` after a warm-up search that compiles its kernels (the .fil to .h5 conversion "
        f"is not timed), median of {RUNS}; astrolake's `dedoppler` function on the file's bytes, warm, median of "
        f"{RUNS}; both single-threaded (OpenBLAS, OpenMP and numba threads 1). "
        "Hits are the same when within 2 channels and 2 drift steps; an injected tone is recalled "
        "when a hit is within 1 channel and 1 drift step of it. Other processes used "
        f"{others_share:.0%} of the machine's CPU during the run (the times move with it).",
        "",
        "| file | time x channels | turboSETI hits | astrolake hits | same | only turboSETI | only astrolake "
        "| injected recalled, turboSETI | injected recalled, astrolake | turboSETI | astrolake | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "turboSETI keeps only the strongest hit within +-2 * max_drift / drift_step channels (254 here), so "
        "of two tones 12 channels apart it reports one; astrolake reports every track and merges only a "
        "track's own echoes. turboSETI does not search zero drift with `min_drift=0`; astrolake does. "
        "turboSETI's drift blocks stop at the last whole block: with 32 steps it searches at most "
        "124 channels of drift (3.90 Hz/s here) where astrolake searches up to max_drift (127 channels). "
        "Both use turboSETI's SNR, whose noise std is that of the time-summed spectrum: six drifting "
        "tones in 1,024 channels raise it, so the weakest injected tone (SNR 15 by setigen's measure) "
        "falls below 10 for both.",
        *([""] + details if details else []),
    ])
    write_section(args.output, "dedoppler", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
