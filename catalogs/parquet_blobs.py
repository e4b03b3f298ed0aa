"""Binary columns of a Parquet row group as views into the file's own pages: no bytes copied.

pyarrow decodes a BYTE_ARRAY column by appending every value to a growing buffer: for a voltage
snapshot or an image of megabytes, that is a read into fresh memory, a copy into more fresh
memory, and the kernel zeroing both pages first (measured on spectrograms: the copies and the
page zeroing took longer than the FFT). The lake writes blob columns uncompressed, PLAIN, without
dictionary (``catalogs.lake``), so each value already lies in the file as ``[int32 length][bytes]``.
``blob_column`` maps the file (once: a Delta data file never changes) and returns an Arrow
``binary_view`` array whose views point at those bytes.

Only the layout that makes that exact is read this way: an optional top-level BYTE_ARRAY column,
uncompressed, PLAIN-encoded data pages (v1 or v2), no dictionary page. Anything else (another
writer's compressed or dictionary-encoded pages, nested columns, a file that is not local) returns
None and the caller reads the column with pyarrow.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MAPPED_FILES = 64  # data files kept mapped (address space only: the pages are the page cache's)
INLINE_BYTES = 12  # binary_view keeps values up to this long inside the view

# Parquet's Thrift enums (parquet.thrift)
_BYTE_ARRAY = "BYTE_ARRAY"
_PAGE_DATA, _PAGE_DICTIONARY, _PAGE_DATA_V2 = 0, 2, 3
_PLAIN, _RLE = 0, 3

_lock = threading.Lock()
_files: OrderedDict = OrderedDict()  # (path, size, mtime_ns, inode) -> _File


class _Unsupported(Exception):
    """The pages are not in the layout read here: the caller falls back to pyarrow."""


class _File:
    """A mapped data file and the layouts of its blob column chunks read so far."""

    def __init__(self, path: str, size: int):
        if size:
            with open(path, "rb") as f:
                self.buffer = pa.py_buffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        else:
            self.buffer = pa.py_buffer(b"")
        self.chunks: dict = {}  # (offset, size, rows, max definition level) -> _Layout


def _mapped(path: str) -> _File:
    """The file memory-mapped, shared between calls while it is the same file (FileNotFoundError
    when it is gone)."""
    info = os.stat(path)
    key = (path, info.st_size, info.st_mtime_ns, info.st_ino)
    with _lock:
        entry = _files.pop(key, None) or _File(path, info.st_size)
        _files[key] = entry
        while len(_files) > MAPPED_FILES:
            _files.popitem(last=False)
    return entry


# ---- Thrift compact protocol: just enough for page headers -----------------------------------

def _varint(data, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise _Unsupported("varint too long")


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _skip(data, pos: int, kind: int) -> int:
    """Position after a value of compact type ``kind``."""
    if kind in (1, 2):  # boolean true / false (in a field header: no bytes)
        return pos
    if kind == 3:  # byte
        return pos + 1
    if kind in (4, 5, 6):  # i16, i32, i64
        return _varint(data, pos)[1]
    if kind == 7:  # double
        return pos + 8
    if kind == 8:  # binary
        length, pos = _varint(data, pos)
        return pos + length
    if kind in (9, 10):  # list, set
        header = data[pos]
        pos += 1
        size, element = header >> 4, header & 0x0F
        if size == 15:
            size, pos = _varint(data, pos)
        for _ in range(size):
            pos = pos + 1 if element in (1, 2) else _skip(data, pos, element)
        return pos
    if kind == 11:  # map
        size, pos = _varint(data, pos)
        if size == 0:
            return pos
        types = data[pos]
        pos += 1
        for _ in range(size):
            pos = _skip(data, pos, types >> 4)
            pos = _skip(data, pos, types & 0x0F)
        return pos
    if kind == 12:  # struct
        return _struct(data, pos, lambda field, kind, pos: None)[1]
    raise _Unsupported(f"thrift type {kind}")


def _struct(data, pos: int, on_field) -> tuple[dict, int]:
    """Read a struct: ``on_field(id, type, pos)`` returns (value, new pos) for the fields it
    reads, None for those to skip. Returns ({id: value}, position after the struct)."""
    values, last = {}, 0
    while True:
        header = data[pos]
        pos += 1
        if header == 0:  # stop
            return values, pos
        kind, delta = header & 0x0F, header >> 4
        if delta:
            field = last + delta
        else:
            raw, pos = _varint(data, pos)
            field = _zigzag(raw)
        last = field
        got = on_field(field, kind, pos)
        if got is None:
            if kind in (1, 2):
                values[field] = kind == 1
            pos = _skip(data, pos, kind)
        else:
            values[field], pos = got


def _page_header(data, pos: int) -> tuple[dict, int]:
    """(fields of the PageHeader, position of the page's data): type 1, uncompressed size 2,
    compressed size 3, data_page_header 5 / dictionary 7 / data_page_header_v2 8 as dicts."""
    def nested(wanted):
        def read(field, kind, p):
            if kind in (4, 5, 6) and field in wanted:
                raw, p = _varint(data, p)
                return _zigzag(raw), p
            return None
        return read

    def on_field(field, kind, p):
        if kind == 5 and field in (1, 2, 3):
            raw, p = _varint(data, p)
            return _zigzag(raw), p
        if kind == 12 and field == 5:  # DataPageHeader: num_values, encoding, def/rep level encodings
            return _struct(data, p, nested({1, 2, 3, 4}))
        if kind == 12 and field == 8:  # DataPageHeaderV2: num_values, num_nulls, num_rows, encoding,
            return _struct(data, p, nested({1, 2, 3, 4, 5, 6}))  # def / rep level byte lengths
        return None
    return _struct(data, pos, on_field)


# ---- levels and values -----------------------------------------------------------------------

def _definition_levels(data: memoryview, count: int) -> np.ndarray:
    """``count`` definition levels (bit width 1) of the RLE / bit-packed hybrid encoding."""
    out = np.empty(count, dtype=bool)
    pos, filled = 0, 0
    while filled < count:
        header, pos = _varint(data, pos)
        if header & 1:  # bit-packed: (header >> 1) groups of 8 values, one bit each
            groups = header >> 1
            bits = np.unpackbits(np.frombuffer(data[pos:pos + groups], dtype=np.uint8), bitorder="little")
            take = min(len(bits), count - filled)
            out[filled:filled + take] = bits[:take].astype(bool)
            pos += groups
        else:  # a run: (header >> 1) repeats of a value in one byte
            run = header >> 1
            value = data[pos]
            pos += 1
            take = min(run, count - filled)
            out[filled:filled + take] = bool(value)
        filled += take
        if take == 0:
            raise _Unsupported("empty level run")
    return out


def _plain_values(page: memoryview, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(offset, length) in ``page`` of each of ``count`` PLAIN BYTE_ARRAY values."""
    starts = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    unpack, pos, end = struct.unpack_from, 0, len(page)
    for i in range(count):
        if pos + 4 > end:
            raise _Unsupported("truncated page")
        (length,) = unpack("<i", page, pos)
        starts[i], lengths[i] = pos + 4, length
        pos += 4 + length
    if pos > end:
        raise _Unsupported("truncated page")
    return starts, lengths


class _Layout:
    """A column chunk's values as binary views: ``raw`` [row, 16] (int32 length, then 12 bytes
    inline, or a 4-byte prefix, int32 buffer index, int32 offset), ``valid`` [row], ``buffers``
    (one per page)."""

    def __init__(self, pages: list[tuple[pa.Buffer, np.ndarray, np.ndarray]], valid: np.ndarray):
        n = len(valid)
        raw = np.zeros((n, 16), dtype=np.uint8)
        views = raw.view(np.int32)
        rows = np.flatnonzero(valid)
        at = 0
        for index, (buffer, starts, lengths) in enumerate(pages):
            target = rows[at:at + len(starts)]
            at += len(starts)
            if not len(starts):
                continue
            data = np.frombuffer(buffer, dtype=np.uint8)
            views[target, 0] = lengths
            inline = lengths <= INLINE_BYTES
            long_rows, long_starts = target[~inline], starts[~inline]
            views[long_rows, 2] = index
            views[long_rows, 3] = long_starts
            raw[long_rows, 4:8] = data[long_starts[:, None] + np.arange(4)]
            if inline.any():
                j = np.arange(INLINE_BYTES)
                short_starts, short_lengths = starts[inline], lengths[inline]
                where = np.minimum(short_starts[:, None] + j, max(0, len(data) - 1))
                raw[target[inline], 4:] = np.where(j < short_lengths[:, None], data[where] if len(data) else 0, 0)
        self.raw, self.valid, self.buffers = raw, valid, [p[0] for p in pages]

    def array(self, rows=None) -> pa.Array:
        """The binary_view array of the rows ``rows`` (increasing indices; None: all)."""
        raw, valid = (self.raw, self.valid) if rows is None else (self.raw[rows], self.valid[rows])
        n = len(valid)
        validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.Array.from_buffers(pa.binary_view(), n, [validity, pa.py_buffer(raw)] + self.buffers,
                                     null_count=int(n - valid.sum()))


def blob_column(path: str, metadata: pq.FileMetaData, row_group: int, column: str, rows=None) -> pa.Array | None:
    """The binary column ``column`` of ``row_group`` as a binary_view array over the mapped file
    (only the rows ``rows``, increasing indices, when given), or None when its pages are not
    uncompressed PLAIN (read it with pyarrow then)."""
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if column not in names:
        return None
    index = names.index(column)
    chunk = metadata.row_group(row_group).column(index)
    described = metadata.schema.column(index)
    if (chunk.physical_type != _BYTE_ARRAY or chunk.compression != "UNCOMPRESSED"
            or chunk.has_dictionary_page or described.max_repetition_level != 0
            or described.max_definition_level > 1):
        return None
    entry = _mapped(path)
    key = (chunk.data_page_offset, chunk.total_compressed_size, metadata.row_group(row_group).num_rows,
           described.max_definition_level)
    layout = entry.chunks.get(key)
    if layout is None:
        try:
            layout = _read_chunk(entry.buffer, *key)
        except (_Unsupported, IndexError, struct.error, ValueError):
            layout = False
        entry.chunks[key] = layout
    return layout.array(rows) if layout else None


def _read_chunk(buffer: pa.Buffer, start: int, size: int, num_rows: int, max_definition: int) -> _Layout:
    if start < 0 or size <= 0 or start + size > buffer.size:
        raise _Unsupported("column chunk outside the file")
    whole = buffer.slice(start, size)  # zero-copy
    data = memoryview(whole)
    pos, seen, pages, levels = 0, 0, [], []
    while seen < num_rows:
        header, pos = _page_header(data, pos)
        kind, length = header.get(1), header.get(3)
        if length is None or pos + length > size:
            raise _Unsupported("page outside the column chunk")
        body = pos
        pos += length
        if kind == _PAGE_DATA:
            page = header.get(5) or {}
            count, encoding = page.get(1), page.get(2)
            if count is None or encoding != _PLAIN:
                raise _Unsupported("not a PLAIN data page")
            at = body
            if max_definition:
                if page.get(3) != _RLE:
                    raise _Unsupported("definition levels not RLE")
                (level_bytes,) = struct.unpack_from("<i", data, at)
                valid = _definition_levels(data[at + 4:at + 4 + level_bytes], count)
                at += 4 + level_bytes
            else:
                valid = np.ones(count, dtype=bool)
        elif kind == _PAGE_DATA_V2:
            page = header.get(8) or {}
            count, encoding = page.get(1), page.get(4)
            level_bytes, repeat_bytes = page.get(5, 0), page.get(6, 0)
            if count is None or encoding != _PLAIN or repeat_bytes:
                raise _Unsupported("not a PLAIN v2 data page")
            at = body
            valid = (_definition_levels(data[at:at + level_bytes], count) if max_definition and level_bytes
                     else np.ones(count, dtype=bool))
            at += level_bytes
        elif kind == _PAGE_DICTIONARY:
            raise _Unsupported("dictionary page")
        else:
            continue  # an index page: nothing of the values
        values = int(valid.sum())
        page_bytes = whole.slice(at, body + length - at)
        starts, lengths = _plain_values(memoryview(page_bytes), values)
        pages.append((page_bytes, starts, lengths))
        levels.append(valid)
        seen += count
    if seen != num_rows:
        raise _Unsupported("pages hold more values than the row group's rows")
    return _Layout(pages, np.concatenate(levels) if levels else np.ones(0, dtype=bool))
