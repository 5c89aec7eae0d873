"""Per-owner launch rate limit: a sliding window of launch times (issue 7).

In memory, per process: locally that is the whole control plane; behind API Gateway it
complements the gateway's own throttling. Memory is bounded: at most ``limit`` timestamps
per owner, and owners whose window emptied are forgotten.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from scheduler.errors import RateLimited


class RateLimiter:
    """Allows ``limit`` launches per owner in any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, owner: str) -> None:
        """Count one launch for ``owner``; raise :class:`RateLimited` (counting nothing)
        when the owner is at the limit."""
        now = self._clock()
        hits = self._hits.setdefault(owner, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            raise RateLimited(retry_after=max(1.0, hits[0] + self.window - now))
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle owners
            for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                del self._hits[key]
