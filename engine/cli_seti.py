"""``astrolake search`` and ``astrolake plot``: the SETI search over spectrograms and its pictures."""

from __future__ import annotations

import click

from engine.cli import _session, cli, common_options


@click.command("search")
@click.argument("pattern")
@click.option("--max-drift", "max_drift_hz_s", type=float, default=4.0, show_default=True,
              help="largest |drift rate| searched, Hz/s")
@click.option("--snr", "snr_min", type=float, default=10.0, show_default=True, help="keep hits above this SNR")
@click.option("--into", "into", default="signal_events", show_default=True,
              help="table the hits go to (made if it does not exist)")
@common_options
def search_command(pattern, max_drift_hz_s, snr_min, into):
    """De-Doppler drift search of the spectrograms PATTERN names (id, target or file; * and ? wildcards)."""
    from engine.seti_search import search

    with _session() as session:
        click.echo(search(session, pattern, max_drift_hz_s, snr_min, into).summary())


cli.add_command(search_command)


@cli.group()
def plot():
    """Pictures of the lake: waterfalls of spectrograms with their hits (PNG)."""


@plot.command("waterfall")
@click.argument("spectrogram_id")
@click.option("--hits", is_flag=True, help="draw the drift lines of the spectrogram's hits (signal_events)")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="the PNG file to write")
@common_options
def plot_waterfall_command(spectrogram_id, hits, out):
    """A spectrogram (or the chunks of a parent_id) as a waterfall: MHz across, seconds down."""
    from engine.plots import plot_waterfall

    with _session() as session:
        click.echo(plot_waterfall(session, spectrogram_id, out, hits))


@plot.command("event")
@click.argument("event_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="the PNG file to write")
@common_options
def plot_event_command(event_id, out):
    """The waterfall around one hit of astrolake search, with its drift line."""
    from engine.plots import plot_event

    with _session() as session:
        click.echo(plot_event(session, event_id, out))
