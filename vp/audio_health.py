"""Audio health of one call: is anything being heard, and what did interruptions cost?

:class:`AudioHealth` tells "no audio source" apart from "sources present but silent" (each
warned about once per episode, and all of them listed in summary.json), and measures the
gaps in capture while the page or Chromium was being replaced (README "Faults survived").
It holds no task of its own: the runner owns :meth:`AudioHealth.watch`.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


# -- capture health: the UI shows speech, the capture hears none (contract 1) --------------
SILENCE_ALARM_S = 10.0
# A speaker shown less than this after the last sound is the indicator catching up with speech
# that just ended (it lags the audio), not evidence of speech now.
INDICATOR_LAG_S = 2.0
CAUSE_SILENT = "the meeting shows a participant speaking but the captured audio is silent"


class SilenceAction(enum.Enum):
    """What :meth:`SilenceMonitor.poll` asks the runner to do."""

    RAISE = "raise"  # record the degraded interval, emit the event, re-attach capture
    REJOIN = "rejoin"  # re-attaching brought no sound back: reload and rejoin (once)
    RECOVERED = "recovered"  # sound is back: the interval is closed


@dataclass(slots=True)
class DegradedInterval:
    """One ``capture.degraded`` entry; times in seconds from the monitor's start (the start of
    recording.wav). ``end_s`` None while it lasts."""

    start_s: float
    cause: str
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "cause": self.cause,
        }


class SilenceMonitor:
    """Decides when "the UI shows someone speaking, the capture hears nothing" is an alarm.

    Pure and clock-injected: the runner reports what the meeting UI shows
    (:meth:`speaker_shown`, each time the driver newly shows a participant other than the VP as
    the active speaker) and polls with the capture's ``seconds_since_sound``.

    Evidence of speech is a *change* of the shown speaker: clients keep showing the last
    speaker through ordinary silence, so a speaker merely still shown proves nothing, while a
    new one shows someone talking now. Muted participants are not shown as speaking by the
    clients, and the VP is never a shown speaker (drivers and runner exclude it), so neither
    counts. The alarm is raised when the capture has heard nothing for ``threshold_s`` since
    the UI first showed a new speaker after the last sound. Then the runner re-attaches
    capture; still silent ``threshold_s`` after the alarm: one REJOIN. The interval closes when
    sound comes back (or when the call ends).
    """

    def __init__(
        self, threshold_s: float = SILENCE_ALARM_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold_s = threshold_s
        self._clock = clock
        self._t0 = clock()
        self._last_sound = self._t0  # silence counts from the start of recording
        self._shown_at: float | None = None  # the first new speaker shown since the last sound
        self._raised_at: float | None = None
        self._rejoined = False
        self.degraded: list[DegradedInterval] = []

    def speaker_shown(self) -> None:
        """The UI newly shows a participant (not the VP) as speaking."""
        now = self._clock()
        if self._shown_at is None or self._shown_at - self._last_sound < INDICATOR_LAG_S:
            self._shown_at = now

    def poll(self, seconds_since_sound: float | None) -> SilenceAction | None:
        """Check once (the runner polls about every second)."""
        now = self._clock()
        if seconds_since_sound is not None:
            self._last_sound = max(self._last_sound, now - seconds_since_sound)
        if self._raised_at is not None:
            if self._last_sound > self._raised_at:
                self.degraded[-1].end_s = self._last_sound - self._t0
                self._raised_at = None
                self._shown_at = None
                return SilenceAction.RECOVERED
            if not self._rejoined and now - self._raised_at >= self.threshold_s:
                self._rejoined = True
                return SilenceAction.REJOIN
            return None
        shown = self._shown_at
        if (
            shown is not None
            and shown - self._last_sound >= INDICATOR_LAG_S
            and now - shown >= self.threshold_s
        ):
            self._raised_at = now
            self.degraded.append(DegradedInterval(now - self._t0, CAUSE_SILENT))
            return SilenceAction.RAISE
        return None

    @property
    def degraded_now(self) -> bool:
        return self._raised_at is not None

    def at_end(self) -> None:
        """The call ends: an open interval ends now."""
        if self._raised_at is not None:
            self.degraded[-1].end_s = self._clock() - self._t0
            self._raised_at = None
