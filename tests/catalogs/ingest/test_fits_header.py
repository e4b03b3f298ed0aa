"""Observation times read without astropy are the ones astropy's Time gives, to the microsecond;
what only astropy can decide (other scales, leap seconds, > 6 decimals, MJD) is still its own."""

import datetime as dt
import random
import warnings

import pytest
from astropy.time import Time

from catalogs.ingest.fits_header import _plain_utc, observed_at

UTC = dt.timezone.utc


def astropy_utc(date: str) -> dt.datetime | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ERFA's "dubious year" far from now
            return Time(date, format="isot" if "T" in date else "iso", scale="utc").utc.to_datetime(timezone=UTC)
    except ValueError:
        return None


def random_dates(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        date = f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if rng.random() < 0.9:
            date += f"{rng.choice('T ')}{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
            if rng.random() < 0.9:
                date += f":{rng.randint(0, 59):02d}"
                digits = rng.randint(0, 6)
                if digits:
                    date += "." + "".join(rng.choice("0123456789") for _ in range(digits))
        out.append(date)
    return out


def test_plain_utc_dates_are_astropys_to_the_microsecond():
    for date in random_dates(3000) + ["2016-12-31T23:59:59.999999", "1972-06-30T23:59:59.5", "0001-01-01"]:
        got = _plain_utc(date)
        assert got is not None, date
        assert got == astropy_utc(date) and got.tzinfo == UTC, date


@pytest.mark.parametrize("date", ["2016-12-31T23:59:60", "2021-05-06T24:00:00", "0000-01-01", "2021-02-30",
                                  "2021-05-06T01:02:03.1234567", "1999-01-02T1:02:03", "2021-05-06T01",
                                  "2021-05-06T01:02:03Z"])
def test_what_astropy_must_decide_is_left_to_it(date):
    assert _plain_utc(date) is None
    assert observed_at({"DATE-OBS": date}) == astropy_utc(date)


def test_other_time_scales_and_mjd_go_through_astropy():
    tai = observed_at({"DATE-OBS": "2021-05-06T00:00:00", "TIMESYS": "TAI"})
    assert tai == Time("2021-05-06T00:00:00", scale="tai").utc.to_datetime(timezone=UTC)
    assert tai != dt.datetime(2021, 5, 6, tzinfo=UTC)
    assert observed_at({"MJD-OBS": 59340.5}) == dt.datetime(2021, 5, 6, 12, tzinfo=UTC)
    assert observed_at({"DATE-OBS": "06/05/98", "TIME-OBS": "01:02:03"}) == dt.datetime(1998, 5, 6, 1, 2, 3, tzinfo=UTC)
