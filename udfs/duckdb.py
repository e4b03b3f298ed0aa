"""DuckDB adapter: every library function as a vectorized Arrow UDF of a connection."""

from __future__ import annotations

import inspect

import duckdb
import pyarrow as pa

from udfs.registry import UdfSpec, evaluate

_SCALARS = {
    pa.float64(): "DOUBLE", pa.float32(): "FLOAT", pa.int64(): "BIGINT", pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT", pa.int8(): "TINYINT", pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR", pa.binary(): "BLOB", pa.large_binary(): "BLOB", pa.date32(): "DATE",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """DuckDB's name for an Arrow type."""
    if arrow_type in _SCALARS:
        return _SCALARS[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_struct(arrow_type):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in arrow_type) + ")"
    raise TypeError(f"no DuckDB type for {arrow_type}")


def _with_arity(function, n: int):
    """DuckDB counts a UDF's parameters from its signature: give ``function(*args)`` exactly n."""
    parameters = [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n)]
    function.__signature__ = inspect.Signature(parameters)
    return function


def register(con: duckdb.DuckDBPyConnection, specs: list[UdfSpec]) -> None:
    for spec in specs:
        def run(*columns, _spec=spec):
            return evaluate(_spec, list(columns))

        _with_arity(run, len(spec.args))
        con.create_function(
            spec.name, run, [duckdb.sqltype(duckdb_type(a.type)) for a in spec.args],
            duckdb.sqltype(duckdb_type(spec.returns)), type="arrow", null_handling="special",
            side_effects=False,
        )
