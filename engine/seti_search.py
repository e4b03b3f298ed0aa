"""``astrolake search``: the de-Doppler drift search over spectrograms, its hits into the lake.

The search is one query, so it runs on either engine::

    SELECT spectrogram_id, source_file, target, ra_deg, dec_deg, site, start_at, h.*
    FROM spectrograms LATERAL VIEW explode(dedoppler(power, n_time, n_chans, tsamp_s, fch1_hz,
         foff_hz, max_drift, snr_min)) t AS h
    WHERE <the spectrograms chosen>

and its hits become ``signal_events`` rows: observed_at is the spectrogram's start (the time the
hit's frequency refers to), target, position and site are the spectrogram's, bandwidth_hz the
hit's frequency extent, ``spectrogram_id`` names the spectrogram so a hit can be drawn on its
waterfall. One search call is one Delta commit, and it is idempotent: each spectrogram searched is
recorded (with the search settings) as an app transaction of the target table, so running the same
search again adds nothing, and a new spectrogram is searched by the next run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.errors import IngestError

HIT_COLUMNS = ("freq_hz", "drift_hz_s", "snr", "freq_start_hz", "freq_end_hz")


@dataclass
class SearchReport:
    table: str
    searched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # spectrograms without a position or target
    hits: int = 0
    version: int | None = None

    def summary(self) -> str:
        lines = []
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} spectrogram{'s' if len(self.skipped) != 1 else ''} "
                         "already searched with these settings")
        for sid in self.unplaced:
            lines.append(f"not searched: spectrogram {sid} has no target or no ra_deg/dec_deg "
                         "(signal_events needs them)")
        if self.searched:
            n = len(self.searched)
            lines.append(f"searched {n} spectrogram{'s' if n != 1 else ''}: {self.hits} hits into {self.table} "
                         f"(version {self.version})")
        elif not self.skipped and not self.unplaced:
            lines.append("no spectrogram matches")
        return "\n".join(lines)


def settings_key(max_drift_hz_s: float, snr_min: float) -> str:
    return f"max_drift_hz_s={max_drift_hz_s:g},snr_min={snr_min:g}"


def app_id(spectrogram_id: str, max_drift_hz_s: float, snr_min: float) -> str:
    return f"astrolake.search:{spectrogram_id}:{settings_key(max_drift_hz_s, snr_min)}"


def _pattern_condition(pattern: str) -> exp.Expression:
    """A spectrogram matches when its id, target or source file matches ``pattern`` (``*`` and ``?``
    wildcards, case-insensitive), as SQL LIKE nodes (no string splicing)."""
    like = pattern.replace("%", r"\%").replace("_", r"\_").replace("*", "%").replace("?", "_")
    literal = exp.Literal.string(like.lower())
    return exp.or_(*[exp.Escape(this=exp.Like(this=exp.func("lower", exp.column(c)), expression=literal.copy()),
                                expression=exp.Literal.string("\\"))
                     for c in ("spectrogram_id", "target", "source_file")])


def candidates(session, pattern: str) -> pa.Table:
    """The spectrograms a pattern chooses: id, and whether they can carry hits."""
    query = exp.select("spectrogram_id", "target", "ra_deg", "dec_deg").from_("spectrograms").where(
        _pattern_condition(pattern))
    return session.execute(query)


def search_query(ids: list[str], max_drift_hz_s: float, snr_min: float) -> exp.Select:
    call = exp.Anonymous(this="dedoppler", expressions=[
        *[exp.column(c) for c in ("power", "n_time", "n_chans", "tsamp_s", "fch1_hz", "foff_hz")],
        exp.Literal.number(repr(float(max_drift_hz_s))), exp.Literal.number(repr(float(snr_min)))])
    hit = exp.to_identifier("h")
    select = exp.select(
        *[exp.column(c) for c in ("spectrogram_id", "source_file", "target", "ra_deg", "dec_deg", "site")],
        exp.alias_(exp.column("start_at"), "observed_at"),
        *[exp.alias_(exp.Dot(this=exp.column(hit.copy()), expression=exp.to_identifier(c)), c) for c in HIT_COLUMNS],
        exp.alias_(exp.Dot(this=exp.column(hit.copy()), expression=exp.to_identifier("chan_index")), "chan_index"),
    ).from_("spectrograms")
    select.set("laterals", [exp.Lateral(this=exp.Explode(this=call), view=True,
                                        alias=exp.TableAlias(this=exp.to_identifier("t"), columns=[hit]))])
    return select.where(exp.column("spectrogram_id").isin(*[exp.Literal.string(i) for i in ids]))


def event_ids(spectrogram_ids: list, chan_index: np.ndarray, drift: np.ndarray) -> pa.Array:
    """Deterministic 63-bit event ids: the same hit of the same spectrogram always gets the same id."""
    out = np.empty(len(spectrogram_ids), dtype=np.int64)
    for i, (sid, chan, rate) in enumerate(zip(spectrogram_ids, chan_index, drift)):
        digest = hashlib.sha256(f"{sid}:{int(chan)}:{float(rate)!r}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") >> 1
    return pa.array(out, pa.int64())


def search(session, pattern: str, max_drift_hz_s: float = 4.0, snr_min: float = 10.0,
           into: str = "signal_events") -> SearchReport:
    """Search the spectrograms ``pattern`` chooses and commit their hits into ``into`` (one commit)."""
    if max_drift_hz_s <= 0:
        raise IngestError(f"--max-drift must be positive (Hz/s), got {max_drift_hz_s:g}")
    if snr_min <= 0:
        raise IngestError(f"--snr must be positive, got {snr_min:g}")
    lake = session.lake
    report = SearchReport(into)
    chosen = candidates(session, pattern).to_pylist()
    exists = lake.exists(into)
    table = lake.delta_table(into) if exists else None
    todo = []
    for row in chosen:
        sid = row["spectrogram_id"]
        if table is not None and table.transaction_version(app_id(sid, max_drift_hz_s, snr_min)) is not None:
            report.skipped.append(sid)
        elif row["target"] is None or row["ra_deg"] is None or row["dec_deg"] is None:
            report.unplaced.append(sid)
        else:
            todo.append(sid)
    if not todo:
        return report
    found = session.execute(search_query(todo, max_drift_hz_s, snr_min))
    bandwidth = pc.abs(pc.subtract(found["freq_end_hz"], found["freq_start_hz"]))
    events = pa.table({
        "event_id": event_ids(found["spectrogram_id"].to_pylist(), found["chan_index"].to_numpy(),
                              found["drift_hz_s"].to_numpy()),
        "observed_at": found["observed_at"], "target": found["target"],
        "ra_deg": found["ra_deg"], "dec_deg": found["dec_deg"], "site": found["site"],
        "freq_hz": found["freq_hz"], "drift_hz_s": found["drift_hz_s"], "snr": found["snr"],
        "bandwidth_hz": bandwidth, "source_file": found["source_file"],
        "spectrogram_id": found["spectrogram_id"],
    })
    ids = tuple(app_id(sid, max_drift_hz_s, snr_min) for sid in todo)
    note = f"search {pattern} ({settings_key(max_drift_hz_s, snr_min)})"
    if not exists:  # a new table of hits: made empty first, so the hits' commit carries the ids
        lake.create_table(into, events.slice(0, 0), note=f"hits of astrolake search {pattern}")
    report.version = lake.append(into, events, app_ids=ids, note=note)
    report.searched, report.hits = todo, events.num_rows
    return report
