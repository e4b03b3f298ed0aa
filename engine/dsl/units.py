"""Units for Sky, with astropy.units, at compile time only: a quantity written in a query
(``1420 MHz``, ``5 arcmin``, ``4 Hz/s``) becomes a plain number in the unit of the column it
meets, so the SQL it compiles to has no units left in it."""

from __future__ import annotations

import math
from functools import lru_cache

import astropy.units as u

# the unit a column's name ends with (freq_hz, drift_hz_s, ra_deg, wavelength_aa, ...)
SUFFIXES = {
    "hz_s": "Hz/s", "khz_s": "kHz/s", "mhz_s": "MHz/s",
    "ghz": "GHz", "mhz": "MHz", "khz": "kHz", "hz": "Hz",
    "deg": "deg", "arcmin": "arcmin", "arcsec": "arcsec", "mas": "mas", "rad": "rad",
    "ms": "ms", "s": "s", "min": "min", "h": "h", "d": "d", "yr": "yr",
    "aa": "Angstrom", "nm": "nm", "um": "um",
    "km_s": "km/s", "m_s": "m/s", "pix": "pix", "adu": "adu",
}
# longest first, so drift_hz_s ends in hz_s, not s
_BY_LENGTH = sorted(SUFFIXES, key=len, reverse=True)

KINDS = [  # (reference unit, what an astronomer calls it, the unit a bare quantity compiles to)
    (u.Hz, "a frequency", "Hz"),
    (u.Hz / u.s, "a drift rate", "Hz/s"),
    (u.deg, "an angle", "deg"),
    (u.s, "a time", "s"),
    (u.m, "a wavelength", "Angstrom"),
    (u.m / u.s, "a velocity", "m/s"),
    (u.pix, "a pixel distance", "pix"),
    (u.adu, "a flux in adu", "adu"),
]


class UnitProblem(ValueError):
    """A unit that astropy does not know, or a conversion between different kinds."""


@lru_cache(maxsize=None)
def parse_unit(text: str) -> u.UnitBase:
    text = {"Å": "Angstrom", "AA": "Angstrom"}.get(text, text)
    try:
        return u.Unit(text)
    except ValueError as e:
        raise UnitProblem(f"unknown unit '{text}'") from e


def kind(unit_text: str | None) -> str:
    """'a frequency', 'an angle', ... or 'a number without a unit'."""
    if not unit_text:
        return "a number without a unit"
    unit = parse_unit(unit_text)
    for reference, name, _ in KINDS:
        if unit.is_equivalent(reference):
            return name
    return f"a quantity in {unit_text}"


def canonical(unit_text: str) -> str:
    """The unit a quantity of this kind compiles to when nothing says otherwise."""
    unit = parse_unit(unit_text)
    for reference, _, default in KINDS:
        if unit.is_equivalent(reference):
            return default
    return unit_text


@lru_cache(maxsize=None)
def factor(from_text: str, to_text: str) -> float:
    """x [from] = x * factor [to]; UnitProblem when the kinds differ."""
    try:
        return float(parse_unit(from_text).to(parse_unit(to_text)))
    except u.UnitConversionError as e:
        raise UnitProblem(f"{from_text} ({kind(from_text)}) cannot be converted to {to_text} ({kind(to_text)})") from e


def convert(value: float, from_text: str, to_text: str) -> float:
    if from_text == to_text:
        return value
    result = value * factor(from_text, to_text)
    # keep round numbers round (1420 MHz -> 1420000000, not 1420000000.0000002)
    rounded = round(result, 9)
    return rounded if math.isclose(rounded, result, rel_tol=1e-15, abs_tol=0.0) else result


def suffix(unit_text: str) -> str:
    """The column-name suffix of a unit: MHz -> mhz, Hz/s -> hz_s, Angstrom -> aa."""
    for key, value in SUFFIXES.items():
        if value == unit_text:
            return key
    return unit_text.lower().replace("/", "_").replace("å", "aa")


@lru_cache(maxsize=4096)
def split_name(name: str) -> tuple[str, str | None]:
    """('freq', 'Hz') for freq_hz, ('drift', 'Hz/s') for drift_hz_s, (name, None) without a unit."""
    lowered = name.lower()
    for key in _BY_LENGTH:
        if lowered.endswith("_" + key) and len(name) > len(key) + 1:
            return name[: -len(key) - 1], SUFFIXES[key]
    return name, None


def known(unit_text: str | None) -> bool:
    if not unit_text:
        return False
    try:
        parse_unit(unit_text)
        return True
    except UnitProblem:
        return False
