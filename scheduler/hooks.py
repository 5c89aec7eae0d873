"""The contract-5 service of ``vp serve``: webhooks and calendars, owner-scoped, plus the
background work — the event tap, the deliverer and the calendar poller — that
:meth:`HookService.start` starts and :meth:`HookService.aclose` cancels and awaits.

Ownership is the VP service's: a caller sees and deletes only their own webhooks and
calendars (another owner's are *not found*); an admin sees all. Registrations are rate
limited per owner (:data:`REGISTRATIONS_PER_MINUTE`) and capped (:data:`MAX_PER_OWNER`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from scheduler import calendars as cal
from scheduler.errors import InvalidRequest, NotFound, RateLimited, StaleTransition
from scheduler.hook_store import (
    CalendarRow,
    CalendarVp,
    DeliveryRow,
    HookStore,
    WebhookRow,
    WebhookStore,
)
from scheduler.models import LaunchRequest, iso
from scheduler.netguard import (
    CALENDAR_HOSTS_ENV,
    WEBHOOK_HOSTS_ENV,
    UrlRefused,
    allowed_hosts,
    check_resolved,
)
from scheduler.ratelimit import RateLimiter
from scheduler.service import Caller, VpService
from scheduler.webhooks import Deliverer, EventTap, EventType, new_secret
from vp.lifecycle import Status
from vp.urls import MAX_URL_LENGTH

log = structlog.get_logger(__name__)
audit = structlog.get_logger("vp.audit")
REGISTRATIONS_PER_MINUTE = 10
MAX_PER_OWNER = 20
DEFAULT_CALENDAR_POLL = 300.0


# -- request/response models (the OpenAPI document is generated from these) --------------------
class WebhookRequest(BaseModel):
    """``POST /v1/webhooks`` body."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, description="https receiver URL")
    events: list[EventType] | None = Field(
        default=None, max_length=len(EventType), description="types to receive (default: all)"
    )


class Webhook(BaseModel):
    webhook_id: str
    url: str = Field(description="the URL with query values masked")
    events: list[EventType]
    created_at: str


class WebhookCreated(Webhook):
    secret: str = Field(description="whsec_…, the signing key: shown only in this response")


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class Delivery(BaseModel):
    event_id: str
    type: str
    attempt: int
    status_code: int | None
    error: str | None
    ts: str


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    pending: int
    delivered: int
    failed: int


