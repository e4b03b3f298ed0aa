"""The lake: a directory of Delta tables, read and written through delta-rs.

Every write is one atomic Delta commit (the Delta log is the commit: nothing is renamed into
place). Writes are schema-checked against the catalog (``catalogs/schemas.py``) or, for a user
table, against the table's own schema. Idempotent ingest uses Delta application transactions:
an app id per source file content hash, committed in the same commit as the rows, so "already
ingested" survives checkpoints and cannot disagree with the data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Schema,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.transaction import AddAction, create_table_with_add_actions
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from catalogs.schemas import CATALOG, TableSpec, spec
from engine.errors import (
    LakeError,
    SchemaMismatchError,
    UnknownTableError,
    VersionNotFoundError,
    did_you_mean,
)

TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Snapshot:
    """One version of one table: exactly the data files its Delta log names."""

    table: str
    version: int
    files: tuple[str, ...]
    schema: pa.Schema
    partition_by: tuple[str, ...]
    location: str = ""
    pruned: bool = False  # some files were skipped by their statistics (Lake.prune)


@dataclass(frozen=True)
class TableInfo:
    name: str
    version: int
    rows: int
    files: int
    size_bytes: int
    partition_by: tuple[str, ...]
    description: str


def _arrow_schema(dt_: DeltaTable) -> pa.Schema:
    return pa.schema(dt_.schema().to_arrow())


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO date or date-time as an aware UTC datetime (naive input is taken as UTC)."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise VersionNotFoundError(f"not a timestamp: {text!r} (use ISO 8601, e.g. 2024-05-01 12:00:00)") from e
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _derive_dates(table_spec: TableSpec | None, data: pa.Table) -> pa.Table:
    for date_column, ts_column in table_spec.derived_dates if table_spec else ():
        if date_column not in data.column_names and ts_column in data.column_names:
            stamps = data[ts_column]
            if pa.types.is_timestamp(stamps.type) and stamps.type.tz not in (None, "UTC"):
                stamps = stamps.cast(pa.timestamp(stamps.type.unit, tz="UTC"))
            data = data.append_column(date_column, stamps.cast(pa.timestamp("us")).cast(pa.date32()))
    return data


class Lake:
    """A directory of Delta tables; the catalog tables are created on first use."""

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root).absolute()
        self._latest: dict[str, DeltaTable] = {}
        self._snapshots: dict[tuple[str, int], Snapshot] = {}
        self._stats: dict[tuple[str, int], pa.Table] = {}
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
            for table_spec in CATALOG.values():
                self._ensure(table_spec)
        elif not self.root.is_dir():
            raise LakeError(f"no lake at {self.root}")

    # ---- names and paths -------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.root / name

    def table_names(self) -> list[str]:
        names = {p.name for p in self.root.iterdir() if (p / "_delta_log").is_dir()}
        return sorted(names, key=lambda n: (n.startswith("_"), n))

    def exists(self, name: str) -> bool:
        return (self.path(name) / "_delta_log").is_dir()

    def _check_known(self, name: str) -> None:
        if not self.exists(name):
            raise UnknownTableError(f"unknown table '{name}'{did_you_mean(name, self.table_names())}")

    def _ensure(self, table_spec: TableSpec) -> None:
        if self.exists(table_spec.name):
            return
        try:
            DeltaTable.create(
                str(self.path(table_spec.name)),
                schema=table_spec.schema,
                partition_by=list(table_spec.partition_by) or None,
                name=table_spec.name,
                description=table_spec.description,
                mode="ignore",
            )
        except DeltaError as e:
            raise LakeError(f"cannot create table '{table_spec.name}' in {self.root}: {e}") from e

    # ---- reading -----------------------------------------------------------------------

    def delta_table(self, name: str) -> DeltaTable:
        """The latest version of a table, refreshed from the log at each call."""
        self._check_known(name)
        table = self._latest.get(name)
        try:
            log = self.path(name) / "_delta_log"
            if table is not None and not (log / f"{table.version():020d}.json").exists():
                table = None  # the table was removed and made again
            if table is None:
                table = self._latest[name] = DeltaTable(str(self.path(name)))
            elif (log / f"{table.version() + 1:020d}.json").exists():
                # a commit is the next version's log entry: without one there is nothing to read
                # (listing and reading the log costs milliseconds on every query)
                table.update_incremental()
        except (DeltaError, TableNotFoundError) as e:
            raise LakeError(f"cannot read table '{name}': {e}") from e
        return table

    def snapshot(
        self, name: str, version: int | None = None, timestamp: str | dt.datetime | None = None
    ) -> Snapshot:
        """The files of the latest snapshot, or of the one at ``version`` / ``timestamp``."""
        latest = self.delta_table(name)
        if version is None and timestamp is None:
            version = latest.version()
        elif timestamp is not None:
            version = self.version_at(name, timestamp)
        elif not 0 <= version <= latest.version():
            raise VersionNotFoundError(
                f"table '{name}' has no version {version} (versions 0..{latest.version()})"
            )
        key = (name, version)
        if key not in self._snapshots:
            table = latest if version == latest.version() else self._load_version(name, version)
            self._snapshots[key] = Snapshot(
                table=name,
                version=version,
                files=tuple(table.file_uris()),
                schema=_arrow_schema(table),
                partition_by=tuple(table.metadata().partition_columns),
                location=str(self.path(name)),
            )
        return self._snapshots[key]

    def prune(self, snapshot: Snapshot, bounds) -> Snapshot:
        """The snapshot without the files whose min/max statistics in the Delta log show that no
        row can satisfy ``bounds`` (``rewrites.Bound``: column, op, number). Only numeric columns
        are used; a file without statistics for a column is kept."""
        if not bounds or not snapshot.files:
            return snapshot
        stats = self._file_stats(snapshot)
        keep = np.ones(stats.num_rows, dtype=bool)
        for bound in bounds:
            lo_name, hi_name = f"min.{bound.column}", f"max.{bound.column}"
            if lo_name not in stats.column_names or not pa.types.is_integer(stats[lo_name].type) \
                    and not pa.types.is_floating(stats[lo_name].type):
                continue
            lo = stats[lo_name].to_numpy(zero_copy_only=False).astype(float)  # NULL -> nan: kept below
            hi = stats[hi_name].to_numpy(zero_copy_only=False).astype(float)
            with np.errstate(invalid="ignore"):
                excluded = {
                    ">": hi <= bound.value, ">=": hi < bound.value,
                    "<": lo >= bound.value, "<=": lo > bound.value,
                    "=": (lo > bound.value) | (hi < bound.value),
                }[bound.op]
            keep &= ~excluded
        if keep.all():
            return snapshot
        dropped = {str(Path(snapshot.location) / unquote(p)) for p, k in zip(stats["path"].to_pylist(), keep) if not k}
        files = tuple(f for f in snapshot.files if str(Path(f)) not in dropped)
        return replace(snapshot, files=files, pruned=True)

    def _file_stats(self, snapshot: Snapshot) -> pa.Table:
        key = (snapshot.table, snapshot.version)
        if key not in self._stats:
            latest = self.delta_table(snapshot.table)
            table = latest if latest.version() == snapshot.version else self._load_version(snapshot.table, snapshot.version)
            self._stats[key] = pa.table(table.get_add_actions(flatten=True))
        return self._stats[key]

    def _load_version(self, name: str, version: int) -> DeltaTable:
        try:
            return DeltaTable(str(self.path(name)), version=version)
        except DeltaError as e:
            raise VersionNotFoundError(f"version {version} of table '{name}' is not available: {e}") from e

    def version_at(self, name: str, timestamp: str | dt.datetime) -> int:
        """The version that was current at ``timestamp`` (Delta's TIMESTAMP AS OF)."""
        when = parse_timestamp(timestamp) if isinstance(timestamp, str) else timestamp
        commits = sorted((h["version"], h["timestamp"]) for h in self.delta_table(name).history())
        when_ms = when.timestamp() * 1000
        eligible = [v for v, ts_ms in commits if ts_ms <= when_ms]
        if not eligible:
            first = dt.datetime.fromtimestamp(commits[0][1] / 1000, dt.timezone.utc)
            raise VersionNotFoundError(
                f"table '{name}' did not exist at {when.isoformat()} (first commit {first.isoformat()})"
            )
        return max(eligible)

    def schema(self, name: str) -> pa.Schema:
        table_spec = spec(name)
        return table_spec.schema if table_spec else self.snapshot(name).schema

    def info(self, name: str) -> TableInfo:
        table = self.delta_table(name)
        actions = pa.table(table.get_add_actions(flatten=True))
        rows = int(pc.sum(actions["num_records"]).as_py() or 0) if actions.num_rows else 0
        size = int(pc.sum(actions["size_bytes"]).as_py() or 0) if actions.num_rows else 0
        table_spec = spec(name)
        description = table_spec.description if table_spec else (table.metadata().description or "")
        return TableInfo(
            name, table.version(), rows, actions.num_rows, size,
            tuple(table.metadata().partition_columns), description,
        )

    def history(self, name: str) -> list[dict]:
        return sorted(self.delta_table(name).history(), key=lambda h: h["version"], reverse=True)

    def already_committed(self, name: str, app_id: str) -> bool:
        """Whether a commit carrying application transaction ``app_id`` is in the table."""
        return self.delta_table(name).transaction_version(app_id) is not None

    # ---- writing -----------------------------------------------------------------------

    def conform(self, name: str, data: pa.Table) -> pa.Table:
        """``data`` cast to the table's schema; SchemaMismatchError (nothing written) if it can't be."""
        schema = self.schema(name)
        if data.schema.equals(schema, check_metadata=True):  # built to the schema (file ingest): nothing to cast
            for field in schema:
                if not field.nullable and data.column(field.name).null_count:
                    raise SchemaMismatchError(f"column '{field.name}' of table '{name}' may not be null "
                                              f"({data.column(field.name).null_count} nulls)")
            return data
        data = _derive_dates(spec(name), data)
        extra = [c for c in data.column_names if c not in schema.names]
        if extra:
            raise SchemaMismatchError(
                f"table '{name}' has no column '{extra[0]}'{did_you_mean(extra[0], schema.names)}"
            )
        columns = []
        for field in schema:
            if field.name in data.column_names:
                column = data[field.name]
                try:
                    if column.type != field.type:  # (a cast to the same type still costs a call per column)
                        column = column.cast(field.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise SchemaMismatchError(
                        f"column '{field.name}' of table '{name}' is {field.type}; "
                        f"cannot convert {column.type}: {e}"
                    ) from e
            elif field.nullable:
                column = pa.nulls(data.num_rows, field.type)
            else:
                raise SchemaMismatchError(f"table '{name}' needs column '{field.name}' ({field.type})")
            if not field.nullable and column.null_count:
                raise SchemaMismatchError(
                    f"column '{field.name}' of table '{name}' may not be null ({column.null_count} nulls)"
                )
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=schema)

    def append(
        self, name: str, data: pa.Table, app_ids: tuple[str, ...] = (), note: str = ""
    ) -> int:
        """Append rows in one atomic commit; returns the new version.

        ``app_ids`` are recorded as Delta application transactions in the same commit, so a
        later ``already_committed(name, app_id)`` is true exactly when these rows are in.
        """
        self._check_known(name)
        self.add_missing_columns(name)
        data = self.conform(name, data)
        return self._write(name, data, mode="append", app_ids=app_ids, note=note)

    def add_missing_columns(self, name: str) -> None:
        """Schema evolution of a catalog table made by an older astrolake: the nullable catalog
        columns the table lacks are added (one metadata-only commit, once); old rows read NULL."""
        table_spec = spec(name)
        if table_spec is None:
            return
        table = self.delta_table(name)
        have = set(_arrow_schema(table).names)
        missing = [f for f in table_spec.schema if f.name not in have and f.nullable]
        if missing:
            from deltalake import Field

            try:
                table.alter.add_columns([Field.from_arrow(f) for f in missing])
            except DeltaError as e:
                raise LakeError(f"cannot add columns {', '.join(f.name for f in missing)} to table '{name}': {e}") from e
            self._latest.pop(name, None)

    def create_table(self, name: str, data: pa.Table, replace: bool = False, note: str = "") -> int:
        """Create (or with ``replace``, overwrite) a user table from rows: CREATE TABLE AS."""
        self.check_creatable(name, replace)
        if self.exists(name):
            return self._write(name, data, mode="overwrite", schema_mode="overwrite", note=note)
        return self._write(name, data, mode="error", note=note)

    def check_creatable(self, name: str, replace: bool) -> None:
        """LakeError unless CREATE [OR REPLACE] TABLE ``name`` may go ahead."""
        if not TABLE_NAME.match(name):
            raise LakeError(f"'{name}' is not a valid table name (letters, digits, underscore)")
        if spec(name) is not None:
            raise LakeError(f"'{name}' is a catalog table; use INSERT INTO or ingest to add rows")
        if self.exists(name) and not replace:
            raise LakeError(f"table '{name}' already exists (use CREATE OR REPLACE TABLE)")

    def commit_files(
        self, name: str, relpaths: list[str], mode: str, schema: pa.Schema,
        partition_by: tuple[str, ...] = (), note: str = "", app_ids: tuple[str, ...] = (),
    ) -> int:
        """Commit Parquet files another engine wrote inside the table's folder, in one commit.

        ``mode`` is "append" (to an existing table), "create" (a new table) or "replace"
        (overwrite an existing table, schema included). Partition values come from the
        ``key=value`` folders above each file; min/max/null statistics from its footer.
        Until this commit the files are invisible to every reader. ``app_ids`` are recorded as
        Delta application transactions in the same commit (as in ``append``).
        """
        root = self.path(name)
        actions = [_add_action(root, rel, partition_by) for rel in relpaths]
        data_schema = pa.schema([f for f in schema if f.name not in partition_by])
        for rel in relpaths:
            _check_file_schema(root / rel, data_schema, name)
        props = _commit_properties(app_ids, note)
        try:
            if mode == "append":
                self.add_missing_columns(name)
                table = self.delta_table(name)
                table.create_write_transaction(
                    actions, mode="append", schema=table.schema(),
                    partition_by=list(partition_by) or None, commit_properties=props,
                )
            elif mode in ("create", "replace"):
                create_table_with_add_actions(
                    str(root), Schema.from_arrow(schema), actions,
                    mode="overwrite" if mode == "replace" else "error",
                    partition_by=list(partition_by) or None, name=name, commit_properties=props,
                )
            else:
                raise ValueError(f"unknown commit mode {mode!r}")
        except CommitFailedError as e:
            raise LakeError(f"commit to table '{name}' failed, nothing written: {e}") from e
        except DeltaError as e:
            raise LakeError(f"commit to table '{name}' failed, nothing written: {e}") from e
        return self.delta_table(name).version()

    def _write(self, name, data, mode, app_ids=(), note="", schema_mode=None) -> int:
        props = _commit_properties(app_ids, note)
        try:
            write_deltalake(
                str(self.path(name)), data, mode=mode, schema_mode=schema_mode,
                commit_properties=props, writer_properties=_writer_properties(data.schema),
            )
        except CommitFailedError as e:
            raise LakeError(f"commit to table '{name}' failed, nothing written: {e}") from e
        except (DeltaError, pa.ArrowException) as e:
            raise LakeError(f"write to table '{name}' failed, nothing written: {e}") from e
        return self.delta_table(name).version()


def _writer_properties(schema: pa.Schema) -> WriterProperties | None:
    """Parquet settings for a write: a table with binary columns (pixels, samples, power) is
    written uncompressed with the blobs neither dictionary-encoded nor given statistics, as the
    file ingest writes them. Float pixels and voltages barely compress, and uncompressed pages
    are read with no decompression pass (a scan of voltages took longer than their FFT)."""
    blobs = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if not blobs:
        return None
    plain = ColumnProperties(dictionary_enabled=False, statistics_enabled="NONE")
    return WriterProperties(compression="UNCOMPRESSED", column_properties={name: plain for name in blobs})


def _commit_properties(app_ids, note) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(app_id=a, version=1) for a in app_ids] or None,
        custom_metadata={"astrolake.note": note} if note else None,
    )


