"""`astrolake serve` as a subprocess, and the real clients that talk to it (PyHive, beeline)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BEELINE_MAIN = "org.apache.hive.beeline.BeeLine"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def non_loopback_address() -> str | None:
    """One IPv4 address of this machine that is not loopback, or None."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return None
    for address in out.split():
        if "." in address and not address.startswith("127."):
            return address
    return None


def pyspark_jars() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "jars" / "*")


@dataclass
class Served:
    process: subprocess.Popen
    host: str
    port: int
    log: Path
    banner: str

    def stop(self, timeout_s: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(lake: Path, work: Path, *options: str, host: str = "127.0.0.1",
                 timeout_s: float = 180) -> Served:
    """``astrolake serve`` on a free port; returns once it says it is ready (or raises)."""
    port = free_port()
    log = work / f"serve-{port}.log"
    out = open(log, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--lake", str(lake), "serve", "--host", host,
         "--port", str(port), *options],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ}, start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "ready;" in text:
            return Served(process, host, port, log, text)
        if process.poll() is not None:
            raise RuntimeError(f"astrolake serve exited {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"astrolake serve not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


def connect(served: Served, **kwargs):
    from pyhive import hive

    kwargs.setdefault("username", "astronomer")
    return hive.connect(served.host, served.port, **kwargs)


def query(served: Served, sql: str, **kwargs) -> list[tuple]:
    with connect(served, **kwargs) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def beeline(served: Served, sql_file: Path, user: str = "astronomer", password: str = "",
            timeout_s: float = 120) -> subprocess.CompletedProcess:
    """Beeline (the Hive JDBC client in pyspark's jars) running ``sql_file``, rows as CSV."""
    url = f"jdbc:hive2://{served.host}:{served.port}/default"
    return subprocess.run(
        ["java", "-cp", pyspark_jars(), BEELINE_MAIN, "-u", url, "-n", user, "-p", password,
         "--outputformat=csv2", "--silent=true", "--showHeader=true", "-f", str(sql_file)],
        capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
    )


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
