"""What the Sky compiler needs to know about the world: table schemas and target positions.

``LakeCatalog`` reads them from a lake (schemas from the Delta log, targets from the built-in
table and the lake's own rows); ``StaticCatalog`` knows only the catalog tables of
catalogs/schemas.py and the built-in targets (for compile tests and benchmarks: no lake needed).
"""

from __future__ import annotations

import pyarrow as pa

from catalogs.schemas import CATALOG, spec
from engine.dsl import units
from engine.dsl.names import Resolver, lake_targets
from engine.errors import EngineError, did_you_mean


class SkyCatalogError(LookupError):
    pass


def column_units(schema: pa.Schema) -> dict[str, str | None]:
    """Each column's unit: the field's ``unit`` metadata, else the unit its name ends with."""
    found = {}
    for f in schema:
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        unit = meta.get("unit") or units.split_name(f.name)[1]
        found[f.name] = unit if units.known(unit) else None
    return found


class StaticCatalog:
    def __init__(self, tables: dict[str, pa.Schema] | None = None):
        self.tables = {name: t.schema for name, t in CATALOG.items()} if tables is None else tables
        self.resolver = Resolver()

    def schema(self, table: str) -> pa.Schema:
        if table in self.tables:
            return self.tables[table]
        raise SkyCatalogError(f"unknown table '{table}'{did_you_mean(table, self.tables)}")

    def time_partition(self, table: str, time_column: str) -> str | None:
        table_spec = spec(table)
        for date_col, ts_col in (table_spec.derived_dates if table_spec else ()):
            if ts_col == time_column:
                return date_col
        return None


class LakeCatalog(StaticCatalog):
    def __init__(self, lake):
        self.lake = lake
        self.resolver = Resolver(lambda: lake_targets(lake))

    def schema(self, table: str) -> pa.Schema:
        names = self.lake.table_names()
        if table not in names:
            raise SkyCatalogError(f"unknown table '{table}'{did_you_mean(table, names)}")
        try:
            return self.lake.schema(table)
        except EngineError as e:
            raise SkyCatalogError(str(e).splitlines()[0]) from e