class CalendarRequest(BaseModel):
    """``POST /v1/calendars`` body."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ics_url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    name: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable text")
        return value


class CalendarVpView(BaseModel):
    vp_id: str
    start: str
    status: Status | None


class Calendar(BaseModel):
    calendar_id: str
    name: str | None
    ics_url: str = Field(description="scheme and host only: feed URLs often carry a secret")
    created_at: str
    last_attempt: str | None
    last_success: str | None
    last_error: str | None
    vps: list[CalendarVpView]


class CalendarList(BaseModel):
    calendars: list[Calendar]


def _masked_query(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(f"{p.split('=', 1)[0]}=***" if "=" in p else p for p in parts.query.split("&"))
    return urlunsplit(parts._replace(query=query if parts.query else ""))


def _feed_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"


@dataclass
class HookSettings:
    retry_hours: float = 24.0
    calendar_poll: float = DEFAULT_CALENDAR_POLL
    webhook_allowed_hosts: frozenset[str] | None = None  # default: VP_WEBHOOK_ALLOWED_HOSTS
    calendar_allowed_hosts: frozenset[str] | None = None  # default: VP_CALENDAR_ALLOWED_HOSTS


class HookService:
    """Webhooks and calendars of ``vp serve`` (see the module docstring)."""

    def __init__(
        self,
        store: WebhookStore,
        vps: VpService,
        *,
        out_root: Path | None = None,
        settings: HookSettings | None = None,
    ) -> None:
        self.store = store
        self.vps = vps
        self.out_root = out_root
        self.settings = settings or HookSettings()
        self.webhook_hosts = self.settings.webhook_allowed_hosts
        if self.webhook_hosts is None:
            self.webhook_hosts = allowed_hosts(WEBHOOK_HOSTS_ENV)
        self.calendar_hosts = self.settings.calendar_allowed_hosts
        if self.calendar_hosts is None:
            self.calendar_hosts = allowed_hosts(CALENDAR_HOSTS_ENV)
        self.limiter = RateLimiter(REGISTRATIONS_PER_MINUTE, 60.0)
        # vp serve (SQLite) runs the outbox, the tap and the poller in this process; on AWS
        # (DynamoDB) the queue and its Lambdas deliver and calendars are not served here.
        self.local = store if isinstance(store, HookStore) else None
        # Calendars: the SQLite store, or on AWS the DynamoDB one (same methods).
        self.calendars = store if hasattr(store, "calendar_vps") else None
        self.deliverer = Deliverer(
            self.local or HookStore(":memory:"),
            allowed_hosts=self.webhook_hosts,
            retry_seconds=self.settings.retry_hours * 3600,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_lock = asyncio.Lock()

    async def _db(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------
    def calendar_store(self) -> HookStore:
        """The store of calendars (:class:`HookStore` or its DynamoDB twin)."""
        if self.calendars is None:
            raise NotFound("calendars are not served by this control plane")
        calendars: HookStore = self.calendars  # type: ignore[assignment]
        return calendars

    async def start(self) -> None:
        if self.local is None:
            return
        tap = EventTap(self.local, self.vps.store, self.vps.hub, self.out_root, self.deliverer.wake)
        self._spawn(tap.run(), "webhook-tap")
        self._spawn(self.deliverer.run(), "webhook-deliverer")
        if self.settings.calendar_poll > 0:
            self._spawn(self._poll_forever(), "calendar-poller")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # a crashed worker must not hide the shutdown
                log.error("hooks.worker_crashed", task=task.get_name(), error=type(exc).__name__)

    def _limit(self, caller: Caller) -> None:
        self.limiter.acquire(f"hooks|{caller.owner}")

    # -- webhooks -----------------------------------------------------------------------------
    async def create_webhook(self, caller: Caller, request: WebhookRequest) -> WebhookCreated:
        try:
            await check_resolved(request.url, self.webhook_hosts or frozenset())
        except UrlRefused as exc:
            raise InvalidRequest("url", str(exc)) from None
        existing = await self._db(self.store.list_webhooks, caller.owner)
        if len(existing) >= MAX_PER_OWNER:
            raise InvalidRequest("url", f"at most {MAX_PER_OWNER} webhooks per owner")
        self._limit(caller)
        events = tuple(sorted({e.value for e in request.events or []}))
        row = WebhookRow(
            webhook_id=f"wh_{secrets.token_hex(8)}",
            owner=caller.owner,
            url=request.url,
            events=events,
            secret=new_secret(),
            created_at=iso(datetime.now(UTC)),
        )
        await self._db(self.store.create_webhook, row)
        audit.info("audit", action="webhook.create", sub=caller.owner, webhook_id=row.webhook_id)
        return WebhookCreated(**self._webhook(row).model_dump(), secret=row.secret)

    @staticmethod
    def _webhook(row: WebhookRow) -> Webhook:
        events = [EventType(e) for e in row.events] if row.events else list(EventType)
        return Webhook(
            webhook_id=row.webhook_id,
            url=_masked_query(row.url),
            events=events,
            created_at=row.created_at,
        )

    async def list_webhooks(self, caller: Caller) -> list[Webhook]:
        rows = await self._db(self.store.list_webhooks, None if caller.admin else caller.owner)
        return [self._webhook(r) for r in rows]

    async def _own_webhook(self, caller: Caller, webhook_id: str) -> WebhookRow:
        row: WebhookRow | None = await self._db(self.store.get_webhook, webhook_id)
        if row is None or not (caller.admin or row.owner == caller.owner):
            raise NotFound(f"no webhook {webhook_id[:64]!r}")
        return row

    async def deliveries(self, caller: Caller, webhook_id: str) -> DeliveryList:
        row = await self._own_webhook(caller, webhook_id)
        attempts: list[DeliveryRow] = await self._db(self.store.deliveries, row.webhook_id)
        states: dict[str, int] = await self._db(self.store.outbox_states, row.webhook_id)
        return DeliveryList(
            deliveries=[Delivery(**d.public()) for d in attempts],
            pending=states.get("pending", 0),
            delivered=states.get("delivered", 0),
            failed=states.get("failed", 0),
        )

    async def delete_webhook(self, caller: Caller, webhook_id: str) -> None:
        row = await self._own_webhook(caller, webhook_id)
        await self._db(self.store.delete_webhook, row.webhook_id)
        audit.info("audit", action="webhook.delete", sub=caller.owner, webhook_id=row.webhook_id)

    # -- calendars ----------------------------------------------------------------------------
    async def create_calendar(self, caller: Caller, request: CalendarRequest) -> Calendar:
        self.calendar_store()  # 404 where calendars are not served
        url = request.ics_url
        if url.lower().startswith("webcal://"):
            url = "https://" + url[len("webcal://") :]
        try:
            await check_resolved(url, self.calendar_hosts or frozenset())
        except UrlRefused as exc:
            raise InvalidRequest("ics_url", str(exc)) from None
        existing = await self._db(self.calendar_store().list_calendars, caller.owner)
        if len(existing) >= MAX_PER_OWNER:
            raise InvalidRequest("ics_url", f"at most {MAX_PER_OWNER} calendars per owner")
        self._limit(caller)
        row = CalendarRow(
            calendar_id=f"cal_{secrets.token_hex(8)}",
            owner=caller.owner,
            ics_url=url,
            name=request.name,
            created_at=iso(datetime.now(UTC)),
            last_attempt=None,
            last_success=None,
            last_error=None,
        )
        await self._db(self.calendar_store().create_calendar, row)
        audit.info("audit", action="calendar.create", sub=caller.owner, calendar_id=row.calendar_id)
        await self.sync_calendar(row.calendar_id)  # the first sync at once, not in 5 minutes
        return await self._calendar_view(row.calendar_id)

    async def _calendar_view(self, calendar_id: str) -> Calendar:
        row: CalendarRow | None = await self._db(self.calendar_store().get_calendar, calendar_id)
        if row is None:
            raise NotFound(f"no calendar {calendar_id[:64]!r}")
        vps: list[CalendarVp] = await self._db(self.calendar_store().calendar_vps, calendar_id)
        views = []
        for vp in vps:
            record = await self._db(self.vps.store.get, vp.vp_id)
            views.append(
                CalendarVpView(
                    vp_id=vp.vp_id, start=vp.start, status=record.status if record else None
                )
            )
        return Calendar(
            calendar_id=row.calendar_id,
            name=row.name,
            ics_url=_feed_origin(row.ics_url),
            created_at=row.created_at,
            last_attempt=row.last_attempt,
            last_success=row.last_success,
            last_error=row.last_error,
            vps=views,
        )

    async def list_calendars(self, caller: Caller) -> list[Calendar]:
        rows = await self._db(
            self.calendar_store().list_calendars, None if caller.admin else caller.owner
        )
        return [await self._calendar_view(r.calendar_id) for r in rows]

    async def _own_calendar(self, caller: Caller, calendar_id: str) -> CalendarRow:
        row: CalendarRow | None = await self._db(self.calendar_store().get_calendar, calendar_id)
        if row is None or not (caller.admin or row.owner == caller.owner):
            raise NotFound(f"no calendar {calendar_id[:64]!r}")
        return row

    async def delete_calendar(self, caller: Caller, calendar_id: str) -> None:
        """Remove the calendar and cancel the VPs it scheduled that have not started."""
        row = await self._own_calendar(caller, calendar_id)
        async with self._sync_lock:
            for vp in await self._db(self.calendar_store().calendar_vps, row.calendar_id):
                await self._cancel_if_scheduled(vp.vp_id)
            await self._db(self.calendar_store().delete_calendar, row.calendar_id)
        audit.info("audit", action="calendar.delete", sub=caller.owner, calendar_id=calendar_id)

    async def _cancel_if_scheduled(self, vp_id: str) -> bool:
        """Cancel a VP that is still SCHEDULED; True when it is (now) not going to run."""
        try:
            record = await self._db(
                self.vps.store.transition,
                vp_id,
                Status.CANCELLED,
                None,
                "cancelled: its calendar event moved or went away",
                expected=Status.SCHEDULED,
            )
        except StaleTransition:
            current = await self._db(self.vps.store.get, vp_id)
            return current is None or current.status is Status.CANCELLED
        except NotFound:
            return True
        self.vps.hub.publish(record)
        await self.vps.launcher.cancel(record)  # disarm its timer
        return True

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.sync_all()
            except Exception as exc:  # e.g. the database busy: the next round tries again
                log.error("calendar.poll_failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.calendar_poll)

    async def sync_all(self) -> None:
        """One sync of every calendar; a failing one is recorded and skipped."""
        for row in await self._db(self.calendar_store().list_calendars, None):
            await self.sync_calendar(row.calendar_id)

    async def sync_calendar(self, calendar_id: str, *, now: datetime | None = None) -> None:
        """Fetch, parse and reconcile one calendar; record the outcome on it. Never raises
        for a broken feed (the error is recorded)."""
        async with self._sync_lock:
            row: CalendarRow | None = await self._db(
                self.calendar_store().get_calendar, calendar_id
            )
            if row is None:
                return
            attempt = iso(datetime.now(UTC))
            try:
                await self._sync(row, now or datetime.now(UTC))
            except Exception as exc:
                error = str(exc) if isinstance(exc, cal.FeedError) else type(exc).__name__
                log.warning("calendar.sync_failed", calendar_id=calendar_id, error=error)
                await self._db(
                    self.calendar_store().set_calendar_result,
                    calendar_id,
                    attempt=attempt,
                    success=None,
                    error=error[:300],
                )
                return
            await self._db(
                self.calendar_store().set_calendar_result,
                calendar_id,
                attempt=attempt,
                success=attempt,
                error=None,
            )

    async def _sync(self, row: CalendarRow, now: datetime) -> None:
        feed = await cal.fetch_feed(row.ics_url, self.calendar_hosts or frozenset())
        wanted, _cancelled = await asyncio.to_thread(cal.occurrences, feed, now)
        known: list[CalendarVp] = await self._db(
            self.calendar_store().calendar_vps, row.calendar_id
        )
        scheduled = [cal.Scheduled(k.occurrence, k.vp_id, k.start, k.link_hash) for k in known]
        todo = cal.plan(wanted, scheduled)
        kept: set[str] = set()
        for old in todo.cancel:
            if await self._cancel_if_scheduled(old.vp_id):
                await self._db(
                    self.calendar_store().drop_calendar_vp, row.calendar_id, old.occurrence
                )
            else:
                kept.add(old.occurrence)  # it started already: leave it, launch no second one
        caller = Caller(owner=row.owner)
        for occ in todo.launch:
            if occ.key in kept:
                continue
            join_at = max(occ.start, now)
            request = LaunchRequest.model_validate(
                {"meeting_url": occ.meeting_url, "join_at": join_at.isoformat()},
                context={"now": now},
            )
            digest = hashlib.sha256(
                f"{row.calendar_id}|{occ.key}|{occ.start.isoformat()}|{occ.link_hash}".encode()
            ).hexdigest()[:40]
            try:
                result = await self.vps.launch(caller, request, idempotency_key=f"cal-{digest}")
            except RateLimited:
                raise cal.FeedError("launch rate limit reached; the rest next poll") from None
            vp = CalendarVp(occ.key, result.record.vp_id, occ.start.isoformat(), occ.link_hash)
            await self._db(self.calendar_store().set_calendar_vp, row.calendar_id, vp)
            log.info(
                "calendar.scheduled",
                calendar_id=row.calendar_id,
                vp_id=vp.vp_id,
                join_at=iso(join_at),
            )
