"""Doppler: the barycentric radial-velocity correction and the barycentric frequency of a signal.

``barycentric_velocity_ms`` is astropy's
``SkyCoord(ra, dec, frame='icrs').radial_velocity_correction('barycentric', obstime, location)``
(Wright & Eastman 2014, eq. 28, without the Shapiro delay), computed for millions of rows:

    zb   = gamma * (1 + beta . n) / (1 + gr / c)        v = c * (zb - 1)

with ``beta = (v_earth + v_site) / c`` the observer's barycentric velocity (the Earth's, from
astropy's built-in ERFA ephemeris, plus the site's GCRS velocity from the Earth's rotation),
``gamma = 1 / sqrt(1 - |beta|^2)``, ``gr`` the gravitational redshift of the site (Sun, Jupiter,
Moon, Earth) as ``EarthLocation.gravitational_redshift`` and ``n`` the unit vector to the target.

Nothing but ``n`` depends on the target, so the work per row is O(1). Per (site, 6-hour block
of a UTC day) a record holds the Earth's barycentric velocity as a quadratic in time, the site's
rotation velocity as ``cos(theta) a + sin(theta) b`` (theta the Earth rotation angle, exact per
row from UT1 = UTC + (UT1-UTC); a and b the slowly varying precession-nutation and polar-motion
part, at the middle of the block), the gravitational term (linear) and theta's phase and rate.
A row costs a record look-up, three sine/cosine pairs and some 50 multiply-adds. Blocks never
straddle a UTC midnight, so leap seconds need no care. The records come from three grids of
astropy evaluations, uniform in TAI and interpolated with cubic Lagrange polynomials: the Earth's
velocity every 6 h (``get_body_barycentric_posvel``), the GCRS->CIRS and polar-motion matrices
every day (those of ``EarthLocation.get_gcrs_posvel``), the Sun/Jupiter/Moon potential every 4
days (``EarthLocation.gravitational_redshift``), plus UT1-UTC and TAI-UTC per UTC day; all are
computed once per process for the times the data touch. Against astropy row by row the result
differs by less than 0.05 mm/s inside the IERS tables (0.2 mm/s at their edges); the tests
assert 1 mm/s.

astropy runs offline here (``astropy_offline``): IERS auto-download off, the IERS-A/B tables and
leap seconds bundled with astropy-iers-data, the built-in ephemeris. Outside the IERS tables
astropy's degraded-accuracy fallbacks apply (UT1-UTC held at the table's edge value, the mean
pole); observation times before 1960-01-01 or from 2100-01-01 on give NULL with a reason.
"""

from __future__ import annotations

import math
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from catalogs.schemas import TIMESTAMP_UTC
from udfs import observatories
from udfs.registry import Arg, Categories, UdfSpec, register

C_LIGHT = 299_792_458.0  # m/s, astropy.constants.c

_US_PER_DAY = 86_400_000_000
_MJD_UNIX_EPOCH = 40_587  # MJD of 1970-01-01
FIRST_MJD = 36_934  # 1960-01-01: UTC (and ERFA's leap-second table) start here
END_MJD = 88_069  # 2100-01-01, exclusive: ERFA's epv00 ephemeris is valid 1900-2100
_N_DAYS = END_MJD - FIRST_MJD
_T_LO = (FIRST_MJD - _MJD_UNIX_EPOCH) * _US_PER_DAY
_T_HI = (END_MJD - _MJD_UNIX_EPOCH) * _US_PER_DAY

# the grids of astropy evaluations: TAI seconds since _REF_MJD (TAI), uniform steps
_REF_MJD = FIRST_MJD - 20
_GRID_END_S = (END_MJD + 20 - _REF_MJD) * 86_400.0
VE_STEP_S = 6 * 3600.0  # Earth's barycentric velocity (the Moon's 27-day wobble needs < 12 h)
CW_STEP_S = 86_400.0  # precession-nutation and polar-motion matrices (slow)
GB_STEP_S = 4 * 86_400.0  # gravitational potential of Sun, Jupiter, Moon at the geocentre (slow)

