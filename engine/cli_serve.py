"""``astrolake serve``: the lake over JDBC/ODBC (Spark Thrift Server, HiveServer2 protocol)."""

from __future__ import annotations

import os
import signal

import click

from engine.cli import cli, common_options
from engine.server_auth import AUTH_MODES
from engine.session import DEFAULT_LAKE


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback needs --auth ldap (or --insecure-no-auth)")
@click.option("--port", type=click.IntRange(1, 65535), default=10000, show_default=True,
              help="TCP port of the HiveServer2 (Thrift binary) endpoint")
@click.option("--read-only/--allow-writes", "read_only", default=True, show_default=True,
              help="refuse every write over JDBC (the default), or run CREATE TABLE ... AS and "
                   "INSERT INTO as lake commits")
@click.option("--max-rows", type=click.IntRange(min=0), default=100_000, show_default=True,
              help="rows a query returns at most, like JDBC setMaxRows (0: no cap)")
@click.option("--query-timeout", type=click.IntRange(min=0), default=300, show_default=True,
              help="seconds after which a running query is cancelled (0: never)")
@click.option("--auth", type=click.Choice(AUTH_MODES), default="none", show_default=True,
              help="client authentication: none, or ldap (HiveServer2's LDAP provider)")
@click.option("--ldap-url", default=None, help="LDAP server for --auth ldap, e.g. ldap://ldap.example.org:389")
@click.option("--ldap-base-dn", default=None,
              help="where users are for --auth ldap: user U binds as uid=U,<base dn>")
@click.option("--insecure-no-auth", is_flag=True,
              help="serve a non-loopback address without authentication (anyone reaching it reads the lake)")
@click.option("--refresh-interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="seconds between background checks for new table versions (statements check too)")
@common_options
def serve(host, port, read_only, max_rows, query_timeout, auth, ldap_url, ldap_base_dn,
          insecure_no_auth, refresh_interval):
    """Serve the lake to JDBC/ODBC clients and BI tools (Spark Thrift Server) until Ctrl-C."""
    from engine.backends.spark import env_conf
    from engine.server import LakeServer, ServerOptions

    obj = click.get_current_context().obj  # --engine does not apply: the Thrift server is Spark's
    options = ServerOptions(
        lake=obj.get("lake") or os.environ.get("ASTROLAKE_LAKE") or DEFAULT_LAKE,
        host=host, port=port, master=obj.get("master"), conf=env_conf(obj.get("conf", [])),
        allow_writes=not read_only, max_rows=max_rows, query_timeout_s=query_timeout,
        auth=auth, ldap_url=ldap_url, ldap_base_dn=ldap_base_dn,
        insecure_no_auth=insecure_no_auth, refresh_interval_s=refresh_interval,
    )
    server = LakeServer(options)
    previous = {s: signal.signal(s, server.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        url = server.start()
        mode = "read-only" if read_only else "writes allowed"
        who = "LDAP users" if auth == "ldap" else "anyone who can reach it (no authentication)"
        click.echo(f"serving {server.views.lake.root} at {url} ({mode}; {who})", err=False)
        click.echo(f"  tables: {', '.join(sorted(server.views.versions))}")
        click.echo("  connect: beeline -u " + url + ("" if auth == "none" else " -n USER -p PASSWORD"))
        click.echo("ready; Ctrl-C or SIGTERM stops it", err=False)
        server.wait()
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    click.echo(f"stopped ({server.stats()})")
