"""Watching the capture while JOINED: the periodic audio-health check and capture health.

:class:`CaptureWatch` owns two tasks (cancelled and awaited by :meth:`aclose`):
:meth:`AudioHealth.watch <vp.audio_health.AudioHealth.watch>` over the current page's
capture, and a poll of the :class:`~vp.audio_health.SilenceMonitor` that acts on its
decisions (contract 1: the UI shows speech, the capture hears none): record the degraded
interval and re-attach capture, then, still silent, one reload-and-rejoin through the page
session's recovery path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from vp.artifacts import CallArtifacts
from vp.audio_health import AudioHealth, SilenceAction, SilenceMonitor
from vp.call_part import CallPart
from vp.capture import CaptureHealth
from vp.page_session import PageSession
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

SILENCE_POLL_S = 1.0  # how often the silence monitor is polled
REATTACH_TIMEOUT = 5.0


def degraded_note(silence: SilenceMonitor) -> str | None:
    """For the terminal status detail: a warning when capture was degraded (contract 1)."""
    if not silence.degraded:
        return None
    silence.at_end()
    first = silence.degraded[0]
    return (
        f"warning: capture degraded {len(silence.degraded)} time(s), first at "
        f"{first.start_s:.1f} s ({first.cause})"
    )


class CaptureWatch(CallPart):
    """Watches from :meth:`start` on, with recording (the silence monitor's times count from
    the start of recording.wav)."""

    def __init__(
        self, audio: AudioHealth, artifacts: CallArtifacts, silence_threshold_s: float
    ) -> None:
        self._audio = audio
        self._artifacts = artifacts
        self._threshold_s = silence_threshold_s
        self._session: PageSession | None = None
        self.silence: SilenceMonitor | None = None
        self._owner = TaskOwner()

    def start(self, session: PageSession) -> None:
        self._session = session
        self.silence = SilenceMonitor(self._threshold_s)
        self._owner.spawn(self._audio.watch(self.current_health), "audio-health")
        self._owner.spawn(self._watch_silence(session, self.silence), "capture-silence")

    def current_health(self) -> CaptureHealth | None:
        """The health of the current page's capture (a new one after a rejoin)."""
        capture = self._session.capture if self._session is not None else None
        return capture.health() if capture is not None else None

    def speaker_shown(self) -> None:
        """The UI newly shows a participant (not the VP) as speaking."""
        if self.silence is not None:
            self.silence.speaker_shown()

    async def _watch_silence(self, session: PageSession, monitor: SilenceMonitor) -> None:
        while True:
            await asyncio.sleep(SILENCE_POLL_S)
            health = self.current_health()
            action = monitor.poll(health.seconds_since_sound if health is not None else None)
            if action is SilenceAction.RAISE:
                interval = monitor.degraded[-1]
                log.warning("vp.capture_degraded", start_s=round(interval.start_s, 3))
                self._artifacts.event(
                    "vp.capture_degraded", start_s=round(interval.start_s, 3), cause=interval.cause
                )
                await self._reattach(session)
            elif action is SilenceAction.REJOIN:
                session.lost(session.generation, "the capture stayed silent")
            elif action is SilenceAction.RECOVERED:
                log.info("vp.capture_recovered", end_s=round(monitor.degraded[-1].end_s or 0, 3))

    @staticmethod
    async def _reattach(session: PageSession) -> None:
        if session.capture is None or session.page is None:
            return
        try:
            await asyncio.wait_for(session.capture.reattach(session.page), REATTACH_TIMEOUT)
        except Exception as exc:  # a page navigating or hung: the rejoin step follows
            log.warning("vp.capture_reattach_failed", error=type(exc).__name__)

    def note(self) -> str | None:
        """For the terminal status detail."""
        return degraded_note(self.silence) if self.silence is not None else None

    def summarize(self, stats: dict[str, Any]) -> None:
        """summary.json's ``capture.degraded`` (closing an interval still open)."""
        if self.silence is not None:
            self.silence.at_end()
        degraded = self.silence.degraded if self.silence is not None else []
        stats.setdefault("capture", {})["degraded"] = [d.to_dict() for d in degraded]

    async def aclose(self) -> None:
        await self._owner.aclose()
