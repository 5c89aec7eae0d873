"""In-process fan-out of record changes to live views (the console's server-sent events).

Overflow policy: each subscriber has a bounded queue (:data:`QUEUE_SIZE`). A subscriber that
falls that far behind is not allowed to grow memory: its queue is emptied and it is marked
``lagged``; its consumer then re-reads the full state from the store (a resync), so it
loses no final state, only intermediate steps. Drops are counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from scheduler.models import VpRecord

log = structlog.get_logger(__name__)
QUEUE_SIZE = 256


class Subscription:
    """One live view's queue of changed records. Use as a context manager."""

    def __init__(self, hub: EventHub, accept: Callable[[VpRecord], bool]) -> None:
        self._hub = hub
        self.accept = accept
        self.queue: asyncio.Queue[VpRecord] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.lagged = False
        self.dropped = 0

    def offer(self, record: VpRecord) -> None:
        if not self.accept(record):
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += self.queue.qsize() + 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.lagged = True
            # A sentinel wakes the consumer so it notices the lag and resyncs.
            self.queue.put_nowait(record)
            log.warning("events.subscriber_lagged", dropped=self.dropped)

    async def next(self, timeout: float) -> VpRecord | None:
        """The next changed record, or None after ``timeout`` seconds (for keep-alives)."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def take_lag(self) -> bool:
        """True once after the queue overflowed: the consumer must resync."""
        lagged, self.lagged = self.lagged, False
        return lagged

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._hub.unsubscribe(self)


class EventHub:
    """Publishes changed records to every subscription whose filter accepts them."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, accept: Callable[[VpRecord], bool]) -> Subscription:
        sub = Subscription(self, accept)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, record: VpRecord) -> None:
        """Never blocks (see the module's overflow policy)."""
        for sub in list(self._subs):
            sub.offer(record)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
