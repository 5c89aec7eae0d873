"""The local store: SQLite in WAL mode, one file, survives restarts.

Tables: ``vps`` (the public record as JSON plus indexed columns), ``vp_secrets`` (URL as given
and passcode — a separate table that no public query touches), ``idempotency`` (owner, key →
vp_id). One connection guarded by a lock: the store is called from worker threads
(``asyncio.to_thread``), and SQLite writes are serialised anyway. Every write is one
``BEGIN IMMEDIATE`` transaction, which makes :meth:`SqliteStore.transition` conditional.
"""

from __future__ import annotations

import builtins
import sqlite3
from pathlib import Path

from scheduler.errors import IdempotencyConflict, NotFound, StaleTransition
from scheduler.models import StatusObject, VpRecord, VpSecrets, utc_now
from scheduler.sqlite_db import SqliteDb
from scheduler.store import VpStore
from vp.lifecycle import TERMINAL, Reason, Status, TransitionError, check_transition, utc_now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS vps (
    vp_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    launch_handle TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS vps_owner ON vps (owner, created_at);
CREATE INDEX IF NOT EXISTS vps_status ON vps (status);
CREATE TABLE IF NOT EXISTS vp_secrets (
    vp_id TEXT PRIMARY KEY REFERENCES vps (vp_id),
    meeting_url TEXT NOT NULL,
    passcode TEXT
);
CREATE TABLE IF NOT EXISTS idempotency (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    vp_id TEXT NOT NULL REFERENCES vps (vp_id),
    fingerprint TEXT,
    PRIMARY KEY (owner, key)
);
"""

_TERMINAL_VALUES = tuple(s.value for s in TERMINAL)


class SqliteStore(SqliteDb, VpStore):
    """:class:`VpStore` on one SQLite file (``":memory:"`` works too, for one process)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA, pragmas=("synchronous=NORMAL", "foreign_keys=ON"))

    @staticmethod
    def _record(row: tuple[object, ...]) -> VpRecord:
        return VpRecord.model_validate_json(str(row[0]))

    def create(
        self,
        record: VpRecord,
        secrets: VpSecrets,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> VpRecord:
        with self._tx() as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT v.record, i.fingerprint FROM idempotency i JOIN vps v"
                    " ON v.vp_id = i.vp_id WHERE i.owner = ? AND i.key = ?",
                    (record.owner, idempotency_key),
                ).fetchone()
                if row is not None:
                    raise IdempotencyConflict(self._record(row), row[1])
            try:
                db.execute(
                    "INSERT INTO vps (vp_id, owner, status, created_at, record)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        record.vp_id,
                        record.owner,
                        record.status.value,
                        record.created_at.isoformat(),
                        record.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StaleTransition(f"VP {record.vp_id} exists already") from exc
            db.execute(
                "INSERT INTO vp_secrets (vp_id, meeting_url, passcode) VALUES (?, ?, ?)",
                (record.vp_id, secrets.meeting_url, secrets.passcode),
            )
            if idempotency_key is not None:
                db.execute(
                    "INSERT INTO idempotency (owner, key, vp_id, fingerprint) VALUES (?, ?, ?, ?)",
                    (record.owner, idempotency_key, record.vp_id, fingerprint),
                )
        return record

    def get(self, vp_id: str) -> VpRecord | None:
        rows = self._read("SELECT record FROM vps WHERE vp_id = ?", (vp_id,))
        return self._record(rows[0]) if rows else None

    def list(self, owner: str | None = None) -> list[VpRecord]:
        if owner is None:
            rows = self._read("SELECT record FROM vps ORDER BY created_at DESC, vp_id")
        else:
            rows = self._read(
                "SELECT record FROM vps WHERE owner = ? ORDER BY created_at DESC, vp_id",
                (owner,),
            )
        return [self._record(row) for row in rows]

    def list_active(self) -> builtins.list[VpRecord]:
        marks = ", ".join("?" * len(_TERMINAL_VALUES))
        rows = self._read(
            f"SELECT record FROM vps WHERE status NOT IN ({marks}) ORDER BY created_at",
            _TERMINAL_VALUES,
        )
        return [self._record(row) for row in rows]

    def transition(
        self,
        vp_id: str,
        status: Status,
        reason: Reason | None = None,
        detail: str | None = None,
        *,
        expected: Status | None = None,
        ts: str | None = None,
    ) -> VpRecord:
        status = Status(status)  # callers may pass the contract's strings
        reason = None if reason is None else Reason(reason)
        with self._tx() as db:
            row = db.execute("SELECT record FROM vps WHERE vp_id = ?", (vp_id,)).fetchone()
            if row is None:
                raise NotFound(f"no VP {vp_id}")
            current = self._record(row)
            if expected is not None and current.status is not expected:
                raise StaleTransition(
                    f"VP {vp_id} is {current.status}, not {expected}; not moving to {status}"
                )
            try:
                check_transition(current.status, status, reason, joined=current.joined)
            except TransitionError as exc:
                raise StaleTransition(f"VP {vp_id}: {exc}") from exc
            item = StatusObject(
                ts=ts or utc_now_iso(), vp_id=vp_id, status=status, reason=reason, detail=detail
            )
            updated = current.model_copy(
                update={
                    "status": status,
                    "reason": reason,
                    "detail": detail,
                    "updated_at": utc_now(),
                    "history": [*current.history, item],
                }
            )
            db.execute(
                "UPDATE vps SET status = ?, record = ? WHERE vp_id = ?",
                (status.value, updated.model_dump_json(), vp_id),
            )
        return updated

    def get_secrets(self, vp_id: str) -> VpSecrets | None:
        rows = self._read("SELECT meeting_url, passcode FROM vp_secrets WHERE vp_id = ?", (vp_id,))
        if not rows:
            return None
        url, passcode = rows[0]
        return VpSecrets(meeting_url=str(url), passcode=None if passcode is None else str(passcode))

    def set_launch_handle(self, vp_id: str, handle: str) -> None:
        with self._tx() as db:
            cursor = db.execute("UPDATE vps SET launch_handle = ? WHERE vp_id = ?", (handle, vp_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no VP {vp_id}")

    def get_launch_handle(self, vp_id: str) -> str | None:
        rows = self._read("SELECT launch_handle FROM vps WHERE vp_id = ?", (vp_id,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def find_by_idempotency_key(self, owner: str, key: str) -> VpRecord | None:
        rows = self._read(
            "SELECT v.record FROM idempotency i JOIN vps v ON v.vp_id = i.vp_id"
            " WHERE i.owner = ? AND i.key = ?",
            (owner, key),
        )
        return self._record(rows[0]) if rows else None
