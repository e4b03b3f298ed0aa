"""``astrolake serve``: the real Spark Thrift Server (HiveServer2 protocol) over the lake.

JDBC/ODBC clients (beeline, DBeaver, Superset through PyHive, Tableau) talk to Spark's own
HiveThriftServer2, started in this process with ``startWithContext`` on a SparkSession that has
every function of the library registered and every lake table as a temporary view. With
``spark.sql.hive.thriftServer.singleSession=true`` every connection shares that session, so the
functions and views are visible to all of them.

Each statement a client sends passes through a gate before Spark runs it (a parser injected with
``SparkSessionExtensions.injectParser``, implemented here in Python over Py4J):
- freshness: each table's next Delta log entry (``_delta_log/<version+1>.json``) is looked for, and
  a table that moved has its view re-pointed at the new snapshot's files, so a commit made by
  ``astrolake ingest`` while the server runs is seen by the next statement;
- policy: only queries and read-only commands (SHOW, DESCRIBE, EXPLAIN, USE, SET without a value)
  run; with ``--allow-writes``, CREATE TABLE ... AS and INSERT INTO are run by astrolake's own
  write path (one Delta commit into the lake); everything else is refused with one clear line;
- limits: a query's result is capped at ``max_rows`` rows (as JDBC's ``setMaxRows`` does), and
  Spark's ``spark.sql.thriftServer.queryTimeout`` cancels a query that runs too long;
- errors found while parsing or analysing (syntax, unknown table or column, wrong arguments) come
  back to the client as astrolake's one-line message.
A background thread runs the same freshness check every ``refresh_interval_s`` so that metadata
calls (GetTables, GetColumns), which do not send a statement, see new tables too.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError, LakeError, QueryError, UnsupportedStatementError
from engine.server_views import LakeViews

READ_COMMANDS = {
    "ShowTables", "ShowTablesExtended", "ShowViews", "ShowNamespaces", "ShowNamespacesCommand",
    "ShowColumns", "ShowFunctions", "ShowCatalogsCommand", "ShowCurrentNamespace",
    "ShowCurrentNamespaceCommand", "ShowTableProperties", "ShowPartitions", "ShowCreateTable",
    "DescribeRelation", "DescribeColumn", "DescribeFunction", "DescribeNamespace",
    "ExplainCommand", "SetCatalogAndNamespace", "RefreshTable",
}
LAKE_WRITES = {"CreateTableAsSelect", "ReplaceTableAsSelect", "InsertIntoStatement"}
# astrolake's own syntax, which the gate rewrites before Spark parses the statement
_ASTROLAKE_SYNTAX = re.compile(r"\b(?:VERSION|TIMESTAMP)\s+AS\s+OF\b|\bCONTAINS\s*\(\s*POINT\s*\(", re.I)


@dataclass
class ServerOptions:
    lake: str
    host: str = "127.0.0.1"
    port: int = 10000
    master: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    allow_writes: bool = False
    max_rows: int = 100_000  # 0: no cap
    query_timeout_s: int = 300  # 0: no timeout
    auth: str = "none"
    ldap_url: str | None = None
    ldap_base_dn: str | None = None
    insecure_no_auth: bool = False
    refresh_interval_s: float = 1.0

    @property
    def jdbc_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"jdbc:hive2://{host}:{self.port}/default"


class StatementGate:
    """Every statement's parse, with the freshness check, the policy and the limits around it."""

    def __init__(self, server: "LakeServer", delegate):
        self.server = server
        self.delegate = delegate

    # ParserInterface: the two entry points statements come through; the rest is delegated.
    def parsePlan(self, text):
        return self.server.gate(text, lambda: self.delegate.parsePlan(text))

    def parsePlanWithParameters(self, text, context):
        return self.server.gate(text, lambda: self.delegate.parsePlanWithParameters(text, context))

    def __getattr__(self, name):
        return getattr(self.delegate, name)

    class Java:
        implements = ["org.apache.spark.sql.catalyst.parser.ParserInterface"]


class GateInjector:
    """scala.Function2[SparkSession, ParserInterface, ParserInterface] for injectParser."""

    def __init__(self, server: "LakeServer"):
        self.server = server

    def apply(self, _session, delegate):
        gate = StatementGate(self.server, delegate)
        self.server.parser = delegate
        return gate

    class Java:
        implements = ["scala.Function2"]


