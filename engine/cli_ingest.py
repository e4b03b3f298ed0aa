"""``astrolake ingest images|spectra|filterbank|voltages``: files into the lake (catalogs.ingest.files).

Every command: one Delta commit per table per call, files already ingested (same SHA-256) are
skipped and reported, bad files are quarantined in ``_rejected`` and make the exit code 3
("partial") unless ``--strict`` (then nothing is committed, exit 1). A progress bar shows on a
terminal, never in a pipe. ``--engine spark`` parses the files in a Spark job (one task per group
of files) and commits once from the driver.
"""

from __future__ import annotations

import sys

import click

from engine.cli import _lake, common_options, ingest
from engine.errors import PartialIngest


def file_options(f):
    f = click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="parse files in N worker processes")(f)
    f = click.option("--strict", is_flag=True,
                     help="commit nothing (exit 1) if any file is rejected, instead of quarantining it (exit 3)")(f)
    f = click.argument("paths", nargs=-1, required=True, type=click.Path())(f)
    return f


def _finish(report) -> None:
    click.echo(report.summary())
    if report.partial:
        n = len(report.rejected)
        raise PartialIngest(f"{n} file{'s' if n != 1 else ''} rejected (quarantined in _rejected; "
                            f"exit code 3: partial)", report.rejected)


def _spark():
    """The SparkSession for ``--engine spark`` (the parse becomes a Spark job), else None."""
    obj = click.get_current_context().obj
    if obj.get("engine", "duckdb") != "spark":
        if obj.get("master") or obj.get("conf"):
            raise click.UsageError("--master and --conf apply to --engine spark")
        return None
    from engine.backends.spark import env_conf
    from engine.spark_session import spark_session

    return spark_session(obj.get("master"), env_conf(obj.get("conf", [])))


def _run(ingest_function, paths, workers, strict, **options):
    report = ingest_function(_lake(), list(paths), workers=workers, strict=strict,
                             progress=sys.stderr.isatty(), spark=_spark(), **options)
    _finish(report)


@ingest.command("images")
@file_options
@click.option("--extract", is_flag=True, help="also find sources (SEP) and write them to sources")
@click.option("--thresh", type=float, default=1.5, show_default=True,
              help="with --extract: detection threshold in units of the background RMS")
@common_options
def ingest_images_command(paths, workers, strict, extract, thresh):
    """FITS images (one row per image HDU; .gz and .fz too) into images."""
    from catalogs.ingest.fits_images import ingest_images

    _run(ingest_images, paths, workers, strict, extract=extract, thresh_sigma=thresh)


@ingest.command("spectra")
@file_options
@common_options
def ingest_spectra_command(paths, workers, strict):
    """1-D FITS spectra (images with a wavelength axis, SDSS/BOSS, spectrum tables) into spectra."""
    from catalogs.ingest.fits_spectra import ingest_spectra

    _run(ingest_spectra, paths, workers, strict)


@ingest.command("filterbank")
@file_options
@click.option("--chunk-mb", type=click.FloatRange(min=0, min_open=True), default=64, show_default=True,
              help="split a spectrogram into frequency chunks of at most this many MiB per row")
@common_options
def ingest_filterbank_command(paths, workers, strict, chunk_mb):
    """SIGPROC .fil and Breakthrough Listen .h5 filterbank files into spectrograms."""
    from catalogs.ingest.filterbank import ingest_filterbank

    _run(ingest_filterbank, paths, workers, strict, chunk_mb=chunk_mb)


@ingest.command("voltages")
@file_options
@click.option("--sample-rate-hz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="sample rate for files that do not carry one (the simulated-signal .dat files)")
@click.option("--chunk-samples", type=click.IntRange(min=1), default=1 << 21, show_default=True,
              help="complex samples per row of a raw I/Q recording")
@common_options
def ingest_voltages_command(paths, workers, strict, sample_rate_hz, chunk_samples):
    """Complex voltages (.dat simulated signals, ATA .compamp, .raw I/Q + .json) into voltages."""
    from catalogs.ingest.voltages import ingest_voltages

    _run(ingest_voltages, paths, workers, strict, sample_rate_hz=sample_rate_hz, chunk_samples=chunk_samples)
