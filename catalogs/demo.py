"""The demo lake: deterministic synthetic signal events over real targets and observatories.

The events are made up, but shaped like radio SETI hits: most are noise just above the
threshold, many are terrestrial interference (zero drift, at the same frequencies in every
direction), and a handful are "interesting" signals modelled on famous ones, which the queries in
queries/ find: Voyager 1's X-band carrier (GBT, 2016), the BLC1 candidate towards Proxima
Centauri (Parkes, 2019), a drifting water-hole tone towards TRAPPIST-1 (2017) and a "Wow!"-like
one-off hit. The same seed gives the same lake everywhere (numpy's PCG64). Each observing
year is one Delta commit, so VERSION AS OF n shows the lake as it grew.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from catalogs.lake import Lake

# name, ra_deg, dec_deg (ICRS, J2000)
TARGETS = [
    ("TRAPPIST-1", 346.6223, -5.0413),
    ("Tau Ceti", 26.0170, -15.9375),
    ("Proxima Centauri", 217.4289, -62.6795),
    ("Alpha Centauri A", 219.9021, -60.8340),
    ("Barnard's Star", 269.4521, 4.6934),
    ("Epsilon Eridani", 53.2327, -9.4583),
    ("Epsilon Indi", 330.8402, -56.7860),
    ("Voyager-1", 257.5166, 12.1830),
    ("Kepler-452", 296.0037, 44.2776),
    ("Kepler-186", 298.6529, 43.9547),
    ("Kepler-22", 289.2175, 47.8840),
    ("KIC 8462852", 301.5644, 44.4569),
    ("Ross 128", 176.9350, 0.8042),
    ("Wolf 359", 164.1203, 7.0147),
    ("Luyten's Star", 111.8521, 5.2258),
    ("Teegarden's Star", 43.2540, 16.8812),
    ("Gliese 581", 229.8617, -7.7224),
    ("Gliese 667C", 259.7451, -34.9968),
    ("HD 40307", 88.5175, -60.0233),
    ("HD 164595", 270.6246, 29.2142),
    ("LHS 1140", 11.2471, -15.2714),
    ("55 Cancri", 133.1492, 28.3308),
    ("K2-18", 172.5601, 7.5883),
    ("GJ 1214", 258.8289, 4.9639),
    ("Lalande 21185", 165.8341, 35.9699),
    ("Kapteyn's Star", 77.9194, -45.0184),
    ("Sgr A*", 266.4168, -29.0078),
    ("Vega", 279.2347, 38.7837),
    ("Altair", 297.6958, 8.8683),
    ("Sirius", 101.2872, -16.7161),
]

# site code, lowest and highest declination it observes, receiver bands (lo_hz, hi_hz)
SITES = [
    ("GBT", -40.0, 90.0, [(1.1e9, 1.9e9), (1.8e9, 2.8e9), (4.0e9, 7.8e9), (7.8e9, 11.2e9)]),
    ("Parkes", -90.0, 25.0, [(0.7e9, 1.0e9), (1.2e9, 1.5e9), (2.6e9, 3.6e9)]),
    ("ATA", -35.0, 90.0, [(1.0e9, 2.0e9), (2.0e9, 4.0e9), (4.0e9, 8.0e9)]),
    ("FAST", -14.0, 65.0, [(1.05e9, 1.45e9)]),
    ("MeerKAT", -90.0, 40.0, [(0.86e9, 1.71e9), (1.75e9, 3.5e9)]),
]

# terrestrial interference: GPS L1/L2, GLONASS, Iridium, Inmarsat, a radar, a DTV carrier
RFI_HZ = [1575.42e6, 1227.60e6, 1602.5625e6, 1626.27e6, 1541.5e6, 1300.0e6, 2025.5e6, 3700.0e6, 5730.0e6, 8100.0e6]

YEARS = (2016, 2017, 2018, 2019)
SESSIONS_PER_YEAR = 30


def _injected() -> list[dict]:
    """The interesting signals, as rows (a fixed list: the queries' answers)."""
    utc = dt.timezone.utc
    rows = []
    # Voyager 1's carrier and its two sidebands, GBT X band, 2016-09-26 (MJD 57650.78)
    for minutes, (freq, drift, snr) in enumerate([(8419.297028e6, -0.3827, 1289.3),
                                                  (8419.274531e6, -0.4018, 304.9),
                                                  (8419.319530e6, -0.4018, 303.9)]):
        for scan in range(3):
            rows.append(dict(target="Voyager-1", site="GBT", beam=0, freq_hz=freq - scan * 0.4 * 300,
                             drift_hz_s=drift, snr=round(snr * (1 - 0.02 * scan), 2), bandwidth_hz=2.8,
                             observed_at=dt.datetime(2016, 9, 26, 18, 46 + minutes + 5 * scan, 13, tzinfo=utc)))
    # the BLC1 candidate towards Proxima Centauri, Parkes, 2019-04-29 .. 2019-05-03
    for day, snr in [(29, 42.1), (30, 55.7), (1, 48.3), (2, 61.0), (3, 39.8)]:
        month = 4 if day > 3 else 5
        rows.append(dict(target="Proxima Centauri", site="Parkes", beam=0, freq_hz=982.002e6 + day * 0.7,
                         drift_hz_s=0.03, snr=snr, bandwidth_hz=3.8,
                         observed_at=dt.datetime(2019, month, day, 14, 20, 0, tzinfo=utc)))
    # a drifting tone in the water hole towards TRAPPIST-1, ATA, 2017-02-22, three ON scans
    for scan in range(3):
        rows.append(dict(target="TRAPPIST-1", site="ATA", beam=1, freq_hz=1523.611e6 + scan * 0.73 * 300,
                         drift_hz_s=0.73, snr=85.0 + 4 * scan, bandwidth_hz=1.5,
                         observed_at=dt.datetime(2017, 2, 22, 9, 5 * scan, 0, tzinfo=utc)))
    # a "Wow!"-like single hit at the hydrogen line, never seen again
    rows.append(dict(target="Sgr A*", site="GBT", beam=3, freq_hz=1420.4556e6, drift_hz_s=0.0,
                     snr=302.0, bandwidth_hz=10.0,
                     observed_at=dt.datetime(2018, 8, 15, 3, 16, 0, tzinfo=utc)))
    return rows


def generate_year(year: int, n: int, seed: int) -> pa.Table:
    """``n`` synthetic events observed in ``year`` (no ids; deterministic in seed and year)."""
    rng = np.random.Generator(np.random.PCG64([seed, year]))
    start = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)
    session_days = np.sort(rng.choice(365, SESSIONS_PER_YEAR, replace=False))
    names = np.array([t[0] for t in TARGETS])
    ras = np.array([t[1] for t in TARGETS])
    decs = np.array([t[2] for t in TARGETS])

    target = rng.integers(0, len(TARGETS), n)
    # a site that can see the target
    site = np.empty(n, dtype=np.int64)
    for t in range(len(TARGETS)):
        can = [i for i, s in enumerate(SITES) if s[1] <= decs[t] <= s[2]]
        mask = target == t
        site[mask] = rng.choice(can, mask.sum())
    # a band of that site, a frequency in it
    freq = np.empty(n)
    for i, (_, _, _, bands) in enumerate(SITES):
        mask = site == i
        band = rng.integers(0, len(bands), mask.sum())
        lo = np.array([b[0] for b in bands])[band]
        hi = np.array([b[1] for b in bands])[band]
        freq[mask] = lo + rng.random(mask.sum()) * (hi - lo)
    snr = 10.0 + rng.exponential(6.0, n)
    drift = np.clip(rng.normal(0.0, 1.2, n), -10.0, 10.0)
    bandwidth = rng.choice([1.4, 2.8, 3.7, 7.5], n)
    beam = rng.integers(0, 7, n).astype(np.int32)

    # interference: zero drift, at the same frequencies whatever the target
    rfi = rng.random(n) < 0.3
    rfi_freq = np.array(RFI_HZ)[rng.integers(0, len(RFI_HZ), rfi.sum())]
    freq[rfi] = rfi_freq + rng.normal(0.0, 2_000.0, rfi.sum())
    drift[rfi] = rng.normal(0.0, 0.002, rfi.sum())
    snr[rfi] = 10.0 + rng.exponential(12.0, rfi.sum())

    day = session_days[rng.integers(0, SESSIONS_PER_YEAR, n)]
    seconds = rng.integers(0, 86_400, n)
    micros = (day * 86_400 + seconds) * 1_000_000 + rng.integers(0, 1_000_000, n)
    observed = np.datetime64(start.replace(tzinfo=None), "us") + micros.astype("timedelta64[us]")

    table = pa.table({
        "observed_at": pa.array(observed, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
        "target": pa.array(names[target]),
        "ra_deg": pa.array(ras[target]),
        "dec_deg": pa.array(decs[target]),
        "site": pa.array(np.array([s[0] for s in SITES])[site]),
        "beam": pa.array(beam, pa.int32()),
        "freq_hz": pa.array(np.round(freq, 3)),
        "drift_hz_s": pa.array(np.round(drift, 4)),
        "snr": pa.array(np.round(snr, 2)),
        "bandwidth_hz": pa.array(bandwidth),
    })
    injected = [r for r in _injected() if r["observed_at"].year == year]
    if injected:
        coords = {t[0]: (t[1], t[2]) for t in TARGETS}
        extra = pa.Table.from_pylist(
            [{**r, "ra_deg": coords[r["target"]][0], "dec_deg": coords[r["target"]][1]} for r in injected]
        )
        table = pa.concat_tables([table, extra.select(table.column_names).cast(table.schema)])
    return table.sort_by("observed_at")


def build_demo(lake: Lake, n_events: int = 1_000_000, seed: int = 42) -> str:
    """Write the demo events into ``lake`` (one commit per year, skipped when already there)."""
    per_year = n_events // len(YEARS)
    next_id = 1
    done = []
    for i, year in enumerate(YEARS):
        n = per_year if i < len(YEARS) - 1 else n_events - per_year * (len(YEARS) - 1)
        n_year = n + sum(1 for r in _injected() if r["observed_at"].year == year)
        first_id, next_id = next_id, next_id + n_year
        app_id = f"astrolake.demo:seed={seed}:events={n_events}:year={year}"
        if lake.already_committed("signal_events", app_id):
            continue
        events = generate_year(year, n, seed)
        ids = pa.array(np.arange(first_id, first_id + events.num_rows, dtype=np.int64))
        events = events.append_column("event_id", ids).append_column(
            "source_file", pa.repeat(pa.scalar(f"demo:{year}"), events.num_rows))
        version = lake.append("signal_events", events, app_ids=(app_id,), note=f"demo events {year}")
        done.append(f"{year}: {events.num_rows} events (version {version})")
    if not done:
        return f"demo lake already built in {lake.root} (seed {seed}, {n_events} events)"
    return f"demo lake in {lake.root}:\n  " + "\n  ".join(done)
