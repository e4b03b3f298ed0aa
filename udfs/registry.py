"""The function library's registry: each function declared once, run the same way on both engines.

A function is a ``UdfSpec``: its SQL name, its arguments (names with units, Arrow types), its
Arrow return type, a numpy kernel and a docstring. ``evaluate`` is the one place that turns
Arrow columns into kernel calls, for every engine: NULL in any argument gives NULL out, the
kernel sees only the other rows (as numpy arrays), and a kernel that reports per-row errors
makes those rows NULL while ``<name>_error(...)`` returns the reason. The engine adapters
(``udfs/duckdb.py``, ``udfs/spark.py``) only translate types and register ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.errors import UdfError

ERROR_SUFFIX = "_error"


@dataclass(frozen=True)
class Arg:
    """An argument: its name (with units), Arrow type and doc. A string argument with few
    distinct values (an observatory code) may be declared ``categorical``: the kernel then gets a
    ``Categories`` instead of one Python string per row, which costs far less to make."""

    name: str
    type: pa.DataType
    doc: str = ""
    categorical: bool = False


@dataclass(frozen=True)
class Categories:
    """A categorical string column: ``values[codes[i]]`` is row i's value."""

    codes: np.ndarray  # int32 per row
    values: list

    def __len__(self) -> int:
        return len(self.codes)

    def to_objects(self) -> np.ndarray:
        """One Python string per row (for the few rows an error message names)."""
        return np.asarray(self.values + [None], dtype=object)[:-1][self.codes]


@dataclass(frozen=True)
class UdfSpec:
    """One function: name, typed arguments, return type, a numpy kernel and its documentation.

    ``kernel(*columns)`` gets one numpy array per argument (non-NULL rows only; strings as object
    arrays of str, binary values as object arrays of read-only memoryviews (use ``len()`` and
    ``np.frombuffer``), timestamps as datetime64[us] UTC) and returns an array of results of the
    same length (numpy, a list, or a pyarrow array), or, when ``reports_errors``, a pair
    ``(results, errors)`` where ``errors[i]`` is None or the reason row i has no result, and
    ``errors`` itself is None when every row has one (the fast path: no per-row Python work).
    A ``categorical`` string argument arrives as ``Categories``.
    """

    name: str
    args: tuple[Arg, ...]
    returns: pa.DataType
    kernel: Callable
    doc: str
    reports_errors: bool = False
    examples: tuple[str, ...] = field(default=())
    # the kernel keeps the GIL through its work (sep's C calls do): DuckDB's pre-pass runs it in
    # worker processes rather than threads to use more than one core
    holds_gil: bool = False

    def __post_init__(self):
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise UdfError(f"function name {self.name!r} must be a lower-case identifier")
        if not self.doc.strip():
            raise UdfError(f"function {self.name} needs a docstring (with units)")

    @property
    def signature(self) -> str:
        from catalogs.schemas import sql_type

        args = ", ".join(f"{a.name} {sql_type(a.type)}" for a in self.args)
        return f"{self.name}({args}) -> {sql_type(self.returns)}"

    def error_spec(self) -> UdfSpec:
        """The companion ``<name>_error(...)``: the reason a row has no result, else NULL."""
        kernel = self.kernel

        def reasons(*columns):
            results, errors = kernel(*columns)
            if errors is None:
                return pa.nulls(len(results), pa.string())
            return pa.array(list(errors), pa.string())

        return UdfSpec(
            name=self.name + ERROR_SUFFIX, args=self.args, returns=pa.string(), kernel=reasons,
            doc=f"Why {self.name}(...) returned NULL for a row with no NULL argument; NULL when it did not.",
            holds_gil=self.holds_gil,
        )


_REGISTRY: dict[str, UdfSpec] = {}


def register(spec: UdfSpec) -> UdfSpec:
    """Add a function to the library; a duplicate name is an error."""
    names = [spec.name] + ([spec.name + ERROR_SUFFIX] if spec.reports_errors else [])
    for name in names:
        if name in _REGISTRY:
            raise UdfError(f"function {name} is registered twice")
    _REGISTRY[spec.name] = spec
    if spec.reports_errors:
        _REGISTRY[spec.name + ERROR_SUFFIX] = spec.error_spec()
    return spec


def all_functions() -> list[UdfSpec]:
    """Every function of the library, loading its modules first."""
    import udfs.catalog  # noqa: F401  (imports the modules that register functions)

    return sorted(_REGISTRY.values(), key=lambda s: s.name)


