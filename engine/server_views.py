"""The lake's tables as temporary views of the server's SparkSession, kept fresh cheaply."""

from __future__ import annotations

import os
import threading
import time

from engine.errors import LakeError


class LakeViews:
    """The lake's tables as temporary views of one SparkSession, re-pointed when a table moves.

    A check costs one ``stat`` of the lake folder, one of each table's ``_delta_log`` folder and one
    of each folder that is not (yet) a table:
    a folder's mtime changes when a file is added to it or renamed into it. Only when it changed
    (or changed less than a second ago, as file system clocks are coarse) are the table names
    listed again and the next log entry ``<version+1>.json`` looked for."""

    RECENT_NS = 1_000_000_000

    def __init__(self, spark, lake):
        self.spark = spark
        self.lake = lake
        self.root = str(lake.root)
        self.versions: dict[str, int] = {}
        self._mtimes: dict[str, int] = {}
        self._names: list[str] = []
        self._pending: list[str] = []
        self._pinned: set[str] = set()
        self.lock = threading.Lock()
        self.checks = 0
        self.check_seconds = 0.0

    def _changed(self, folder: str) -> bool:
        """Whether ``folder`` may have changed since the last look (and remember this look)."""
        try:
            mtime = os.stat(folder).st_mtime_ns
        except FileNotFoundError:
            self._mtimes.pop(folder, None)
            return True
        known = self._mtimes.get(folder)
        self._mtimes[folder] = mtime
        return known != mtime or time.time_ns() - mtime < self.RECENT_NS

    def _table_names(self) -> list[str]:
        if self._changed(self.root):
            folders = [e.name for e in os.scandir(self.root) if e.is_dir()]
            self._names = [n for n in folders if os.path.isdir(os.path.join(self.root, n, "_delta_log"))]
            # a folder becomes a table when its log is made, which does not touch the lake folder
            self._pending = [n for n in folders if n not in self._names]
        elif self._pending:
            made = [n for n in self._pending if os.path.isdir(os.path.join(self.root, n, "_delta_log"))]
            if made:
                self._names = self._names + made
                self._pending = [n for n in self._pending if n not in made]
        return self._names

    def _moved(self, name: str) -> bool:
        log = os.path.join(self.root, name, "_delta_log")
        version = self.versions.get(name)
        if not self._changed(log) and version is not None:
            return False
        if version is None:
            return True
        return os.path.exists(os.path.join(log, f"{version + 1:020d}.json")) or \
            not os.path.exists(os.path.join(log, f"{version:020d}.json"))

    def refresh(self) -> list[str]:
        """Re-point the views of the tables that moved; the names of those re-pointed."""
        started = time.perf_counter()
        with self.lock:
            names = set(self._table_names())
            for gone in sorted(set(self.versions) - names):
                self.spark.catalog.dropTempView(gone)
                del self.versions[gone]
            moved = sorted(n for n in names if self._moved(n))
            for name in moved:
                from engine.backends.spark import snapshot_frame

                try:
                    snapshot = self.lake.snapshot(name)
                except LakeError:
                    self._mtimes.pop(os.path.join(self.root, name, "_delta_log"), None)
                    continue  # a table being created right now: next time
                snapshot_frame(self.spark, snapshot).createOrReplaceTempView(name)
                self.versions[name] = snapshot.version
            self.checks += 1
            self.check_seconds += time.perf_counter() - started
        return moved

    def pinned(self, snapshot) -> str:
        """The name of a view over one older snapshot (time travel): ``<table>__v<version>``."""
        from engine.backends.spark import snapshot_frame

        name = f"{snapshot.table}__v{snapshot.version}"
        with self.lock:
            if name not in self._pinned:
                snapshot_frame(self.spark, snapshot).createOrReplaceTempView(name)
                self._pinned.add(name)
        return name
