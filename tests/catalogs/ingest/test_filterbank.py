import numpy as np
import pyarrow as pa
import pytest

from catalogs.ingest.files import parse_or_reject
from catalogs.ingest.filterbank import FORMAT, ingest_filterbank, read_sigproc_header
from catalogs.lake import Lake
from tests.catalogs.ingest.builders import fbh5, filterbank
from tests.conftest import REAL_DATA

GBT = REAL_DATA / "seti" / "setigen_sample_gbt_cband.fil"
CRAB = REAL_DATA / "pulsar" / "sigpyproc3_parkes_8bit_1_crab.fil"
needs_real = pytest.mark.skipif(not GBT.exists(), reason=f"real data not found at {REAL_DATA}")


def rows(lake):
    return sorted(pa.table(lake.delta_table("spectrograms").to_pyarrow_table()).to_pylist(),
                  key=lambda r: (r["source_file"], r["chunk_index"]))


def power(row):
    return np.frombuffer(row["power"], "<f4").reshape(row["n_time"], row["n_chans"])


@needs_real
def test_gbt_cband_matches_setigens_published_values(lake):
    ingest_filterbank(lake, [GBT])
    [row] = rows(lake)
    p = power(row)
    assert p.shape == (32, 1024)
    assert float(p.mean()) == pytest.approx(484170.38, rel=1e-6)
    assert float(p.std()) == pytest.approx(253477.6, rel=1e-6)
    assert float(p.min()) == pytest.approx(15350.96, rel=1e-6)
    assert row["fch1_hz"] == pytest.approx(6663.99999987334e6, rel=1e-15)
    assert row["foff_hz"] == pytest.approx(-1.3969838619232178, rel=1e-15)
    assert row["tsamp_s"] == pytest.approx(1.431655765333332, rel=1e-15)
    assert (row["target"], row["site"]) == ("DIAG_SGR_B2", "GBT")
    assert row["start_at"].isoformat().startswith("2018-12-13T17:12:37")
    assert row["ra_deg"] == pytest.approx((17 + 47 / 60 + 15.0 / 3600) * 15)
    assert row["dec_deg"] == pytest.approx(-(28 + 22 / 60 + 59.16 / 3600))
    assert (row["n_chunks"], row["chunk_index"], row["parent_id"]) == (1, 0, row["spectrogram_id"])


@needs_real
def test_parkes_8bit_crab(lake):
    ingest_filterbank(lake, [CRAB])
    [row] = rows(lake)
    p = power(row)
    assert p.shape == (4096, 832)
    assert float(p.mean()) == pytest.approx(127.996, abs=1e-3) and (p.min(), p.max()) == (0, 255)
    assert (row["site"], row["target"], row["fch1_hz"], row["foff_hz"]) == ("Parkes", "J0534+2200", 4030e6, -4e6)


@pytest.mark.parametrize("nbits", [8, 16, 32])
def test_sigproc_bit_depths_round_trip(lake, tmp_path, nbits):
    path, data = filterbank(tmp_path / f"b{nbits}.fil", nbits=nbits, n_time=5, nchans=12)
    ingest_filterbank(lake, [path])
    [row] = rows(lake)
    np.testing.assert_array_equal(power(row), data.astype(np.float32))
    assert row["fch1_hz"] == 1420e6 and row["foff_hz"] == -0.5e6


def test_large_spectrogram_is_split_into_frequency_chunks_that_reassemble(lake, tmp_path):
    path, data = filterbank(tmp_path / "big.fil", n_time=16, nchans=64)
    ingest_filterbank(lake, [path], chunk_mb=16 * 16 * 4 / (1 << 20))  # 16 channels per row
    got = rows(lake)
    assert [(r["chunk_index"], r["n_chunks"], r["n_chans"]) for r in got] == [(k, 4, 16) for k in range(4)]
    assert len({r["parent_id"] for r in got}) == 1
    np.testing.assert_array_equal(np.concatenate([power(r) for r in got], axis=1), data)
    assert [r["fch1_hz"] for r in got] == [(1420.0 - 0.5 * 16 * k) * 1e6 for k in range(4)]


def test_fbh5_bitshuffle(lake, tmp_path):
    path, data = fbh5(tmp_path / "voyager.h5")
    ingest_filterbank(lake, [path])
    [row] = rows(lake)
    np.testing.assert_array_equal(power(row), data)
    assert (row["target"], row["site"], row["fch1_hz"], row["tsamp_s"]) == ("VOYAGER-1", "GBT", 8000e6, 18.25)


def test_header_reader(tmp_path):
    path, _ = filterbank(tmp_path / "h.fil", nsamples=8)
    header, length = read_sigproc_header(str(path))
    assert header["nchans"] == 16 and header["source_name"] == "TESTSRC" and header["nsamples"] == 8
    assert length == path.stat().st_size - 8 * 16 * 4


def test_nsamples_disagreeing_with_the_data_is_rejected(tmp_path):
    path, _ = filterbank(tmp_path / "h.fil", nsamples=9)
    rows_, reason = parse_or_reject(FORMAT, str(path), "0" * 64)
    assert rows_ is None and "nsamples 9" in reason


def test_multi_if_files_are_rejected_not_mixed(tmp_path):
    path, _ = filterbank(tmp_path / "pol.fil", nifs=2, n_time=4, nchans=16)
    rows_, reason = parse_or_reject(FORMAT, str(path), "0" * 64)
    assert rows_ is None and "nifs 2" in reason


def test_mixed_good_and_bad_filterbanks(tmp_path):
    lake = Lake(tmp_path / "lake")
    good, _ = filterbank(tmp_path / "good.fil")
    bad, _ = filterbank(tmp_path / "bad.fil", extra_bytes=5)
    report = ingest_filterbank(lake, [good, bad])
    assert report.partial and [r.path for r in report.rejected] == [str(bad)]
    assert report.rows == {"spectrograms": 1}
