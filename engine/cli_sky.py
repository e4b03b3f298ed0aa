"""Sky on the command line: ``astrolake run FILE`` and ``astrolake check [PATH...]``.
(``astrolake explain`` takes a .sky file too; it lives in engine/cli.py.)"""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli import _session, cli, common_options
from engine.errors import EngineError, ExpectationError, UsageError
from engine.output import FORMATS, emit

PARAM_HELP = "bind a $parameter of the query (repeatable), e.g. --param target=TRAPPIST-1"


def parse_params(values) -> dict:
    params = {}
    for value in values or ():
        name, sep, text = value.partition("=")
        name = name.strip().lstrip("$")
        if not sep or not name:
            raise UsageError(f"--param needs NAME=VALUE, got '{value}'")
        params[name] = text
    return params


def read_query(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the result to FILE")
@click.option("--max-rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="rows the table format shows")
@common_options
def run(file, params, fmt, output, max_rows):
    """Run a query file: Sky (.sky) or Spark SQL (.sql)."""
    from engine.dsl.check import run_file

    if not Path(file).is_file():
        raise UsageError(f"no such file: {file}")
    bound = parse_params(params)
    with _session() as session:
        result = run_file(session, Path(file), bound)
        emit(result, fmt, output, max_rows)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="also write JUnit XML to FILE (for CI)")
@common_options
def check(paths, params, junit_path):
    """Run every .sky and .sql file under PATHS (default queries/) and compare each result with its
    expected one; exit 1 with the differences when any differs."""
    from engine.dsl.check import check as run_check, junit, report

    with _session() as session:
        outcomes = run_check(session, list(paths) or ["queries"], parse_params(params))
        engine = session.engine
    click.echo(report(outcomes), nl=False)
    if junit_path:
        try:
            Path(junit_path).write_text(junit(outcomes, engine))
        except OSError as e:
            raise EngineError(f"cannot write {junit_path}: {e}") from e
    bad = [o for o in outcomes if o.status in ("failed", "error")]
    if bad:
        raise ExpectationError(f"{len(bad)} of {len(outcomes)} query files differ from their expected results or failed")