# the records: one per (site, 6-hour block of a UTC day); time in a block u = -1/2 .. 1/2
BLOCK_S = 6 * 3600.0
_BLOCKS_PER_DAY = 4
_BLOCK_US = _US_PER_DAY // _BLOCKS_PER_DAY
_N_BLOCKS = _N_DAYS * _BLOCKS_PER_DAY
_FIRST_BLOCK = (FIRST_MJD - _MJD_UNIX_EPOCH) * _BLOCKS_PER_DAY
# the Earth's velocity over a block: quadratic in u through 3 Chebyshev points
_CHEB_U = 0.5 * np.cos((2 * np.arange(3) + 1) * np.pi / 6)
_CHEB_INV = np.linalg.inv(np.vander(_CHEB_U, 3, increasing=True))
# record layout: Earth velocity coefficients (c0 xyz, c1 xyz, c2 xyz), a, b (site rotation
# velocity = cos(theta) a + sin(theta) b), gravitational redshift g0 + g1 u, theta0 + theta1 u
_V, _A, _B, _G0, _G1, _TH0, _TH1 = 0, 9, 12, 15, 16, 17, 18
_WIDTH = 19
_CHUNK = 16_384

_LOCK = threading.RLock()


@contextmanager
def astropy_offline():
    """astropy using only what is installed, deterministically: no IERS or leap-second download
    (``iers.conf.auto_download = False``), the bundled IERS-A table (finals2000A, with IERS-B
    substituted) even when its predictions are stale (``auto_max_age = None``), astropy's
    degraded-accuracy fallbacks outside the tables without an error, the built-in ephemeris.
    Thread-safe with respect to this module (one lock); warnings of degraded accuracy are muted."""
    from astropy.coordinates import solar_system_ephemeris
    from astropy.utils import iers
    from astropy.utils.exceptions import AstropyWarning
    from erfa import ErfaWarning

    with _LOCK, warnings.catch_warnings(), \
            iers.conf.set_temp("auto_download", False), \
            iers.conf.set_temp("auto_max_age", None), \
            iers.conf.set_temp("iers_degraded_accuracy", "ignore"), \
            solar_system_ephemeris.set("builtin"):
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", ErfaWarning)
        yield


def iers_coverage() -> dict:
    """The span of the IERS Earth-orientation table astropy uses here (ISO dates): ``start`` and
    ``end`` of the table, ``predictions_from`` where measured values give way to predictions."""
    from astropy.time import Time
    from astropy.utils import iers

    with astropy_offline():
        table = iers.earth_orientation_table.get()
        mjd = table["MJD"].value
        iso = lambda m: Time(m, format="mjd", scale="utc").iso[:10]  # noqa: E731
        coverage = {"start": iso(mjd[0]), "end": iso(mjd[-1])}
        if "predictive_mjd" in table.meta:
            coverage["predictions_from"] = iso(table.meta["predictive_mjd"])
        return coverage


def _tai_times(seconds):
    from astropy.time import Time

    return Time(np.full(len(seconds), float(_REF_MJD)), np.asarray(seconds) / 86_400.0, format="mjd", scale="tai")


def _earth_velocity(seconds) -> np.ndarray:
    """(n, 3) barycentric velocity of the geocentre, m/s (ICRS axes), astropy's built-in ephemeris."""
    from astropy import units as u
    from astropy.coordinates import get_body_barycentric_posvel

    _, velocity = get_body_barycentric_posvel("earth", _tai_times(seconds))
    return velocity.xyz.to_value(u.m / u.s).T


def _rotation_matrices(seconds) -> np.ndarray:
    """(n, 18): GCRS->CIRS (precession-nutation, ``gcrs_to_cirs_mat``) and the polar-motion
    matrix W (ITRS = W . TIRS), both as astropy's ``EarthLocation.get_gcrs_posvel`` uses them."""
    import erfa
    from astropy.coordinates.builtin_frames.intermediate_rotation_transforms import gcrs_to_cirs_mat
    from astropy.coordinates.builtin_frames.utils import get_jd12, get_polar_motion

    t = _tai_times(seconds)
    c = gcrs_to_cirs_mat(t)
    xp, yp = get_polar_motion(t)
    w = erfa.pom00(xp, yp, erfa.sp00(*get_jd12(t, "tt")))
    return np.concatenate([c.reshape(-1, 9), w.reshape(-1, 9)], axis=1)


