"""One SQLite file behind one connection: the setup the local stores share.

:class:`SqliteDb` opens the file owner-only (it holds passcodes and webhook secrets; SQLite
gives its -wal/-shm files the same mode), in WAL mode, and guards the one connection with a
lock: the stores are called from worker threads (``asyncio.to_thread``), and SQLite
serialises writes anyway. Every write is one ``BEGIN IMMEDIATE`` transaction (:meth:`_tx`),
which is what makes conditional updates safe.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class SqliteDb:
    """``path`` (or ``":memory:"``, for one process) with ``schema`` applied; ``pragmas`` are
    set after WAL mode (e.g. ``"foreign_keys=ON"``)."""

    def __init__(self, path: str | Path, schema: str, *, pragmas: Sequence[str] = ()) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))  # owner-only
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for pragma in pragmas:
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._db.executescript(schema)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock: commit on success, roll back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()
