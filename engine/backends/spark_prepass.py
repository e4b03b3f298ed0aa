"""Library calls on Spark, evaluated by pyarrow where the Parquet is read.

Through Spark's UDF path the JVM reads a call's argument columns from Parquet, copies them into
Spark rows, converts them to Arrow and sends them to a Python worker over a socket; for an image
or a voltage recording that is most of the cost, and for 200 M events the arguments cross five
columns wide to return one. For a call such as

    SELECT id, sep_extract(pixels, width, height, 1.5) FROM images WHERE exptime > 30

the pre-pass planner (engine/backends/function_prepass.py) makes a stage of the SELECT, and this
module runs it as a Spark job whose rows are the pieces of the snapshot (one per Parquet row
group): each task reads its pieces with pyarrow in the Python worker, applies the WHERE
conjuncts as a pyarrow filter (which also skips row groups and partitions by their values),
evaluates the calls as the DuckDB pre-pass does (``function_prepass.StageRun``: two batches at a
time when a task has the cores to itself, worker processes for a kernel that keeps the GIL) and
returns only the columns the rest of the query reads. The JVM never reads the arguments; the
query reads the stage's DataFrame as a temporary view in the table's place:

    SELECT id, __fn0_0 FROM `__astrolake_stage_0` AS images

A conjunct is pushed only when its pyarrow form has Spark SQL's meaning for sure
(``arrow_filter``); a SELECT keeping a conjunct without a library call stays on Spark's UDF path
(``filter_first``), so a filter Spark would apply first (a partition filter it prunes files by)
is never applied after computing the calls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sqlglot import exp

from catalogs.lake import Snapshot
from engine.backends import function_prepass
from engine.backends.function_prepass import Stage


# ---- WHERE conjuncts as pyarrow filters ----------------------------------------------------

def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t) and t.tz in ("UTC", "+00:00"):
        return "timestamp"
    return None


def arrow_filter(node: exp.Expression, columns: dict[str, pa.DataType]):
    """``node`` (a WHERE conjunct over ``columns``) as a pyarrow compute expression with Spark
    SQL's meaning (three-valued AND/OR, NULL drops the row), or None where that is not sure:
    only numbers, strings, booleans, dates and UTC timestamps compared with values of the same
    kind (DATE/TIMESTAMP literals in ISO form); no casts of columns, division or NOT over IN
    (whose NULL rules differ)."""
    try:
        expression, kind = _translate(node, columns, top=True)
    except _Untranslatable:
        return None
    return expression if kind == "boolean" else None


class _Untranslatable(Exception):
    pass


_COMPARISONS = {exp.EQ: "equal", exp.NEQ: "not_equal", exp.GT: "greater", exp.GTE: "greater_equal",
                exp.LT: "less", exp.LTE: "less_equal"}
_ARITHMETIC = {exp.Add: "add_checked", exp.Sub: "subtract_checked", exp.Mul: "multiply_checked"}


def _translate(node, columns, top=False):
    if isinstance(node, exp.Paren):
        return _translate(node.this, columns, top)
    if isinstance(node, exp.Column):
        kind = _kind(columns[node.name])
        if kind is None:
            raise _Untranslatable(node)
        return pc.field(node.name), kind
    if isinstance(node, exp.Literal):
        value, kind = _literal(node)
        return pc.scalar(value), kind
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        return _temporal(node)
    if isinstance(node, exp.Boolean):
        return pc.scalar(bool(node.this)), "boolean"
    if isinstance(node, exp.Neg):
        inner, kind = _translate(node.this, columns)
        if kind != "number":
            raise _Untranslatable(node)
        return pc.negate_checked(inner), "number"
    if isinstance(node, exp.Abs):
        inner, kind = _translate(node.this, columns)
        if kind != "number":
            raise _Untranslatable(node)
        return pc.abs_checked(inner), "number"
    if type(node) in _ARITHMETIC:
        left, right = _same_kind(node, columns, "number")
        return getattr(pc, _ARITHMETIC[type(node)])(left, right), "number"
    if type(node) in _COMPARISONS:
        left, right = _same_kind(node, columns)
        return getattr(pc, _COMPARISONS[type(node)])(left, right), "boolean"
    if isinstance(node, (exp.And, exp.Or)):
        left, right = _same_kind(node, columns, "boolean")
        return (left & right if isinstance(node, exp.And) else left | right), "boolean"
    if isinstance(node, exp.Not) and not isinstance(node.this, exp.In):
        inner, kind = _translate(node.this, columns)
        if kind != "boolean":
            raise _Untranslatable(node)
        return ~inner, "boolean"
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        inner, _ = _translate_any(node.this, columns)
        return inner.is_null(), "boolean"
    if isinstance(node, exp.Between):
        value, kind = _translate(node.this, columns)
        low, low_kind = _translate(node.args["low"], columns)
        high, high_kind = _translate(node.args["high"], columns)
        if not kind == low_kind == high_kind:
            raise _Untranslatable(node)
        return pc.greater_equal(value, low) & pc.less_equal(value, high), "boolean"
    if isinstance(node, exp.In) and top and not node.args.get("query"):
        value, kind = _translate(node.this, columns)
        items = []
        for item in node.expressions:
            if not isinstance(item, exp.Literal):
                raise _Untranslatable(node)
            item_value, item_kind = _literal(item)
            if item_kind != kind:
                raise _Untranslatable(node)
            items.append(item_value)
        field_type = columns[node.this.name] if isinstance(node.this, exp.Column) else None
        values = pa.array(items, type=field_type) if field_type is not None and kind == "string" else pa.array(items)
        return pc.is_in(value, value_set=values), "boolean"
    if isinstance(node, (exp.Like, exp.ILike)) and isinstance(node.expression, exp.Literal) \
            and node.expression.is_string and "\\" not in node.expression.this:
        value, kind = _translate(node.this, columns)
        if kind != "string":
            raise _Untranslatable(node)
        return pc.match_like(value, node.expression.this, ignore_case=isinstance(node, exp.ILike)), "boolean"
    raise _Untranslatable(node)


def _literal(node: exp.Literal):
    if node.is_string:
        return node.this, "string"
    for parse in (int, float):
        try:
            return parse(node.this), "number"
        except ValueError:
            pass
    raise _Untranslatable(node)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?")


def _temporal(node: exp.Cast):
    """DATE '2019-06-01' or TIMESTAMP '2020-01-01 10:00:00' (the session's zone is UTC), written
    in ISO form; anything Spark would parse more loosely is left to Spark."""
    text = node.this.this
    target = node.to.this
    try:
        if target == exp.DataType.Type.DATE and _DATE.fullmatch(text):
            return pc.scalar(dt.date.fromisoformat(text)), "date"
        if target in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ) and _TIMESTAMP.fullmatch(text):
            value = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
            return pc.scalar(pa.scalar(value, pa.timestamp("us", tz="UTC"))), "timestamp"
    except ValueError:  # 2019-02-30: Spark's own error
        pass
    raise _Untranslatable(node)


def _translate_any(node, columns):
    if isinstance(node, exp.Column):
        return pc.field(node.name), _kind(columns[node.name])
    return _translate(node, columns)


def _same_kind(node, columns, kind=None):
    left, left_kind = _translate(node.this, columns)
    right, right_kind = _translate(node.expression, columns)
    if left_kind != right_kind or (kind is not None and left_kind != kind):
        raise _Untranslatable(node)
    return left, right


def stage_filter(predicate: exp.Expression, columns: dict[str, pa.DataType]):
    """``arrow_filter`` of a stage's predicate, whose columns may be qualified by the table's alias."""
    bare = predicate.copy()
    for column in bare.find_all(exp.Column):
        column.set("table", None)
    return arrow_filter(bare, columns)


def can_push(conjunct: exp.Expression, columns: dict[str, pa.DataType]) -> bool:
    """The planner's hook: push a conjunct into a Spark stage only if it translates."""
    return stage_filter(conjunct, columns) is not None


# ---- running a stage as a Spark job --------------------------------------------------------

def pieces(snapshot: Snapshot) -> list[tuple[str, int]]:
    """(file, row group) for every row group of the snapshot: the tasks' units of work."""
    import pyarrow.parquet as pq

    out = []
    for path in snapshot.files:
        groups = pq.ParquetFile(path).metadata.num_row_groups
        out += [(path, g) for g in range(groups)]
    return out


def stage_frame(spark, stage: Stage, constants: dict[tuple[str, str], pa.Scalar]):
    """The stage's rows as a DataFrame: the snapshot's pieces spread over the tasks, read by pyarrow."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    spark_schema = from_arrow_schema(stage.schema)
    expected = to_arrow_schema(spark_schema, timezone="UTC")
    todo = pieces(stage.snapshot)
    if not todo:
        return spark.createDataFrame([], spark_schema)
    predicate = None
    if stage.predicate is not None:
        predicate = stage_filter(stage.predicate, {f.name: f.type for f in stage.snapshot.schema})
    # the pieces' numbers, spread evenly over exactly min(pieces, cores) tasks
    cores = spark.sparkContext.defaultParallelism
    work = spark.range(0, len(todo), 1, min(len(todo), cores))
    in_flight = max(1, cores // len(todo))  # the cores a task may use

    def run(batches, _todo=todo, _stage=stage, _constants=constants, _predicate=predicate,
            _expected=expected, _in_flight=in_flight):
        for batch in batches:
            for number in batch.column(0).to_pylist():
                path, row_group = _todo[number]
                yield from evaluate_piece(_stage, path, row_group, _predicate, _constants, _expected, _in_flight)

    return work.mapInArrow(run, spark_schema)


def evaluate_piece(stage: Stage, path: str, row_group: int, predicate, constants, expected: pa.Schema,
                   in_flight: int):
    """One row group's stage rows (in a Spark task): read, filtered, the calls evaluated."""
    snapshot = dataclasses.replace(stage.snapshot, files=(path,))
    piece = dataclasses.replace(stage, snapshot=snapshot, predicate=None)

    def source(_stage):
        yield from _scan_row_group(stage, path, row_group, predicate)

    def constant(value: exp.Expression, arrow_type: pa.DataType) -> pa.Scalar:
        return constants[(value.sql(dialect="spark"), str(arrow_type))]

    # no more batches at once than this machine's share of cores (IN_FLIGHT: at most 2)
    run = function_prepass.StageRun(piece, source, constant, in_flight=min(in_flight, function_prepass.IN_FLIGHT))
    for batch in run.reader():
        yield batch.cast(expected) if batch.schema != expected else batch


def _scan_row_group(stage: Stage, path: str, row_group: int, predicate):
    """One row group's stage rows: ``function_prepass.read_row_group`` (blobs as views into the
    file), the rows kept by the pyarrow filter ``predicate``."""
    groups = list(function_prepass.row_groups(stage.snapshot, [path]))

    def keep_rows(batch: pa.RecordBatch, _predicate) -> pa.Array:
        numbered = pa.Table.from_batches([batch]).append_column("__astrolake_row", pa.array(range(batch.num_rows)))
        kept = ds.dataset(numbered).to_table(columns=["__astrolake_row"], filter=predicate).column(0)
        mask = np.zeros(batch.num_rows, dtype=bool)
        mask[kept.to_numpy()] = True
        return pa.array(mask)

    staged = stage if predicate is not None else dataclasses.replace(stage, predicate=None)
    yield from function_prepass.read_row_group(staged, groups[row_group], keep_rows)


def constant_values(spark, stages: list[Stage]) -> dict[tuple[str, str], pa.Scalar]:
    """Every literal argument of the stages' calls as its function's declared type, cast by
    Spark (so a stage's call sees what Spark's UDF path would)."""
    from pyspark.sql.pandas.types import from_arrow_type

    out = {}
    for stage in stages:
        for call in stage.calls:
            for value, declared in zip(call.args, call.spec.args):
                if isinstance(value, exp.Column):
                    continue
                key = (value.sql(dialect="spark"), str(declared.type))
                if key in out:
                    continue
                plain = function_prepass.plain_literal(value, declared.type)
                if plain is not None:
                    out[key] = plain
                    continue
                spark_type = from_arrow_type(declared.type).simpleString()
                cast = exp.Cast(this=value.copy(), to=exp.DataType.build(spark_type, dialect="spark"))
                table = spark.sql(exp.select(exp.alias_(cast, "v")).sql(dialect="spark")).toArrow()
                out[key] = table.column(0)[0].cast(declared.type)
    return out
