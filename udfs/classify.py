"""Signal classification and embedding of spectrograms: engineered features, a small MLP, an autoencoder.

``classify_signal(power, n_time, n_chans)`` names the SETI Institute simulated-signal class of a
spectrogram (float32 little-endian C order [time, chan], the ``spectrograms.power`` layout) with
its probability; ``signal_embedding(...)`` places it in a 3-dimensional space learned by a dense
autoencoder and scores how unlike the training signals it is. Both compute the same shape-free
features (below), standardise them and run small dense networks in numpy. The weights ship in
the package (``udfs/models/signal_classifier.npz``), made by ``python -m
udfs.training.train_classifier`` from setigen simulations (docs/classification.md).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pyarrow as pa

from udfs.registry import Arg, UdfSpec, register

MODEL_FILE = "signal_classifier.npz"
MIN_TIME, MIN_CHANS = 4, 16

FEATURES = (
    "log_peak_pixel", "log_peak_row", "on_fraction", "on_switches", "row_peak_cv",
    "log_top_row_ratio", "top_pixel_share", "log_bright_pixels", "abs_slope", "log_linear_rms",
    "log_quadratic_rms", "quadratic_gain", "log_curvature", "log_jitter", "track_off_fraction",
    "track_switches", "log_track_snr", "log_width", "log_rows_on", "track_cv",
)


def centroids(z: np.ndarray, peaks: np.ndarray, reach: int = 2) -> np.ndarray:
    """Power-weighted channel of each row within +-reach channels of its peak (sub-channel)."""
    n_time, n_chans = z.shape
    cols = np.clip(peaks[:, None] + np.arange(-reach, reach + 1)[None, :], 0, n_chans - 1)
    w = np.clip(z[np.arange(n_time)[:, None], cols], 0, None)
    mass = w.sum(axis=1)
    return np.where(mass > 0, (w * cols).sum(axis=1) / np.where(mass > 0, mass, 1), peaks).astype(np.float64)


def features(power: np.ndarray) -> np.ndarray:
    """The feature vector of one spectrogram [n_time, n_chans] (float64, len(FEATURES))."""
    x = np.asarray(power, dtype=np.float64)
    n_time, n_chans = x.shape
    median = np.median(x)
    mad = np.median(np.abs(x - median)) * 1.4826
    if not mad > 0:
        mad = x.std() or 1.0
    z = (x - median) / mad
    smooth = (z[:, :-2] + z[:, 1:-1] + z[:, 2:]) / np.sqrt(3)  # a 3-channel boxcar, noise std 1
    peak = smooth.max(axis=1)
    where = centroids(z, smooth.argmax(axis=1) + 1)
    top = float(peak.max())
    threshold = max(4.5, 0.35 * top)
    on = peak > threshold
    steps = np.arange(n_time, dtype=np.float64)
    sorted_peaks = np.sort(peak)[::-1]
    bright = z > 5
    # the track: a weighted line and a parabola through the peaks of the rows where it is on
    lin_rms = quad_rms = curvature = slope = jitter = 0.0
    fit = np.polyval([0.0, float(where[int(np.argmax(peak))])], steps)
    if on.sum() >= 3:
        t, c = steps[on], where[on]
        line = np.polyfit(t, c, 1)
        lin_rms = float(np.sqrt(np.mean((c - np.polyval(line, t)) ** 2)))
        slope = abs(float(line[0]))
        fit = np.polyval(line, steps)
        if on.sum() >= 4:
            parabola = np.polyfit(t, c, 2)
            quad_rms = float(np.sqrt(np.mean((c - np.polyval(parabola, t)) ** 2)))
            curvature = abs(float(parabola[0])) * (t.max() - t.min()) ** 2 / 4
            if quad_rms < 0.7 * lin_rms:
                fit = np.polyval(parabola, steps)
        else:
            quad_rms = lin_rms
        next_step = np.diff(t) == 1  # wanders between consecutive steps, beyond the drift
        jumps = np.abs(np.diff(c) - line[0])[next_step]
        jitter = float(np.median(jumps)) if len(jumps) else lin_rms
    # the power along the fitted track, +-2 channels, each step
    cols = np.clip(np.round(fit).astype(int)[:, None] + np.arange(-2, 3)[None, :], 0, n_chans - 1)
    along = z[steps.astype(int)[:, None], cols].max(axis=1)
    along_top = max(float(along.max()), 1e-9)
    track_on = along > 0.4 * along_top
    track_snr = float(np.clip(along, 0, None).sum() / np.sqrt(n_time))
    widths = (z[on] > 0.5 * np.maximum(peak[on, None] / np.sqrt(3), 3)).sum(axis=1) if on.any() else np.zeros(1)
    values = [
        np.log1p(max(z.max(), 0)), np.log1p(max(top, 0)), on.mean(), np.abs(np.diff(on.astype(int))).sum() / n_time,
        float(np.std(peak) / (abs(np.mean(peak)) + 1.0)),
        np.log1p(max(sorted_peaks[0], 0) / max(sorted_peaks[1] if n_time > 1 else 1.0, 1.0)),
        float(z.max() / max(np.clip(z[bright], 0, None).sum(), 1.0)), np.log1p(bright.sum() / n_time),
        min(slope, 8.0), np.log1p(lin_rms), np.log1p(quad_rms), (lin_rms - quad_rms) / (lin_rms + 0.5),
        np.log1p(curvature), np.log1p(jitter), 1.0 - track_on.mean(),
        np.abs(np.diff(track_on.astype(int))).sum() / n_time, np.log1p(track_snr),
        np.log1p(float(np.median(widths))), np.log1p(on.sum()), float(np.std(along) / (abs(np.mean(along)) + 1.0)),
    ]
    return np.array(values, dtype=np.float64)


@lru_cache(maxsize=1)
def model() -> dict:
    """The shipped weights (loaded once from the package, never downloaded)."""
    with resources.files("udfs").joinpath("models", MODEL_FILE).open("rb") as f:
        with np.load(f, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def standardise(feats: np.ndarray, m: dict) -> np.ndarray:
    return (feats - m["feature_mean"]) / m["feature_std"]


def mlp_probabilities(inputs: np.ndarray, m: dict) -> np.ndarray:
    """Softmax of the classifier MLP (one tanh hidden layer) over standardised features."""
    hidden = np.tanh(inputs @ m["w1"] + m["b1"])
    logits = hidden @ m["w2"] + m["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def encode(inputs: np.ndarray, m: dict) -> np.ndarray:
    return np.tanh(inputs @ m["e1"] + m["eb1"]) @ m["e2"] + m["eb2"]


def decode(codes: np.ndarray, m: dict) -> np.ndarray:
    return np.tanh(codes @ m["d1"] + m["db1"]) @ m["d2"] + m["db2"]


def anomaly_scores(inputs: np.ndarray, codes: np.ndarray, m: dict) -> np.ndarray:
    """Reconstruction error of the autoencoder over the median error of the training set."""
    error = np.mean((decode(codes, m) - inputs) ** 2, axis=1)
    return error / float(m["train_median_error"])


def _matrices(power, n_time, n_chans):
    """Per row: the [n_time, n_chans] array, or None with the reason."""
    arrays, errors = [], []
    for i in range(len(power)):
        t, c = int(n_time[i]), int(n_chans[i])
        problem = None
        if t < MIN_TIME or c < MIN_CHANS:
            problem = f"the spectrogram must be at least {MIN_TIME} x {MIN_CHANS} [time, chan], got {t} x {c}"
        elif len(power[i]) != 4 * t * c:
            problem = (f"power has {len(power[i])} bytes, not 4 * n_time * n_chans = 4 * {t} * {c} = "
                       f"{4 * t * c} (float32 [time, chan])")
        data = None
        if problem is None:
            data = np.frombuffer(power[i], dtype="<f4").reshape(t, c)
            if not np.isfinite(data).all():
                problem, data = "power has NaN or infinite values", None
        arrays.append(data)
        errors.append(problem)
    return arrays, errors


def _feature_rows(power, n_time, n_chans):
    arrays, errors = _matrices(power, n_time, n_chans)
    good = [i for i, a in enumerate(arrays) if a is not None]
    m = model()
    feats = np.array([features(arrays[i]) for i in good]).reshape(len(good), len(FEATURES))
    return good, errors, standardise(feats, m), m


CLASS_TYPE = pa.struct([pa.field("label", pa.string()), pa.field("probability", pa.float64())])
EMBEDDING_TYPE = pa.struct([pa.field("embedding", pa.list_(pa.float64())),
                            pa.field("anomaly_score", pa.float64())])


def _classify(power, n_time, n_chans):
    good, errors, inputs, m = _feature_rows(power, n_time, n_chans)
    rows: list = [None] * len(power)
    if good:
        p = mlp_probabilities(inputs, m)
        best = p.argmax(axis=1)
        for k, i in enumerate(good):
            rows[i] = {"label": str(m["labels"][best[k]]), "probability": float(p[k, best[k]])}
    return pa.array(rows, CLASS_TYPE), errors


def _embed(power, n_time, n_chans):
    good, errors, inputs, m = _feature_rows(power, n_time, n_chans)
    rows: list = [None] * len(power)
    if good:
        codes = encode(inputs, m)
        scores = anomaly_scores(inputs, codes, m)
        for k, i in enumerate(good):
            rows[i] = {"embedding": [float(v) for v in codes[k]], "anomaly_score": float(scores[k])}
    return pa.array(rows, EMBEDDING_TYPE), errors


_ARGS = (Arg("power", pa.binary(), "float32 little-endian C order [time, chan] (spectrograms.power)"),
         Arg("n_time", pa.int32(), "time steps"),
         Arg("n_chans", pa.int32(), "channels"))

CLASSIFY_SIGNAL = register(UdfSpec(
    name="classify_signal",
    args=_ARGS,
    returns=CLASS_TYPE,
    kernel=_classify,
    reports_errors=True,
    doc="The SETI Institute simulated-signal class of a spectrogram (brightpixel, narrowband, "
        "narrowbanddrd, noise, squarepulsednarrowband, squiggle, squigglesquarepulsednarrowband) "
        "and the model's probability of it (0..1): a small MLP over 20 shape-free features, trained "
        "on setigen simulations (docs/classification.md). A spectrogram smaller than 4 x 16, a "
        "byte length that does not match n_time * n_chans float32, or NaN values give NULL with "
        "the reason in classify_signal_error. NULL if any argument is NULL.",
))

SIGNAL_EMBEDDING = register(UdfSpec(
    name="signal_embedding",
    args=_ARGS,
    returns=EMBEDDING_TYPE,
    kernel=_embed,
    reports_errors=True,
    doc="A 3-dimensional embedding of a spectrogram (the code of a dense autoencoder over the "
        "classifier's features) and anomaly_score: its reconstruction error over the median error "
        "of the training set (about 1 for signals like the training classes, large for what none of "
        "them looks like). Bad input as for classify_signal, reason in signal_embedding_error.",
))
