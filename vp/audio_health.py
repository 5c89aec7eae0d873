"""Audio health of one call: is anything being heard, and what did interruptions cost?

:class:`AudioHealth` tells "no audio source" apart from "sources present but silent" (each
warned about once per episode, and all of them listed in summary.json), and measures the
gaps in capture while the page or Chromium was being replaced (README "Faults survived").
It holds no task of its own: the runner owns :meth:`AudioHealth.watch`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from vp.capture import CaptureHealth

log = structlog.get_logger(__name__)

HEALTH_INTERVAL = 5.0  # seconds between checks
NO_SOURCE_AFTER = 10.0  # no warning in the first seconds of the call (sources attach late)
_BAD_STATES = ("no-frames", "no-source", "silent")


class AudioHealth:
    """Warnings about what the capture hears, and the gaps in it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._warned: set[str] = set()  # states warned about in the current episode
        self.warnings: set[str] = set()  # every state ever warned about (summary)
        self._last_frame_at: float | None = None
        self._gap_since: float | None = None  # capture interrupted since
        self.gaps: list[float] = []

    @property
    def gap_seconds(self) -> float:
        """Seconds of capture lost to interruptions (page or browser replaced)."""
        return sum(self.gaps)

    # -- frames and interruptions --------------------------------------------------------
    def on_frame(self) -> None:
        """A captured frame arrived: closes an open gap."""
        now = self._clock()
        if self._gap_since is not None:
            gap = now - self._gap_since
            self._gap_since = None
            self.gaps.append(gap)
            log.info("vp.audio_resumed", gap_s=round(gap, 3))
        self._last_frame_at = now

    def interrupted(self) -> None:
        """Capture stopped (the page is being replaced): a gap opens at the last frame."""
        if self._gap_since is None:
            self._gap_since = self._last_frame_at or self._clock()

    # -- warnings --------------------------------------------------------------------------
    def check(self, state: str) -> None:
        """Warn once about a bad state; say when sound is back."""
        if state in _BAD_STATES and state not in self._warned:
            self._warned.add(state)
            self.warnings.add(state)
            log.warning("audio.health", state=state)
        elif state == "active" and self._warned:
            self._warned.clear()
            log.info("audio.health", state=state)

    async def watch(self, health: Callable[[], CaptureHealth | None]) -> None:
        """Check ``health()`` (the current capture's) every HEALTH_INTERVAL s, forever."""
        started = self._clock()
        while True:
            await asyncio.sleep(HEALTH_INTERVAL)
            if self._clock() - started < NO_SOURCE_AFTER:
                continue
            current = health()
            if current is not None:
                self.check(current.state)

    def at_end(self, state: str) -> None:
        """A call that ends with no audio source (or no frames) says so, even if it was too
        short for the periodic check: "no-source" must never pass for silence. Closes a gap
        still open (a crash the call ended in)."""
        if self._gap_since is not None:
            self.gaps.append(self._clock() - self._gap_since)
            self._gap_since = None
        if state in ("no-frames", "no-source") and state not in self.warnings:
            self.warnings.add(state)
            log.warning("audio.health", state=state, at="end")