def _add_action(root: Path, rel: str, partition_by: tuple[str, ...]) -> AddAction:
    full = root / rel
    stat = full.stat()
    folders = dict(
        part.split("=", 1) for part in Path(rel).parent.parts if "=" in part
    )
    values = {}
    for key in partition_by:
        if key not in folders:
            raise LakeError(f"file {rel} has no '{key}=' folder for partition column '{key}'")
        value = unquote(folders[key])
        values[key] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
    return AddAction(rel, stat.st_size, values, int(stat.st_mtime * 1000), True, _file_stats(full))


def _file_stats(path: Path) -> str:
    """Delta's per-file statistics (numRecords, minValues, maxValues, nullCount) from the footer."""
    meta = pq.read_metadata(path)
    mins, maxs, nulls = {}, {}, {}
    for c in range(meta.num_columns):
        column = meta.schema.column(c)
        name = column.path
        if "." in name:
            continue  # nested columns: no statistics
        lo = hi = None
        count = 0
        complete = True
        for r in range(meta.num_row_groups):
            st = meta.row_group(r).column(c).statistics
            if st is None or not st.has_min_max:
                complete = False
                if st is not None and st.has_null_count:
                    count += st.null_count
                continue
            count += st.null_count if st.has_null_count else 0
            lo = st.min if lo is None else min(lo, st.min)
            hi = st.max if hi is None else max(hi, st.max)
        nulls[name] = count
        if complete and lo is not None and isinstance(lo, (int, float, str, dt.date, dt.datetime)):
            mins[name], maxs[name] = _json_stat(lo), _json_stat(hi)
    return json.dumps({"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls})


def _json_stat(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def _check_file_schema(path: Path, expected: pa.Schema, name: str) -> None:
    actual = pq.read_schema(path)
    got = {f.name: f.type for f in actual}
    for field in expected:
        if field.name not in got:
            raise SchemaMismatchError(f"file written for table '{name}' lacks column '{field.name}'")
        if not _same_type(got[field.name], field.type):
            raise SchemaMismatchError(
                f"file written for table '{name}' has {field.name} as {got[field.name]}, not {field.type}"
            )


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    if a == b:
        return True
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        return (a.tz is None) == (b.tz is None)
    if pa.types.is_string(a) or pa.types.is_large_string(a):
        return pa.types.is_string(b) or pa.types.is_large_string(b)
    if (pa.types.is_list(a) or pa.types.is_large_list(a)) and (pa.types.is_list(b) or pa.types.is_large_list(b)):
        return _same_type(a.value_type, b.value_type)
    return False
