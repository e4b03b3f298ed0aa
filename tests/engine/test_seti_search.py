"""`astrolake search`: dedoppler hits of spectrograms into signal_events, once per spectrogram."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import engine
from catalogs.lake import Lake
from engine.errors import IngestError
from engine.seti_search import search
from tests.conftest import run_astrolake

T0 = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


def spectrogram(sid, target, drift_chans, start_chan, ra=10.0, seed=0):
    rng = np.random.default_rng(seed)
    n_time, n_chans = 16, 256
    power = rng.chisquare(2, size=(n_time, n_chans)).astype("<f4")
    for t in range(n_time):
        power[t, start_chan + drift_chans * t] += 60.0
    return {"spectrogram_id": sid, "source_file": f"/data/{sid}.fil", "target": target, "ra_deg": ra,
            "dec_deg": -5.0 if ra is not None else None, "site": "GBT", "start_at": T0, "tsamp_s": 1.0,
            "fch1_hz": 1.4e9, "foff_hz": -1.0, "n_time": n_time, "n_chans": n_chans, "power": power.tobytes()}


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path / "lake")
    rows = [spectrogram("obs-a", "TRAPPIST-1", 1, 50), spectrogram("obs-b", "Tau Ceti", 0, 120, seed=1),
            spectrogram("obs-c", None, 1, 60, ra=None, seed=2)]
    schema = lake.schema("spectrograms")
    lake.append("spectrograms", pa.Table.from_pylist(rows, schema=pa.schema([schema.field(k) for k in rows[0]])))
    return lake


def test_hits_become_signal_events_once(lake, engine_name):
    with engine.connect(lake.root, engine=engine_name) as session:
        report = search(session, "obs-*", max_drift_hz_s=4.0, snr_min=10.0)
        assert sorted(report.searched) == ["obs-a", "obs-b"] and report.unplaced == ["obs-c"]
        events = session.sql("SELECT spectrogram_id, target, observed_at, ra_deg, dec_deg, site, freq_hz, drift_hz_s, "
                             "snr, bandwidth_hz, obs_date, event_id FROM signal_events ORDER BY snr DESC").to_pylist()
        strongest = {e["spectrogram_id"]: e for e in reversed(events)}
        a, b = strongest["obs-a"], strongest["obs-b"]
        assert a["target"] == "TRAPPIST-1" and a["observed_at"] == T0 and a["site"] == "GBT"
        assert a["obs_date"] == T0.date() and (a["ra_deg"], a["dec_deg"]) == (10.0, -5.0)
        assert abs(a["freq_hz"] - (1.4e9 - 50.0)) <= 1.0 and abs(a["drift_hz_s"] - (-1.0)) <= 0.2
        assert abs(b["freq_hz"] - (1.4e9 - 120.0)) <= 1.0 and abs(b["drift_hz_s"]) <= 0.2
        assert len({e["event_id"] for e in events}) == len(events)
        again = search(session, "obs-*", max_drift_hz_s=4.0, snr_min=10.0)
        assert again.searched == [] and sorted(again.skipped) == ["obs-a", "obs-b"]
        assert session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py() == len(events)
        other = search(session, "TRAPPIST*", max_drift_hz_s=2.0, snr_min=10.0)  # other settings: searched again
        assert other.searched == ["obs-a"]


def test_bad_settings_and_cli(lake):
    with engine.connect(lake.root) as session:
        with pytest.raises(IngestError, match="--snr must be positive"):
            search(session, "*", snr_min=0)
        # ``_`` and ``%`` are literal characters, ``?`` and ``*`` the wildcards
        assert search(session, "obs_a").summary() == "no spectrogram matches"
        assert search(session, "%").summary() == "no spectrogram matches"
        assert search(session, "OBS?A").searched == ["obs-a"]
    done = run_astrolake("--lake", str(lake.root), "search", "*tau*", "--into", "tau_hits")
    assert done.returncode == 0, done.stderr
    assert "searched 1 spectrogram" in done.stdout and "into tau_hits" in done.stdout
    nothing = run_astrolake("--lake", str(lake.root), "search", "nomatch")
    assert nothing.returncode == 0 and "no spectrogram matches" in nothing.stdout
