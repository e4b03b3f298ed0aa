"""One SparkSession per process, started with astrolake's settings, or a clear error why not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.errors import BackendUnavailableError

_SESSION = None

LOG4J = Path(__file__).with_name("log4j2-spark.properties")

# Settings that make a local Spark answer like the embedded engine and stay quiet.
DEFAULTS = {
    "spark.app.name": "astrolake",
    "spark.sql.session.timeZone": "UTC",
    # Spark 3's (non-ANSI) semantics, which is what sqlglot's "spark" dialect means and what the
    # embedded engine answers: a failed cast or a division by zero gives NULL, not an error.
    "spark.sql.ansi.enabled": "false",
    "spark.sql.legacy.sizeOfNull": "false",  # size(NULL) is NULL, not -1
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # The function library's Arrow UDFs pay a fixed cost per batch: give them large batches of
    # small rows (doppler_correct runs twice as fast at 65,536 rows as at Spark's 10,000), and cap
    # a batch's bytes so a batch of images or voltage snapshots stays small.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "65536",
    "spark.sql.execution.arrow.maxBytesPerBatch": str(64 << 20),
    # Spark 4's columnar input path for Arrow UDFs ignores maxBytesPerBatch and gathers a whole
    # batch of rows into one column vector: 50 SDSS-sized images ran the driver out of heap
    "spark.sql.execution.arrow.pythonUDF.columnarInput.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "4g",
    # list a snapshot's files in the driver instead of starting a Spark job to do it
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
}


def java_problem() -> str | None:
    """Why Java cannot run Spark here, or None when it can."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return "the spark engine needs Java 17 or newer: no 'java' on PATH and JAVA_HOME is not set"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        return f"the spark engine needs Java 17 or newer: cannot run {java}: {e}"
    text = out.stderr + out.stdout
    import re

    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if found:
        major = int(found.group(1)) if found.group(1) != "1" else int(found.group(2) or 0)
        if major < 17:
            return f"the spark engine needs Java 17 or newer, found Java {major} at {java}"
    return None


def _quiet_python_loggers() -> None:
    """PySpark logs every failed query as a JSON stack trace; astrolake reports it in one line."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True
    logging.getLogger("py4j").setLevel(logging.ERROR)


def spark_session(master: str | None = None, conf: dict[str, str] | None = None):
    """The process's SparkSession, started on first use with ``master`` and ``conf``."""
    global _SESSION
    master = master or os.environ.get("ASTROLAKE_SPARK_MASTER", "local[*]")
    conf = dict(conf or {})
    if _SESSION is not None and _SESSION._jsc is not None:
        return _SESSION
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise BackendUnavailableError(
            "the spark engine needs pyspark: pip install 'astrolake[spark]'") from e
    problem = java_problem()
    if problem:
        raise BackendUnavailableError(problem)
    settings = {**DEFAULTS, **conf}
    # Python workers must be this interpreter, which has astrolake and its libraries.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # JVM options must be given before the JVM starts: quiet logging, the driver's memory.
    submit = [f"--driver-memory {settings['spark.driver.memory']}",
              f"--driver-java-options -Dlog4j2.configurationFile=file:{LOG4J}"]
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", " ".join(submit) + " pyspark-shell")
    builder = SparkSession.builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        _SESSION = builder.getOrCreate()
    except Exception as e:  # Py4J and Java start-up failures come in many classes
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BackendUnavailableError(f"spark could not start ({master}): {text}") from e
    _SESSION.sparkContext.setLogLevel("ERROR")
    _quiet_python_loggers()
    return _SESSION
