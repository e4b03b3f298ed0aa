"""Inputs of the function benchmarks: events, voltage snapshots and star-field images.

All deterministic in a seed. Voltage snapshots have the SETI Institute simulated-signal size
(196,608 complex samples, 1.5 MiB each) with a drifting tone in Gaussian noise; images are star
fields (Gaussian stars of random brightness on a sky background with Poisson-like noise), the
SDSS frame size by default, so SEP has real work to do.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from catalogs.lake import Lake

SNAPSHOT_SAMPLES = 196_608  # 32 x 6144, the simulated-signal files' size
SAMPLE_RATE_HZ = 8.5e3 * 32  # not used by the kernels; a plausible ATA subband rate


def voltage_snapshots(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    t = np.arange(SNAPSHOT_SAMPLES) / SAMPLE_RATE_HZ
    samples, ids = [], []
    for i in range(n):
        f0 = rng.uniform(-0.4, 0.4) * SAMPLE_RATE_HZ
        drift = rng.uniform(-50, 50)
        tone = 0.3 * np.exp(2j * np.pi * (f0 * t + 0.5 * drift * t * t))
        noise = (rng.standard_normal(SNAPSHOT_SAMPLES) + 1j * rng.standard_normal(SNAPSHOT_SAMPLES)) / np.sqrt(2)
        samples.append((tone + noise).astype("<c8").tobytes())
        ids.append(f"bench-{seed}-{i:05d}")
    return pa.table({
        "snapshot_id": ids,
        "samples": pa.array(samples, pa.binary()),
        "n_samples": pa.array([SNAPSHOT_SAMPLES] * n, pa.int64()),
        "sample_rate_hz": pa.array([SAMPLE_RATE_HZ] * n, pa.float64()),
    })


def star_field(width: int, height: int, n_stars: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 sky: background 1000 adu, noise sigma 10 adu, Gaussian stars (sigma 1.5 px)."""
    image = rng.normal(1000.0, 10.0, size=(height, width)).astype(np.float32)
    xs = rng.uniform(5, width - 5, n_stars)
    ys = rng.uniform(5, height - 5, n_stars)
    peaks = 10.0 ** rng.uniform(1.5, 4.0, n_stars)
    r = 6
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    for x, y, peak in zip(xs, ys, peaks):
        ix, iy = int(x), int(y)
        y0, y1 = max(iy - r, 0), min(iy + r + 1, height)
        x0, x1 = max(ix - r, 0), min(ix + r + 1, width)
        dx = xx[y0 - iy + r:y1 - iy + r, x0 - ix + r:x1 - ix + r] - (x - ix)
        dy = yy[y0 - iy + r:y1 - iy + r, x0 - ix + r:x1 - ix + r] - (y - iy)
        image[y0:y1, x0:x1] += (peak * np.exp(-(dx * dx + dy * dy) / (2 * 1.5 ** 2))).astype(np.float32)
    return image


def star_field_images(n: int, width: int, height: int, n_stars: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    pixels = [star_field(width, height, n_stars, rng).astype("<f4").tobytes() for _ in range(n)]
    return pa.table({
        "image_id": [f"bench-{seed}-{i:05d}" for i in range(n)],
        "width": pa.array([width] * n, pa.int32()),
        "height": pa.array([height] * n, pa.int32()),
        "pixels": pa.array(pixels, pa.binary()),
    })


def lake_with(path, table_name: str, rows: pa.Table) -> Lake:
    """A lake holding ``rows`` in ``table_name`` (made once; reused when it already holds them)."""
    lake = Lake(path)
    held = lake.info(table_name).rows
    if held == rows.num_rows:
        return lake
    if held:
        raise RuntimeError(f"{path} holds another {table_name} table; remove it")
    lake.append(table_name, rows, note="benchmark input")
    return lake
