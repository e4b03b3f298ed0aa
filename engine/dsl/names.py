"""Target names for ``near "TRAPPIST-1" within 5 arcmin``: a built-in table of well-known targets
(ICRS, J2000, degrees), then the distinct targets found in the lake's own tables. No network.

Names match ignoring case, spaces, hyphens and apostrophes ("trappist 1" is TRAPPIST-1). A
string that is no known name but reads as coordinates ("23h06m29.4s -05d02m29s",
"346.6223 -5.0413") is taken as a position.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from engine.errors import did_you_mean

# name, ra_deg, dec_deg (ICRS), from SIMBAD
BUILTIN = [
    ("TRAPPIST-1", 346.6223, -5.0413), ("Tau Ceti", 26.0170, -15.9375),
    ("Proxima Centauri", 217.4289, -62.6795), ("Alpha Centauri A", 219.9021, -60.8340),
    ("Alpha Centauri B", 219.8961, -60.8375), ("Barnard's Star", 269.4521, 4.6934),
    ("Epsilon Eridani", 53.2327, -9.4583), ("Epsilon Indi", 330.8402, -56.7860),
    ("Voyager-1", 257.5166, 12.1830), ("Kepler-452", 296.0037, 44.2776),
    ("Kepler-186", 298.6529, 43.9547), ("Kepler-22", 289.2175, 47.8840),
    ("KIC 8462852", 301.5644, 44.4569), ("Ross 128", 176.9350, 0.8042),
    ("Wolf 359", 164.1203, 7.0147), ("Luyten's Star", 111.8521, 5.2258),
    ("Teegarden's Star", 43.2540, 16.8812), ("Gliese 581", 229.8617, -7.7224),
    ("Gliese 667C", 259.7451, -34.9968), ("HD 40307", 88.5175, -60.0233),
    ("HD 164595", 270.6246, 29.2142), ("LHS 1140", 11.2471, -15.2714),
    ("55 Cancri", 133.1492, 28.3308), ("K2-18", 172.5601, 7.5883), ("GJ 1214", 258.8289, 4.9639),
    ("Lalande 21185", 165.8341, 35.9699), ("Kapteyn's Star", 77.9194, -45.0184),
    ("Sgr A*", 266.4168, -29.0078), ("Vega", 279.2347, 38.7837), ("Altair", 297.6958, 8.8683),
    ("Sirius", 101.2872, -16.7161), ("Betelgeuse", 88.7929, 7.4071), ("Polaris", 37.9546, 89.2641),
    ("M1", 83.6331, 22.0145), ("M13", 250.4235, 36.4613), ("M31", 10.6847, 41.2690),
    ("M42", 83.8221, -5.3911), ("M87", 187.7059, 12.3911), ("Cas A", 350.8500, 58.8150),
    ("Cyg A", 299.8682, 40.7339), ("LMC", 80.8942, -69.7561), ("SMC", 13.1867, -72.8286),
]
ALIASES = {
    "Proxima": "Proxima Centauri", "Proxima Cen": "Proxima Centauri", "GJ 551": "Proxima Centauri",
    "Alpha Cen A": "Alpha Centauri A", "Alpha Cen B": "Alpha Centauri B", "Voyager 1": "Voyager-1",
    "Tabby's Star": "KIC 8462852", "Boyajian's Star": "KIC 8462852", "Galactic Center": "Sgr A*",
    "Crab Nebula": "M1", "Crab": "M1", "Hercules Cluster": "M13", "Andromeda": "M31",
    "Andromeda Galaxy": "M31", "Orion Nebula": "M42", "Virgo A": "M87", "Cassiopeia A": "Cas A",
    "Cygnus A": "Cyg A", "Large Magellanic Cloud": "LMC", "Small Magellanic Cloud": "SMC",
    "Gliese 551": "Proxima Centauri", "Alpha Lyrae": "Vega",
}


def key(name: str) -> str:
    return re.sub(r"[\s\-_'’.]", "", name).lower()


_BUILTIN = {key(n): (n, ra, dec) for n, ra, dec in BUILTIN}
for _alias, _name in ALIASES.items():
    _BUILTIN[key(_alias)] = next((n, ra, dec) for n, ra, dec in BUILTIN if n == _name)


class UnknownTarget(LookupError):
    pass


class Resolver:
    """Name -> (ra_deg, dec_deg, where it came from). ``lake_targets`` is called (once, lazily) only
    for a name the built-in table does not have."""

    def __init__(self, lake_targets: Callable[[], dict[str, tuple[float, float]]] | None = None):
        self._lake_targets = lake_targets
        self._lake: dict | None = None

    def lake(self) -> dict:
        if self._lake is None:
            found = self._lake_targets() if self._lake_targets else {}
            self._lake = {key(n): (n, ra, dec) for n, (ra, dec) in found.items()}
        return self._lake

    def resolve(self, name: str) -> tuple[float, float, str]:
        k = key(name)
        if k in _BUILTIN:
            found, ra, dec = _BUILTIN[k]
            return ra, dec, f"{found} (built-in)"
        if k in self.lake():
            found, ra, dec = self.lake()[k]
            return ra, dec, f"{found} (lake)"
        position = _coordinates(name)
        if position is not None:
            return position[0], position[1], "coordinates"
        names = [n for n, _, _ in BUILTIN] + list(ALIASES) + [v[0] for v in self.lake().values()]
        raise UnknownTarget(f"unknown target '{name}'{did_you_mean(name, names)}: give a known name "
                            f"or a position, near (ra, dec) within r")


def _coordinates(text: str) -> tuple[float, float] | None:
    """Sexagesimal or decimal coordinates in a string, with astropy (offline); None otherwise."""
    if not re.search(r"\d", text) or not re.fullmatch(r"[\d\s.:+\-hdmsHDMS°'\"]+", text):
        return None
    try:
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        unit = (u.hourangle, u.deg) if re.search(r"[hH:]", text.split()[0] if text.split() else "") else (u.deg, u.deg)
        coord = SkyCoord(text, unit=unit, frame="icrs")
        return float(coord.ra.deg), float(coord.dec.deg)
    except Exception:  # noqa: BLE001 - astropy raises many kinds for text that is no position
        return None


def lake_targets(lake) -> dict[str, tuple[float, float]]:
    """The mean position of each distinct target (or object) in the lake's tables that have one."""
    found: dict[str, tuple[float, float]] = {}
    for table in lake.table_names():
        try:
            schema = lake.schema(table)
        except Exception:  # noqa: BLE001 - an unreadable table has no targets to offer
            continue
        name_col = next((c for c in ("target", "object", "name") if c in schema.names), None)
        if name_col is None or "ra_deg" not in schema.names or "dec_deg" not in schema.names:
            continue
        try:
            data = lake.delta_table(table).to_pyarrow_table(columns=[name_col, "ra_deg", "dec_deg"])
        except Exception:  # noqa: BLE001
            continue
        if data.num_rows == 0:
            continue
        for name, (ra, dec) in mean_positions(data, name_col).items():
            found.setdefault(str(name), (ra, dec))
    return found


def mean_positions(data: pa.Table, name_col: str) -> dict:
    """Each name's mean position on the sphere: the direction of the mean of its rows' unit
    vectors (an arithmetic mean of RA puts a target seen at 359.9 and 0.1 deg at 180 deg)."""
    import numpy as np

    ra = np.radians(data["ra_deg"].to_numpy(zero_copy_only=False).astype(float))
    dec = np.radians(data["dec_deg"].to_numpy(zero_copy_only=False).astype(float))
    vectors = pa.table({
        "name": data[name_col],
        "x": np.cos(dec) * np.cos(ra), "y": np.cos(dec) * np.sin(ra), "z": np.sin(dec),
    }).filter(pc.and_(pc.is_valid(data[name_col]), pc.is_finite(pa.array(ra + dec))))
    grouped = vectors.group_by("name").aggregate([("x", "mean"), ("y", "mean"), ("z", "mean")])
    x, y, z = (grouped[c].to_numpy() for c in ("x_mean", "y_mean", "z_mean"))
    ras = np.degrees(np.arctan2(y, x)) % 360.0
    decs = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return {name: (float(r), float(d)) for name, r, d in zip(grouped["name"].to_pylist(), ras, decs)}
