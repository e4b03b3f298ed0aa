"""The lake: a directory of Delta tables, read and written through delta-rs.

Every write is one atomic Delta commit (the Delta log is the commit: nothing is renamed into
place). Writes are schema-checked against the catalog (``catalogs/schemas.py``) or, for a user
table, against the table's own schema. Idempotent ingest uses Delta application transactions:
an app id per source file content hash, committed in the same commit as the rows, so "already
ingested" survives checkpoints and cannot disagree with the data.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
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
            if table is None:
                table = self._latest[name] = DeltaTable(str(self.path(name)))
            else:
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
            )
        return self._snapshots[key]

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
        data = self.conform(name, data)
        return self._write(name, data, mode="append", app_ids=app_ids, note=note)

    def create_table(self, name: str, data: pa.Table, replace: bool = False, note: str = "") -> int:
        """Create (or with ``replace``, overwrite) a user table from rows: CREATE TABLE AS."""
        if not TABLE_NAME.match(name):
            raise LakeError(f"'{name}' is not a valid table name (letters, digits, underscore)")
        if spec(name) is not None:
            raise LakeError(f"'{name}' is a catalog table; use INSERT INTO or ingest to add rows")
        if self.exists(name) and not replace:
            raise LakeError(f"table '{name}' already exists (use CREATE OR REPLACE TABLE)")
        if self.exists(name):
            return self._write(name, data, mode="overwrite", schema_mode="overwrite", note=note)
        return self._write(name, data, mode="error", note=note)

    def _write(self, name, data, mode, app_ids=(), note="", schema_mode=None) -> int:
        metadata = {"astrolake.note": note} if note else None
        props = CommitProperties(
            app_transactions=[Transaction(app_id=a, version=1) for a in app_ids] or None,
            custom_metadata=metadata,
        )
        try:
            write_deltalake(
                str(self.path(name)), data, mode=mode, schema_mode=schema_mode,
                commit_properties=props,
            )
        except CommitFailedError as e:
            raise LakeError(f"commit to table '{name}' failed, nothing written: {e}") from e
        except (DeltaError, pa.ArrowException) as e:
            raise LakeError(f"write to table '{name}' failed, nothing written: {e}") from e
        return self.delta_table(name).version()
