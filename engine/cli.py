"""The ``astrolake`` command: one click group over the session.

Every error astrolake reports is one line on stderr and an exit code (1 for a failed query or
rejected input, 2 for bad usage); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import click

from engine.backends import ENGINES
from engine.errors import EngineError, IngestError
from engine.output import FORMATS, emit, format_table
from engine.session import DEFAULT_LAKE

LAKE_HELP = f"the lake directory (default ${'{'}ASTROLAKE_LAKE{'}'} or ./{DEFAULT_LAKE})"


def _remember(key):
    def callback(ctx: click.Context, _param, value):
        if value is not None and value is not False:
            ctx.obj[key] = value
        return value

    return callback


def _remember_conf(ctx: click.Context, _param, value):
    if value:
        ctx.obj.setdefault("conf", []).extend(value)
    return value


def common_options(f):
    """--lake, --engine, --master, --conf and --debug, before or after the command name."""
    f = click.option("--conf", multiple=True, expose_value=False, callback=_remember_conf,
                     metavar="KEY=VALUE", help="a Spark setting (repeatable; --engine spark)")(f)
    f = click.option("--master", default=None, expose_value=False, callback=_remember("master"),
                     help="Spark master URL (default $ASTROLAKE_SPARK_MASTER or local[*])")(f)
    f = click.option("--debug", is_flag=True, default=None, expose_value=False, is_eager=True,
                     callback=_remember("debug"), help="show tracebacks")(f)
    f = click.option("--engine", type=click.Choice(ENGINES), default=None, expose_value=False,
                     callback=_remember("engine"), help="execution engine (default duckdb)")(f)
    f = click.option("--lake", type=click.Path(file_okay=False), default=None, expose_value=False,
                     callback=_remember("lake"), help=LAKE_HELP)(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lake", type=click.Path(file_okay=False), envvar="ASTROLAKE_LAKE", default=None,
              expose_value=False, callback=_remember("lake"), help=LAKE_HELP)
@click.option("--engine", type=click.Choice(ENGINES), envvar="ASTROLAKE_ENGINE", default=None,
              expose_value=False, callback=_remember("engine"), help="execution engine (default duckdb)")
@click.option("--master", default=None, expose_value=False,
              callback=_remember("master"), help="Spark master URL (default $ASTROLAKE_SPARK_MASTER or local[*]; --engine spark)")
@click.option("--conf", multiple=True, expose_value=False, callback=_remember_conf, metavar="KEY=VALUE",
              help="a Spark setting, passed through (repeatable; --engine spark)")
@click.option("--debug", is_flag=True, default=None, expose_value=False, callback=_remember("debug"),
              help="show tracebacks")
@click.version_option(package_name="astrolake")
def cli():
    """astrolake: SQL over a Delta lake of astronomy data, on DuckDB or Spark."""


def _session():
    import engine

    obj = click.get_current_context().obj
    name = obj.get("engine", "duckdb")
    options = {}
    if name == "spark":
        from engine.backends.spark import env_conf

        options = {"master": obj.get("master"), "conf": env_conf(obj.get("conf", []))}
    elif obj.get("master") or obj.get("conf"):
        raise click.UsageError("--master and --conf apply to --engine spark")
    return engine.connect(obj.get("lake") or os.environ.get("ASTROLAKE_LAKE") or DEFAULT_LAKE,
                          engine=name, **options)


def _lake():
    from catalogs.lake import Lake

    obj = click.get_current_context().obj
    return Lake(obj.get("lake") or os.environ.get("ASTROLAKE_LAKE") or DEFAULT_LAKE)


# ---- queries ---------------------------------------------------------------------------

@cli.command()
@click.argument("query", required=False)
@click.option("-f", "--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="read SQL from FILE (repeatable); '-' reads standard input")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the result to FILE")
@click.option("--max-rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="rows the table format shows")
@click.option("--timing", is_flag=True, help="print the time each statement took")
@common_options
def sql(query, files, fmt, output, max_rows, timing):
    """Run Spark SQL (one or more ;-separated statements) and print the results."""
    from engine.sqlfront import parse_statements

    texts = [Path(f).read_text() for f in files]
    if query == "-" or (query is None and not files and not sys.stdin.isatty()):
        texts.append(sys.stdin.read())
    elif query is not None:
        texts.append(query)
    if not texts:
        raise click.UsageError("give a QUERY, --file FILE, or SQL on standard input")
    statements = [s for text in texts for s in parse_statements(text)]
    with _session() as session:
        for i, statement in enumerate(statements):
            started = time.perf_counter()
            result = session.execute(statement)
            last = i == len(statements) - 1
            if fmt == "table" or last:
                emit(result, fmt, output if last else None, max_rows)
            if timing:
                click.echo(f"Time: {time.perf_counter() - started:.3f} s", err=True)


@cli.command()
@common_options
def shell():
    """Interactive SQL shell: statements end with ';', \\? for help, \\q to quit."""
    from engine.shell import Shell

    with _session() as session:
        Shell(session).run()


@cli.command()
@click.argument("query")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="bind a $parameter of a Sky query (repeatable)")
@common_options
def explain(query, params):
    """Show the engine's SQL and plan for a query: SQL text, or a .sky or .sql file."""
    if query.endswith((".sky", ".sql")) and Path(query).is_file():
        from engine.cli_sky import parse_params, read_query

        text = read_query(query)
        if query.endswith(".sky"):
            with _session() as session:
                bound = parse_params(params)
                tree = session.sky_tree(text, bound)
                click.echo(f"-- Spark SQL\n{tree.sql(dialect='spark', pretty=True)}\n")
                click.echo(f"-- {session.engine} SQL\n{session.compile_sky(text, bound)}\n")
                click.echo(f"-- {session.engine} plan\n{session.explain_sky(text, bound)}")
            return
        from engine.dsl.expect import split_expect

        query = split_expect(text)[0]
    with _session() as session:
        click.echo(f"-- {session.engine} SQL\n{session.compile(query)}\n")
        click.echo(f"-- {session.engine} plan\n{session.explain(query)}")


