"""The Spark backend: the same bound trees, run by Apache Spark over the same Delta snapshots.

There are no delta-spark jars here (no Maven), so Delta goes through delta-rs on both sides:
- reads: Spark reads exactly the Parquet files the Delta log names for the version asked for
  (never a directory listing, which returns files an overwrite removed: delta-rs#2779), with the
  partition columns typed from the Delta schema, so partition filters prune files;
- writes: Spark's own Parquet writer writes the files into a fresh folder inside the table, and
  one delta-rs commit (``Lake.commit_files``) makes them visible. A failed job commits nothing.
One SparkSession serves the whole process (it is expensive to start).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from catalogs.lake import Lake, Snapshot
from catalogs.schemas import spec
from engine.backends import function_prepass, spark_prepass
from engine.backends.base import Backend, subset_suffix, target_names
from engine.errors import (
    BackendUnavailableError,
    CompileError,
    EngineError,
    QueryError,
    SchemaMismatchError,
    UnknownColumnError,
    UnsupportedFunctionError,
    did_you_mean,
)
from engine.spark_session import spark_session


BLOB_READER_BATCH_ROWS = 8


class _conf:
    """Spark SQL settings for the duration of a block, then the earlier values again."""

    def __init__(self, spark, settings: dict[str, str]):
        self.spark, self.settings, self.before = spark, settings, {}

    def __enter__(self):
        for key, value in self.settings.items():
            self.before[key] = self.spark.conf.get(key, None)
            self.spark.conf.set(key, value)

    def __exit__(self, *exc):
        for key, value in self.before.items():
            if value is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, value)


class SparkBackend(Backend):
    name = "spark"
    dialect = "spark"

    def __init__(self, master: str | None = None, conf: dict[str, str] | None = None,
                 function_prepass: bool = True):
        self.spark = spark_session(master, conf or {})
        _register_functions(self.spark)
        self.function_prepass = function_prepass
        from udfs.registry import all_functions

        self._library = {s.name: s for s in all_functions()}  # what the pre-pass may compute
        self._views: dict[tuple, str] = {}
        self._snapshots: dict[str, Snapshot] = {}  # view -> the snapshot it reads
        self._blob_views: set[str] = set()  # views of tables with BINARY columns (pixels, samples)
        self._functions: set[str] | None = None

    # ---- tables ------------------------------------------------------------------------

    def relation(self, snapshot: Snapshot) -> str:
        key = (snapshot.location, snapshot.table, snapshot.version, snapshot.files)
        view = self._views.get(key)
        if view is None:
            place = hashlib.sha1(snapshot.location.encode()).hexdigest()[:10]
            view = f"{snapshot.table}_v{snapshot.version}_{place}" + subset_suffix(snapshot)
            self.dataframe(snapshot).createOrReplaceTempView(view)
            self._views[key] = view
            self._snapshots[view] = snapshot
            if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in snapshot.schema):
                self._blob_views.add(view)
        return view

    def _reading_blobs(self, sql: str):
        """Spark's Parquet reader fills a batch of 4,096 rows at once: with images of megabytes a
        batch is gigabytes. A statement over a table with BINARY columns reads small batches."""
        from contextlib import nullcontext

        if not any(view in sql for view in self._blob_views):
            return nullcontext()
        return _conf(self.spark, {"spark.sql.parquet.columnarReaderBatchSize": str(BLOB_READER_BATCH_ROWS)})

    def dataframe(self, snapshot: Snapshot):
        """A DataFrame over exactly the snapshot's files, columns in the table's order."""
        return snapshot_frame(self.spark, snapshot)

    # ---- functions ---------------------------------------------------------------------

    def function_names(self) -> set[str]:
        if self._functions is None:
            rows = self.spark.sql("SHOW FUNCTIONS").collect()
            self._functions = {r[0].split(".")[-1].lower() for r in rows}
        return self._functions

    # ---- running -----------------------------------------------------------------------

    def execute(self, tree: exp.Expression) -> pa.Table:
        """Run a bound tree; library calls over one table's columns are computed where the
        Parquet is read (engine/backends/spark_prepass.py) unless ``function_prepass`` is off."""
        with self._staged(tree) as (sql, _stages):
            return self.run(sql)

    def explain(self, tree: exp.Expression) -> str:
        with self._staged(tree) as (sql, stages):
            plan = self.plan(sql)
        if not stages:
            return plan
        described = function_prepass.describe(
            stages, "library calls computed by Spark tasks reading the Parquet with pyarrow",
            lambda stage: "row groups read by pyarrow in the tasks")
        return described + "\n\n" + plan

    @contextmanager
    def _staged(self, tree: exp.Expression):
        """The SQL to run for ``tree`` and the pre-pass stages it reads, as temporary views meanwhile."""
        stages = []
        if self.function_prepass:
            tree, stages = function_prepass.plan(tree, self._snapshots, self._library, can_push=spark_prepass.can_push,
                                                 filter_first=True)
        registered = []
        try:
            if stages:
                constants = spark_prepass.constant_values(self.spark, stages)
                for stage in stages:
                    spark_prepass.stage_frame(self.spark, stage, constants).createOrReplaceTempView(stage.relation)
                    registered.append(stage.relation)
            yield self.compile(tree), stages
        except EngineError:
            raise
        except Exception as e:  # pyspark raises many unrelated classes
            raise translate(e) from e
        finally:
            for view in registered:
                self.spark.catalog.dropTempView(view)

    def run(self, sql: str) -> pa.Table:
        try:
            with self._reading_blobs(sql):
                return _utc(self.spark.sql(sql).toArrow())
        except Exception as e:  # pyspark raises many unrelated classes
            raise translate(e) from e

    def plan(self, sql: str) -> str:
        try:
            return self.spark.sql(f"EXPLAIN FORMATTED {sql}").collect()[0][0]
        except Exception as e:
            raise translate(e) from e

    def close(self) -> None:
        for view in self._views.values():
            self.spark.catalog.dropTempView(view)
        self._views.clear()

    # ---- writing -----------------------------------------------------------------------

    def write(self, tree, lake: Lake, table: str, mode: str, columns=None) -> tuple[int, int]:
        """Spark writes the Parquet files; one delta-rs commit publishes them."""
        with self._staged(tree) as (sql, _stages):
            return self._write(sql, lake, table, mode, columns)

    def _write(self, sql: str, lake: Lake, table: str, mode: str, columns) -> tuple[int, int]:
        from pyspark.sql.pandas.types import to_arrow_schema

        try:
            frame = self.spark.sql(sql)
            frame = frame.toDF(*target_names(frame.columns, lake, table, mode, columns))
            if mode == "append":
                snapshot = lake.snapshot(table)
                schema, partition_by = snapshot.schema, snapshot.partition_by
                frame = _conform(frame, table, schema)
            else:
                schema = _nullable(to_arrow_schema(frame.schema, timezone="UTC"))
                partition_by = ()
        except Exception as e:
            raise translate(e) from e
        folder = f"spark-{uuid.uuid4().hex}"
        out = lake.path(table) / folder
        try:
            writer = frame.write.mode("errorifexists")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            with self._reading_blobs(sql):
                writer.parquet(str(out))
            relpaths = _tidy_output(out, folder)
            rows = sum(_parquet_rows(out.parent / rel) for rel in relpaths)
            version = lake.commit_files(
                table, relpaths, mode, schema, partition_by,
                note="INSERT INTO (spark)" if mode == "append" else "CREATE TABLE AS (spark)",
            )
        except Exception as e:
            shutil.rmtree(out, ignore_errors=True)
            if not lake.exists(table) and lake.path(table).is_dir() and not any(lake.path(table).iterdir()):
                lake.path(table).rmdir()
            raise translate(e) from e
        return version, rows


# ---- helpers -------------------------------------------------------------------------------

def snapshot_frame(spark, snapshot: Snapshot):
    """A DataFrame of ``spark`` over exactly the snapshot's files, columns in the table's order."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(_nullable(snapshot.schema))
    if not snapshot.files:
        return spark.createDataFrame([], schema)
    frames = []
    # Files written by different jobs sit under different folders: read each folder's files
    # with its own basePath, so Spark's partition discovery sees one layout at a time.
    for base, files in _group_by_base(snapshot.files, len(snapshot.partition_by)).items():
        frames.append(spark.read.schema(schema).option("basePath", base).parquet(*files))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame.select(*[f"`{name}`" for name in snapshot.schema.names])


