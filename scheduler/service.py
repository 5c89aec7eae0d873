"""The one service layer of the control plane: launch, get, list, cancel.

Both adapters call it: the local HTTP API (``vp serve``) and the AWS Lambda handlers. It owns
ownership rules (a caller sees and cancels only their own VPs; an admin sees all; another
owner's VP is *not found*), idempotency, the per-owner launch rate limit, and the order of
writes (a VP is stored SCHEDULED before any launcher sees it; launching is the conditional
SCHEDULED → INITIALIZING move, so a cancelled VP never launches).

The store is synchronous and is called through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import structlog

from scheduler.errors import (
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    LaunchError,
    NotFound,
    StaleTransition,
)
from scheduler.events import EventHub, Subscription
from scheduler.launcher import LaunchContext, Launcher
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from scheduler.ratelimit import LaunchLimiter
from scheduler.store import VpStore
from vp.config import new_vp_id
from vp.lifecycle import Reason, Status

log = structlog.get_logger(__name__)
# One line per create and cancel: who (the caller's JWT sub), what, which VP; never a secret.
audit = structlog.get_logger("vp.audit")
P = ParamSpec("P")
T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 128


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: ``owner`` is the JWT ``sub``; ``admin`` from ``cognito:groups``."""

    owner: str
    admin: bool = False

    def may_see(self, record: VpRecord) -> bool:
        return self.admin or record.owner == self.owner


@dataclass(frozen=True, slots=True)
class LaunchResult:
    record: VpRecord
    created: bool  # False: an idempotent replay returned the VP created before


class VpService:
    """Launch, get, list and cancel VPs for callers. Start with :meth:`start`."""

    def __init__(
        self,
        store: VpStore,
        launcher: Launcher,
        *,
        rate_limiter: LaunchLimiter | None = None,
        id_factory: Callable[[], str] = new_vp_id,
        fingerprint_key: bytes | None = None,
    ) -> None:
        """``fingerprint_key`` keys the idempotency fingerprints (see
        :meth:`LaunchRequest.fingerprint`); give a stable one so a retry after a restart is
        still recognised (default: random per service, replays then work within a process)."""
        self.store = store
        self.launcher = launcher
        self.rate_limiter = rate_limiter
        self.hub = EventHub()
        self._new_id = id_factory
        self._fingerprint_key = fingerprint_key or pysecrets.token_bytes(32)

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def start(self) -> None:
        """Start the launcher (the local one re-arms pending VPs from the store here)."""
        await self.launcher.start(LaunchContext(store=self.store, publish=self.hub.publish))

    async def aclose(self) -> None:
        await self.launcher.aclose()

    # -- launch ----------------------------------------------------------------------------
    async def launch(
        self, caller: Caller, request: LaunchRequest, *, idempotency_key: str | None = None
    ) -> LaunchResult:
        """Store a SCHEDULED VP for ``caller`` and hand it to the launcher.

        With ``idempotency_key``, a retry of the same request returns the VP created the
        first time (``created=False``) and launches nothing; the same key with a different
        request raises :class:`IdempotencyKeyReused`. Raises :class:`RateLimited` when the
        owner launched too many VPs recently (replays are not counted).
        """
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
                raise InvalidRequest(
                    "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )
            if not idempotency_key.isprintable() or not idempotency_key.isascii():
                raise InvalidRequest("Idempotency-Key", "must be printable ASCII")
        record = VpRecord.new(self._new_id(), caller.owner, request)
        secrets = VpSecrets(
            meeting_url=request.meeting_url,
            passcode=request.passcode.get_secret_value() if request.passcode else None,
        )
        fingerprint = request.fingerprint(self._fingerprint_key)
        known = None
        if idempotency_key is not None:
            known = await self._db(
                self.store.find_by_idempotency_key, caller.owner, idempotency_key
            )
        if known is None and self.rate_limiter is not None:
            await self._db(self.rate_limiter.acquire, caller.owner, record.vp_id)
        try:
            record = await self._db(
                self.store.create,
                record,
                secrets,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
        except IdempotencyConflict as conflict:
            if conflict.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request"
                ) from None
            log.info("vp.idempotent_replay", vp_id=conflict.existing.vp_id)
            return LaunchResult(conflict.existing, created=False)
        self.hub.publish(record)
        audit.info(
            "audit", action="create", sub=caller.owner, admin=caller.admin, vp_id=record.vp_id
        )
        log.info(
            "vp.created",
            vp_id=record.vp_id,
            platform=record.platform,
            scheduled=record.join_at is not None,
        )
        try:
            await self.launcher.submit(record)
        except Exception as exc:
            detail = exc.detail if isinstance(exc, LaunchError) else type(exc).__name__
            log.error("vp.launch_failed", vp_id=record.vp_id, error=detail)
            record = await self._record(
                record.vp_id, Status.FAILED, Reason.LAUNCH_FAILED, f"launch failed: {detail}"
            )
        return LaunchResult(record, created=True)

    async def _record(
        self, vp_id: str, status: Status, reason: Reason | None, detail: str | None
    ) -> VpRecord:
        """A transition that must not be lost to a race: on a stale write, return the state."""
        try:
            record = await self._db(self.store.transition, vp_id, status, reason, detail)
        except StaleTransition:
            current = await self._db(self.store.get, vp_id)
            assert current is not None
            return current
        self.hub.publish(record)
        return record

    # -- read ------------------------------------------------------------------------------
    async def get(self, caller: Caller, vp_id: str) -> VpRecord:
        """The caller's VP; :class:`NotFound` if it does not exist or is another owner's."""
        record = await self._db(self.store.get, vp_id)
        if record is None or not caller.may_see(record):
            raise NotFound(f"no VP {vp_id}")
        return record

    async def list(self, caller: Caller) -> list[VpRecord]:
        """The caller's VPs (an admin's: everyone's), newest first."""
        return await self._db(self.store.list, None if caller.admin else caller.owner)

    def subscribe(self, caller: Caller) -> Subscription:
        """Live changes of the VPs ``caller`` may see (see :mod:`scheduler.events`)."""
        return self.hub.subscribe(caller.may_see)

    # -- cancel ----------------------------------------------------------------------------
    async def cancel(self, caller: Caller, vp_id: str) -> VpRecord:
        """Cancel a scheduled VP (→ CANCELLED, never launched) or stop a running one (→
        COMPLETED stopped if it had joined, else CANCELLED, recorded by the launcher).
        A VP already ended is returned as it is."""
        record = await self.get(caller, vp_id)
        audit.info("audit", action="cancel", sub=caller.owner, admin=caller.admin, vp_id=vp_id)
        if record.terminal:
            return record
        if record.status is Status.SCHEDULED:
            try:
                record = await self._db(
                    self.store.transition,
                    vp_id,
                    Status.CANCELLED,
                    None,
                    "cancelled before launch",
                    expected=Status.SCHEDULED,
                )
                self.hub.publish(record)
            except StaleTransition:
                record = await self.get(caller, vp_id)  # it launched meanwhile: stop it
                if record.terminal:
                    return record
        log.info("vp.cancel", vp_id=vp_id, status=record.status.value)
        await self.launcher.cancel(record)
        record = await self.get(caller, vp_id)
        if record.terminal and self.rate_limiter is not None:
            await self._db(self.rate_limiter.release, record.owner, vp_id)
        return record
