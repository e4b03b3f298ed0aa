"""FITS header keywords as catalog values: times in UTC, positions in degrees, plain strings."""

from __future__ import annotations

import datetime as dt
import re
import warnings

import numpy as np

_OLD_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2})\s*$")  # DD/MM/YY, FITS before 2000
_TIME_SCALES = {"utc", "tai", "tt", "tdb", "tcg", "tcb", "ut1", "gps"}
# a UTC date or date-time astropy would read to the same microsecond: read without astropy (its Time
# costs ~1 ms a file); anything else (other scales, leap seconds, > 6 decimals, MJD) goes to astropy
_PLAIN_UTC = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:([T ])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$")


def text(header, *keys) -> str | None:
    for key in keys:
        value = header.get(key)
        if value is not None and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def number(header, *keys) -> float | None:
    for key in keys:
        value = header.get(key)
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
    return None


def _scale(header) -> str:
    scale = str(header.get("TIMESYS", "UTC")).strip().lower()
    return scale if scale in _TIME_SCALES else "utc"


def observed_at(header) -> dt.datetime | None:
    """DATE-OBS (with TIME-OBS / UT when it holds only a date; DD/MM/YY too), else MJD-OBS, in UTC."""
    date = text(header, "DATE-OBS", "DATE_OBS")
    scale = _scale(header)
    if date:
        old = _OLD_DATE.match(date)
        if old:
            day, month, year = (int(g) for g in old.groups())
            date = f"{1900 + year:04d}-{month:02d}-{day:02d}"
        if "T" not in date and len(date) <= 10:
            clock = text(header, "TIME-OBS", "UT", "UTSTART", "UT-START")
            if clock and re.match(r"^\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?$", clock):
                date = f"{date}T{clock}"
        if scale == "utc":
            plain = _plain_utc(date)
            if plain is not None:
                return plain
    return _astropy_utc(date, scale, header)


def _plain_utc(date: str) -> dt.datetime | None:
    """``date`` (ISO, UTC) as astropy's ``Time(date, scale="utc").to_datetime`` gives it, when it is
    an ordinary date-time of at most microsecond precision; None when astropy has to decide."""
    found = _PLAIN_UTC.match(date)
    if found is None:
        return None
    year, month, day, _, hour, minute, second, fraction = found.groups()
    try:
        return dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                           int((fraction or "0").ljust(6, "0")), tzinfo=dt.timezone.utc)
    except ValueError:  # 24:00, a leap second, year 0: astropy's rules
        return None


def _astropy_utc(date: str | None, scale: str, header) -> dt.datetime | None:
    from astropy.time import Time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if date:
                value = Time(date, format="isot" if "T" in date else "iso", scale=scale)
            else:
                mjd = number(header, "MJD-OBS", "MJD_OBS", "MJD")
                if mjd is None:
                    return None
                value = Time(mjd, format="mjd", scale=scale)
            return value.utc.to_datetime(timezone=dt.timezone.utc)
        except (ValueError, TypeError):
            return None


def sky_position(header) -> tuple[float | None, float | None]:
    """RA/Dec of the target in degrees from the usual keywords (numbers in degrees or sexagesimal)."""
    for ra_key, dec_key in (("RA", "DEC"), ("RA_TARG", "DEC_TARG"), ("PLUG_RA", "PLUG_DEC"), ("OBJCTRA", "OBJCTDEC"),
                            ("RA_OBJ", "DEC_OBJ")):
        ra, dec = header.get(ra_key), header.get(dec_key)
        if ra is None or dec is None:
            continue
        try:
            if isinstance(ra, (int, float)) and isinstance(dec, (int, float)):
                ra_deg, dec_deg = float(ra), float(dec)
            else:
                from astropy.coordinates import Angle

                ra_deg = Angle(str(ra).strip(), unit="hourangle").deg
                dec_deg = Angle(str(dec).strip(), unit="deg").deg
        except (ValueError, TypeError):
            continue
        if 0.0 <= ra_deg < 360.0 and -90.0 <= dec_deg <= 90.0:
            return ra_deg, dec_deg
    return None, None