# ---- the catalog -----------------------------------------------------------------------

@cli.command()
@common_options
def tables():
    """List the lake's tables with row counts and versions."""
    with _session() as session:
        click.echo(format_table(session.tables()), nl=False)


@cli.command()
@click.argument("table")
@common_options
def describe(table):
    """Show a table's columns (with units), rows, Delta version and size."""
    with _session() as session:
        click.echo(describe_text(session, table), nl=False)


def describe_text(session, table: str) -> str:
    info = session.lake.info(table)
    head = [
        f"table:        {info.name}",
        f"description:  {info.description}",
        f"version:      {info.version}",
        f"rows:         {info.rows}",
        f"files:        {info.files} ({_size(info.size_bytes)})",
        f"partitioned:  {', '.join(info.partition_by) or 'no'}",
        f"location:     {session.lake.path(table)}",
        "",
    ]
    return "\n".join(head) + format_table(session.describe(table))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cli.command()
@click.argument("table")
@common_options
def history(table):
    """List a table's Delta commits (newest first): use them with VERSION AS OF."""
    with _session() as session:
        click.echo(format_table(session.history(table)), nl=False)


@cli.command()
@click.argument("name", required=False)
@common_options
def functions(name):
    """List the function library (signatures, units, docs), or show one function."""
    from udfs.registry import all_functions, get

    specs = [get(name)] if name else all_functions()
    for spec in specs:
        click.echo(spec.signature)
        if name:
            click.echo("")
            for arg in spec.args:
                click.echo(f"  {arg.name}: {arg.doc}" if arg.doc else f"  {arg.name}")
            click.echo("")
            click.echo(spec.doc)
            for example in spec.examples:
                click.echo(f"  e.g. {example}")
        else:
            click.echo(f"    {spec.doc.splitlines()[0]}")


# ---- writing ---------------------------------------------------------------------------

@cli.group()
def ingest():
    """Load files into the lake (one atomic commit per call, idempotent per file)."""


@ingest.command("events")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--skip-bad", is_flag=True,
              help="commit the good rows and quarantine rejected ones in _rejected")
@common_options
def ingest_events_command(files, skip_bad):
    """Signal events from CSV or Parquet FILES into signal_events."""
    from catalogs.ingest.events import ingest_events

    report = ingest_events(_lake(), list(files), skip_bad=skip_bad)
    click.echo(report.summary())


@cli.command()
@click.option("--events", type=click.IntRange(min=1000), default=1_000_000, show_default=True,
              help="number of signal events to generate")
@click.option("--seed", type=int, default=42, show_default=True)
@common_options
def demo(events, seed):
    """Build the deterministic demo lake (the same everywhere for the same seed)."""
    from catalogs.demo import build_demo

    click.echo(build_demo(_lake(), n_events=events, seed=seed))

from engine import cli_ingest  # noqa: E402,F401  (registers the file ingest commands)


from engine import cli_sky  # noqa: E402,F401  (registers its commands)
from engine import cli_seti  # noqa: E402,F401  (registers search and plot)
from engine import cli_serve  # noqa: E402,F401  (registers serve)


# ---- entry point -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    obj: dict = {}
    try:
        cli.main(args=argv, prog_name="astrolake", standalone_mode=False, obj=obj)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except EngineError as e:
        if obj.get("debug") or "--debug" in argv:
            traceback.print_exc()
        message = str(e)
        if isinstance(e, IngestError) or getattr(e, "multiline", False) or "\n" not in message:
            click.echo(f"error: {message}", err=True)
        else:
            click.echo(f"error: {message.splitlines()[0]}", err=True)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    # ``python -m engine.cli``: run the importable module, whose group the cli_* modules extend
    from engine.cli import main as _main

    _main()
