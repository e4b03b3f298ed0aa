"""A minimal SIGPROC filterbank reader and writer for the benchmarks (float32, one IF only).

The header is HEADER_START, then keyword / value pairs (a keyword is an int32 length and its
bytes; values are int32, float64 or length-prefixed strings by keyword), then HEADER_END; the data
follow as [time, chan] little-endian samples.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

INTS = {"telescope_id", "machine_id", "data_type", "barycentric", "pulsarcentric", "nbits", "nsamples",
        "nchans", "nifs", "nbeams", "ibeam"}
DOUBLES = {"az_start", "za_start", "src_raj", "src_dej", "tstart", "tsamp", "fch1", "foff", "refdm", "period"}
STRINGS = {"rawdatafile", "source_name"}


def _string(f) -> str:
    (n,) = struct.unpack("<i", f.read(4))
    return f.read(n).decode("ascii")


def read_header(path: Path) -> tuple[dict, int]:
    """(header, byte offset of the data)."""
    header = {}
    with open(path, "rb") as f:
        if _string(f) != "HEADER_START":
            raise ValueError(f"{path} is not a SIGPROC filterbank file")
        while True:
            key = _string(f)
            if key == "HEADER_END":
                return header, f.tell()
            if key in INTS:
                header[key] = struct.unpack("<i", f.read(4))[0]
            elif key in DOUBLES:
                header[key] = struct.unpack("<d", f.read(8))[0]
            elif key in STRINGS:
                header[key] = _string(f)
            else:
                raise ValueError(f"{path}: unknown header keyword {key!r}")


def read_filterbank(path: Path) -> tuple[dict, np.ndarray]:
    """(header, float32 [time, chan]) of a 32-bit, one-IF filterbank file."""
    header, offset = read_header(path)
    if header.get("nbits") != 32 or header.get("nifs", 1) != 1:
        raise ValueError(f"{path}: only 32-bit, one-IF files are read here")
    data = np.fromfile(path, dtype="<f4", offset=offset)
    return header, data.reshape(-1, header["nchans"])


def write_filterbank(path: Path, header: dict, data: np.ndarray) -> None:
    """Write ``data`` [time, chan] as float32 under ``header`` (nchans and nbits are set from data)."""
    header = {**header, "nchans": int(data.shape[1]), "nbits": 32, "nifs": 1}

    def string(s: str) -> bytes:
        return struct.pack("<i", len(s)) + s.encode("ascii")

    out = [string("HEADER_START")]
    for key, value in header.items():
        out.append(string(key))
        if key in INTS:
            out.append(struct.pack("<i", int(value)))
        elif key in DOUBLES:
            out.append(struct.pack("<d", float(value)))
        else:
            out.append(string(str(value)))
    out.append(string("HEADER_END"))
    with open(path, "wb") as f:
        f.write(b"".join(out))
        f.write(np.ascontiguousarray(data, dtype="<f4").tobytes())
