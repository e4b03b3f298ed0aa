"""Labelled spectrograms of the SETI Institute's simulated-signal classes, made with setigen.

setigen (Brzycki et al. 2022) draws chi-squared radiometer noise and injects signals along a
frequency path with a time and a frequency profile. Each class is one recipe:

- ``noise``: noise alone.
- ``narrowband``: a linearly drifting tone (drift -2 .. 2 channels per time step).
- ``narrowbanddrd``: a tone whose drift rate itself drifts (a quadratic path, curving 6 to 40
  channels away from the straight line over the observation).
- ``squiggle``: a tone whose frequency random-walks (setigen's ``simple_rfi_path``, random_walk,
  steps uniform in +-1 .. +-2.5 channels).
- ``squarepulsednarrowband``: a drifting tone switched on and off by a square wave.
- ``squigglesquarepulsednarrowband``: a squiggle switched on and off by a square wave.
- ``brightpixel``: one to three bright pixels in one time step.

Signals are 5 to 30 times the per-pixel noise std (bright pixels 10 to 120), 1 to 3 channels wide (Gaussian FWHM). Shapes
vary (16, 32 or 64 time steps by 128, 256 or 512 channels) so that the features learn no shape,
and so does the noise: setigen's chi-squared noise has 4 * round(df * dt) degrees of freedom, and
df * dt is drawn from 1 (skewed noise, like the GBT C-band cut-out's 1.4 Hz x 1.4 s) to 51
(nearly Gaussian, like Breakthrough Listen's 2.8 Hz x 18.3 s high-resolution products).
"""

from __future__ import annotations

import numpy as np

LABELS = ("brightpixel", "narrowband", "narrowbanddrd", "noise", "squarepulsednarrowband",
          "squiggle", "squigglesquarepulsednarrowband")
DF_HZ = 2.7939677238464355  # Breakthrough Listen high-resolution products
DF_DT = (1, 2, 3, 5, 8, 13, 25, 51)  # channel width x time step: chi-squared dof / 4
SHAPES_TIME = (16, 32, 64)
SHAPES_CHANS = (128, 256, 512)


def _square(rng, n_time: int):
    """A square wave over the time steps with at least one on and one off step: 1 or 0 per step."""
    while True:
        period = rng.uniform(3, max(4, n_time / 2))
        duty = rng.uniform(0.3, 0.7)
        phase = rng.uniform(0, period)
        on = (((np.arange(n_time) + phase) % period) < duty * period).astype(float)
        if 0 < on.sum() < n_time:
            return on


def simulate(label: str, rng: np.random.Generator, n_time: int | None = None,
             n_chans: int | None = None) -> np.ndarray:
    """One float32 [n_time, n_chans] spectrogram of class ``label`` (setigen, chi-squared noise)."""
    import setigen as stg
    from astropy import units as u

    n_time = int(n_time or rng.choice(SHAPES_TIME))
    n_chans = int(n_chans or rng.choice(SHAPES_CHANS))
    dt_s = float(rng.choice(DF_DT)) / DF_HZ
    frame = stg.Frame(fchans=n_chans, tchans=n_time, df=DF_HZ * u.Hz, dt=dt_s * u.s, fch1=6000 * u.MHz,
                      seed=int(rng.integers(2**31)))
    frame.add_noise(x_mean=10, noise_type="chi2")
    if label == "noise":
        return frame.data.astype(np.float32)
    level = float(np.exp(rng.uniform(np.log(5), np.log(30)))) * frame.noise_std
    if label == "brightpixel":
        t = int(rng.integers(n_time))
        c = int(rng.integers(2, n_chans - 2))
        width = int(rng.integers(1, 4))
        frame.data[t, c:c + width] += level * rng.uniform(2, 4) * np.linspace(1, 0.5, width)
        return frame.data.astype(np.float32)
    chans_per_step = rng.uniform(-2, 2)
    curve = 0.0
    if label == "narrowbanddrd":
        curve = rng.choice([-1, 1]) * rng.uniform(6, 40)  # channels off the line at the end
    # keep the path inside the band: its channel at each step
    steps = np.arange(n_time)
    offsets = chans_per_step * steps + curve * (steps / (n_time - 1)) ** 2
    low, high = 8 - offsets.min(), n_chans - 8 - offsets.max()
    if label.startswith("squiggle"):
        low, high = low + n_chans * 0.15, high - n_chans * 0.15
    start = rng.uniform(low, high) if high > low else (n_chans - offsets.max() - offsets.min()) / 2
    f_start = frame.get_frequency(start)
    drift_hz_s = chans_per_step * DF_HZ / dt_s
    accel = 2 * curve * DF_HZ / (dt_s * (n_time - 1)) ** 2
    if label.startswith("squiggle"):
        spread = rng.uniform(2, 5) * DF_HZ
        path = stg.simple_rfi_path(f_start, drift_hz_s * u.Hz / u.s, spread * u.Hz, rfi_type="random_walk",
                                   seed=int(rng.integers(2**31)))
    else:
        def path(t, f0=f_start, v=drift_hz_s, a=accel):
            return f0 + v * t + 0.5 * a * t ** 2
    if label.endswith("squarepulsednarrowband"):
        on = _square(rng, n_time)

        def t_profile(t, on=on, level=level):
            index = np.clip(np.round(np.asarray(t) / dt_s).astype(int), 0, n_time - 1)
            return level * on[index]
    else:
        t_profile = stg.constant_t_profile(level=level)
    width_hz = rng.uniform(1, 3) * DF_HZ
    frame.add_signal(path, t_profile, stg.gaussian_f_profile(width=width_hz * u.Hz), stg.constant_bp_profile(level=1))
    return frame.data.astype(np.float32)


def dataset(n_per_class: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """(spectrograms, label indices): n_per_class of each class, in a seeded random order."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(LABELS)), n_per_class)
    rng.shuffle(labels)
    return [simulate(LABELS[k], rng) for k in labels], labels
