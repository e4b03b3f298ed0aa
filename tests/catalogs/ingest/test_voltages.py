import json

import numpy as np
import pyarrow as pa
import pytest

from catalogs.ingest.files import parse_or_reject
from catalogs.ingest.voltages import FORMAT, ingest_voltages, unpack_4bit
from tests.catalogs.ingest.builders import compamp, raw_iq, simulated_dat


def rows(lake):
    return sorted(pa.table(lake.delta_table("voltages").to_pyarrow_table()).to_pylist(),
                  key=lambda r: (r["source_file"], r["chunk_index"]))


def samples(row):
    return np.frombuffer(row["samples"], "<c8")


@pytest.mark.parametrize("private", [False, True])
def test_simulated_signal_files(lake, tmp_path, private):
    path, expected = simulated_dat(tmp_path / "sim.dat", seed=3, private=private)
    ingest_voltages(lake, [path])
    [row] = rows(lake)
    assert (row["snapshot_id"], row["label"], row["n_samples"]) == ("uuid-3", "narrowband", 196608)
    np.testing.assert_array_equal(samples(row), expected.astype(np.complex64))
    assert row["sample_rate_hz"] is None


def test_sample_rate_option_for_files_without_one(lake, tmp_path):
    path, _ = simulated_dat(tmp_path / "sim.dat")
    ingest_voltages(lake, [path], sample_rate_hz=8533.0)
    assert rows(lake)[0]["sample_rate_hz"] == 8533.0


def test_four_bit_unpacking():
    packed = np.array([0x7F, 0x80, 0x1F, 0xF1, 0x00], dtype=np.uint8)
    np.testing.assert_array_equal(unpack_4bit(packed), np.array([7 - 1j, -8 + 0j, 1 - 1j, -1 + 1j, 0], np.complex64))


def test_ata_compamp_half_frames_in_time_order_per_polarization_and_subband(lake, tmp_path):
    path, expected = compamp(tmp_path / "x.archive-compamp", n_frames=5, n_sub=3, pols=(0, 1))
    ingest_voltages(lake, [path])
    got = rows(lake)
    assert len(got) == 6 and {r["n_chunks"] for r in got} == {6}
    for row in got:
        sub = round((row["center_freq_hz"] - 1420e6) / 533.333)
        np.testing.assert_array_equal(samples(row), expected[(row["polarization"], sub)])
        assert row["n_samples"] == 5 * 512 and row["site"] == "ATA"
        assert row["sample_rate_hz"] == pytest.approx(533.333 * 1.25)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_raw_iq_with_sidecar_is_chunked_and_reassembles(lake, tmp_path, dtype):
    path, expected = raw_iq(tmp_path / "rec.raw", n=1000, dtype=dtype)
    ingest_voltages(lake, [path], chunk_samples=300)
    got = rows(lake)
    assert [(r["chunk_index"], r["first_sample"], r["n_samples"]) for r in got] == \
        [(0, 0, 300), (1, 300, 300), (2, 600, 300), (3, 900, 100)]
    np.testing.assert_array_equal(np.concatenate([samples(r) for r in got]), expected)
    first = got[0]
    assert (first["target"], first["site"], first["sample_rate_hz"], first["center_freq_hz"]) == \
        ("Cas A", "ATA", 2.5e6, 1.42e9)
    assert first["observed_at"].isoformat() == "2024-05-01T12:00:00+00:00"
    assert (got[1]["observed_at"] - first["observed_at"]).total_seconds() == pytest.approx(300 / 2.5e6)


def test_sidecar_errors(tmp_path):
    path, _ = raw_iq(tmp_path / "r.raw")
    path.with_suffix(".json").write_text(json.dumps({"dtype": "int4", "sample_rate_hz": 1.0}))
    assert "dtype must be one of" in parse_or_reject(FORMAT, str(path), "0" * 64)[1]
    path.with_suffix(".json").write_text(json.dumps({"dtype": "int8"}))
    assert "sample_rate_hz must be a positive number" in parse_or_reject(FORMAT, str(path), "0" * 64)[1]


def test_unknown_layout(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"1234")
    assert "unknown voltage layout" in parse_or_reject(FORMAT, str(tmp_path / "x.bin"), "0" * 64)[1]