_REGISTERED: set[int] = set()


def _register_functions(spark) -> None:
    """The function library as Arrow UDFs, once per SparkSession."""
    if id(spark) in _REGISTERED:
        return
    from udfs import spark as spark_udfs
    from udfs.registry import all_functions

    spark_udfs.register(spark, all_functions())
    _REGISTERED.add(id(spark))


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema], metadata=schema.metadata)


def _utc(table: pa.Table) -> pa.Table:
    """Spark hands timestamps back in the session zone (UTC); say so in the Arrow type."""
    fields = []
    changed = False
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz not in ("UTC", "+00:00", None):
            f = f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
            changed = True
        fields.append(f)
    return table.cast(pa.schema(fields)) if changed else table


def _group_by_base(files: tuple[str, ...], n_partition_levels: int) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for f in files:
        base = Path(f).parent
        for _ in range(n_partition_levels):
            base = base.parent
        groups[str(base)].append(f)
    return groups


def _conform(frame, table: str, schema: pa.Schema):
    """The frame cast to the table's schema, in Spark: the same checks as Lake.conform."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    table_spec = spec(table)
    for date_column, ts_column in table_spec.derived_dates if table_spec else ():
        if date_column not in frame.columns and ts_column in frame.columns:
            frame = frame.withColumn(date_column, F.to_date(F.col(ts_column)))
    extra = [c for c in frame.columns if c not in schema.names]
    if extra:
        raise SchemaMismatchError(
            f"table '{table}' has no column '{extra[0]}'{did_you_mean(extra[0], schema.names)}")
    columns = []
    for field in schema:
        spark_type = from_arrow_type(field.type)
        if field.name in frame.columns:
            column = F.col(f"`{field.name}`").cast(spark_type)
        elif field.nullable:
            column = F.lit(None).cast(spark_type)
        else:
            raise SchemaMismatchError(f"table '{table}' needs column '{field.name}' ({field.type})")
        if not field.nullable:
            message = f"column '{field.name}' of table '{table}' may not be null"
            column = F.when(column.isNull(), F.raise_error(F.lit(message))).otherwise(column)
        columns.append(column.alias(field.name))
    return frame.select(*columns)


def _tidy_output(out: Path, folder: str) -> list[str]:
    """Paths (relative to the table) of the Parquet files a job wrote; its markers removed."""
    relpaths = []
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name.endswith(".parquet") and not path.name.startswith((".", "_")):
            relpaths.append(str(path.relative_to(out.parent)))
        elif path.is_file():
            path.unlink()  # _SUCCESS and .crc files: nothing reads them
    return relpaths


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


_BRACKET = re.compile(r"^\[([A-Z_.]+)\]\s*")


def _condition(error) -> str:
    for attr in ("getCondition", "getErrorClass"):
        getter = getattr(error, attr, None)
        if getter:
            try:
                value = getter()
            except Exception:  # noqa: BLE001 - py4j may fail on a dead JVM
                value = None
            if value:
                return value
    return ""


def _params(error) -> dict:
    getter = getattr(error, "getMessageParameters", None)
    try:
        return dict(getter() or {}) if getter else {}
    except Exception:  # noqa: BLE001
        return {}


def _one_line(error) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return _BRACKET.sub("", text).strip()


def translate(error: Exception) -> Exception:
    """A Spark or Py4J error as one of ours, one line."""
    from engine.errors import EngineError

    if isinstance(error, EngineError):
        return error
    condition = _condition(error)
    params = _params(error)
    if condition.startswith("UNRESOLVED_COLUMN"):
        column = params.get("objectName", "").strip("`").split("`.`")[-1]
        proposals = re.findall(r"`([^`]+)`", params.get("proposal", ""))
        hint = f" (did you mean '{proposals[0].split('.')[-1]}'?)" if proposals else ""
        return UnknownColumnError(f"unknown column '{column}'{hint}")
    if condition.startswith("UNRESOLVED_ROUTINE"):
        routine = params.get("routineName", "").strip("`")
        return UnsupportedFunctionError(f"function '{routine}' is not supported on spark")
    if "user-supplied" in str(error) or condition == "USER_RAISED_EXCEPTION":
        return QueryError(_user_message(error))
    if "exception was thrown from the Python worker" in str(error):
        return QueryError("a function failed in a Spark Python worker: " + _python_error(error))
    name = type(error).__name__
    if name in ("ParseException", "AnalysisException") or condition.startswith("PARSE"):
        return CompileError(_one_line(error))
    if "Py4JError" in name or name == "Py4JNetworkError" or "Java gateway" in str(error):
        return BackendUnavailableError(f"spark is not running: {_one_line(error)}")
    return QueryError(_one_line(error))


def _python_error(error) -> str:
    """The last line of the Python traceback inside a Spark error: the exception itself."""
    lines = [l.strip() for l in str(error).splitlines() if l.strip()]
    errors = [l for l in lines if re.match(r"^[A-Za-z_.]+(Error|Exception): ", l)]
    return errors[-1] if errors else _one_line(error)


def _user_message(error) -> str:
    found = re.search(r"(column '[^']+' of table '[^']+' may not be null)", str(error))
    return found.group(1) if found else _one_line(error)


def env_conf(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings (from --conf) as a dict."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            from engine.errors import UsageError

            raise UsageError(f"--conf needs key=value, got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf
