"""Webhooks of contract 5: event types, event production, Standard Webhooks delivery.

* :class:`EventType` — ``vp.status``, ``vp.transcript``, ``vp.chat``, ``vp.capture_degraded``.
* Producers turn what a VP did into :class:`~scheduler.hook_store.NewEvent` s:
  :func:`status_events` (the record's history), :func:`file_events` (the lines of the VP's
  ``transcript.jsonl`` — final segments only —, ``chat.jsonl`` and ``events.jsonl``, where a
  VP writes ``{"type": "vp.capture_degraded", "start_s", "cause"}``). Only the contract's
  fields are copied: no passcode, token or URL ever goes into an event.
* :class:`EventTap` (``vp serve``) follows the service's record changes and the output files
  of running VPs and emits through :meth:`HookStore.emit` (conditional on per-VP cursors, so
  nothing is produced twice, even across restarts).
* :class:`Deliverer` posts the outbox: signed with the ``standardwebhooks`` package
  (``webhook-id`` = the event's id on every attempt, ``webhook-timestamp`` = the attempt's
  time), the URL re-checked after DNS resolution before each attempt, a 2xx within
  :data:`DELIVERY_TIMEOUT` is delivered, anything else retried with exponential backoff
  (:func:`backoff`: 1 s, 2 s, 4 s … capped at an hour) until the retry window (24 h by
  default) is over, then marked failed. Each attempt goes to the deliveries log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import secrets
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import structlog
from standardwebhooks import Webhook

from scheduler.events import EventHub
from scheduler.hook_store import HookStore, NewEvent, OutboxRow
from scheduler.models import VpRecord
from scheduler.netguard import UrlRefused, pinned_target
from scheduler.store import VpStore

log = structlog.get_logger(__name__)
DELIVERY_TIMEOUT = 10.0
MAX_BACKOFF = 3600.0
TAP_INTERVAL = 0.5
READ_CHUNK = 256 * 1024
MAX_TEXT = 4000  # a transcript or chat text longer than this is cut in an event


class EventType(StrEnum):
    STATUS = "vp.status"
    TRANSCRIPT = "vp.transcript"
    CHAT = "vp.chat"
    CAPTURE_DEGRADED = "vp.capture_degraded"


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (contract 5: ≥ 24)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1-based): 1, 2, 4, … ≤ an hour, +10 % jitter."""
    base = min(2.0 ** (attempt - 1), MAX_BACKOFF)
    return base * (1 + random.random() * 0.1)


# -- producers ---------------------------------------------------------------------------------
def status_events(record: VpRecord, emitted: int) -> list[NewEvent]:
    """``vp.status`` events for the history entries after the first ``emitted``."""
    return [
        NewEvent(EventType.STATUS.value, item.ts, item.model_dump(mode="json"))
        for item in record.history[emitted:]
    ]


