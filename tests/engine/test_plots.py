"""Waterfall plots: the spectrogram (chunks put back together), its hits' drift lines, PNG files."""

import numpy as np
import pyarrow as pa
import pytest

import engine
from engine.errors import CatalogError
from engine.plots import load_waterfall, plot_event, plot_waterfall
from engine.seti_search import search
from tests.engine.test_seti_search import lake, spectrogram  # noqa: F401  (the fixture)


def red_pixels(path) -> int:
    import matplotlib.image

    rgb = matplotlib.image.imread(str(path))[..., :3]
    return int(np.sum((rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)))


def test_waterfall_with_and_without_hits(lake, tmp_path):  # noqa: F811
    with engine.connect(lake.root) as session:
        search(session, "obs-a")
        plain = tmp_path / "plain.png"
        assert "0 hits" in plot_waterfall(session, "obs-a", plain, with_hits=False)
        drawn = tmp_path / "hits.png"
        hits = session.sql("SELECT count(*) AS n FROM signal_events")["n"][0].as_py()
        assert hits >= 1
        assert plot_waterfall(session, "obs-a", drawn, with_hits=True).endswith(f"(16 x 256, {hits} hits)")
        assert red_pixels(plain) == 0 < red_pixels(drawn)
        event = session.sql("SELECT event_id FROM signal_events ORDER BY snr DESC LIMIT 1")["event_id"][0].as_py()
        zoom = tmp_path / "event.png"
        assert "channels" in plot_event(session, event, zoom) and red_pixels(zoom) > 0
        with pytest.raises(CatalogError, match="no spectrogram 'nope'"):
            plot_waterfall(session, "nope", tmp_path / "x.png", with_hits=False)
        with pytest.raises(CatalogError, match="no event 42"):
            plot_event(session, 42, tmp_path / "x.png")


def test_chunks_are_put_back_together(tmp_path):
    from catalogs.lake import Lake

    lake = Lake(tmp_path / "lake")
    whole = spectrogram("obs", "A", 1, 50)
    power = np.frombuffer(whole["power"], dtype="<f4").reshape(16, 256)
    rows = []
    for i in (1, 0):  # stored out of order
        part = dict(whole, spectrogram_id=f"obs-{i}", parent_id="obs", chunk_index=i, n_chunks=2, n_chans=128,
                    fch1_hz=whole["fch1_hz"] + i * 128 * whole["foff_hz"],
                    power=np.ascontiguousarray(power[:, i * 128:(i + 1) * 128]).tobytes())
        rows.append(part)
    schema = lake.schema("spectrograms")
    lake.append("spectrograms", pa.Table.from_pylist(rows, schema=pa.schema([schema.field(k) for k in rows[0]])))
    with engine.connect(lake.root) as session:
        joined = load_waterfall(session, "obs")
        assert np.array_equal(joined.power, power) and joined.fch1_hz == whole["fch1_hz"]
        assert load_waterfall(session, "obs-1").power.shape == (16, 128)


def test_cli_plot(lake, tmp_path):  # noqa: F811
    from tests.conftest import run_astrolake

    out = tmp_path / "w.png"
    done = run_astrolake("--lake", str(lake.root), "plot", "waterfall", "obs-b", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 1000
    missing = run_astrolake("--lake", str(lake.root), "plot", "event", "7", "--out", str(out))
    assert missing.returncode == 1 and missing.stderr.startswith("error: no event 7")
