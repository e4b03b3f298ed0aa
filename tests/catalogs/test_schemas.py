import pyarrow as pa
import pytest

from catalogs.schemas import CATALOG, SIGNAL_EVENTS, spec, sql_type

DESIGN_TABLES = {"voltages", "spectrograms", "signal_events", "images", "sources", "spectra"}


def test_catalog_has_the_design_tables_and_the_quarantine():
    assert DESIGN_TABLES | {"_rejected"} == set(CATALOG)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_column_is_described(name):
    for field in CATALOG[name].schema:
        assert field.metadata[b"description"], f"{name}.{field.name} has no description"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_units_are_in_column_names(name):
    suffix = {"deg": "_deg", "Hz": "_hz", "Hz/s": "_hz_s", "s": "_s", "rad": "_rad", "pix": "_pix",
              "Angstrom": "_aa"}
    for column in CATALOG[name].columns:
        if column.unit in suffix:
            assert column.name.endswith(suffix[column.unit]), f"{name}.{column.name} [{column.unit}]"


def test_timestamps_are_utc():
    for table in CATALOG.values():
        for field in table.schema:
            if pa.types.is_timestamp(field.type):
                assert field.type.tz == "UTC", f"{table.name}.{field.name}"


def test_required_and_partition_columns_exist():
    for table in CATALOG.values():
        for name in table.required + table.partition_by:
            assert name in table.column_names


def test_signal_events_is_partitioned_by_date():
    assert SIGNAL_EVENTS.partition_by == ("obs_date",)
    assert SIGNAL_EVENTS.schema.field("obs_date").type == pa.date32()


def test_spec_of_user_table_is_none():
    assert spec("my_candidates") is None


@pytest.mark.parametrize("arrow_type, name", [
    (pa.int64(), "bigint"), (pa.float64(), "double"), (pa.string(), "string"),
    (pa.timestamp("us", tz="UTC"), "timestamp"), (pa.list_(pa.float64()), "array<double>"),
    (pa.struct([("a", pa.int32())]), "struct<a:int>"), (pa.binary(), "binary"), (pa.date32(), "date"),
])
def test_sql_type_names(arrow_type, name):
    assert sql_type(arrow_type) == name
