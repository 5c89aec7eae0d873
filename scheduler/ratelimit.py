"""Per-owner launch limits: the :class:`LaunchLimiter` extension point.

* :class:`RateLimiter` — in memory, per process: a sliding window of launch times (issue 7).
  Locally that is the whole control plane. Memory is bounded: at most ``limit`` timestamps
  per owner, and owners whose window emptied are forgotten.
* :class:`scheduler.dynamodb_limits.DynamoDbLaunchLimiter` — on AWS, where every Lambda
  container is its own process: conditional counters in the VP table (a launch rate per
  owner and a cap on active VPs per owner), shared by all of them.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

from scheduler.errors import RateLimited


class LaunchLimiter(ABC):
    """Decides whether ``owner`` may launch one more VP. Thread-safe; the service calls it
    from a worker thread (an implementation may do I/O)."""

    @abstractmethod
    def acquire(self, owner: str, vp_id: str) -> None:
        """Count the launch of ``vp_id`` for ``owner``, or raise :class:`RateLimited`
        (counting nothing)."""

    def release(self, owner: str, vp_id: str) -> None:  # noqa: B027 - optional hook
        """``vp_id`` ended (or was never created): it no longer counts as active."""


class RateLimiter(LaunchLimiter):
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
        self._lock = threading.Lock()

    def acquire(self, owner: str, vp_id: str = "") -> None:
        """Count one launch for ``owner``; raise :class:`RateLimited` (counting nothing)
        when the owner is at the limit."""
        with self._lock:
            now = self._clock()
            hits = self._hits.setdefault(owner, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                raise RateLimited(retry_after=max(1.0, hits[0] + self.window - now))
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle owners
                idle = [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]
                for key in idle:
                    del self._hits[key]
