"""Waterfall plots: a spectrogram as radio SETI draws it, with the drift lines of its hits.

Frequency (MHz) runs along x, time since the start (s) down y, power in dB (10 log10, relative to
the median) as the colour. A spectrogram stored in frequency chunks (``parent_id``) is put back
together by ``chunk_index``. Hits are the ``signal_events`` rows with the spectrogram's id: each is
a line from (freq_hz, 0) to (freq_hz + drift_hz_s * T, T), so a hit lies on the track it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlglot import exp

from engine.errors import CatalogError, UsageError

EVENT_HALF_WIDTH_CHANS = 64


@dataclass
class Waterfall:
    spectrogram_id: str
    target: str | None
    power: np.ndarray  # [time, chan]
    tsamp_s: float
    fch1_hz: float
    foff_hz: float

    @property
    def duration_s(self) -> float:
        return self.power.shape[0] * self.tsamp_s

    def freqs_hz(self) -> np.ndarray:
        return self.fch1_hz + self.foff_hz * np.arange(self.power.shape[1])


def _rows(session, table: str, condition: exp.Expression, columns: list[str]) -> list[dict]:
    query = exp.select(*columns).from_(table).where(condition)
    return session.execute(query).to_pylist()


def load_waterfall(session, spectrogram_id: str) -> Waterfall:
    """The spectrogram with this id, or the chunks whose parent_id it is, joined along frequency."""
    columns = ["spectrogram_id", "target", "tsamp_s", "fch1_hz", "foff_hz", "n_time", "n_chans", "power",
               "chunk_index"]
    literal = exp.Literal.string(spectrogram_id)
    rows = _rows(session, "spectrograms", exp.column("spectrogram_id").eq(literal), columns)
    if not rows:
        rows = sorted(_rows(session, "spectrograms", exp.column("parent_id").eq(literal.copy()), columns),
                      key=lambda r: r["chunk_index"] or 0)
    if not rows:
        raise CatalogError(f"no spectrogram '{spectrogram_id}' (give a spectrograms.spectrogram_id or parent_id)")
    parts = [np.frombuffer(r["power"], dtype="<f4").reshape(r["n_time"], r["n_chans"]) for r in rows]
    if len({p.shape[0] for p in parts}) != 1:
        raise CatalogError(f"the chunks of '{spectrogram_id}' have different numbers of time steps")
    first = rows[0]
    return Waterfall(spectrogram_id, first["target"], np.concatenate(parts, axis=1), first["tsamp_s"],
                     first["fch1_hz"], first["foff_hz"])


def load_hits(session, spectrogram_ids: list[str], table: str = "signal_events") -> list[dict]:
    if not session.lake.exists(table):
        return []
    condition = exp.column("spectrogram_id").isin(*[exp.Literal.string(s) for s in spectrogram_ids])
    return _rows(session, table, condition, ["event_id", "freq_hz", "drift_hz_s", "snr"])


def _chunk_ids(session, waterfall_id: str) -> list[str]:
    rows = _rows(session, "spectrograms", exp.column("parent_id").eq(exp.Literal.string(waterfall_id)),
                 ["spectrogram_id"])
    return [waterfall_id] + [r["spectrogram_id"] for r in rows]


def draw(waterfall: Waterfall, hits: list[dict], out: Path, title: str, chans: slice | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    power = waterfall.power if chans is None else waterfall.power[:, chans]
    freqs = waterfall.freqs_hz() if chans is None else waterfall.freqs_hz()[chans]
    floor = np.median(power[np.isfinite(power) & (power > 0)]) if np.any(power > 0) else 1.0
    db = 10.0 * np.log10(np.clip(power, floor * 1e-3, None) / floor)
    lo, hi = freqs.min(), freqs.max()
    half = abs(waterfall.foff_hz) / 2.0
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    # imshow's x runs left to right over the columns: flip when frequency falls with channel index
    image = db[:, ::-1] if waterfall.foff_hz < 0 else db
    shown = ax.imshow(image, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
                      extent=((lo - half) / 1e6, (hi + half) / 1e6, waterfall.duration_s, 0.0))
    fig.colorbar(shown, ax=ax, label="power (dB above the median)")
    for hit in hits:
        f0 = hit["freq_hz"]
        f1 = f0 + hit["drift_hz_s"] * waterfall.duration_s
        ax.plot([f0 / 1e6, f1 / 1e6], [0.0, waterfall.duration_s], color="red", linewidth=1.2, alpha=0.8)
        ax.annotate(f"{hit['snr']:.0f}", (f0 / 1e6, 0.0), color="red", fontsize=7, ha="center", va="bottom")
    ax.set_xlim((lo - half) / 1e6, (hi + half) / 1e6)
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel("time since start (s)")
    ax.set_title(title)
    ax.ticklabel_format(axis="x", useOffset=False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_waterfall(session, spectrogram_id: str, out: Path, with_hits: bool) -> str:
    waterfall = load_waterfall(session, spectrogram_id)
    hits = load_hits(session, _chunk_ids(session, spectrogram_id)) if with_hits else []
    title = f"{waterfall.target or ''} {spectrogram_id}".strip()
    draw(waterfall, hits, out, title)
    return f"wrote {out} ({waterfall.power.shape[0]} x {waterfall.power.shape[1]}, {len(hits)} hits)"


def plot_event(session, event_id: int, out: Path, table: str = "signal_events") -> str:
    rows = _rows(session, table, exp.column("event_id").eq(exp.Literal.number(int(event_id))),
                 ["event_id", "spectrogram_id", "freq_hz", "drift_hz_s", "snr", "target"])
    if not rows:
        raise CatalogError(f"no event {event_id} in {table}")
    hit = rows[0]
    if hit["spectrogram_id"] is None:
        raise UsageError(f"event {event_id} has no spectrogram_id (only hits found by astrolake search can be drawn)")
    chunk = _rows(session, "spectrograms", exp.column("spectrogram_id").eq(exp.Literal.string(hit["spectrogram_id"])),
                  ["parent_id"])
    whole = (chunk[0]["parent_id"] if chunk and chunk[0]["parent_id"] else hit["spectrogram_id"])
    waterfall = load_waterfall(session, whole)
    centre = int(round((hit["freq_hz"] - waterfall.fch1_hz) / waterfall.foff_hz))
    drift_chans = int(np.ceil(abs(hit["drift_hz_s"]) * waterfall.duration_s / abs(waterfall.foff_hz)))
    half = EVENT_HALF_WIDTH_CHANS + drift_chans
    chans = slice(max(0, centre - half), min(waterfall.power.shape[1], centre + half + 1))
    draw(waterfall, [hit], out, f"event {event_id}: {hit['target'] or ''} {hit['drift_hz_s']:+.3f} Hz/s "
                                f"SNR {hit['snr']:.1f}", chans)
    return f"wrote {out} (channels {chans.start}..{chans.stop - 1} of {whole})"
