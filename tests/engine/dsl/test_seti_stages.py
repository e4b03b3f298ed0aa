"""Sky's SETI stages: search drift, classify and cadence, compiled and run on both engines."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import engine
from catalogs.lake import Lake
from engine.errors import SkyCompileError

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


def hit(target, minutes, freq_hz, drift_hz_s=0.0, snr=20.0):
    return {"observed_at": T0 + dt.timedelta(minutes=minutes), "target": target, "ra_deg": 10.0, "dec_deg": 20.0,
            "site": "GBT", "freq_hz": freq_hz, "drift_hz_s": drift_hz_s, "snr": snr, "bandwidth_hz": 2.0}


@pytest.fixture
def cadence_lake(tmp_path):
    """An ABACAD cadence: ON scans of A at 0, 10, 20 min, OFF scans of B, C, D at 5, 15, 25 min."""
    rows = []
    for scan, minutes in enumerate((0, 10, 20)):
        rows.append(hit("A", minutes, 1e9 + 0.5 * minutes * 60, drift_hz_s=0.5))  # drifting ET: in every ON scan
        rows.append(hit("A", minutes, 1.2e9))  # interference: ON and OFF
        if scan == 0:
            rows.append(hit("A", minutes, 1.3e9))  # a one-off: first ON scan only
    for target, minutes in (("B", 5), ("C", 15), ("D", 25)):
        rows.append(hit(target, minutes, 1.2e9 + 3.0))  # the interference, within the tolerance
    rows.append(hit("B", 5, 1.4e9))  # only OFF
    lake = Lake(tmp_path / "lake")
    table = pa.Table.from_pylist(rows)
    lake.append("signal_events", table.append_column("event_id", pa.array(range(len(rows)), pa.int64())))
    return lake


def test_cadence_keeps_what_every_on_scan_has_and_no_off_scan(cadence_lake, engine_name):
    with engine.connect(cadence_lake.root, engine=engine_name) as session:
        result = session.sky('from signal_events cadence on "A" off "B", "C", "D" '
                             'select observed_at, freq_hz order by observed_at')
    assert result["freq_hz"].to_pylist() == [1e9, 1e9 + 300.0, 1e9 + 600.0]


def test_cadence_window_widens_with_drift_and_tolerance(cadence_lake, engine_name):
    with engine.connect(cadence_lake.root, engine=engine_name) as session:
        # a tolerance under the 3 Hz offset of the OFF copies keeps the interference as a candidate
        narrow = session.sky('from signal_events cadence on "A" off "B", "C", "D" tolerance 1 Hz '
                             'select count() as n group by freq_hz order by freq_hz')
        assert narrow["n"].to_pylist() == [1, 1, 1, 3]
        # without drift the ET hits of later scans are 300 and 600 Hz away: no longer in every scan
        still = session.sky('from signal_events where drift < 0.1 Hz/s cadence on "A" off "B" select count() as n')
        assert still["n"].to_pylist() == [0]


def test_cadence_errors_name_the_place():
    from engine.dsl.compiler import compile_sky

    with pytest.raises(SkyCompileError, match="cannot be both ON and OFF"):
        compile_sky('from signal_events cadence on "A" off "A" select freq')
    with pytest.raises(SkyCompileError, match="must be in Hz"):
        compile_sky('from signal_events cadence on "A" off "B" tolerance 3 arcsec select freq')
    with pytest.raises(SkyCompileError, match="search drift needs the column"):
        compile_sky("from signal_events search drift select freq")


@pytest.fixture
def tone_lake(tmp_path):
    """One spectrogram with a drifting tone in chi-squared noise (drift 2 channels per step)."""
    rng = np.random.default_rng(3)
    n_time, n_chans = 16, 256
    power = rng.chisquare(2, size=(n_time, n_chans)).astype("<f4")
    for t in range(n_time):
        power[t, 40 + 2 * t] += 60.0
    lake = Lake(tmp_path / "lake")
    lake.append("spectrograms", pa.table({
        "spectrogram_id": ["s1"], "target": ["A"], "ra_deg": [10.0], "dec_deg": [20.0], "site": ["GBT"],
        "start_at": pa.array([T0], pa.timestamp("us", tz="UTC")), "tsamp_s": [1.0], "fch1_hz": [1e9],
        "foff_hz": [1.0], "n_time": pa.array([n_time], pa.int32()), "n_chans": pa.array([n_chans], pa.int32()),
        "power": pa.array([power.tobytes()], pa.binary()),
    }))
    return lake


def test_search_drift_finds_the_tone(tone_lake, engine_name):
    with engine.connect(tone_lake.root, engine=engine_name) as session:
        hits = session.sky("from spectrograms search drift max 4 Hz/s snr 10 "
                           "select target, observed_at, freq, drift, snr order by snr desc").to_pylist()
    assert hits and hits[0]["target"] == "A" and hits[0]["observed_at"] == T0
    assert abs(hits[0]["freq_hz"] - (1e9 + 40.0)) <= 1.0 and abs(hits[0]["drift_hz_s"] - 2.0) <= 0.2


def test_classify_adds_a_class_and_probability(tone_lake, engine_name):
    with engine.connect(tone_lake.root, engine=engine_name) as session:
        rows = session.sky("from spectrograms classify select spectrogram_id, signal_class, class_probability").to_pylist()
    assert len(rows) == 1 and isinstance(rows[0]["signal_class"], str) and 0.0 <= rows[0]["class_probability"] <= 1.0
