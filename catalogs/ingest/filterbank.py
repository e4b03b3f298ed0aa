"""Filterbank files (SIGPROC ``.fil``, Breakthrough Listen FBH5 ``.h5``) into ``spectrograms``.

SIGPROC: a header of keyword/value pairs between HEADER_START and HEADER_END (a string is an
int32 length and its bytes; ints are int32, floats float64), then the samples time-major
[time, IF, chan] as uint8 (int8 when ``signed``), uint16 or float32 (nbits 8, 16, 32).
FBH5 (blimpy's HDF5 layout): a dataset ``data`` [time, feed, chan] with the same header values as
its attributes; bitshuffle-compressed files are read through hdf5plugin.

A row holds float32 power [time, chan] of one frequency chunk: a file whose power is larger than
``chunk_mb`` (default 64 MiB) is split into equal runs of channels, as many as needed
(``parent_id``, ``chunk_index``, ``n_chunks``; ``fch1_hz`` is each chunk's own first channel),
read from disk chunk by chunk (memmap / HDF5 slicing), so a file larger than memory is never
read whole. ``tstart`` (MJD) becomes ``start_at`` (UTC), MHz become Hz, src_raj/src_dej
(hhmmss.s / ddmmss.s) become degrees, telescope_id a site code.
Only files with one IF (nifs = 1: total intensity) are read; others are rejected, as are files
whose data length does not match the header, other nbits, and unreadable HDF5.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from catalogs.ingest.files import FileFormat, Rejected, binary_column

SUFFIXES = (".fil", ".h5")
DEFAULT_CHUNK_MB = 64

# SIGPROC's telescope ids (sigproc aliases.c, as blimpy and your/sigpyproc use them) -> site codes
TELESCOPES = {
    0: None, 1: "Arecibo", 2: "Ooty", 3: "Nancay", 4: "Parkes", 5: "JodrellBank", 6: "GBT", 7: "GMRT",
    8: "Effelsberg", 9: "ATA", 10: "SRT", 11: "LOFAR", 12: "VLA", 20: "CHIME", 21: "FAST", 64: "MeerKAT",
    65: "KAT-7",
}
_INTS = {"telescope_id", "machine_id", "data_type", "barycentric", "pulsarcentric", "nbits", "nsamples",
         "nchans", "nifs", "nbeams", "ibeam"}
_FLOATS = {"fch1", "foff", "tstart", "tsamp", "src_raj", "src_dej", "az_start", "za_start", "refdm", "period"}
_STRINGS = {"source_name", "rawdatafile"}
_BYTE = {"signed"}
_DTYPES = {8: "u1", 16: "<u2", 32: "<f4"}


def _read_string(f) -> str:
    raw = f.read(4)
    if len(raw) < 4:
        raise Rejected("the SIGPROC header ends early (truncated file)")
    (n,) = struct.unpack("<i", raw)
    if not 0 < n < 256:
        raise Rejected(f"not a SIGPROC header (a keyword of length {n})")
    return f.read(n).decode("ascii", errors="replace")


def read_sigproc_header(path: str) -> tuple[dict, int]:
    """(header values, header length in bytes) of a SIGPROC filterbank file."""
    with open(path, "rb") as f:
        if _read_string(f) != "HEADER_START":
            raise Rejected("not a SIGPROC filterbank file (no HEADER_START)")
        header: dict = {}
        while True:
            key = _read_string(f)
            if key == "HEADER_END":
                return header, f.tell()
            if key in _INTS:
                raw, fmt = f.read(4), "<i"
            elif key in _FLOATS:
                raw, fmt = f.read(8), "<d"
            elif key in _BYTE:
                raw, fmt = f.read(1), "<b"
            elif key in _STRINGS:
                header[key] = _read_string(f)
                continue
            else:
                raise Rejected(f"unknown SIGPROC header keyword {key!r}")
            if len(raw) != struct.calcsize(fmt):
                raise Rejected("the SIGPROC header ends early (truncated file)")
            header[key] = struct.unpack(fmt, raw)[0]


def _sexagesimal_deg(value: float, hours: bool) -> float:
    sign = -1.0 if value < 0 else 1.0
    value = abs(value)
    whole = int(value // 10000)
    minutes = int((value - whole * 10000) // 100)
    seconds = value - whole * 10000 - minutes * 100
    deg = whole + minutes / 60.0 + seconds / 3600.0
    return sign * deg * (15.0 if hours else 1.0)


def _site(telescope_id) -> str | None:
    from udfs.observatories import find

    name = TELESCOPES.get(int(telescope_id)) if telescope_id is not None else None
    if name is None:
        return None
    found = find(name)
    return found.code if found is not None else name


def _meta(header: dict) -> dict:
    from astropy.time import Time

    start = None
    if header.get("tstart") is not None:
        start = Time(float(header["tstart"]), format="mjd", scale="utc").to_datetime(timezone=dt.timezone.utc)
    ra = _sexagesimal_deg(header["src_raj"], True) if header.get("src_raj") is not None else None
    dec = _sexagesimal_deg(header["src_dej"], False) if header.get("src_dej") is not None else None
    return {
        "target": (header.get("source_name") or "").strip() or None,
        "ra_deg": ra, "dec_deg": dec,
        "site": _site(header.get("telescope_id")),
        "start_at": start,
        "tsamp_s": float(header["tsamp"]) if header.get("tsamp") is not None else None,
    }


def _check_header(header: dict) -> None:
    for key in ("nchans", "fch1", "foff", "tsamp"):
        if header.get(key) is None:
            raise Rejected(f"the header has no {key}")
    if int(header["nchans"]) <= 0:
        raise Rejected(f"nchans {header['nchans']} must be positive")
    nifs = int(header.get("nifs", 1))
    if nifs != 1:
        raise Rejected(f"nifs {nifs}: only total-intensity files (nifs = 1) are read")


def _chunks(n_time: int, nchans: int, chunk_mb: float) -> int:
    """The number of equal channel runs that keeps a row within chunk_mb (a divisor of nchans)."""
    limit = max(1, int(chunk_mb * (1 << 20)) // 4)
    need = -(-n_time * nchans // limit)
    for n in range(max(1, need), nchans + 1):
        if nchans % n == 0:
            return n
    return nchans


def _rows(sha256: str, path: str, meta: dict, fch1_mhz: float, foff_mhz: float, n_time: int, nchans: int,
          read, chunk_mb: float) -> Iterator[tuple[str, pa.Table]]:
    n_chunks = _chunks(n_time, nchans, chunk_mb)
    width = nchans // n_chunks
    parent = f"{sha256[:16]}"
    for k in range(n_chunks):
        c0 = k * width
        power = np.ascontiguousarray(read(c0, c0 + width), dtype="<f4")
        row = {
            "spectrogram_id": parent if n_chunks == 1 else f"{parent}:{k}",
            "source_file": path, **meta,
            "fch1_hz": (fch1_mhz + c0 * foff_mhz) * 1e6, "foff_hz": foff_mhz * 1e6,
            "n_time": n_time, "n_chans": width,
            "parent_id": parent, "chunk_index": k, "n_chunks": n_chunks,
        }
        yield "spectrograms", pa.Table.from_pylist([row]).append_column("power", binary_column(power))


def parse_sigproc(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    header, offset = read_sigproc_header(path)
    _check_header(header)
    nbits = int(header.get("nbits", 0))
    if nbits not in _DTYPES:
        raise Rejected(f"nbits {nbits} is not supported (8, 16 or 32)")
    dtype = np.dtype("i1" if nbits == 8 and header.get("signed") else _DTYPES[nbits])
    nchans = int(header["nchans"])
    data_bytes = os.path.getsize(path) - offset
    spectrum_bytes = nchans * dtype.itemsize
    if data_bytes <= 0 or data_bytes % spectrum_bytes:
        raise Rejected(f"the data length {data_bytes} bytes does not match the header: not a whole number of "
                       f"spectra of {nchans} channels x {nbits} bits ({spectrum_bytes} bytes)")
    n_time = data_bytes // spectrum_bytes
    if header.get("nsamples") and int(header["nsamples"]) != n_time:
        raise Rejected(f"the header says nsamples {header['nsamples']} but the data hold {n_time} spectra")
    data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n_time, nchans))
    yield from _rows(sha256, path, _meta(header), float(header["fch1"]), float(header["foff"]), n_time, nchans,
                     lambda c0, c1: data[:, c0:c1], float(options.get("chunk_mb", DEFAULT_CHUNK_MB)))


def _attr(value):
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse_fbh5(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    import h5py
    import hdf5plugin  # noqa: F401  (registers the bitshuffle filter BL files are written with)

    try:
        f = h5py.File(path, "r")
    except Exception as e:  # noqa: BLE001
        raise Rejected(f"not a readable HDF5 file: {' '.join(str(e).split())}") from e
    with f:
        if "data" not in f:
            raise Rejected(f"an HDF5 file without a 'data' dataset (has: {', '.join(f.keys()) or 'nothing'}): not FBH5")
        data = f["data"]
        header = {k: _attr(v) for k, v in data.attrs.items()}
        if data.ndim != 3:
            raise Rejected(f"FBH5 data must be [time, feed, chan], got shape {data.shape}")
        n_time, nifs, nchans = data.shape
        header.setdefault("nifs", nifs)
        header.setdefault("nchans", nchans)
        _check_header(header)
        if int(header["nchans"]) != nchans:
            raise Rejected(f"the header says nchans {header['nchans']} but the data have {nchans} channels")
        try:
            yield from _rows(sha256, path, _meta(header), float(header["fch1"]), float(header["foff"]), n_time, nchans,
                             lambda c0, c1: data[:, 0, c0:c1], float(options.get("chunk_mb", DEFAULT_CHUNK_MB)))
        except OSError as e:
            raise Rejected(f"cannot read the HDF5 data (corrupt, or a filter that is not installed): "
                           f"{' '.join(str(e).split())}") from e


def parse_filterbank_file(path: str, sha256: str, options: dict) -> Iterator[tuple[str, pa.Table]]:
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"\x89HDF"):
        return parse_fbh5(path, sha256, options)
    if path.lower().endswith(".h5"):
        raise Rejected("not a readable HDF5 file (no HDF5 signature)")
    return parse_sigproc(path, sha256, options)


FORMAT = FileFormat("filterbank", "spectrograms", parse_filterbank_file, SUFFIXES)


def ingest_filterbank(lake, paths, chunk_mb: float = DEFAULT_CHUNK_MB, **kwargs):
    """Ingest filterbank files in one call; see ``catalogs.ingest.files.ingest_files``."""
    from catalogs.ingest.files import ingest_files

    return ingest_files(lake, FORMAT, paths, {"chunk_mb": float(chunk_mb)}, **kwargs)