class LakeServer:
    def __init__(self, options: ServerOptions):
        self.options = options
        self.parser = None
        self.thrift = None
        self.spark = None
        self.views: LakeViews | None = None
        self._stop = threading.Event()
        self._writer = None
        self._write_lock = threading.Lock()
        self.statements = 0
        self.gate_seconds = 0.0
        self._work: str | None = None  # Spark's warehouse and scratch folder, removed at stop

    # ---- start and stop ----------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        from engine.server_auth import auth_settings

        o = self.options
        if self._work is None:
            self._work = tempfile.mkdtemp(prefix="astrolake-serve-")
        work = self._work
        return {
            "spark.app.name": "astrolake serve",
            "spark.sql.hive.thriftServer.singleSession": "true",
            "spark.sql.catalogImplementation": "in-memory",
            "spark.sql.warehouse.dir": str(Path(work) / "warehouse"),
            "spark.hadoop.hive.server2.thrift.bind.host": o.host,
            "spark.hadoop.hive.server2.thrift.port": str(o.port),
            "spark.hadoop.hive.server2.transport.mode": "binary",
            "spark.sql.thriftServer.queryTimeout": f"{o.query_timeout_s}s",
            "spark.sql.thriftServer.interruptOnCancel": "true",
            "spark.scheduler.mode": "FAIR",
            **auth_settings(o.auth, o.ldap_url, o.ldap_base_dn),
            **o.conf,
        }

    def start(self) -> str:
        """Start Spark and the Thrift server; the JDBC URL."""
        from catalogs.lake import Lake
        from engine.server_auth import auth_settings, check_bind
        from engine.spark_session import spark_session

        o = self.options
        check_bind(o.host, o.auth, o.insecure_no_auth)
        auth_settings(o.auth, o.ldap_url, o.ldap_base_dn)  # refuse bad LDAP options before anything starts
        lake = Lake(o.lake, create=False)
        if not lake.table_names():
            raise LakeError(f"no tables in the lake at {lake.root} (make one with astrolake demo or ingest)")
        _check_port_free(o.host, o.port)
        # The JVM reads these before Spark's settings: keep them consistent with the settings.
        os.environ["HIVE_SERVER2_THRIFT_BIND_HOST"] = o.host
        os.environ["HIVE_SERVER2_THRIFT_PORT"] = str(o.port)
        settings = self.settings()
        base = spark_session(o.master, settings)
        # Some HiveServer2 parts (the LDAP provider) read a new HiveConf, i.e. Java system
        # properties, rather than the server's configuration: give them the same settings.
        for key, value in settings.items():
            if key.startswith("spark.hadoop.hive."):
                base._jvm.java.lang.System.setProperty(key[len("spark.hadoop."):], value)
        self.spark = self._gated_session(base)
        from udfs import spark as spark_udfs
        from udfs.registry import all_functions

        spark_udfs.register(self.spark, all_functions())
        self.views = LakeViews(self.spark, lake)
        self.views.refresh()
        jvm = base._jvm
        try:
            self.thrift = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
                self.spark._jsparkSession.sqlContext())
        except Exception as e:  # noqa: BLE001 - Py4J errors from the server start
            from engine.errors import BackendUnavailableError

            raise BackendUnavailableError(f"the Thrift server did not start: {_java_line(e)}") from e
        _wait_listening(o.host, o.port, timeout_s=60)
        self._warm_up()
        threading.Thread(target=self._refresh_loop, name="astrolake-refresh", daemon=True).start()
        return o.jdbc_url

    def _warm_up(self) -> None:
        """Run one small query through the gate before clients come, so the first client's
        query does not pay for the JVM's first parse, plan, code generation and task launch
        (seconds on a small machine, which a short --query-timeout would count against it)."""
        if not self.views.versions:
            return
        first = min(self.views.versions, key=lambda name: (name.startswith("_"), name))
        try:
            self.spark.sql(f"SELECT count(*) FROM `{first}`").collect()
        except Exception:  # noqa: BLE001 - a client querying that table gets the error itself
            pass

    def _gated_session(self, base):
        """A new session of ``base``'s context whose parser is the statement gate."""
        from pyspark.java_gateway import ensure_callback_server_started
        from pyspark.sql import SparkSession

        gateway = base.sparkContext._gateway
        ensure_callback_server_started(gateway)
        base._jsparkSession.sessionState()  # the base session keeps its own parser
        base._jsparkSession.extensions().injectParser(GateInjector(self))
        gated = SparkSession(base.sparkContext, base._jsparkSession.newSession())
        gated._jsparkSession.sessionState()
        return gated

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.options.refresh_interval_s):
            try:
                self.views.refresh()
            except Exception:  # noqa: BLE001 - keep serving; the next statement tries again
                pass

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def request_stop(self, *_args) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self.thrift is not None:
            try:
                self.thrift.stop()
            except Exception:  # noqa: BLE001 - the JVM may already be gone
                pass
            self.thrift = None
        if self.spark is not None:
            try:
                self.spark.sparkContext.stop()
            except Exception:  # noqa: BLE001
                pass
            self.spark = None
        if self._work is not None:
            import shutil

            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    # ---- the gate ----------------------------------------------------------------------

    def gate(self, text: str, parse):
        """The plan Spark runs for ``text``: fresh views, policy, limits, one-line errors."""
        started = time.perf_counter()
        try:
            return self._gate(text, parse)
        finally:
            self.statements += 1
            self.gate_seconds += time.perf_counter() - started

    def stats(self) -> str:
        """What the gate cost: statements, mean time in the gate, mean freshness check."""
        views = self.views
        if not self.statements or views is None or not views.checks:
            return "no statements"
        return (f"{self.statements} statements, {1000 * self.gate_seconds / self.statements:.1f} ms "
                f"mean in the gate (parse, analysis, policy); freshness check "
                f"{1e6 * views.check_seconds / views.checks:.0f} us mean over {views.checks} checks")

    def _gate(self, text: str, parse):
        try:
            self.views.refresh()
            try:
                plan = self._astrolake_rewrite(text) if _ASTROLAKE_SYNTAX.search(text) else None
                plan = plan if plan is not None else parse()
            except EngineError:
                raise
            except Exception as e:  # noqa: BLE001 - a Py4J error carrying Spark's ParseException
                return self._failing(_engine_error(e))
            kind = _plan_kind(self.spark._jvm, plan)
            if kind in LAKE_WRITES:
                if not self.options.allow_writes:
                    raise UnsupportedStatementError(_refusal(kind))
                return self._lake_write(text)
            if kind == "query":
                return self._query(plan)
            if kind == "SetCommand" and _sets_a_value(plan):
                raise UnsupportedStatementError(
                    "SET key=value is refused: this server's connections share one session, so it "
                    "would change the settings of every client (set Spark settings with "
                    "astrolake serve --conf KEY=VALUE)")
            if kind in READ_COMMANDS or kind == "SetCommand":
                return plan
            raise UnsupportedStatementError(_refusal(kind))
        except EngineError as e:
            return self._failing(e)
        except Exception as e:  # noqa: BLE001 - a Py4J failure: still one line to the client
            return self._failing(QueryError(f"the server could not run this statement: {_java_line(e)}"))

    def _astrolake_rewrite(self, text: str):
        """Time travel (VERSION/TIMESTAMP AS OF) and sky predicates (CONTAINS(POINT(...), ...)),
        which Spark cannot run on the views: astrolake's own rewrites, then Spark's parser."""
        from sqlglot import exp

        from engine import rewrites
        from engine.sky_predicates import expand_sky_predicates
        from engine.sqlfront import parse_one

        tree = parse_one(text)
        if not isinstance(tree, exp.Query):
            return None

        def relation(ref: rewrites.TableRef) -> str:
            if ref.version is None and ref.timestamp is None:
                return ref.name  # the view of the latest version
            return self.views.pinned(self.views.lake.snapshot(ref.name, ref.version, ref.timestamp))

        tree = rewrites.bind_tables(expand_sky_predicates(tree), relation)
        return self.parser.parsePlan(tree.sql(dialect="spark"))

    def _query(self, plan):
        jvm = self.spark._jvm
        if self.options.max_rows:
            literal = jvm.org.apache.spark.sql.catalyst.expressions.Literal(
                int(self.options.max_rows), jvm.org.apache.spark.sql.types.DataTypes.IntegerType)
            plan = jvm.org.apache.spark.sql.catalyst.plans.logical.Limit.apply(literal, plan)
        try:
            frame = jvm.org.apache.spark.sql.classic.Dataset.ofRows(self.spark._jsparkSession, plan)
        except Exception as e:  # noqa: BLE001 - AnalysisException through Py4J
            return self._failing(_engine_error(e, self.views.versions))
        return frame.queryExecution().analyzed()

    def _lake_write(self, text: str):
        """CREATE TABLE ... AS / INSERT INTO through astrolake's write path: one Delta commit."""
        import engine
        from engine.sqlfront import parse_statements
        from sqlglot import exp

        with self._write_lock:
            if self._writer is None:
                self._writer = engine.connect(self.options.lake, engine="spark")
            statements = parse_statements(text)
            result = None
            for statement in statements:
                result = self._writer.execute(statement)
        self.views.refresh()
        row = {c: result[c][0].as_py() for c in result.column_names}
        select = exp.select(*[exp.alias_(exp.Literal.string(v) if isinstance(v, str) else exp.Literal.number(v), c,
                                         quoted=True) for c, v in row.items()])
        return self.parser.parsePlan(select.sql(dialect="spark"))

    def _failing(self, error: Exception):
        """A plan that fails with ``error``'s one line when Spark runs it."""
        from sqlglot import exp

        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        select = exp.select(exp.Anonymous(this="raise_error", expressions=[exp.Literal.string(message)]))
        return self.parser.parsePlan(select.sql(dialect="spark"))


