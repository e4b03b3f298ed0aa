"""Complex-voltage recordings into ``voltages`` (samples stored as complex64 little-endian).

Three layouts, told apart by the file name:

* ``*.dat`` — the SETI Institute / IBM simulated-signal files: a JSON header line (``uuid``,
  ``signal_classification``; files with a private header have one more JSON line before it, the one
  with ``simulator_software_version``), then 196,608 (32 x 6144) samples as int8 (real, imag) pairs.
  One row: snapshot_id = the uuid, label = the classification. The files carry no sample rate.
* ``*.compamp`` / ``*.archive-compamp`` — Allen Telescope Array (SonATA) half-frames: each a 40-byte
  big-endian header ``>diidiifi`` (rf_center_frequency MHz, half_frame_number, activity_id,
  subband_spacing_hz, start_subband_id, number_of_subbands, over_sampling, polarization), then
  512 samples for each subband, one byte each: 4-bit two's-complement real (high nibble) and
  imaginary (low nibble). One row per (polarization, subband), its half-frames in
  half_frame_number order; the subband's centre is rf_center_frequency + k x subband_spacing_hz,
  its sample rate subband_spacing_hz x (1 + over_sampling).
* ``NAME.raw`` with a sidecar ``NAME.json`` — raw interleaved I/Q: ``{"dtype": "int8" | "float32",
  "sample_rate_hz": ..., "center_freq_hz": ..., "observed_at": "2024-05-01T12:00:00Z", "target":
  ..., "ra_deg": ..., "dec_deg": ..., "site": ..., "polarization": 0}`` (dtype and sample_rate_hz
  required). The samples are read in chunks of ``chunk_samples`` (default 2**21, 16 MiB of
  complex64), one row each, so a file larger than memory is never read whole.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from catalogs.ingest.files import FileFormat, Rejected, binary_column

SUFFIXES = (".dat", ".compamp", ".archive-compamp", ".raw")
SIM_SAMPLES = 32 * 6144
COMPAMP_HEADER = struct.Struct(">diidiifi")
COMPAMP_BINS = 512
DEFAULT_CHUNK_SAMPLES = 1 << 21
RAW_DTYPES = {"int8": np.int8, "float32": np.dtype("<f4")}


def _row(samples: np.ndarray, **values) -> pa.Table:
    samples = np.ascontiguousarray(samples, dtype="<c8")
    return pa.Table.from_pylist([values]).append_column("samples", binary_column(samples))


# ---- SETI Institute simulated signals ---------------------------------------------------------


def parse_simulated(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    with open(path, "rb") as f:
        headers = []
        for _ in range(2):
            line = f.readline(1 << 16)
            try:
                headers.append(json.loads(line))
            except ValueError as e:
                if not headers:
                    raise Rejected("not a simulated-signal file: the first line is not a JSON header") from e
                f.seek(-len(line), os.SEEK_CUR)
                break
            if not (isinstance(headers[-1], dict) and headers[-1].get("simulator_software_version", 0)):
                break  # the public header: the samples follow
        offset = f.tell()
    header = headers[-1]
    if not isinstance(header, dict):
        raise Rejected("not a simulated-signal file: the JSON header is not an object")
    n_bytes = os.path.getsize(path) - offset
    if n_bytes != 2 * SIM_SAMPLES:
        raise Rejected(f"the data hold {n_bytes} bytes; a simulated-signal file holds {SIM_SAMPLES} int8 (real, imag) "
                       f"pairs ({2 * SIM_SAMPLES} bytes)")
    raw = np.fromfile(path, dtype=np.int8, offset=offset).astype(np.float32)
    snapshot = str(header.get("uuid") or sha256[:16])
    yield "voltages", _row(
        snapshot_id=snapshot, source_file=path, label=header.get("signal_classification"),
        sample_rate_hz=options.get("sample_rate_hz"), n_samples=SIM_SAMPLES,
        samples=raw.view(np.complex64),
        parent_id=snapshot, chunk_index=0, n_chunks=1, first_sample=0,
    )


# ---- Allen Telescope Array compamp ------------------------------------------------------------


def compamp_header(raw: bytes) -> dict:
    keys = ("rf_center_frequency", "half_frame_number", "activity_id", "subband_spacing_hz", "start_subband_id",
            "number_of_subbands", "over_sampling", "polarization")
    return dict(zip(keys, COMPAMP_HEADER.unpack(raw[:COMPAMP_HEADER.size])))


def unpack_4bit(packed: np.ndarray) -> np.ndarray:
    """Bytes RRRRIIII (4-bit two's complement each) as complex64."""
    packed = packed.view(np.int8)
    out = np.empty(packed.shape, np.complex64)
    out.real = packed >> 4
    out.imag = (packed << 4).astype(np.int8) >> 4
    return out


def parse_compamp(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        first = f.read(COMPAMP_HEADER.size)
    if len(first) < COMPAMP_HEADER.size:
        raise Rejected(f"a compamp file of {size} bytes is shorter than one half-frame header (40 bytes)")
    head = compamp_header(first)
    n_sub = head["number_of_subbands"]
    if not 0 < n_sub <= 4096:
        raise Rejected(f"not a compamp file: number_of_subbands {n_sub} in the first header")
    frame_bytes = COMPAMP_HEADER.size + n_sub * COMPAMP_BINS
    if size % frame_bytes:
        raise Rejected(f"the file size {size} is not a whole number of half-frames of {frame_bytes} bytes "
                       f"({n_sub} subbands; truncated?)")
    frames = np.memmap(path, dtype=np.uint8, mode="r", shape=(size // frame_bytes, frame_bytes))
    headers = [compamp_header(frames[i, :COMPAMP_HEADER.size].tobytes()) for i in range(len(frames))]
    for i, h in enumerate(headers):
        if h["number_of_subbands"] != n_sub or h["subband_spacing_hz"] != head["subband_spacing_hz"]:
            raise Rejected(f"half-frame {i} has {h['number_of_subbands']} subbands / spacing {h['subband_spacing_hz']} Hz,"
                           f" the first has {n_sub} / {head['subband_spacing_hz']} Hz")
    parent = sha256[:16]
    pols = sorted({h["polarization"] for h in headers})
    n_rows = len(pols) * n_sub
    rate = head["subband_spacing_hz"] * (1.0 + head["over_sampling"])
    k = 0
    for pol in pols:
        order = sorted((h["half_frame_number"], i) for i, h in enumerate(headers) if h["polarization"] == pol)
        index = np.array([i for _, i in order])
        for sub in range(n_sub):
            start = COMPAMP_HEADER.size + sub * COMPAMP_BINS
            samples = unpack_4bit(np.ascontiguousarray(frames[index, start:start + COMPAMP_BINS]).ravel())
            yield "voltages", _row(
                snapshot_id=f"{parent}:{pol}:{sub}", source_file=path, polarization=int(pol),
                sample_rate_hz=rate, center_freq_hz=head["rf_center_frequency"] * 1e6 + sub * head["subband_spacing_hz"],
                n_samples=len(samples), samples=samples, site="ATA",
                parent_id=parent, chunk_index=k, n_chunks=n_rows, first_sample=0,
            )
            k += 1


# ---- raw I/Q with a JSON sidecar --------------------------------------------------------------


def _sidecar(path: str) -> dict:
    side = Path(path).with_suffix(".json")
    if not side.is_file():
        raise Rejected(f"raw I/Q needs a sidecar header {side.name} beside it (dtype, sample_rate_hz, ...)")
    try:
        meta = json.loads(side.read_text())
    except ValueError as e:
        raise Rejected(f"the sidecar {side.name} is not JSON: {e}") from e
    if not isinstance(meta, dict):
        raise Rejected(f"the sidecar {side.name} must hold a JSON object")
    if meta.get("dtype") not in RAW_DTYPES:
        raise Rejected(f"the sidecar {side.name}: dtype must be one of {', '.join(RAW_DTYPES)}, got {meta.get('dtype')!r}")
    rate = meta.get("sample_rate_hz")
    if not isinstance(rate, (int, float)) or not rate > 0:
        raise Rejected(f"the sidecar {side.name}: sample_rate_hz must be a positive number, got {rate!r}")
    return meta


def _utc(text) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as e:
        raise Rejected(f"observed_at {text!r} is not an ISO 8601 time") from e
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def parse_raw(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    meta = _sidecar(path)
    dtype = np.dtype(RAW_DTYPES[meta["dtype"]])
    pair = 2 * dtype.itemsize
    size = os.path.getsize(path)
    if size == 0 or size % pair:
        raise Rejected(f"the file size {size} is not a whole number of {meta['dtype']} (I, Q) pairs ({pair} bytes)")
    n = size // pair
    chunk = int(options.get("chunk_samples", DEFAULT_CHUNK_SAMPLES))
    n_chunks = -(-n // chunk)
    data = np.memmap(path, dtype=dtype, mode="r", shape=(n, 2))
    parent = sha256[:16]
    start_at = _utc(meta.get("observed_at"))
    for k, first in enumerate(range(0, n, chunk)):
        part = np.asarray(data[first:first + chunk], dtype=np.float32)
        samples = np.ascontiguousarray(part).view(np.complex64).ravel()
        observed = start_at + dt.timedelta(seconds=first / float(meta["sample_rate_hz"])) if start_at else None
        yield "voltages", _row(
            snapshot_id=parent if n_chunks == 1 else f"{parent}:{k}", source_file=path,
            target=meta.get("target"), ra_deg=meta.get("ra_deg"), dec_deg=meta.get("dec_deg"), site=meta.get("site"),
            observed_at=observed, sample_rate_hz=float(meta["sample_rate_hz"]),
            center_freq_hz=meta.get("center_freq_hz"), n_samples=len(samples), samples=samples,
            label=meta.get("label"), polarization=meta.get("polarization"),
            parent_id=parent, chunk_index=k, n_chunks=n_chunks, first_sample=first,
        )


def parse_voltage_file(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    name = path.lower()
    if name.endswith((".compamp", ".archive-compamp")):
        return parse_compamp(path, sha256, options)
    if name.endswith(".dat"):
        return parse_simulated(path, sha256, options)
    if name.endswith(".raw"):
        return parse_raw(path, sha256, options)
    raise Rejected("unknown voltage layout: expected .dat (simulated signals), .compamp / .archive-compamp (ATA) "
                   "or .raw with a .json sidecar")


FORMAT = FileFormat("voltages", "voltages", parse_voltage_file, SUFFIXES)


def ingest_voltages(lake, paths, sample_rate_hz: float | None = None, chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
                    **kwargs):
    """Ingest voltage files in one call; see ``catalogs.ingest.files.ingest_files``."""
    from catalogs.ingest.files import ingest_files

    options = {"chunk_samples": int(chunk_samples)}
    if sample_rate_hz is not None:
        options["sample_rate_hz"] = float(sample_rate_hz)
    return ingest_files(lake, FORMAT, paths, options, **kwargs)