_R_REF = 6_378_137.0  # m: the reference point of the body term, on the equator


def _earth_term(distance_m):
    """The Earth's part of ``EarthLocation.gravitational_redshift``: -GM_earth / c / |r|, m/s."""
    from astropy import constants

    return -constants.GM_earth.value / constants.c.value / np.asarray(distance_m)


def _body_term(seconds) -> np.ndarray:
    """(n, 1): ``gravitational_redshift`` without the Earth's term (Sun, Jupiter, Moon at the
    geocentre: the same for every site), m/s."""
    from astropy import units as u
    from astropy.coordinates import EarthLocation

    reference = EarthLocation.from_geocentric(_R_REF, 0.0, 0.0, unit=u.m)
    total = reference.gravitational_redshift(_tai_times(seconds)).to_value(u.m / u.s)
    return (np.atleast_1d(total) - _earth_term(_R_REF))[:, None]


# sine and cosine from a table of _TURN steps per turn and short Taylor series (|r| <= pi/_TURN):
# errors below 1e-15 for the angles used here, at a third of the cost of np.sin + np.cos
_TURN = 256
_TABLE_SIN = np.sin(2 * np.pi * np.arange(_TURN) / _TURN)
_TABLE_COS = np.cos(2 * np.pi * np.arange(_TURN) / _TURN)


def _sincos_units(y):
    """(sin, cos) of the angles y, in units of 1/_TURN turn."""
    k = np.rint(y)
    r = (y - k) * (2 * np.pi / _TURN)
    i = k.astype(np.int64) & (_TURN - 1)
    r2 = r * r
    sin_r = r * (1.0 - r2 * (1.0 / 6.0 - r2 * (1.0 / 120.0)))
    cos_r = 1.0 - r2 * (0.5 - r2 * (1.0 / 24.0 - r2 * (1.0 / 720.0)))
    sin_k, cos_k = _TABLE_SIN[i], _TABLE_COS[i]
    return sin_k * cos_r + cos_k * sin_r, cos_k * cos_r - sin_k * sin_r


def _lagrange4(f):
    """Cubic Lagrange weights of the nodes -1, 0, 1, 2 at f in [0, 1): shape (n, 4)."""
    fm, f1, f2 = f + 1.0, f - 1.0, f - 2.0
    return np.stack([-f * f1 * f2 / 6.0, fm * f1 * f2 / 2.0, -fm * f * f2 / 2.0, fm * f * f1 / 6.0], axis=1)


