"""Persistence of contract 5 on ``vp serve``: webhooks, the event outbox, the deliveries log,
calendars and the VPs they scheduled — in the same SQLite file as the VP records.

The outbox is what makes a restart lose nothing: an event is written to it (one row per
matching webhook, with its final body and ``webhook-id``) in the same transaction that
advances the VP's event cursor, so an event is produced exactly once and delivered at least
once, with the same id on every attempt, across restarts.

Event cursors per VP (table ``event_cursors``): ``seq`` (the last ``seq`` given), ``status``
(how many history entries were turned into events), ``transcript`` / ``chat`` / ``events``
(byte offsets into the VP's output files). :meth:`HookStore.emit` is conditional on the
cursor's expected value, so two producers cannot emit the same lines twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from scheduler.sqlite_db import SqliteDb
from vp.lifecycle import utc_now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    webhook_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_owner ON webhooks (owner, created_at);
CREATE TABLE IF NOT EXISTS event_cursors (
    vp_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (vp_id, name)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    next_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    UNIQUE (webhook_id, msg_id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_hook ON deliveries (webhook_id, id);
CREATE TABLE IF NOT EXISTS calendars (
    calendar_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    ics_url TEXT NOT NULL,
    name TEXT,
    created_at TEXT NOT NULL,
    last_attempt TEXT,
    last_success TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS calendars_owner ON calendars (owner, created_at);
CREATE TABLE IF NOT EXISTS calendar_vps (
    calendar_id TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    vp_id TEXT NOT NULL,
    start TEXT NOT NULL,
    link_hash TEXT NOT NULL,
    PRIMARY KEY (calendar_id, occurrence)
);
"""
# The deliveries log keeps this many attempts per webhook (older ones are pruned).
DELIVERIES_KEPT = 1000


@dataclass(frozen=True, slots=True)
class WebhookRow:
    webhook_id: str
    owner: str
    url: str
    events: tuple[str, ...]  # empty: every type
    secret: str
    created_at: str

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def __repr__(self) -> str:  # the secret must never reach a log
        return f"WebhookRow({self.webhook_id!r}, owner={self.owner!r}, secret=***)"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    webhook_id: str
    url: str
    secret: str
    msg_id: str
    type: str
    body: str
    created_at: float
    attempts: int

    def __repr__(self) -> str:
        return f"OutboxRow({self.id}, {self.webhook_id!r}, {self.msg_id!r}, secret=***)"


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    webhook_id: str
    msg_id: str
    type: str
    attempt: int
    status_code: int | None
    error: str | None
    ts: str

    def public(self) -> dict[str, Any]:
        return {
            "event_id": self.msg_id,
            "type": self.type,
            "attempt": self.attempt,
            "status_code": self.status_code,
            "error": self.error,
            "ts": self.ts,
        }


