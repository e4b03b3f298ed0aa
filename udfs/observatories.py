"""A built-in table of observatories: code -> name, geodetic position and where it comes from.

``astropy.coordinates.EarthLocation.of_site`` downloads astropy's site registry and fails
offline, so the functions of the library look sites up here instead. Positions are geodetic
(WGS84, as ``EarthLocation.from_geodetic`` and ``of_site`` use): longitude in degrees east,
latitude in degrees, height above the ellipsoid in metres.

Where astropy's site registry (astropy-data ``coordinates/sites.json``) has the site, its values
are copied verbatim (a longitude given there as 0..360 is written here as -180..180, the same
meridian), so ``location(code)`` equals ``EarthLocation.of_site(<registry name>)``. Sites the
registry lacks come from the ITRF positions of the pulsar-timing packages (PINT's
``observatories.json``, which matches TEMPO/TEMPO2), converted to WGS84 geodetic with
``EarthLocation.from_geocentric(...).to_geodetic()``.

Codes are looked up case-insensitively, ignoring spaces and punctuation: ``'gbt'``,
``'Green Bank'`` and ``'GBT'`` are the same site.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from engine.errors import UdfError


class UnknownObservatoryError(UdfError, LookupError):
    """An observatory code that is not in the table; the message lists the known codes."""


@dataclass(frozen=True)
class Observatory:
    code: str
    name: str
    lon_deg: float  # geodetic longitude, degrees east (WGS84)
    lat_deg: float  # geodetic latitude, degrees (WGS84)
    height_m: float  # height above the WGS84 ellipsoid, metres
    source: str
    aliases: tuple[str, ...] = ()


_ASTROPY = "astropy site registry '{}'"
_PINT = ("PINT observatories.json '{}' (ITRF x, y, z = {} m), converted to WGS84 geodetic "
         "with astropy")

OBSERVATORIES: tuple[Observatory, ...] = (
    Observatory("ATA", "Allen Telescope Array, Hat Creek Radio Observatory",
                -121.47333, 40.81750, 986.0,
                _ASTROPY.format("hcro") + " (from the SRI website)", ("HCRO", "Hat Creek", "Allen Telescope Array")),
    Observatory("GBT", "Robert C. Byrd Green Bank Telescope",
                -79.839722, 38.433056, 807.0,
                _ASTROPY.format("gbt") + " (Wikipedia; Google Elevation for the height)",
                ("Green Bank", "Green Bank Telescope", "Green Bank Observatory", "GB")),
    Observatory("Parkes", "Parkes radio telescope (Murriyang)",
                148.2635100132104, -32.99840639865134, 414.7597497078894,
                _ASTROPY.format("parkes") + " (TEMPO/TEMPO2 position, via PINT)", ("Murriyang", "PKS")),
    Observatory("Arecibo", "Arecibo Observatory 305 m telescope",
                -66.75277778, 18.34416667, 497.0,
                _ASTROPY.format("ao") + " (Wikipedia)", ("AO", "Arecibo Observatory")),
    Observatory("FAST", "Five-hundred-meter Aperture Spherical radio Telescope",
                106.85666641926392, 25.652946164090935, 1109.1023222846998,
                _ASTROPY.format("fast") + " (TEMPO position, via PINT)"),
    Observatory("MeerKAT", "MeerKAT radio telescope",
                21.443888889697842, -30.711055553291878, 1086.599484882955,
                _ASTROPY.format("meerkat") + " (TEMPO/TEMPO2 position, via PINT)"),
    Observatory("VLA", "Karl G. Jansky Very Large Array",
                -107.61828305555555, 34.07874916666667, 2124.0,
                _ASTROPY.format("vla") + " (Wikipedia)", ("JVLA", "Very Large Array")),
    Observatory("Effelsberg", "Effelsberg 100-m Radio Telescope",
                6.8836164652709835, 50.52483588054502, 416.7160563557801,
                _ASTROPY.format("effelsberg") + " (VLBI position of March 2020, via PINT)", ("EFF",)),
    Observatory("JodrellBank", "Lovell Telescope, Jodrell Bank Observatory",
                -2.30857075, 53.23654265, 179.413,
                _PINT.format("jodrell", "3822625.769, -154105.255, 5086486.256")
                + " (VLBI position of March 2020)", ("Jodrell", "Lovell", "JBO")),
    Observatory("LOFAR", "Low-Frequency Array, core station (Exloo)",
                6.869832836200029, 52.91511896798418, 49.35002954676998,
                _ASTROPY.format("lofar") + " (TEMPO2 position, via PINT)"),
    Observatory("MWA", "Murchison Widefield Array",
                116.67081524, -26.70331940, 377.83,
                _ASTROPY.format("mwa") + " (MWA website)"),
    Observatory("ASKAP", "Australian Square Kilometre Array Pathfinder",
                116.631424, -26.697000, 360.99,
                _ASTROPY.format("askap") + " (ASKAP Science Observation Guide 1.1)"),
    Observatory("WSRT", "Westerbork Synthesis Radio Telescope",
                6.63333414, 52.91529187, 71.210,
                _PINT.format("wsrt", "3828445.659, 445223.6, 5064921.5677"), ("Westerbork",)),
    Observatory("Nancay", "Nançay Radio Telescope",
                2.1974784506622265, 47.373601708263124, 190.94343144560776,
                _ASTROPY.format("nancay") + " (TEMPO/TEMPO2 position, via PINT)", ("Nançay", "NRT")),
    Observatory("GMRT", "Giant Metrewave Radio Telescope",
                74.05656115769753, 19.09300278307055, 497.00082854780277,
                _ASTROPY.format("gmrt") + " (TEMPO/TEMPO2 position, via PINT)"),
    Observatory("ATCA", "Australia Telescope Compact Array, Narrabri",
                149.57910060, -30.31287028, 239.585,
                _PINT.format("narrabri", "-4752329.7, 2790505.934, -3200483.747"), ("Narrabri",)),
    Observatory("SRT", "Sardinia Radio Telescope",
                9.24515124, 39.49307239, 671.6665,
                _ASTROPY.format("srt") + " (SRT single-dish tools, TEMPO2, PINT)"),
    Observatory("CHIME", "Canadian Hydrogen Intensity Mapping Experiment",
                -119.62367743, 49.32070922, 555.37238077,
                _ASTROPY.format("chime") + " (CHIME memo; 2018 ApJ 863, 48)"),
    Observatory("OVRO", "Owens Valley Radio Observatory",
                -118.283405115, 37.233386982, 1188.6,
                _ASTROPY.format("ovro") + " (OVRO GNSS survey)"),
    Observatory("LWA1", "Long Wavelength Array station 1",
                -107.62767002113483, 34.068899974626035, 2126.996641832515,
                _ASTROPY.format("lwa1") + " (TEMPO2 position, via PINT)", ("LWA",)),
    Observatory("ALMA", "Atacama Large Millimeter/submillimeter Array",
                -67.755, -23.029, 5000.0,
                _ASTROPY.format("alma") + " (ALMA science portal)"),
    Observatory("Keck", "W. M. Keck Observatory",
                -155.47833333333332, 19.828333333333333, 4160.0,
                _ASTROPY.format("keck") + " (IRAF observatory database)", ("Keck Observatory",)),
    Observatory("Palomar", "Palomar Observatory, Hale Telescope",
                -116.863, 33.356, 1706.0,
                _ASTROPY.format("Palomar") + " (IRAF observatory database)", ("Hale Telescope",)),
)


def _key(code: str) -> str:
    """Case-insensitive, ignoring spaces, hyphens, underscores and dots."""
    return "".join(ch for ch in str(code).casefold() if ch.isalnum())


def _build_index() -> dict[str, Observatory]:
    index: dict[str, Observatory] = {}
    for obs in OBSERVATORIES:
        for name in (obs.code, *obs.aliases):
            key = _key(name)
            if key in index and index[key] is not obs:
                raise ValueError(f"observatory name {name!r} is used twice")
            index[key] = obs
    return index


_INDEX = _build_index()


def codes() -> list[str]:
    """The known observatory codes (aliases not included), in table order."""
    return [obs.code for obs in OBSERVATORIES]


def known_codes_text() -> str:
    return ", ".join(codes())


def find(code) -> Observatory | None:
    """The observatory for a code or alias (case-insensitive), or None."""
    if code is None:
        return None
    return _INDEX.get(_key(code))


def lookup(code) -> Observatory:
    """The observatory for a code or alias; ``UnknownObservatoryError`` listing the codes if none."""
    obs = find(code)
    if obs is None:
        raise UnknownObservatoryError(f"unknown observatory code {code!r}; known codes: {known_codes_text()}")
    return obs


@lru_cache(maxsize=None)
def _location(code: str):
    from astropy import units as u
    from astropy.coordinates import EarthLocation

    obs = lookup(code)
    return EarthLocation.from_geodetic(obs.lon_deg * u.deg, obs.lat_deg * u.deg, obs.height_m * u.m)


def location(code):
    """``astropy.coordinates.EarthLocation`` of an observatory (WGS84), without any download."""
    return _location(lookup(code).code)