class _Grid:
    """Values of an astropy computation on a uniform TAI grid, filled on demand, interpolated
    with 4-point (cubic) Lagrange polynomials."""

    def __init__(self, step_s: float, width: int, compute):
        size = int(_GRID_END_S // step_s) + 4
        self.step, self.compute = step_s, compute
        self.values = np.zeros((size, width))
        self.done = np.zeros(size, dtype=bool)

    def __call__(self, seconds) -> np.ndarray:
        x = np.asarray(seconds, dtype=np.float64) / self.step
        k = np.floor(x).astype(np.int64)
        nodes = k[:, None] + np.arange(-1, 3)
        missing = np.unique(nodes[~self.done[nodes]])
        if missing.size:
            self.values[missing] = self.compute(missing * self.step)
            self.done[missing] = True
        return np.einsum("nj,njw->nw", _lagrange4(x - k), self.values[nodes])


class _Ephemeris:
    """Records of the observer's motion per (site, 6-hour block of a UTC day), built on demand and
    kept for the process (about 160 bytes each: 4 per site and day of data)."""

    def __init__(self):
        self.earth_velocity = _Grid(VE_STEP_S, 3, _earth_velocity)
        self.rotation = _Grid(CW_STEP_S, 18, _rotation_matrices)
        self.bodies = _Grid(GB_STEP_S, 1, _body_term)
        # per UTC day: UT1-UTC at 0h and its rate (s/day), as astropy interpolates the IERS
        # table (linearly within a day); TAI seconds since _REF_MJD at 0h
        self.day_done = np.zeros(_N_DAYS, dtype=bool)
        self.dut1 = np.zeros(_N_DAYS)
        self.dut1_rate = np.zeros(_N_DAYS)
        self.tai0 = np.zeros(_N_DAYS)
        sites = [observatories.location(code) for code in observatories.codes()]
        self.site_xyz = np.array([[loc.x.to_value("m"), loc.y.to_value("m"), loc.z.to_value("m")] for loc in sites])
        self.site_gr = _earth_term(np.linalg.norm(self.site_xyz, axis=1))
        from astropy.coordinates.earth import OMEGA_EARTH

        self.omega = OMEGA_EARTH.to_value("1/s")
        # row of each (site slot, block) in ``records``, 0 when not built yet (row 0 is unused);
        # zeroed lazily by the OS, so only the pages of the blocks used take memory
        self.index = np.zeros(len(sites) * _N_BLOCKS, dtype=np.int32)
        self.records = np.zeros((1024, _WIDTH))
        self.used = 1

    def ensure(self, keys: np.ndarray) -> None:
        """Build the records of ``keys`` (site slot * _N_BLOCKS + block) not built yet."""
        missing = keys[self.index[keys] == 0]
        if missing.size == 0:
            return
        with astropy_offline():
            missing = np.unique(missing)
            missing = missing[self.index[missing] == 0]  # another thread may have built them
            if missing.size == 0:
                return
            rows = self._build(missing)
            need = self.used + len(rows)
            if need > len(self.records):
                grown = np.zeros((max(need, 2 * len(self.records)), _WIDTH))
                grown[: self.used] = self.records[: self.used]
                self.records = grown  # readers take rows after reading the index: always there
            self.records[self.used:need] = rows
            self.index[missing] = np.arange(self.used, need, dtype=np.int32)
            self.used = need

    def _days(self, days: np.ndarray) -> None:
        from astropy.time import Time

        days = np.unique(days[~self.day_done[days]])
        if days.size == 0:
            return
        mjd = (FIRST_MJD + days).astype(np.float64)
        t = Time(np.concatenate([mjd, mjd]), np.repeat([0.0, 0.5], days.size), format="mjd", scale="utc")
        dut1 = np.asarray(t.delta_ut1_utc, dtype=np.float64)
        tai = t[: days.size].tai
        self.dut1[days] = dut1[: days.size]
        self.dut1_rate[days] = 2.0 * (dut1[days.size:] - dut1[: days.size])
        self.tai0[days] = ((tai.jd1 - 2_400_000.5 - _REF_MJD) + tai.jd2) * 86_400.0
        self.day_done[days] = True

    def _build(self, keys: np.ndarray) -> np.ndarray:
        slots, blocks = np.divmod(keys, _N_BLOCKS)
        days, quarter = np.divmod(blocks, _BLOCKS_PER_DAY)
        self._days(days)
        m = keys.size
        start = self.tai0[days] + quarter * BLOCK_S  # TAI seconds at the start of the block
        d0, d1 = self.dut1[days], self.dut1_rate[days]
        out = np.empty((m, _WIDTH))
        # the Earth's velocity: quadratic in u (-1/2 .. 1/2 over the block) through 3 Chebyshev points
        sample = start[:, None] + BLOCK_S * (_CHEB_U + 0.5)
        ve = self.earth_velocity(sample.ravel()).reshape(m, _CHEB_U.size, 3)
        out[:, _V:_V + 3 * _CHEB_U.size] = np.einsum("ij,mjc->mic", _CHEB_INV, ve).reshape(m, -1)
        # the site's rotation velocity C^T R3(-theta) (omega z x W^T x) = cos(theta) a + sin(theta) b,
        # a and b at the middle of the block
        cw = self.rotation(start + 0.5 * BLOCK_S)
        c, w = cw[:, :9].reshape(m, 3, 3), cw[:, 9:].reshape(m, 3, 3)
        p = np.einsum("mji,mj->mi", w, self.site_xyz[slots])  # W^T x (TIRS)
        zero = np.zeros(m)
        qa = self.omega * np.stack([-p[:, 1], p[:, 0], zero], axis=1)  # omega z x p
        qb = self.omega * np.stack([-p[:, 0], -p[:, 1], zero], axis=1)  # z x (omega z x p)
        out[:, _A:_A + 3] = np.einsum("mji,mj->mi", c, qa)  # C^T qa (GCRS)
        out[:, _B:_B + 3] = np.einsum("mji,mj->mi", c, qb)
        # gravitational redshift of the site, linear over the block
        gr = self.bodies(np.stack([start, start + BLOCK_S], axis=1).ravel()).reshape(m, 2)
        gr += self.site_gr[slots][:, None]
        out[:, _G0], out[:, _G1] = 0.5 * (gr[:, 0] + gr[:, 1]), gr[:, 1] - gr[:, 0]
        # Earth rotation angle, ERFA's era00 of UT1 = UTC + dut1 (dut1 linear over the day):
        # theta = theta0 + theta1 * u, in units of 1/_TURN turn
        mjd = (FIRST_MJD + days).astype(np.float64)
        tau = (quarter + 0.5) / _BLOCKS_PER_DAY  # the middle of the block, in days since 0h UTC
        ut1_day = tau + (d0 + d1 * tau) / 86_400.0  # UT1 - (0h UTC of the day), days
        turns = 0.5 + 0.7790572732640 + 0.00273781191135448 * (mjd - 51_544.5) + 1.00273781191135448 * ut1_day
        out[:, _TH0] = _TURN * np.mod(turns, 1.0)
        out[:, _TH1] = _TURN * 1.00273781191135448 * (1.0 + d1 / 86_400.0) / _BLOCKS_PER_DAY
        return out

    def correction(self, rows: np.ndarray, u: np.ndarray, nx, ny, nz) -> np.ndarray:
        """The barycentric correction (m/s) of rows with records ``rows`` (of ``self.index``), time
        ``u`` in their block (-1/2 .. 1/2) and target unit vectors (nx, ny, nz).

        Written as in-place numpy operations on cache-sized chunks: this is the hot loop."""
        r = np.take(self.records, rows, axis=0)
        vx = r[:, _V + 6] * u  # the Earth's velocity, Horner
        vy = r[:, _V + 7] * u
        vz = r[:, _V + 8] * u
        vx += r[:, _V + 3]
        vy += r[:, _V + 4]
        vz += r[:, _V + 5]
        vx *= u
        vy *= u
        vz *= u
        vx += r[:, _V]
        vy += r[:, _V + 1]
        vz += r[:, _V + 2]
        sin_t, cos_t = _sincos_units(r[:, _TH0] + r[:, _TH1] * u)
        for j, comp in enumerate((vx, vy, vz)):  # plus the site's rotation velocity
            comp += cos_t * r[:, _A + j]
            comp += sin_t * r[:, _B + j]
        beta2 = vx * vx
        beta2 += vy * vy
        beta2 += vz * vz
        beta2 *= -1.0 / (C_LIGHT * C_LIGHT)
        beta2 += 1.0
        gr = r[:, _G1] * u
        gr += r[:, _G0]
        gr *= 1.0 / C_LIGHT
        gr += 1.0
        a = np.sqrt(beta2)
        a *= gr
        a = np.divide(1.0, a, out=a)  # gamma / (1 + gr / c)
        vx *= nx
        vy *= ny
        vz *= nz
        vx += vy
        vx += vz
        vx *= a
        a -= 1.0
        a *= C_LIGHT
        vx += a  # c (a - 1) + a (v . n)
        return vx


_EPHEMERIS: _Ephemeris | None = None


def _ephemeris() -> _Ephemeris:
    global _EPHEMERIS
    if _EPHEMERIS is None:
        with _LOCK:
            if _EPHEMERIS is None:
                _EPHEMERIS = _Ephemeris()
    return _EPHEMERIS


# ---- the kernels -------------------------------------------------------------------------------

def _site_slots(sites) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's observatory in ``observatories.codes()`` (-1 if unknown), and the rows'
    codes as given (to name an unknown one). ``sites`` is ``Categories`` (from SQL) or strings."""
    if not isinstance(sites, Categories):
        encoded = pa.array(np.asarray(sites, dtype=object), pa.string()).dictionary_encode()
        sites = Categories(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32),
                           encoded.dictionary.to_pylist())
    order = {code: i for i, code in enumerate(observatories.codes())}
    slot_of = []
    for value in sites.values:
        obs = observatories.find(value) if isinstance(value, str) else None
        slot_of.append(order[obs.code] if obs is not None else -1)
    slot_of.append(-1)  # a NULL code
    codes = np.where(sites.codes < 0, len(sites.values), sites.codes)
    return np.asarray(slot_of, dtype=np.int64)[codes], sites


def _as_us(observed_at) -> np.ndarray:
    t = np.asarray(observed_at)
    if t.dtype.kind != "M":
        t = np.asarray(t, dtype="datetime64[us]")
    return t.astype("datetime64[us]").view(np.int64)


def _reasons(bad, t_us, ra, dec, sites, slots, freq=None) -> list:
    """A reason per row: None for good rows, the problems of a bad row joined by '; '."""
    errors = [None] * len(bad)
    for i in np.flatnonzero(bad):
        problems = []
        if freq is not None and not math.isfinite(freq[i]):
            problems.append(f"freq_hz {float(freq[i])!r} is not a finite number")
        if not (_T_LO <= t_us[i] < _T_HI):
            when = np.datetime_as_string(t_us[i].astype("datetime64[us]"), unit="s")
            problems.append(f"observed_at {when} is outside 1960-01-01 .. 2099-12-31 (UTC starts in 1960; "
                            "the built-in ephemeris ends in 2100)")
        if not math.isfinite(ra[i]):
            problems.append(f"ra_deg {float(ra[i])!r} is not a finite number")
        if not math.isfinite(dec[i]):
            problems.append(f"dec_deg {float(dec[i])!r} is not a finite number")
        elif abs(dec[i]) > 90.0:
            problems.append(f"dec_deg {float(dec[i])!r} is outside -90 .. 90")
        if slots[i] < 0:
            problems.append(f"unknown observatory code {sites[i]!r}; known codes: {observatories.known_codes_text()}")
        errors[i] = "; ".join(problems)
    return errors


def _rows(t_us, slots, ra, dec, freq):
    """Which rows can be computed: a known site, a time in range, finite coordinates."""
    good = (slots >= 0) & (t_us >= _T_LO) & (t_us < _T_HI) & np.isfinite(ra) & (np.abs(dec) <= 90.0)
    if freq is not None:
        good &= np.isfinite(freq)
    return good


def _block_and_time(t_us, slots):
    """Record key (site slot, 6-hour block) and time in the block (-1/2 .. 1/2) of each row."""
    block = np.floor_divide(t_us, _BLOCK_US)
    keys = slots * _N_BLOCKS + (block - _FIRST_BLOCK)
    u = (t_us - block * _BLOCK_US) * (1.0 / _BLOCK_US) - 0.5
    return keys, u


def barycentric_correction(observed_at, ra_deg, dec_deg, site, _freq=None):
    """The kernel of ``barycentric_velocity_ms``: ``(velocities m/s, errors)``; a bad row gets NaN
    and a reason in ``errors`` (None for good rows; ``errors`` is None when every row is good)."""
    t_us = _as_us(observed_at)
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    freq = None if _freq is None else np.asarray(_freq, dtype=np.float64)
    slots, sites = _site_slots(site)
    n = t_us.size
    eph = _ephemeris()
    result = np.empty(n)
    bad = None
    to_units = _TURN / 360.0
    for i in range(0, n, _CHUNK):  # cache-sized chunks
        part = slice(i, i + _CHUNK)
        t, s, r, d = t_us[part], slots[part], ra[part], dec[part]
        good = _rows(t, s, r, d, None if freq is None else freq[part])
        rows = None
        if not good.all():
            if bad is None:
                bad = np.zeros(n, dtype=bool)
            bad[part] = ~good
            rows = np.flatnonzero(good)
            t, s, r, d = t[rows], s[rows], r[rows], d[rows]
        keys, u = _block_and_time(t, s)
        records = eph.index[keys]
        if not records.all():
            # records to build: build those of all the rows left at once (one astropy pass)
            rest = slice(i, n)
            left = _rows(t_us[rest], slots[rest], ra[rest], dec[rest], None if freq is None else freq[rest])
            eph.ensure(_block_and_time(t_us[rest][left], slots[rest][left])[0])
            records = eph.index[keys]
        sin_ra, cos_ra = _sincos_units(r * to_units)
        sin_dec, cos_dec = _sincos_units(d * to_units)
        v = eph.correction(records, u, cos_dec * cos_ra, cos_dec * sin_ra, sin_dec)
        if rows is None:
            result[part] = v
        else:
            out = result[part]
            out[:] = np.nan
            out[rows] = v
    if bad is None:
        return result, None
    return result, _reasons(bad, t_us, ra, dec, sites.to_objects(), slots, freq)


def _velocity_kernel(observed_at, ra_deg, dec_deg, site):
    return barycentric_correction(observed_at, ra_deg, dec_deg, site)


def _frequency_kernel(freq_hz, observed_at, ra_deg, dec_deg, site):
    freq = np.asarray(freq_hz, dtype=np.float64)
    velocity, errors = barycentric_correction(observed_at, ra_deg, dec_deg, site, _freq=freq)
    velocity *= 1.0 / C_LIGHT
    velocity += 1.0
    return np.divide(freq, velocity, out=velocity), errors


_SKY_ARGS = (
    Arg("observed_at", TIMESTAMP_UTC, "UTC time of the observation"),
    Arg("ra_deg", pa.float64(), "right ascension (ICRS) of the target, degrees"),
    Arg("dec_deg", pa.float64(), "declination (ICRS) of the target, degrees"),
    Arg("site", pa.string(), "observatory code (GBT, Parkes, ATA, FAST, MeerKAT, ...; case-insensitive)",
        categorical=True),
)

BARYCENTRIC_VELOCITY_MS = register(UdfSpec(
    name="barycentric_velocity_ms",
    args=_SKY_ARGS,
    returns=pa.float64(),
    kernel=_velocity_kernel,
    reports_errors=True,
    doc="The barycentric radial-velocity correction in m/s for a target at (ra_deg, dec_deg) (ICRS, "
        "degrees) observed at observed_at (UTC) from the observatory site: astropy's "
        "SkyCoord.radial_velocity_correction(kind='barycentric') (optical convention, zb = 1 + v/c), "
        "within 1 mm/s. Positive when the observer moves towards the target; add it to a topocentric "
        "radial velocity (v_bary = v_topo + v + v_topo*v/c). NULL (see barycentric_velocity_ms_error) "
        "for an unknown site, a NaN/infinite coordinate, |dec| > 90 or a time outside 1960..2099.",
    examples=("SELECT barycentric_velocity_ms(TIMESTAMP '2019-04-29 14:20:00', 217.42896, -62.67948, 'Parkes') AS v_ms",),
))

DOPPLER_CORRECT = register(UdfSpec(
    name="doppler_correct",
    args=(Arg("freq_hz", pa.float64(), "topocentric (observed) frequency, Hz"), *_SKY_ARGS),
    returns=pa.float64(),
    kernel=_frequency_kernel,
    reports_errors=True,
    doc="The barycentric frequency in Hz of a signal observed at freq_hz (topocentric, Hz): "
        "freq_hz / (1 + v/c) with v = barycentric_velocity_ms(observed_at, ra_deg, dec_deg, site), "
        "the exact relativistic factor astropy's correction stands for. A transmitter at a fixed "
        "frequency at rest relative to the solar-system barycentre gives the same value at every "
        "time and site. NULL (see doppler_correct_error) for the same bad rows as "
        "barycentric_velocity_ms, or a NaN/infinite freq_hz.",
    examples=("SELECT doppler_correct(982002000.0, TIMESTAMP '2019-04-29 14:20:00', 217.42896, -62.67948, 'Parkes') AS f_bary_hz",),
))
