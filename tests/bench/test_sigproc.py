"""bench.sigproc: the minimal SIGPROC filterbank reader and writer the dedoppler benchmark uses."""

import numpy as np
import pytest

from bench.sigproc import read_filterbank, read_header, write_filterbank
from tests.conftest import REAL_DATA

GBT_FIL = REAL_DATA / "seti" / "setigen_sample_gbt_cband.fil"


def test_reads_the_real_gbt_cutout():
    if not GBT_FIL.exists():
        pytest.skip(f"real GBT filterbank not found at {GBT_FIL}")
    header, offset = read_header(GBT_FIL)
    assert offset == 394  # the published header length
    assert header["source_name"] == "DIAG_SGR_B2" and header["telescope_id"] == 6
    assert header["fch1"] == pytest.approx(6663.99999987334, rel=1e-12)
    assert header["foff"] == pytest.approx(-1.3969838619232178e-06, rel=1e-12)
    assert header["tsamp"] == pytest.approx(1.431655765333332, rel=1e-12)
    _, data = read_filterbank(GBT_FIL)
    assert data.shape == (32, 1024)
    # setigen's own tests assert these for this file
    assert float(data.mean()) == pytest.approx(484170.38, rel=1e-6)
    assert float(data.std()) == pytest.approx(253477.6, rel=1e-6)
    assert float(data.min()) == pytest.approx(15350.96, rel=1e-6)


def test_write_then_read(tmp_path):
    data = np.random.default_rng(0).random((8, 16)).astype(np.float32)
    header = {"telescope_id": 6, "machine_id": 20, "data_type": 1, "rawdatafile": "x.raw", "source_name": "TEST",
              "fch1": 1420.0, "foff": -0.001, "nbeams": 1, "ibeam": 1, "tstart": 60000.0, "tsamp": 1.5}
    write_filterbank(tmp_path / "t.fil", header, data)
    got_header, got = read_filterbank(tmp_path / "t.fil")
    assert got_header == {**header, "nchans": 16, "nbits": 32, "nifs": 1}
    np.testing.assert_array_equal(got, data)


def test_not_a_filterbank(tmp_path):
    path = tmp_path / "x.fil"
    path.write_bytes(b"\x05\x00\x00\x00HELLO")
    with pytest.raises(ValueError, match="not a SIGPROC filterbank"):
        read_header(path)