def _binary_views(column: pa.Array) -> np.ndarray:
    """A binary column as an object array of memoryviews into Arrow's buffers (None where NULL):
    no bytes copied (an image or a voltage snapshot can be megabytes; copying them cost as much
    as the kernels). binary_view columns (the pre-pass's views into the lake's files) too."""
    views = np.empty(len(column), dtype=object)
    if pa.types.is_binary_view(column.type):
        _view_values(column, views)
        return views
    offset_type = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[column.offset: column.offset + len(column) + 1]
    data = memoryview(data_buffer).toreadonly() if data_buffer is not None else memoryview(b"")
    for i in range(len(column)):
        views[i] = data[offsets[i]: offsets[i + 1]]
    if column.null_count:
        views[~np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)] = None
    return views


def _view_values(column: pa.Array, out: np.ndarray) -> None:
    """The values of a binary_view array: a view is int32 length, then the value itself when it
    is at most 12 bytes, else a 4-byte prefix, int32 buffer index and int32 offset."""
    buffers = column.buffers()
    raw = np.frombuffer(buffers[1], dtype=np.uint8).reshape(-1, 16)[column.offset: column.offset + len(column)]
    fields = raw.view(np.int32)
    data = [memoryview(b).toreadonly() if b is not None else memoryview(b"") for b in buffers[2:]]
    valid = (np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool) if column.null_count
             else np.ones(len(column), dtype=bool))
    for i, (length, _, index, offset) in enumerate(fields.tolist()):
        if not valid[i]:
            out[i] = None
        elif length <= 12:
            out[i] = memoryview(raw[i, 4:4 + length].tobytes())
        else:
            out[i] = data[index][offset: offset + length]


def _categories(column: pa.Array) -> Categories:
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return Categories(codes, encoded.dictionary.to_pylist())


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _to_numpy(column: pa.Array, arg: Arg) -> np.ndarray | Categories:
    if column.type != arg.type and _numeric(column.type) and _numeric(arg.type):
        # Spark types a literal 4.0 as DECIMAL(2,1) and 4 as INT: give the kernel its declared type
        lossy_ok = pa.types.is_decimal(column.type) and pa.types.is_floating(arg.type)
        try:
            column = column.cast(arg.type, safe=not lossy_ok)
        except pa.ArrowInvalid as e:
            raise UdfError(f"argument {arg.name}: {e}") from e
    if arg.categorical:
        return _categories(column)
    if _is_binary(column.type):
        return _binary_views(column)
    if pa.types.is_timestamp(column.type):
        if column.type.unit != "us":
            column = column.cast(pa.timestamp("us", tz=column.type.tz))
        # an Arrow timestamp is an int64 count since the epoch in UTC, whatever its time zone
        return column.view(pa.int64()).to_numpy(zero_copy_only=False).view("datetime64[us]")
    if pa.types.is_struct(column.type) or pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return np.array(column.to_pylist() + [None], dtype=object)[:-1]
    return column.to_numpy(zero_copy_only=False)


def evaluate(spec: UdfSpec, columns: list) -> pa.Array:
    """Run ``spec`` over Arrow columns (one per argument); an Arrow array of results."""
    columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
    if len(columns) != len(spec.args):
        raise UdfError(f"{spec.name} takes {len(spec.args)} arguments, got {len(columns)}")
    n = len(columns[0]) if columns else 0
    valid = np.ones(n, dtype=bool)
    for column in columns:
        if column.null_count:
            valid &= np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(valid)
    if rows.size == 0:
        return pa.nulls(n, spec.returns)
    taken = [_to_numpy(c, a)[rows] if rows.size != n and _is_binary(c.type)
             else _to_numpy(c if rows.size == n else c.take(pa.array(rows)), a) for c, a in zip(columns, spec.args)]
    result = spec.kernel(*taken)
    errors = None
    if spec.reports_errors:
        result, errors = result
    values = result if isinstance(result, (pa.Array, pa.ChunkedArray)) else pa.array(result, spec.returns)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != spec.returns:
        values = values.cast(spec.returns)
    if errors is not None:
        failed = np.array([e is not None for e in errors], dtype=bool)
        if failed.any():
            values = pc.if_else(pa.array(~failed), values, pa.nulls(len(values), spec.returns))
    if len(values) != rows.size:
        raise UdfError(f"{spec.name}: the kernel returned {len(values)} values for {rows.size} rows")
    if rows.size == n:
        return values
    # scatter the results back among the NULL rows
    positions = np.full(n, -1, dtype=np.int64)
    positions[rows] = np.arange(rows.size)
    return values.take(pa.array(positions, mask=~valid))


def get(name: str) -> UdfSpec:
    functions = {s.name: s for s in all_functions()}
    if name not in functions:
        from engine.errors import did_you_mean

        raise UdfError(f"no function '{name}' in the library{did_you_mean(name, functions)}")
    return functions[name]


def call(name: str, *values):
    """Evaluate a function on Python values (one row): for tests, the docs and the shell."""
    spec = get(name)
    arrays = [pa.array([v], a.type) for v, a in zip(values, spec.args)]
    return evaluate(spec, arrays)[0].as_py()
