"""The built-in observatory table: codes, aliases, positions, sources, and no network."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation

from udfs import observatories
from udfs.observatories import UnknownObservatoryError

REQUIRED = ["ATA", "GBT", "Parkes", "Arecibo", "FAST", "MeerKAT", "VLA", "Effelsberg", "JodrellBank", "LOFAR",
            "MWA", "ASKAP", "WSRT", "Nancay", "GMRT", "ALMA", "Keck", "Palomar"]


def test_the_required_sites_are_there():
    assert set(REQUIRED) <= set(observatories.codes())
    assert len(observatories.codes()) == len(set(observatories.codes()))


@pytest.mark.parametrize("name, code", [
    ("gbt", "GBT"), ("GBT", "GBT"), ("Green Bank", "GBT"), ("green_bank", "GBT"), ("PARKES", "Parkes"),
    ("murriyang", "Parkes"), ("meerkat", "MeerKAT"), ("Jodrell Bank", "JodrellBank"), ("lovell", "JodrellBank"),
    ("Westerbork", "WSRT"), ("hcro", "ATA"), ("ao", "Arecibo"), ("Nançay", "Nancay"), ("lofar", "LOFAR"),
])
def test_codes_and_aliases_are_case_insensitive(name, code):
    assert observatories.lookup(name).code == code
    assert observatories.find(name).code == code


def test_an_unknown_code_lists_the_known_ones():
    with pytest.raises(UnknownObservatoryError) as err:
        observatories.lookup("Arecibo 2")
    message = str(err.value)
    assert "'Arecibo 2'" in message
    for code in observatories.codes():
        assert code in message
    assert observatories.find("Arecibo 2") is None and observatories.find(None) is None
    with pytest.raises(UnknownObservatoryError):
        observatories.location("nowhere")


def test_every_site_has_a_sane_position_and_a_source():
    for obs in observatories.OBSERVATORIES:
        assert -180 < obs.lon_deg <= 180 and -90 <= obs.lat_deg <= 90, obs
        assert -100 < obs.height_m < 6000, obs
        assert obs.name and ("astropy site registry" in obs.source or "PINT" in obs.source), obs


def test_location_is_the_geodetic_position_on_wgs84():
    for code in observatories.codes():
        obs = observatories.lookup(code)
        loc = observatories.location(code.lower())
        assert isinstance(loc, EarthLocation)
        geo = loc.to_geodetic()
        assert abs(geo.lon.deg - obs.lon_deg) < 1e-9 and abs(geo.lat.deg - obs.lat_deg) < 1e-9
        assert abs(geo.height.to_value(u.m) - obs.height_m) < 1e-6


@pytest.mark.parametrize("code, itrf", [
    ("JodrellBank", (3822625.769, -154105.255, 5086486.256)),
    ("WSRT", (3828445.659, 445223.6, 5064921.5677)),
    ("ATCA", (-4752329.7, 2790505.934, -3200483.747)),
])
def test_sites_from_pint_match_their_itrf_position(code, itrf):
    xyz = [c.to_value(u.m) for c in observatories.location(code).geocentric]
    assert np.allclose(xyz, itrf, atol=0.01)  # the geodetic values keep 1 cm


def test_well_known_positions():
    # astropy's registry entries reproduced (sites.json: parkes, meerkat via PINT/TEMPO)
    parkes = observatories.location("Parkes").geocentric
    assert np.allclose([c.to_value(u.m) for c in parkes], (-4554231.5, 2816759.1, -3454036.3), atol=0.01)
    meerkat = observatories.location("MeerKAT").geocentric
    assert np.allclose([c.to_value(u.m) for c in meerkat], (5109360.133, 2006852.586, -3238948.127), atol=0.01)


def test_no_download(monkeypatch):
    import astropy.utils.data

    def no_network(*args, **kwargs):
        raise AssertionError("observatories must not download anything")

    monkeypatch.setattr(astropy.utils.data, "download_file", no_network)
    monkeypatch.setattr(EarthLocation, "of_site", classmethod(lambda cls, *a, **k: no_network()))
    observatories._location.cache_clear()
    assert observatories.location("FAST").lat.deg == pytest.approx(25.652946164090935)
