"""Small files of every layout the file ingests read, good and deliberately broken."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from astropy.io import fits


def image_fits(path: Path, seed: int = 0, shape=(64, 48), wcs: bool = True, **keys) -> Path:
    rng = np.random.default_rng(seed)
    data = rng.normal(100.0, 5.0, shape).astype(np.float32)
    data[20:23, 20:23] += 500.0
    header = fits.Header()
    header.update({"DATE-OBS": "2020-01-02T03:04:05", "TELESCOP": "TEST", "INSTRUME": "CAM", "FILTER": "R",
                   "EXPTIME": 30.0, "OBJECT": f"field{seed}", **keys})
    if wcs:
        header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
                       "CRPIX1": shape[1] / 2 + 0.5, "CRPIX2": shape[0] / 2 + 0.5, "CDELT1": -1e-4, "CDELT2": 1e-4})
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return path


def spectrum_fits(path: Path, n: int = 200, seed: int = 0, log: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    header = fits.Header({"CRVAL1": 3.6 if log else 4000.0, "CDELT1": 1e-4 if log else 2.0, "CRPIX1": 1,
                          "DC-FLAG": 1 if log else 0, "OBJECT": f"star{seed}", "DATE-OBS": "2021-05-06",
                          "RA": 10.5, "DEC": -20.25})
    fits.PrimaryHDU(rng.normal(1.0, 0.1, n).astype(np.float32), header).writeto(path, overwrite=True)
    return path


def table_spectrum(path: Path, wavelength, flux, names=("WAVELENGTH", "FLUX"), vector=False) -> Path:
    fmt = f"{len(wavelength)}D" if vector else "D"
    cols = [fits.Column(name=names[0], format=fmt, array=np.array([wavelength]) if vector else np.asarray(wavelength)),
            fits.Column(name=names[1], format=fmt, array=np.array([flux]) if vector else np.asarray(flux))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path, overwrite=True)
    return path


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<i", len(raw)) + raw


def sigproc_header(nchans: int, nbits: int, **extra) -> bytes:
    out = _s("HEADER_START")
    values = {"telescope_id": 6, "machine_id": 20, "nbits": nbits, "nchans": nchans, "nifs": 1,
              "fch1": 1420.0, "foff": -0.5, "tstart": 58000.5, "tsamp": 1.0, "src_raj": 123456.7,
              "src_dej": -102030.4, "source_name": "TESTSRC", **extra}
    ints = {"telescope_id", "machine_id", "nbits", "nchans", "nifs", "nsamples", "data_type"}
    for key, value in values.items():
        out += _s(key)
        if key == "source_name":
            out += _s(value)
        elif key in ints:
            out += struct.pack("<i", value)
        else:
            out += struct.pack("<d", value)
    return out + _s("HEADER_END")


def filterbank(path: Path, n_time: int = 8, nchans: int = 16, nbits: int = 32, seed: int = 0, extra_bytes: int = 0,
               **header) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = {8: "u1", 16: "<u2", 32: "<f4"}[nbits]
    data = (rng.uniform(0, 200, (n_time, nchans))).astype(dtype)
    path.write_bytes(sigproc_header(nchans, nbits, **header) + data.tobytes() + b"\0" * extra_bytes)
    return path, data


def fbh5(path: Path, n_time: int = 8, nchans: int = 16, compress: bool = True) -> tuple[Path, np.ndarray]:
    import h5py
    import hdf5plugin

    data = np.arange(n_time * nchans, dtype=np.float32).reshape(n_time, 1, nchans)
    with h5py.File(path, "w") as f:
        kwargs = hdf5plugin.Bitshuffle() if compress else {}
        ds = f.create_dataset("data", data=data, chunks=(n_time, 1, nchans), **kwargs)
        for key, value in {"fch1": 8000.0, "foff": -0.001, "tstart": 59000.0, "tsamp": 18.25, "nchans": nchans,
                           "nifs": 1, "nbits": 32, "telescope_id": 6, "source_name": b"VOYAGER-1",
                           "src_raj": 171003.984, "src_dej": 121058.8}.items():
            ds.attrs[key] = value
    return path, data[:, 0, :]


def simulated_dat(path: Path, seed: int = 0, private: bool = False, n: int = 32 * 6144) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs = rng.integers(-128, 128, (n, 2), dtype=np.int8)
    head = b""
    if private:
        head += json.dumps({"simulator_software_version": 3, "signal_type": "secret"}).encode() + b"\n"
    head += json.dumps({"uuid": f"uuid-{seed}", "signal_classification": "narrowband"}).encode() + b"\n"
    path.write_bytes(head + pairs.tobytes())
    return path, pairs[:, 0].astype(np.float32) + 1j * pairs[:, 1].astype(np.float32)


def compamp(path: Path, n_frames: int = 4, n_sub: int = 2, pols=(0,), seed: int = 0, reverse: bool = True
            ) -> tuple[Path, dict]:
    """Half-frames (written in reverse time order, as the ATA archive does); returns the expected
    complex samples per (polarization, subband) in time order."""
    rng = np.random.default_rng(seed)
    frames, expected = [], {}
    for pol in pols:
        for number in range(n_frames):
            re = rng.integers(-8, 8, (n_sub, 512))
            im = rng.integers(-8, 8, (n_sub, 512))
            packed = (((re & 0xF) << 4) | (im & 0xF)).astype(np.uint8)
            head = struct.pack(">diidiifi", 1420.0, number, 7, 533.333, 100, n_sub, 0.25, pol)
            frames.append((number, head + packed.tobytes()))
            for sub in range(n_sub):
                expected.setdefault((pol, sub), []).append(re[sub] + 1j * im[sub])
    if reverse:
        frames.sort(key=lambda f: -f[0])
    path.write_bytes(b"".join(f for _, f in frames))
    return path, {k: np.concatenate(v).astype(np.complex64) for k, v in expected.items()}


def raw_iq(path: Path, n: int = 1000, dtype: str = "int8", seed: int = 0, **meta) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    if dtype == "int8":
        pairs = rng.integers(-128, 128, (n, 2), dtype=np.int8)
    else:
        pairs = rng.normal(0, 1, (n, 2)).astype("<f4")
    path.write_bytes(pairs.tobytes())
    side = {"dtype": dtype, "sample_rate_hz": 2.5e6, "center_freq_hz": 1.42e9, "observed_at": "2024-05-01T12:00:00Z",
            "target": "Cas A", "ra_deg": 350.85, "dec_deg": 58.815, "site": "ATA", **meta}
    path.with_suffix(".json").write_text(json.dumps(side))
    return path, (pairs[:, 0].astype(np.float32) + 1j * pairs[:, 1].astype(np.float32)).astype(np.complex64)


def broken_corpus(folder: Path) -> dict[str, tuple[str, Path, str]]:
    """At least 15 deliberately broken files: name -> (ingest format, path, expected reason fragment)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[str, Path, str]] = {}

    good = image_fits(folder / "tmp_good.fits")
    raw = good.read_bytes()
    (folder / "truncated.fits").write_bytes(raw[: len(raw) - 2880 * 2 + 100])
    out["truncated FITS"] = ("images", folder / "truncated.fits", "HDU 0: cannot read the data")
    (folder / "empty.fits").write_bytes(b"")
    out["empty file"] = ("images", folder / "empty.fits", "not a readable FITS file")
    (folder / "text.fits").write_text("this is not FITS at all\n" * 200)
    out["not FITS"] = ("images", folder / "text.fits", "not a readable FITS file")
    bad_bitpix = bytearray(raw)
    at = bad_bitpix.find(b"BITPIX  =")
    bad_bitpix[at:at + 80] = f"{'BITPIX  =':<10}{12:>20}".ljust(80).encode()
    (folder / "bitpix.fits").write_bytes(bytes(bad_bitpix))
    out["wrong BITPIX"] = ("images", folder / "bitpix.fits", "BITPIX")
    no_naxis = bytearray(raw)
    for key in (b"NAXIS   =", b"NAXIS1  =", b"NAXIS2  ="):
        at = no_naxis.find(key)
        no_naxis[at:at + 80] = b"COMMENT".ljust(80)
    (folder / "no_naxis.fits").write_bytes(bytes(no_naxis))
    out["header without NAXIS"] = ("images", folder / "no_naxis.fits", "the header has no NAXIS keyword")
    fits.PrimaryHDU(np.full((16, 16), np.nan, np.float32)).writeto(folder / "nan.fits", overwrite=True)
    out["NaN-only image"] = ("images", folder / "nan.fits", "every pixel is NaN")
    fits.PrimaryHDU(np.zeros((3, 8, 8), np.float32)).writeto(folder / "cube.fits", overwrite=True)
    out["3-D cube"] = ("images", folder / "cube.fits", "images must be 2-D")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("A", "D", array=[1.0])])]).writeto(
        folder / "table_only.fits", overwrite=True)
    out["FITS without image"] = ("images", folder / "table_only.fits", "no image HDU")
    good.unlink()

    filterbank(folder / "short.fil", extra_bytes=3)
    out["filterbank length mismatch"] = ("filterbank", folder / "short.fil", "does not match the header")
    filterbank(folder / "nbits.fil", nbits=8)
    data = (folder / "nbits.fil").read_bytes().replace(struct.pack("<i", 8) + b"\x06\x00\x00\x00nchans",
                                                      struct.pack("<i", 4) + b"\x06\x00\x00\x00nchans")
    (folder / "nbits.fil").write_bytes(data)
    out["filterbank nbits 4"] = ("filterbank", folder / "nbits.fil", "nbits 4 is not supported")
    (folder / "garbage.fil").write_bytes(b"\x00" * 100)
    out["not SIGPROC"] = ("filterbank", folder / "garbage.fil", "not a SIGPROC")
    (folder / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
    out["unreadable HDF5"] = ("filterbank", folder / "bad.h5", "not a readable HDF5 file")

    table_spectrum(folder / "nonmono.fits", [4000.0, 4001.0, 4000.5, 4002.0], [1.0, 2.0, 3.0, 4.0])
    out["non-monotonic wavelength"] = ("spectra", folder / "nonmono.fits", "not monotonic")
    table_spectrum(folder / "unknown_table.fits", [1.0, 2.0], [1.0, 2.0], names=("X", "Y"))
    out["unknown spectrum layout"] = ("spectra", folder / "unknown_table.fits", "unknown spectrum layout")
    fits.PrimaryHDU(np.ones(50, np.float32)).writeto(folder / "no_axis.fits", overwrite=True)
    out["1-D image without wavelength"] = ("spectra", folder / "no_axis.fits", "without a wavelength axis")
    spectrum = spectrum_fits(folder / "tmp_s.fits")
    raw = spectrum.read_bytes()
    (folder / "truncated_spectrum.fits").write_bytes(raw[:2880 + 10])
    out["truncated spectrum"] = ("spectra", folder / "truncated_spectrum.fits", "cannot read the file")
    spectrum.unlink()

    simulated_dat(folder / "short.dat", n=1000)
    out["short simulated file"] = ("voltages", folder / "short.dat", "a simulated-signal file holds")
    (folder / "nojson.dat").write_bytes(b"\x01\x02" * 100)
    out["simulated without header"] = ("voltages", folder / "nojson.dat", "not a simulated-signal file")
    compamp(folder / "cut.compamp")
    (folder / "cut.compamp").write_bytes((folder / "cut.compamp").read_bytes()[:-10])
    out["truncated compamp"] = ("voltages", folder / "cut.compamp", "not a whole number of half-frames")
    (folder / "lonely.raw").write_bytes(b"\x00" * 64)
    out["raw without sidecar"] = ("voltages", folder / "lonely.raw", "needs a sidecar")
    raw_iq(folder / "odd.raw", dtype="float32")
    (folder / "odd.raw").write_bytes((folder / "odd.raw").read_bytes()[:-3])
    out["raw of odd length"] = ("voltages", folder / "odd.raw", "not a whole number")
    return out
