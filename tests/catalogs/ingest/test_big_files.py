"""A file larger than the memory an ingest may use is read in chunks: the process's anonymous
memory (its own allocations, not the page cache of the mapped file) grows by a bounded amount --
the rows of a file are buffered up to ``SPILL_BYTES`` (64 MiB) and then streamed to Parquet, so
about twice that at most -- however big the file is."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from catalogs.ingest.files import SPILL_BYTES
from tests.catalogs.ingest.builders import sigproc_header
from tests.conftest import ROOT

FILE_MB = 384
CHUNK_MB = 8
BOUND_MB = 2 * SPILL_BYTES / 2**20 + 4 * CHUNK_MB  # 160 MB, under half the file


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    from catalogs.lake import Lake

    def anon_kb():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    fmt, path, lake, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    from catalogs.ingest.filterbank import ingest_filterbank
    from catalogs.ingest.voltages import ingest_voltages
    ingest = {"filterbank": ingest_filterbank, "voltages": ingest_voltages}[fmt]
    base, peak, done = anon_kb(), [0], [False]

    def sample():
        while not done[0]:
            peak[0] = max(peak[0], anon_kb())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample)
    watcher.start()
    report = ingest(Lake(lake), [path], **options)
    done[0] = True
    watcher.join()
    print(json.dumps({"rows": report.rows, "base_kb": base, "peak_kb": peak[0]}))
""")


def peak_growth_mb(fmt, path, lake, options):
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, fmt, str(path), str(lake), json.dumps(options)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result, (result["peak_kb"] - result["base_kb"]) / 1024


@pytest.mark.slow
def test_raw_voltages_stream_in_chunks(tmp_path):
    path = tmp_path / "big.raw"
    n = FILE_MB * (1 << 20) // 8  # float32 I/Q pairs
    data = np.lib.format.open_memmap(tmp_path / "scratch.npy", mode="w+", dtype="<f4", shape=(n, 2))
    data[:] = 0.5
    data.flush()
    path.write_bytes(b"")
    with open(path, "wb") as f:  # the raw layout: no header, interleaved I/Q
        for start in range(0, n, 1 << 22):
            f.write(np.asarray(data[start:start + (1 << 22)]).tobytes())
    path.with_suffix(".json").write_text(json.dumps({"dtype": "float32", "sample_rate_hz": 1e6}))
    chunk_samples = CHUNK_MB * (1 << 20) // 8
    result, growth = peak_growth_mb("voltages", path, tmp_path / "lake", {"chunk_samples": chunk_samples})
    assert result["rows"] == {"voltages": FILE_MB // CHUNK_MB}
    assert growth < BOUND_MB < FILE_MB / 2, f"anonymous memory grew by {growth:.0f} MB for a {FILE_MB} MB file"


@pytest.mark.slow
def test_filterbank_streams_in_frequency_chunks(tmp_path):
    n_time, nchans = 64, FILE_MB * (1 << 20) // 4 // 64
    path = tmp_path / "big.fil"
    with open(path, "wb") as f:
        f.write(sigproc_header(nchans, 32))
        row = np.full(nchans, 3.0, dtype="<f4").tobytes()
        for _ in range(n_time):
            f.write(row)
    result, growth = peak_growth_mb("filterbank", path, tmp_path / "lake", {"chunk_mb": CHUNK_MB})
    assert result["rows"] == {"spectrograms": FILE_MB // CHUNK_MB}
    assert growth < BOUND_MB < FILE_MB / 2, f"anonymous memory grew by {growth:.0f} MB for a {FILE_MB} MB file"
