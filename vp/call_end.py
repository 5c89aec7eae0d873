"""Why the call ends: the first reason wins, and work in progress races against it.

Whatever ends the VP — the meeting, max duration, a signal, a crash, the transcriber —
records its reason here (:meth:`CallEnd.conclude`); later reasons are ignored. Steps that
may take long (joining, rejoining) run through :meth:`CallEnd.race`, so they are abandoned
as soon as the VP has to end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from vp.lifecycle import Reason
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Conclusion:
    reason: Reason
    detail: str | None = None


class CallEnd:
    """The VP's one conclusion. :meth:`arm` it inside the running event loop first."""

    def __init__(self, owner: TaskOwner) -> None:
        self._owner = owner
        self._future: asyncio.Future[Conclusion] | None = None
        self._early: Conclusion | None = None  # concluded before arm() (a stop before run)

    def arm(self) -> None:
        self._future = asyncio.get_running_loop().create_future()
        if self._early is not None:
            self._future.set_result(self._early)

    @property
    def armed(self) -> bool:
        return self._future is not None

    @property
    def done(self) -> bool:
        return self._future is not None and self._future.done()

    def conclude(self, reason: Reason, detail: str | None = None) -> None:
        """Record the first reason the VP has to end; later ones are ignored."""
        if self._future is None:
            if self._early is None:
                self._early = Conclusion(reason, detail)
        elif not self._future.done():
            self._future.set_result(Conclusion(reason, detail))

    def result(self) -> Conclusion:
        assert self._future is not None and self._future.done()
        return self._future.result()

    async def wait(self) -> Conclusion:
        assert self._future is not None
        return await self._future

    async def race(self, coro: Coroutine[Any, Any, T], name: str) -> T | None:
        """Run ``coro`` until it finishes or the VP must end; None when the VP must end."""
        assert self._future is not None
        task = self._owner.spawn(coro, name)
        waiters: set[asyncio.Future[Any]] = {task, self._future}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not self._future.done():
            return task.result()
        # The VP must end; whatever the task did meanwhile (e.g. a navigation the guard
        # blocked failing the join) follows from that and must not replace the reason.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return None

    async def hold_until(self, when: datetime) -> bool:
        """Wait until ``when`` (prepared early: the AWS pre-start lead). False when the VP must
        end first."""
        # +1 ms: status times have millisecond precision, and JOINING must not read earlier.
        delay = (when - datetime.now(UTC)).total_seconds() + 0.001
        if delay <= 0:
            return True
        log.info("vp.waiting_to_join", seconds=round(delay, 1))
        return await self.race(asyncio.sleep(delay, True), "hold-until-join") is not None

    def conclude_after(self, seconds: float, reason: Reason, detail: str) -> None:
        """Conclude ``reason`` in ``seconds`` (an owned task) unless something ends it first."""
        self._owner.spawn(self._conclude_later(seconds, reason, detail), reason.value)

    async def _conclude_later(self, seconds: float, reason: Reason, detail: str) -> None:
        await asyncio.sleep(seconds)
        self.conclude(reason, detail)
