"""The catalog: the Arrow schema of every table the lake knows, with units and descriptions.

Units live in column names (``freq_hz``, ``drift_hz_s``, ``ra_deg``); each field also carries
``unit`` and ``description`` metadata so ``astrolake describe`` can show them. Timestamps are UTC
``timestamp[us, tz=UTC]`` (Spark cannot read timestamp_ntz written by delta-rs, delta-rs#2882).
Large n-d arrays are BINARY with explicit shape columns; 1-D arrays are list<double>.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pyarrow as pa

TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    unit: str = ""
    nullable: bool = True

    def to_field(self) -> pa.Field:
        meta = {"description": self.description}
        if self.unit:
            meta["unit"] = self.unit
        return pa.field(self.name, self.type, nullable=self.nullable, metadata=meta)


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...] = ()
    required: tuple[str, ...] = field(default=())
    # (date column, timestamp column): filled with the UTC date of the timestamp when absent
    derived_dates: tuple[tuple[str, str], ...] = ()

    @cached_property  # built once: ingest asks for it for every file
    def schema(self) -> pa.Schema:
        return pa.schema([c.to_field() for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name, type_, description, unit="", nullable=True) -> Column:
    return Column(name, type_, description, unit, nullable)


_SKY = (
    _c("ra_deg", pa.float64(), "right ascension (ICRS) of the target or beam centre", "deg"),
    _c("dec_deg", pa.float64(), "declination (ICRS) of the target or beam centre", "deg"),
)

VOLTAGES = TableSpec(
    "voltages",
    "complex-voltage snapshots (raw recordings) as interleaved complex64",
    (
        _c("snapshot_id", pa.string(), "unique id of the snapshot", nullable=False),
        _c("source_file", pa.string(), "file the snapshot was read from"),
        _c("target", pa.string(), "name of the observed target"),
        *_SKY,
        _c("site", pa.string(), "observatory code (GBT, Parkes, ATA, FAST, MeerKAT, ...)"),
        _c("observed_at", TIMESTAMP_UTC, "UTC time of the first sample"),
        _c("sample_rate_hz", pa.float64(), "complex sample rate", "Hz"),
        _c("center_freq_hz", pa.float64(), "sky frequency at the band centre", "Hz"),
        _c("n_samples", pa.int64(), "number of complex samples in `samples`"),
        _c("samples", pa.binary(), "complex64 little-endian samples, n_samples of them"),
        _c("label", pa.string(), "signal classification of a simulated or labelled snapshot"),
        _c("polarization", pa.int32(), "polarization (feed) index of the samples"),
        _c("parent_id", pa.string(), "id of the recording this row is a chunk of"),
        _c("chunk_index", pa.int32(), "0-based position of this row among the chunks of parent_id"),
        _c("n_chunks", pa.int32(), "number of rows (chunks) of parent_id"),
        _c("first_sample", pa.int64(), "index of the first sample of this row in its stream"),
    ),
    required=("snapshot_id", "samples", "n_samples", "sample_rate_hz"),
)

SPECTROGRAMS = TableSpec(
    "spectrograms",
    "power spectrograms (filterbank data): float32 power[time, chan]",
    (
        _c("spectrogram_id", pa.string(), "unique id of the spectrogram", nullable=False),
        _c("source_file", pa.string(), "file the spectrogram was read from"),
        _c("target", pa.string(), "name of the observed target"),
        *_SKY,
        _c("site", pa.string(), "observatory code (GBT, Parkes, ATA, FAST, MeerKAT, ...)"),
        _c("start_at", TIMESTAMP_UTC, "UTC time of the first spectrum"),
        _c("tsamp_s", pa.float64(), "time between spectra", "s"),
        _c("fch1_hz", pa.float64(), "sky frequency of channel 0", "Hz"),
        _c("foff_hz", pa.float64(), "channel width, negative when frequency falls", "Hz"),
        _c("n_time", pa.int32(), "number of spectra (rows of `power`)"),
        _c("n_chans", pa.int32(), "number of channels (columns of `power`)"),
        _c("power", pa.binary(), "float32 little-endian power, C order [time, chan]"),
        _c("parent_id", pa.string(), "id of the whole spectrogram this row is a frequency chunk of"),
        _c("chunk_index", pa.int32(), "0-based position of this frequency chunk (channel order)"),
        _c("n_chunks", pa.int32(), "number of frequency chunks of parent_id"),
    ),
    required=("spectrogram_id", "power", "n_time", "n_chans"),
)

SIGNAL_EVENTS = TableSpec(
    "signal_events",
    "narrow-band signal detections (hits) from radio SETI searches",
    (
        _c("event_id", pa.int64(), "unique id of the event", nullable=False),
        _c("observed_at", TIMESTAMP_UTC, "UTC time of the detection", nullable=False),
        _c("target", pa.string(), "name of the observed target", nullable=False),
        _c("ra_deg", pa.float64(), "right ascension (ICRS) of the beam", "deg", False),
        _c("dec_deg", pa.float64(), "declination (ICRS) of the beam", "deg", False),
        _c("site", pa.string(), "observatory code (GBT, Parkes, ATA, FAST, MeerKAT, ...)"),
        _c("beam", pa.int32(), "beam number of a multi-beam receiver"),
        _c("freq_hz", pa.float64(), "topocentric frequency of the hit", "Hz", False),
        _c("drift_hz_s", pa.float64(), "frequency drift rate", "Hz/s", False),
        _c("snr", pa.float64(), "signal-to-noise ratio of the hit", "", False),
        _c("bandwidth_hz", pa.float64(), "bandwidth of the hit", "Hz"),
        _c("source_file", pa.string(), "file the event was ingested from"),
        _c("obs_date", pa.date32(), "UTC date of observed_at (partition column)", "", False),
        _c("spectrogram_id", pa.string(), "spectrogram the hit was found in (astrolake search), else NULL"),
    ),
    partition_by=("obs_date",),
    derived_dates=(("obs_date", "observed_at"),),
    required=("observed_at", "target", "ra_deg", "dec_deg", "freq_hz", "drift_hz_s", "snr"),
)

IMAGES = TableSpec(
    "images",
    "2-D images, one row per FITS image HDU, pixels float32 with BSCALE/BZERO applied",
    (
        _c("image_id", pa.string(), "unique id of the image", nullable=False),
        _c("source_file", pa.string(), "FITS file the image was read from"),
        _c("hdu", pa.int32(), "index of the HDU in the file"),
        _c("observed_at", TIMESTAMP_UTC, "UTC start of the exposure (DATE-OBS)"),
        _c("telescope", pa.string(), "TELESCOP keyword"),
        _c("instrument", pa.string(), "INSTRUME keyword"),
        _c("filter", pa.string(), "FILTER keyword"),
        _c("exptime_s", pa.float64(), "exposure time (EXPTIME)", "s"),
        _c("object", pa.string(), "OBJECT keyword"),
        _c("width", pa.int32(), "number of pixel columns (NAXIS1)"),
        _c("height", pa.int32(), "number of pixel rows (NAXIS2)"),
        _c("wcs_header", pa.string(), "the WCS as FITS header text"),
        _c("ra_center_deg", pa.float64(), "right ascension of the image centre", "deg"),
        _c("dec_center_deg", pa.float64(), "declination of the image centre", "deg"),
        _c("pixels", pa.binary(), "float32 little-endian pixels, C order [height, width]"),
    ),
    required=("image_id", "pixels", "width", "height"),
)

SOURCES = TableSpec(
    "sources",
    "sources extracted from images (SEP), positions 0-based",
    (
        _c("image_id", pa.string(), "image the source was found in", nullable=False),
        _c("source_id", pa.int64(), "index of the source within its image", nullable=False),
        _c("x_pix", pa.float64(), "x centroid, 0-based", "pix"),
        _c("y_pix", pa.float64(), "y centroid, 0-based", "pix"),
        *_SKY,
        _c("flux", pa.float64(), "summed background-subtracted flux", "adu"),
        _c("flux_err", pa.float64(), "error of flux", "adu"),
        _c("a_pix", pa.float64(), "semi-major axis", "pix"),
        _c("b_pix", pa.float64(), "semi-minor axis", "pix"),
        _c("theta_rad", pa.float64(), "position angle, x axis towards y axis", "rad"),
        _c("flags", pa.int32(), "SEP extraction flags"),
        _c("npix", pa.int32(), "number of pixels above threshold"),
    ),
    required=("image_id", "source_id"),
)

SPECTRA = TableSpec(
    "spectra",
    "1-D spectra: wavelength, flux and error arrays",
    (
        _c("spectrum_id", pa.string(), "unique id of the spectrum", nullable=False),
        _c("source_file", pa.string(), "file the spectrum was read from"),
        _c("object", pa.string(), "OBJECT keyword"),
        _c("observed_at", TIMESTAMP_UTC, "UTC time of the observation"),
        *_SKY,
        _c("wavelength_aa", pa.list_(pa.float64()), "wavelength of each sample", "Angstrom"),
        _c("flux", pa.list_(pa.float64()), "flux of each sample"),
        _c("flux_err", pa.list_(pa.float64()), "1-sigma error of each sample"),
    ),
    required=("spectrum_id", "wavelength_aa", "flux"),
)

REJECTED = TableSpec(
    "_rejected",
    "quarantine: input rows that were not committed, with the reason",
    (
        _c("target_table", pa.string(), "table the row was meant for", nullable=False),
        _c("source_file", pa.string(), "file the row came from", nullable=False),
        _c("source_sha256", pa.string(), "SHA-256 of the source file", nullable=False),
        _c("source_size_bytes", pa.int64(), "size of the source file (file-level rejects)", "bytes"),
        _c("row_number", pa.int64(), "1-based data row in the source file", nullable=False),
        _c("reason", pa.string(), "why the row was rejected", nullable=False),
        _c("record_json", pa.string(), "the row as read, as JSON"),
        _c("rejected_at", TIMESTAMP_UTC, "UTC time of the rejection", nullable=False),
    ),
)

CATALOG: dict[str, TableSpec] = {
    t.name: t for t in (VOLTAGES, SPECTROGRAMS, SIGNAL_EVENTS, IMAGES, SOURCES, SPECTRA, REJECTED)
}


def spec(name: str) -> TableSpec | None:
    """The catalog spec of a table, or None for a user table (made by CREATE TABLE AS)."""
    return CATALOG.get(name)


_SQL_TYPES = {
    pa.string(): "string",
    pa.large_string(): "string",
    pa.int8(): "tinyint",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    pa.binary(): "binary",
    pa.large_binary(): "binary",
}


def sql_type(arrow_type: pa.DataType) -> str:
    """The Spark SQL name of an Arrow type (the type names users see in describe)."""
    if arrow_type in _SQL_TYPES:
        return _SQL_TYPES[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz else "timestamp_ntz"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"array<{sql_type(arrow_type.value_type)}>"
    if pa.types.is_struct(arrow_type):
        return "struct<" + ",".join(f"{f.name}:{sql_type(f.type)}" for f in arrow_type) + ">"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    return str(arrow_type)
