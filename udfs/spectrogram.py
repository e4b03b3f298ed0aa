"""Spectrograms from complex voltages: channelise with an FFT, detect power, integrate in time.

``spectrogram(samples, fft_len, n_integrate)`` reads ``samples`` as complex64 little-endian (the
``voltages.samples`` layout), cuts it into consecutive blocks of ``fft_len`` samples (a trailing
partial block, and spectra that do not fill a whole integration, are dropped), FFTs each block,
shifts the spectrum so channel 0 is the lowest frequency (``fftshift``), takes |X|^2 and SUMS
each run of ``n_integrate`` consecutive spectra, as rawspec does for Breakthrough Listen
filterbank products (its cuFFT store callback adds each spectrum's power into the output
buffer). With ``n_integrate = 1`` that is exactly ibmseti's spectrogram of a reshaped compamp:
``abs(fftshift(fft(x.reshape(n_time, fft_len)), 1))**2``. The result is float32 C order
[n_time, n_chans] as little-endian bytes (the ``spectrograms.power`` layout), with its shape.

The FFT runs in single precision (scipy.fft, one thread, complex64 in, complex64 out), like
rawspec's cuFFT; the FFT is not normalised (numpy's default "backward" norm).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from udfs import buffers
from udfs.registry import Arg, UdfSpec, register

SAMPLE_BYTES = 8  # complex64: float32 real, float32 imaginary
CHUNK_BYTES = 1 << 19  # FFT about this much input at a time, so the spectra stay in cache,
MIN_FFTS = 16  # but at least this many rows: pocketfft vectorises across rows

SPECTROGRAM_TYPE = pa.struct([
    pa.field("power", pa.binary()),
    pa.field("n_time", pa.int32()),
    pa.field("n_chans", pa.int32()),
])

WINDOWS = ("hann", "hamming", "blackman", "rect")


def window(name: str, n: int) -> np.ndarray:
    """The periodic (DFT-even) window of length ``n``, as scipy.signal.get_window(name, n)
    (which makes every window of length 1 a 1)."""
    if n == 1 and name in WINDOWS:
        return np.ones(1, dtype=np.float32)
    phase = 2 * np.pi * np.arange(n) / n
    if name == "hann":
        w = 0.5 - 0.5 * np.cos(phase)
    elif name == "hamming":
        w = 0.54 - 0.46 * np.cos(phase)
    elif name == "blackman":
        w = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2 * phase)
    elif name == "rect":
        w = np.ones(n)
    else:
        raise ValueError(f"unknown window '{name}' (one of {', '.join(WINDOWS)})")
    return w.astype(np.float32)


def spectrogram_shape(n_bytes: int, fft_len: int, n_integrate: int) -> tuple[int, int] | str:
    """(n_time, n_chans) of the spectrogram of ``n_bytes`` of samples, or why there is none."""
    if n_bytes % SAMPLE_BYTES:
        return f"samples has {n_bytes} bytes, not a multiple of 8 (complex64 samples)"
    if fft_len <= 0:
        return f"fft_len must be positive, got {fft_len}"
    if n_integrate <= 0:
        return f"n_integrate must be positive, got {n_integrate}"
    n_samples = n_bytes // SAMPLE_BYTES
    n_time = n_samples // (fft_len * n_integrate)
    if n_time == 0:
        return (f"{n_samples} samples are fewer than fft_len * n_integrate = "
                f"{fft_len} * {n_integrate} = {fft_len * n_integrate}")
    if n_time > np.iinfo(np.int32).max:
        return f"{n_time} spectra do not fit an int n_time"
    return n_time, fft_len


def power_spectrogram(samples, fft_len: int, n_integrate: int, taper: np.ndarray | None = None,
                      out: np.ndarray | None = None) -> np.ndarray:
    """The float32 [n_time, fft_len] spectrogram of complex64 little-endian ``samples`` (bytes or
    any buffer), into ``out`` when given. ``taper`` multiplies each block before its FFT."""
    import scipy.fft

    shape = spectrogram_shape(len(memoryview(samples).cast("B")), fft_len, n_integrate)
    if isinstance(shape, str):
        raise ValueError(shape)
    n_time, n_chans = shape
    block = n_integrate * fft_len
    x = np.frombuffer(samples, dtype="<c8", count=n_time * block).reshape(n_time, block)
    if out is None:
        out = np.empty((n_time, n_chans), dtype=np.float32)
    high = (fft_len + 1) // 2  # fftshift: bins [high:] (negative frequencies) first, then [:high]
    low = fft_len - high
    rows = max(-(-MIN_FFTS // n_integrate), CHUNK_BYTES // (block * SAMPLE_BYTES))
    power = None
    for start in range(0, n_time, rows):
        stop = min(n_time, start + rows)
        chunk = x[start:stop].reshape(-1, fft_len)
        if taper is not None:
            chunk = chunk * taper  # a writable copy: the FFT may overwrite it
        spectra = scipy.fft.fft(chunk, axis=1, workers=1, overwrite_x=taper is not None)
        parts = spectra.view(np.float32)  # re, im, re, im, ...
        np.multiply(parts, parts, out=parts)
        target = out[start:stop]
        if n_integrate > 1:  # re^2 and im^2 summed over the integration first: half the strided adds
            parts = np.add.reduce(parts.reshape(stop - start, n_integrate, 2 * fft_len), axis=1)
        if power is None or power.shape[0] != parts.shape[0]:
            power = np.empty((parts.shape[0], fft_len), dtype=np.float32)
        # |X|^2 into a contiguous buffer, then shifted into place: two plain copies are cheaper
        # than writing the strided sum straight into the shifted halves
        np.add(parts[:, 0::2], parts[:, 1::2], out=power)
        summed = power
        target[:, :low] = summed[:, high:]
        target[:, low:] = summed[:, :high]
    return out


def _spectrograms(samples, fft_len, n_integrate, windows=None):
    """Kernel: one spectrogram per row, all written into one buffer that becomes the Arrow
    binary column without a copy. ``(struct array, errors)``."""
    n = len(samples)
    shapes, tapers, errors = [], [], [None] * n
    cache: dict[tuple[str, int], np.ndarray | None] = {}
    for i in range(n):
        shape = spectrogram_shape(len(samples[i]), int(fft_len[i]), int(n_integrate[i]))
        taper = None
        if windows is not None and not isinstance(shape, str):
            name = str(windows[i]).strip().lower()
            key = (name, shape[1])
            if key not in cache:
                cache[key] = None if name == "rect" else (window(name, shape[1]) if name in WINDOWS else "unknown")
            taper = cache[key]
            if isinstance(taper, str):
                shape = f"unknown window '{windows[i]}' (one of {', '.join(WINDOWS)})"
                taper = None
        if isinstance(shape, str):
            errors[i] = shape
            shape = (0, 0)
        shapes.append(shape)
        tapers.append(taper)
    sizes = np.array([t * c for t, c in shapes], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if offsets[-1] * 4 > np.iinfo(np.int32).max:
        raise ValueError("spectrograms of one batch exceed 2 GiB; use a larger n_integrate")
    data = buffers.empty(int(offsets[-1]) * 4, "<f4")  # (memory used again: no page zeroing)
    for i, (shape, taper) in enumerate(zip(shapes, tapers)):
        if errors[i] is None:
            target = data[offsets[i]:offsets[i + 1]].reshape(shape)
            power_spectrogram(samples[i], shape[1], int(n_integrate[i]), taper, out=target)
    power = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer((offsets * 4).astype(np.int32)),
                                                   pa.py_buffer(data)])
    n_time = pa.array([s[0] for s in shapes], pa.int32())
    n_chans = pa.array([s[1] for s in shapes], pa.int32())
    return pa.StructArray.from_arrays([power, n_time, n_chans], fields=list(SPECTROGRAM_TYPE)), errors


_SHAPE_DOC = (
    "samples is complex64 little-endian (voltages.samples); it is cut into blocks of fft_len "
    "samples, each FFT'd and fftshift'ed (channel 0 is the lowest frequency), |X|^2 of each run "
    "of n_integrate consecutive spectra is summed, and any samples left over after the last whole "
    "integration are dropped. Returns power (float32 little-endian, C order [n_time, n_chans], "
    "the spectrograms.power layout), n_time = floor(n_samples / (fft_len * n_integrate)) and "
    "n_chans = fft_len. A byte length that is not a multiple of 8, fft_len or n_integrate <= 0, "
    "or fewer than fft_len * n_integrate samples gives NULL, with the reason in "
)

SPECTROGRAM = register(UdfSpec(
    name="spectrogram",
    args=(Arg("samples", pa.binary(), "complex64 little-endian voltages"),
          Arg("fft_len", pa.int32(), "samples per FFT = channels"),
          Arg("n_integrate", pa.int32(), "spectra summed per output row")),
    returns=SPECTROGRAM_TYPE,
    kernel=_spectrograms,
    reports_errors=True,
    doc="Power spectrogram of complex voltages: " + _SHAPE_DOC + "spectrogram_error. "
        "Channel width is sample_rate_hz / fft_len; time per row is fft_len * n_integrate / "
        "sample_rate_hz seconds. NULL if any argument is NULL.",
    examples=("SELECT spectrogram(unhex(repeat('0000803F00000000', 8)), 4, 2).n_time AS n_time",),
))

SPECTROGRAM_WINDOW = register(UdfSpec(
    name="spectrogram_window",
    args=(Arg("samples", pa.binary(), "complex64 little-endian voltages"),
          Arg("fft_len", pa.int32(), "samples per FFT = channels"),
          Arg("n_integrate", pa.int32(), "spectra summed per output row"),
          Arg("window", pa.string(), "'hann', 'hamming', 'blackman' or 'rect'")),
    returns=SPECTROGRAM_TYPE,
    kernel=lambda samples, fft_len, n_integrate, windows: _spectrograms(samples, fft_len, n_integrate, windows),
    reports_errors=True,
    doc="spectrogram(samples, fft_len, n_integrate) with each block multiplied by a periodic "
        "(DFT-even) window before its FFT: 'hann', 'hamming', 'blackman' or 'rect' (no window), "
        "as scipy.signal.get_window; the power is not renormalised. " + _SHAPE_DOC
        + "spectrogram_window_error, as does an unknown window name. NULL if any argument is NULL.",
))