def _text(value: Any) -> str:
    return str(value or "")[:MAX_TEXT]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _iso(ts: Any) -> str:
    if isinstance(ts, int | float):
        return (
            datetime.fromtimestamp(ts, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def line_event(kind: str, item: dict[str, Any]) -> NewEvent | None:
    """One line of a VP's output file (``kind``: transcript, chat, events) → its event, or
    None for a line that makes none. Only the contract's fields are copied."""
    if kind == "transcript":
        if item.get("partial") or item.get("is_partial"):
            return None
        return NewEvent(EventType.TRANSCRIPT.value, _iso(item.get("ts")), {
            "speaker": item.get("speaker"), "text": _text(item.get("text")),
            "start_s": _num(item.get("start")), "end_s": _num(item.get("end")),
        })  # fmt: skip
    if kind == "chat":
        direction = "out" if item.get("direction") == "out" else "in"
        return NewEvent(EventType.CHAT.value, _iso(item.get("ts")), {
            "sender": _text(item.get("sender"))[:200], "text": _text(item.get("text")),
            "direction": direction,
        })  # fmt: skip
    if kind == "events" and item.get("type") == EventType.CAPTURE_DEGRADED.value:
        return NewEvent(EventType.CAPTURE_DEGRADED.value, _iso(item.get("ts")), {
            "start_s": _num(item.get("start_s")), "cause": _text(item.get("cause"))[:200],
        })  # fmt: skip
    return None


FILES = {"transcript": "transcript.jsonl", "chat": "chat.jsonl", "events": "events.jsonl"}


def read_new_lines(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines of ``path`` after byte ``offset`` (at most :data:`READ_CHUNK`
    bytes) and the offset after the last complete line. Unparsable lines are skipped."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            chunk = file.read(READ_CHUNK)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        # A single line longer than the chunk is skipped rather than blocking the file.
        return [], offset + (len(chunk) if len(chunk) == READ_CHUNK else 0)
    items: list[dict[str, Any]] = []
    for raw in chunk[: end + 1].splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            items.append(item)
    return items, offset + end + 1


def file_events(store: HookStore, record: VpRecord, folder: Path) -> int:
    """Emit the events of ``record``'s output files written since the last call (each file
    read from its cursor). Returns the number of events emitted."""
    emitted = 0
    for kind, name in FILES.items():
        while True:
            offset = store.cursor(record.vp_id, kind)
            items, new_offset = read_new_lines(folder / name, offset)
            if new_offset == offset:
                break
            events = [e for e in (line_event(kind, item) for item in items) if e is not None]
            done = store.emit(
                record.vp_id, record.owner, kind, offset, new_offset, events, now=time.time()
            )
            if done is None:
                break  # someone else moved the cursor
            emitted += len(done)
    return emitted


def emit_status(store: HookStore, record: VpRecord) -> int:
    """Emit ``vp.status`` events for ``record``'s history entries not emitted yet."""
    emitted = store.cursor(record.vp_id, "status")
    if len(record.history) <= emitted:
        return 0
    done = store.emit(
        record.vp_id,
        record.owner,
        "status",
        emitted,
        len(record.history),
        status_events(record, emitted),
        now=time.time(),
    )
    return len(done or [])


class EventTap:
    """``vp serve``'s event producer: status changes from the service's :class:`EventHub`,
    transcript/chat/capture lines from the output folders of running VPs (the folders the
    local launcher gives its ``vp join`` children). ``wake`` is set when something was queued.
    """

    def __init__(
        self,
        hooks: HookStore,
        vps: VpStore,
        hub: EventHub,
        out_root: Path | None,
        wake: Callable[[], None],
    ) -> None:
        self.hooks = hooks
        self.vps = vps
        self.hub = hub
        self.out_root = out_root
        self.wake = wake
        self.watching: dict[str, VpRecord] = {}

    def _catch_up(self, record: VpRecord) -> int:
        count = emit_status(self.hooks, record)
        if self.out_root is not None and record.status.value != "SCHEDULED":
            count += file_events(self.hooks, record, self.out_root / record.vp_id)
        return count

    def _resync(self) -> int:
        """Everything not emitted yet (at start, after a restart, and after a lag)."""
        count = 0
        for record in self.vps.list():
            count += self._catch_up(record)
            if not record.terminal:
                self.watching[record.vp_id] = record
        return count

    def _drain(self) -> int:
        count = 0
        for vp_id, record in list(self.watching.items()):
            count += self._catch_up(record)
            if record.terminal:
                del self.watching[vp_id]  # its files are complete: read once more, then stop
        return count

    async def run(self) -> None:
        with self.hub.subscribe(lambda _record: True) as sub:
            if await asyncio.to_thread(self._resync):
                self.wake()
            next_drain = time.monotonic() + TAP_INTERVAL
            while True:
                record = await sub.next(max(0.0, next_drain - time.monotonic()))
                count = 0
                if sub.take_lag():
                    count += await asyncio.to_thread(self._resync)
                elif record is not None:
                    count += await asyncio.to_thread(emit_status, self.hooks, record)
                    self.watching[record.vp_id] = record
                if time.monotonic() >= next_drain:
                    count += await asyncio.to_thread(self._drain)
                    next_drain = time.monotonic() + TAP_INTERVAL
                if count:
                    self.wake()


# -- delivery ----------------------------------------------------------------------------------
def signed_headers(secret: str, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (signature by ``standardwebhooks``)."""
    signature = Webhook(secret).sign(msg_id, now, body)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "user-agent": "vp-webhooks/1",
    }


def delivery_error(exc: UrlRefused | httpx.HTTPError) -> str:
    """What a failed delivery attempt records: the URL rule that refused the target,
    ``timeout``, or the HTTP error's type."""
    if isinstance(exc, UrlRefused):
        return f"refused: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return type(exc).__name__


def new_client(verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The HTTP client of deliveries and feed fetches: no redirects followed, no proxy from
    the environment, no kept-alive connections (targets are pinned per request)."""
    return httpx.AsyncClient(
        timeout=DELIVERY_TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        verify=verify,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


class Deliverer:
    """Posts due outbox rows, at most ``concurrency`` at once; see the module docstring."""

    def __init__(
        self,
        store: HookStore,
        *,
        allowed_hosts: frozenset[str],
        retry_seconds: float = 24 * 3600.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.time,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.verify = verify
        self.store = store
        self.allowed_hosts = allowed_hosts
        self.retry_seconds = retry_seconds
        self.concurrency = concurrency
        self.clock = clock
        self._wake = asyncio.Event()
        self._in_flight: set[int] = set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        async with new_client(self.verify) as client:
            tasks: set[asyncio.Task[None]] = set()
            try:
                while True:
                    free = self.concurrency - len(tasks)
                    rows = []
                    if free > 0:
                        rows = await asyncio.to_thread(
                            self.store.due, self.clock(), free, frozenset(self._in_flight)
                        )
                    for row in rows:
                        self._in_flight.add(row.id)
                        task = asyncio.create_task(self._deliver(client, row))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    if rows:
                        continue
                    # Nothing to start: sleep until the next due row, a new event or a
                    # finished attempt (both set the wake event).
                    self._wake.clear()
                    next_at = await asyncio.to_thread(self.store.next_due_at)
                    delay = 1.0 if next_at is None else next_at - self.clock()
                    try:
                        await asyncio.wait_for(self._wake.wait(), min(1.0, max(0.05, delay)))
                    except TimeoutError:
                        pass
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, client: httpx.AsyncClient, row: OutboxRow) -> None:
        try:
            status_code: int | None = None
            error: str | None = None
            try:
                target = await pinned_target(row.url, self.allowed_hosts)
                now = datetime.fromtimestamp(self.clock(), UTC)
                headers = signed_headers(row.secret, row.msg_id, row.body, now)
                response = await client.post(
                    target.url,
                    content=row.body.encode(),
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                )
                status_code = response.status_code
            except (UrlRefused, httpx.HTTPError) as exc:
                error = delivery_error(exc)
            now_s = self.clock()
            attempt = row.attempts + 1
            if status_code is not None and 200 <= status_code < 300:
                state, next_at = "delivered", now_s
            else:
                next_at = now_s + backoff(attempt)
                expired = next_at - row.created_at > self.retry_seconds
                state = "failed" if expired else "pending"
            await asyncio.to_thread(
                self.store.record_attempt,
                row,
                status_code=status_code,
                error=error,
                state=state,
                next_at=next_at,
            )
            log.info(
                "webhook.attempt",
                webhook_id=row.webhook_id,
                event_id=row.msg_id,
                type=row.type,
                attempt=attempt,
                status_code=status_code,
                error=error,
                state=state,
            )
        finally:
            self._in_flight.discard(row.id)
            self._wake.set()