@dataclass(frozen=True, slots=True)
class CalendarRow:
    calendar_id: str
    owner: str
    ics_url: str
    name: str | None
    created_at: str
    last_attempt: str | None
    last_success: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class CalendarVp:
    occurrence: str
    vp_id: str
    start: str
    link_hash: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event before it has its ``seq``: type, time (ISO-8601) and ``data`` sans ``seq``."""

    type: str
    timestamp: str
    data: dict[str, Any]


class WebhookStore(Protocol):
    """What the webhook routes need from a store: :class:`HookStore` on ``vp serve``,
    :class:`scheduler.aws_hooks.DynamoDbWebhookStore` on AWS. Thread-safe, synchronous."""

    def create_webhook(self, row: WebhookRow) -> None: ...
    def list_webhooks(self, owner: str | None = None) -> list[WebhookRow]: ...
    def get_webhook(self, webhook_id: str) -> WebhookRow | None: ...
    def delete_webhook(self, webhook_id: str) -> None: ...
    def deliveries(self, webhook_id: str, limit: int = 200) -> list[DeliveryRow]: ...
    def outbox_states(self, webhook_id: str) -> dict[str, int]: ...


class HookStore(SqliteDb):
    """Webhooks, outbox, deliveries, calendars on SQLite. Thread-safe (one connection under a
    lock, one ``BEGIN IMMEDIATE`` transaction per write), like :class:`SqliteStore`."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA)

    # -- webhooks ---------------------------------------------------------------------------
    def create_webhook(self, row: WebhookRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO webhooks (webhook_id, owner, url, events, secret, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (row.webhook_id, row.owner, row.url, json.dumps(row.events), row.secret,
                 row.created_at),
            )  # fmt: skip

    @staticmethod
    def _webhook(r: tuple[Any, ...]) -> WebhookRow:
        return WebhookRow(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5])

    def list_webhooks(self, owner: str | None = None) -> list[WebhookRow]:
        cols = "webhook_id, owner, url, events, secret, created_at"
        if owner is None:
            rows = self._read(f"SELECT {cols} FROM webhooks ORDER BY created_at")
        else:
            rows = self._read(
                f"SELECT {cols} FROM webhooks WHERE owner = ? ORDER BY created_at", (owner,)
            )
        return [self._webhook(r) for r in rows]

    def get_webhook(self, webhook_id: str) -> WebhookRow | None:
        rows = self._read(
            "SELECT webhook_id, owner, url, events, secret, created_at FROM webhooks"
            " WHERE webhook_id = ?",
            (webhook_id,),
        )
        return self._webhook(rows[0]) if rows else None

    def delete_webhook(self, webhook_id: str) -> None:
        """The webhook, its pending deliveries and its log."""
        with self._tx() as db:
            for table in ("webhooks", "outbox", "deliveries"):
                db.execute(f"DELETE FROM {table} WHERE webhook_id = ?", (webhook_id,))

    # -- events and the outbox ----------------------------------------------------------------
    def cursor(self, vp_id: str, name: str) -> int:
        rows = self._read(
            "SELECT value FROM event_cursors WHERE vp_id = ? AND name = ?", (vp_id, name)
        )
        return int(rows[0][0]) if rows else 0

    def emit(
        self,
        vp_id: str,
        owner: str,
        cursor: str,
        expected: int,
        new_value: int,
        events: list[NewEvent],
        *,
        now: float,
    ) -> list[dict[str, Any]] | None:
        """Give ``events`` the VP's next ``seq`` numbers, queue one outbox row per event and
        matching webhook of ``owner``, and move ``cursor`` from ``expected`` to ``new_value``
        — all or nothing. Returns the bodies queued, or None (nothing written) when the cursor
        is not at ``expected`` (another producer emitted these already)."""
        bodies: list[dict[str, Any]] = []
        with self._tx() as db:
            row = db.execute(
                "SELECT value FROM event_cursors WHERE vp_id = ? AND name = ?", (vp_id, cursor)
            ).fetchone()
            if (int(row[0]) if row else 0) != expected:
                return None
            row = db.execute(
                "SELECT value FROM event_cursors WHERE vp_id = ? AND name = 'seq'", (vp_id,)
            ).fetchone()
            seq = int(row[0]) if row else 0
            hooks = [
                self._webhook(r)
                for r in db.execute(
                    "SELECT webhook_id, owner, url, events, secret, created_at FROM webhooks"
                    " WHERE owner = ?",
                    (owner,),
                ).fetchall()
            ]
            for event in events:
                seq += 1
                body = {"type": event.type, "timestamp": event.timestamp,
                        "data": {**event.data, "vp_id": vp_id, "seq": seq}}  # fmt: skip
                text = json.dumps(body, separators=(",", ":"))
                msg_id = f"msg_{uuid.uuid4().hex}"
                for hook in hooks:
                    if hook.wants(event.type):
                        db.execute(
                            "INSERT INTO outbox (webhook_id, msg_id, type, body, created_at,"
                            " next_at, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                            (hook.webhook_id, msg_id, event.type, text, now, now),
                        )
                bodies.append(body)
            for name, value in (("seq", seq), (cursor, new_value)):
                db.execute(
                    "INSERT INTO event_cursors (vp_id, name, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (vp_id, name) DO UPDATE SET value = excluded.value",
                    (vp_id, name, value),
                )
        return bodies

    def due(
        self, now: float, limit: int, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[OutboxRow]:
        """Pending deliveries whose time has come, oldest first."""
        rows = self._read(
            "SELECT o.id, o.webhook_id, w.url, w.secret, o.msg_id, o.type, o.body, o.created_at,"
            " o.attempts FROM outbox o JOIN webhooks w ON w.webhook_id = o.webhook_id"
            " WHERE o.state = 'pending' AND o.next_at <= ? ORDER BY o.next_at, o.id LIMIT ?",
            (now, limit + len(exclude)),
        )
        found = [OutboxRow(*r) for r in rows if r[0] not in exclude]
        return found[:limit]

    def next_due_at(self) -> float | None:
        rows = self._read("SELECT MIN(next_at) FROM outbox WHERE state = 'pending'")
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def record_attempt(
        self,
        row: OutboxRow,
        *,
        status_code: int | None,
        error: str | None,
        state: str,
        next_at: float,
    ) -> None:
        """Log one attempt of ``row`` and set its state (``delivered``, ``pending`` with its
        next time, or ``failed``)."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, state = ?, next_at = ? WHERE id = ?",
                (state, next_at, row.id),
            )
            cursor = db.execute(
                "INSERT INTO deliveries (webhook_id, msg_id, type, attempt, status_code, error,"
                " ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.webhook_id, row.msg_id, row.type, row.attempts + 1, status_code, error,
                 utc_now_iso()),
            )  # fmt: skip
            last = cursor.lastrowid or 0
            if last % 100 == 0:
                db.execute(
                    "DELETE FROM deliveries WHERE webhook_id = ? AND id <= ?",
                    (row.webhook_id, last - DELIVERIES_KEPT),
                )

    def deliveries(self, webhook_id: str, limit: int = 200) -> list[DeliveryRow]:
        """The newest attempts first."""
        rows = self._read(
            "SELECT webhook_id, msg_id, type, attempt, status_code, error, ts FROM deliveries"
            " WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
            (webhook_id, limit),
        )
        return [DeliveryRow(*r) for r in rows]

    def outbox_states(self, webhook_id: str) -> dict[str, int]:
        rows = self._read(
            "SELECT state, COUNT(*) FROM outbox WHERE webhook_id = ? GROUP BY state", (webhook_id,)
        )
        return {str(r[0]): int(r[1]) for r in rows}

    # -- calendars ----------------------------------------------------------------------------
    _CAL = "calendar_id, owner, ics_url, name, created_at, last_attempt, last_success, last_error"

    def create_calendar(self, row: CalendarRow) -> None:
        with self._tx() as db:
            db.execute(
                f"INSERT INTO calendars ({self._CAL}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row.calendar_id, row.owner, row.ics_url, row.name, row.created_at,
                 row.last_attempt, row.last_success, row.last_error),
            )  # fmt: skip

    def list_calendars(self, owner: str | None = None) -> list[CalendarRow]:
        if owner is None:
            rows = self._read(f"SELECT {self._CAL} FROM calendars ORDER BY created_at")
        else:
            rows = self._read(
                f"SELECT {self._CAL} FROM calendars WHERE owner = ? ORDER BY created_at", (owner,)
            )
        return [CalendarRow(*r) for r in rows]

    def get_calendar(self, calendar_id: str) -> CalendarRow | None:
        rows = self._read(
            f"SELECT {self._CAL} FROM calendars WHERE calendar_id = ?", (calendar_id,)
        )
        return CalendarRow(*rows[0]) if rows else None

    def delete_calendar(self, calendar_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM calendars WHERE calendar_id = ?", (calendar_id,))
            db.execute("DELETE FROM calendar_vps WHERE calendar_id = ?", (calendar_id,))

    def set_calendar_result(
        self, calendar_id: str, *, attempt: str, success: str | None, error: str | None
    ) -> None:
        """Record a sync: always its time; on success clear the error."""
        with self._tx() as db:
            if success is not None:
                db.execute(
                    "UPDATE calendars SET last_attempt = ?, last_success = ?, last_error = NULL"
                    " WHERE calendar_id = ?",
                    (attempt, success, calendar_id),
                )
            else:
                db.execute(
                    "UPDATE calendars SET last_attempt = ?, last_error = ? WHERE calendar_id = ?",
                    (attempt, error, calendar_id),
                )

    def calendar_vps(self, calendar_id: str) -> list[CalendarVp]:
        rows = self._read(
            "SELECT occurrence, vp_id, start, link_hash FROM calendar_vps WHERE calendar_id = ?"
            " ORDER BY start",
            (calendar_id,),
        )
        return [CalendarVp(*r) for r in rows]

    def set_calendar_vp(self, calendar_id: str, vp: CalendarVp) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO calendar_vps (calendar_id, occurrence, vp_id, start, link_hash)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (calendar_id, occurrence) DO UPDATE SET"
                " vp_id = excluded.vp_id, start = excluded.start, link_hash = excluded.link_hash",
                (calendar_id, vp.occurrence, vp.vp_id, vp.start, vp.link_hash),
            )

    def drop_calendar_vp(self, calendar_id: str, occurrence: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM calendar_vps WHERE calendar_id = ? AND occurrence = ?",
                (calendar_id, occurrence),
            )