# ---- helpers -----------------------------------------------------------------------------------

def _plan_kind(jvm, plan) -> str:
    """'query' for a plan that only reads, else the plan's class name (under a WITH)."""
    name = plan.getClass().getSimpleName().rstrip("$")
    while name == "UnresolvedWith":
        plan = plan.child()
        name = plan.getClass().getSimpleName().rstrip("$")
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command").isInstance(plan)
    if command or name in LAKE_WRITES or name.endswith("Statement") or "Insert" in name:
        return name
    return "query"


def _sets_a_value(plan) -> bool:
    kv = plan.kv()
    return not kv.isEmpty() and not kv.get()._2().isEmpty()


def _refusal(kind: str) -> str:
    readable = {
        "CreateTableAsSelect": "CREATE TABLE", "ReplaceTableAsSelect": "CREATE OR REPLACE TABLE",
        "InsertIntoStatement": "INSERT",
    }.get(kind, kind)
    if kind in LAKE_WRITES:
        return (f"{readable} is refused: this server is read-only "
                "(start it with astrolake serve --allow-writes to allow CREATE TABLE ... AS and INSERT INTO)")
    return (f"{readable} statements are refused over JDBC (queries, SHOW, DESCRIBE, EXPLAIN, USE and SET "
            "run; with --allow-writes, CREATE TABLE ... AS and INSERT INTO too)")


def _engine_error(error: Exception, tables=()) -> Exception:
    """A Py4J error from Spark as astrolake's error (one line)."""
    from engine.backends.spark import _condition, _params, translate
    from engine.errors import UnknownTableError, did_you_mean

    java = getattr(error, "java_exception", None)
    if java is not None:
        try:
            from pyspark.errors.exceptions.captured import convert_exception

            error = convert_exception(java)
        except Exception:  # noqa: BLE001
            pass
    if _condition(error).startswith("TABLE_OR_VIEW_NOT_FOUND"):
        name = _params(error).get("relationName", "").replace("`", "")
        return UnknownTableError(f"unknown table '{name}'{did_you_mean(name.split('.')[-1], tables)}")
    return translate(error)


def _java_line(error: Exception) -> str:
    java = getattr(error, "java_exception", None)
    text = str(java.toString()) if java is not None else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _check_port_free(host: str, port: int) -> None:
    import socket

    from engine.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UsageError(f"cannot serve on {host}:{port}: {e.strerror or e}") from e


def _wait_listening(host: str, port: int, timeout_s: float) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    from engine.errors import BackendUnavailableError

    raise BackendUnavailableError(f"the Thrift server is not listening on {host}:{port} after {timeout_s:.0f} s")
