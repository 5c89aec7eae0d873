"""One virtual participant, from INITIALIZING to its terminal status: the wiring.

    driver joins ─► capture script ─► AudioPipeline ─┬─► WavRecorder (recording.wav)
                                                     └─► TranscriberClient ─► transcriber
    driver events ─► SPEAKER_CHANGE / participants      transcript segments ◄─┘

The parts live in their own modules: the page, its driver and their recovery in
:mod:`vp.page_session`; the output files and summary.json in :mod:`vp.artifacts`; why the
call ends in :mod:`vp.call_end`; and, from JOINED on, the transcriber
(:mod:`vp.call_transcriber`), capture health (:mod:`vp.capture_watch` over
:mod:`vp.audio_health`), consent (:mod:`vp.call_consent`), the VP's voice
(:mod:`vp.call_voice`) and the memory guard (:mod:`vp.memory_guard`). Each part owns the
tasks it starts and cancels and awaits them in its ``aclose()``. This module builds the
parts, routes events between them, and owns the few tasks of its own.

Whatever ends the VP — the meeting, max duration, a signal, a crash, the transcriber — goes
through one place (:class:`~vp.call_end.CallEnd`), so the shutdown sequence is always the
same: LEAVING, leave through the UI, stop capture, flush the pipeline, END to the
transcriber, close files and the browser, then the terminal status.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import Page

from platforms.base import (
    ChatReceived,
    DriverEvent,
    ParticipantsChanged,
    SpeakerChanged,
    WaitingRoom,
)
from platforms.registry import ResolvedMeeting, resolve
from vp import log as vplog
from vp.artifacts import CallArtifacts, build_summary, with_losses
from vp.audio_health import AudioHealth
from vp.browser import BrowserHost
from vp.call_assistant import CallAssistant
from vp.call_consent import CallConsent
from vp.call_end import CallEnd
from vp.call_part import CallPart
from vp.call_transcriber import CallTranscriber, SegmentCallback
from vp.call_voice import CallVoice
from vp.capture import CaptureFrame, CaptureHealth
from vp.capture_watch import CaptureWatch
from vp.config import JoinConfig
from vp.errors import InvalidUrl, VpError
from vp.lifecycle import COMPLETED_REASONS, Reason, Status, StatusEvent
from vp.memory_guard import MemoryGuard, MemoryWatch
from vp.page_session import BrowserProvider, PageSession
from vp.pipeline import AudioPipeline
from vp.status import JsonlFileSink, StatusSink, StatusTrail
from vp.tasks import TaskOwner
from vp.transcriber.protocol import TranscriptSegment
from vp.urls import url_secrets
from vp.voice.speaker import Speaker

log = structlog.get_logger(__name__)

LEAVE_TIMEOUT = 5.0
END_TIMEOUT = 5.0


@dataclass
class RunResult:
    """The outcome of one VP run, with the measurements the benchmarks and tests read."""

    final: StatusEvent
    out_dir: Path
    joined_at: float | None = None  # monotonic
    started_at: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 2 if self.final.status is Status.FAILED else 0


class VirtualParticipant:
    """Runs one VP. ``await vp.run()`` returns its :class:`RunResult`; ``vp.stop()`` ends it."""

    def __init__(
        self,
        config: JoinConfig,
        *,
        sinks: list[StatusSink] | None = None,
        browser: BrowserHost | None = None,
        browser_provider: BrowserProvider | None = None,
        on_segment: SegmentCallback | None = None,
        join_not_before: datetime | None = None,
    ) -> None:
        """``browser``: a shared Chromium (pool mode) instead of one of the VP's own.
        ``browser_provider``: for a shared one, returns a live replacement after it exited
        (the pool starts one for all its VPs); without it, a VP whose shared Chromium exited
        ends ``browser-crashed``. ``join_not_before``: a task started ahead of its meeting
        (the AWS pre-start lead) prepares — Chromium up, page and capture ready — and enters
        JOINING only at this time."""
        self.config = config
        self.out_dir = config.effective_out_dir
        self._shared_browser = browser
        self._browser_provider = browser_provider
        self._on_segment_cb = on_segment
        self._join_not_before = join_not_before
        self._status = StatusTrail(config.vp_id, sinks or [])
        self.lifecycle = self._status.lifecycle
        self._owner = TaskOwner()
        self._end = CallEnd(self._owner)
        self.joined_event = asyncio.Event()  # set on JOINED (for callers that wait on it)
        self.participants: tuple[str, ...] = ()
        self.active_speaker: str | None = None
        self.meeting: ResolvedMeeting | None = None
        self.assistant: CallAssistant | None = None  # JOINED, on a platform with chat
        self.audio = AudioHealth()
        self.artifacts = CallArtifacts(self.out_dir)
        # The call's parts; each acts from the start of recording (JOINED) on.
        self._transcriber = CallTranscriber(config, self._on_segment, self._end.conclude)
        self._watch = CaptureWatch(self.audio, self.artifacts, config.capture_silence_s)
        # /norecord opt-outs; its delay line sits between the pipeline and the pipeline's sinks
        self._consent = CallConsent(
            config.name, self.post_chat, [self.artifacts.record, self._transcriber.send_audio]
        )
        self._memory = MemoryWatch()  # when a memory limit applies
        self._voice: CallVoice | None = None  # None with --voice off: nothing of it runs
        # set up in run()
        self.session: PageSession | None = None
        self._pipeline: AudioPipeline | None = None
        self._capture_health: CaptureHealth | None = None
        self._result = RunResult(
            final=StatusEvent("", config.vp_id, Status.INITIALIZING), out_dir=self.out_dir
        )

    @property
    def page(self) -> Page | None:
        """The current meeting page (a new one after a rejoin); for tests and tools."""
        return self.session.page if self.session is not None else None

    @property
    def browser_host(self) -> BrowserHost | None:
        """The Chromium the meeting page runs in (a new one after a relaunch)."""
        return self.session.browser if self.session is not None else None

    @property
    def rejoins(self) -> list[dict[str, Any]]:
        """Each rejoin after a lost page or Chromium: ``{"cause", "rejoin_s"}``."""
        return self.session.rejoins if self.session is not None else []

    @property
    def speaker(self) -> Speaker | None:
        """The VP's voice, once JOINED with ``--voice`` on."""
        return self._voice.speaker if self._voice is not None else None

    @property
    def memory(self) -> MemoryGuard | None:
        """The memory guard, once JOINED when a memory limit applies."""
        return self._memory.guard

    def stop(self) -> None:
        """Ask the VP to leave (SIGTERM/SIGINT, cancel): ends COMPLETED stopped once joined."""
        self._end.conclude(Reason.STOPPED, "stop requested")

    # -- main --------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._result.started_at = time.monotonic()
        self._end.arm()
        for secret in [*self.config.secrets(), *url_secrets(self.config.meeting_url)]:
            vplog.register_secret(secret)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._status.sinks.append(JsonlFileSink(self.out_dir / "status.jsonl"))
        self._status.advance(Status.INITIALIZING)
        try:
            # The SSRF guard: nothing is opened, not even a browser, for a URL off the list.
            self.meeting = resolve(self.config.meeting_url, self.config.platform)
        except InvalidUrl as exc:
            self._result.final = self._status.finish(exc.reason, exc.detail)
            self._status.close()
            return self._result
        vplog.bind_vp(self.config.vp_id, self.meeting.platform)
        try:
            self.artifacts.open()
            final = await self._run_meeting(self.meeting)
        except VpError as exc:
            final = await self._shutdown(exc.reason, exc.detail)
        except Exception as exc:  # a bug: still end FAILED with files flushed
            log.exception("vp.internal_error")
            final = await self._shutdown(Reason.INTERNAL_ERROR, type(exc).__name__)
        self._result.final = final
        self._write_summary()
        self._status.close()
        return self._result

    async def _run_meeting(self, meeting: ResolvedMeeting) -> StatusEvent:
        cfg = self.config
        self.session = PageSession(
            cfg,
            meeting,
            owner=self._owner,
            end=self._end,
            audio=self.audio,
            in_call=lambda: self.lifecycle.status is Status.JOINED,
            on_frame=self._on_capture_frame,
            on_driver_event=self._on_driver_event,
            shared_browser=self._shared_browser,
            browser_provider=self._browser_provider,
        )
        self._pipeline = AudioPipeline(sinks=[self._consent.delay.push])
        await self.session.start()
        if self._join_not_before and not await self._end.hold_until(self._join_not_before):
            return await self._conclude()
        self._status.advance(Status.JOINING)
        if not await self.session.join_call(cfg.join_timeout, waiting=self._in_waiting_room):
            return await self._conclude()
        self._status.advance(Status.JOINED)
        self._result.joined_at = time.monotonic()
        self.joined_event.set()
        await self._start_streaming(self.session, self._pipeline)
        self.session.watch()
        if cfg.voice != "off":
            self._voice = CallVoice(cfg, self.session, self._pipeline)
            self._voice.start()
        if meeting.driver.supports_chat:
            self.assistant = CallAssistant(
                cfg,
                chat_limit=meeting.driver.chat_limit,
                post_chat=self._post_chat,
                voice=self._voice,
                end=self._end,
                participants=self.participants,
            )
            self.assistant.start()
        log.info("vp.streaming", meeting=meeting.public_url, call_id=cfg.effective_call_id)
        await self._end.wait()
        return await self._conclude()

    def _in_waiting_room(self) -> bool:
        return self.lifecycle.status is Status.WAITING_ROOM

    async def _conclude(self) -> StatusEvent:
        """Shut down for the reason the call ended (:class:`~vp.call_end.CallEnd`'s)."""
        conclusion = self._end.result()
        return await self._shutdown(conclusion.reason, conclusion.detail)

    async def _start_streaming(self, session: PageSession, pipeline: AudioPipeline) -> None:
        """Recording starts: the transcriber, the pipeline, capture and what watches them."""
        assert session.capture is not None
        cfg = self.config
        await self._transcriber.start(self.active_speaker)
        pipeline.start()
        self._watch.start(session)
        self._consent.start(self.active_speaker)
        session.capture.start()
        self._owner.spawn(pipeline.run(), "pipeline-stall-watchdog")
        await self._memory.start(
            cfg.memory_limit,
            reload=self._reload_for_memory,
            can_reload=self._shared_browser is None,
        )
        if cfg.max_duration is not None:
            detail = f"reached --max-duration {cfg.max_duration:g} s"
            self._end.conclude_after(cfg.max_duration, Reason.MAX_DURATION, detail)

    def _reload_for_memory(self, cause: str) -> None:
        """Reload the meeting page through the recovery path (relaunch-and-rejoin, once)."""
        if self.session is not None and self.lifecycle.status is Status.JOINED:
            self.session.lost(self.session.generation, cause)

    # -- hot path ----------------------------------------------------------------------
    def _on_capture_frame(self, frame: CaptureFrame) -> None:
        self.audio.on_frame()
        if self._pipeline is not None:
            self._pipeline.push_meeting(frame.pcm)
        if self._voice is not None:
            self._voice.on_meeting_pcm(frame.pcm)

    # -- events ------------------------------------------------------------------------
    def _on_driver_event(self, event: DriverEvent) -> None:
        if isinstance(event, WaitingRoom):
            if self.lifecycle.status is Status.JOINING:
                # The lobby's own words ("Asking to be let in…"), when the driver read them.
                self._status.advance(Status.WAITING_ROOM, detail=event.text or None)
        elif isinstance(event, SpeakerChanged):
            if self._is_me(event.name) or event.name == self.active_speaker:
                return
            if self._voice is not None:
                self._voice.barge_in()  # someone else talks while the VP speaks
            self.active_speaker = event.name
            self._watch.speaker_shown()
            self._consent.speaker(event.name)
            # With the audio it belongs to (held back while someone is opted out).
            self._consent.delay.in_order(functools.partial(self._speaker_change, event.name))
        elif isinstance(event, ParticipantsChanged):
            self.participants = event.names
            if self.assistant is not None:
                self.assistant.on_participants(event.names)
            log.info("meeting.participants", count=len(event.names))
        elif isinstance(event, ChatReceived):
            self.artifacts.chat(event.sender, event.text, direction="in")
            self._consent.on_chat(event.sender, event.text)
            if self.assistant is not None:
                self.assistant.on_chat(event.sender, event.text)

    def _is_me(self, name: str) -> bool:
        me = self.config.name
        driver = self.meeting.driver if self.meeting is not None else None
        return name == me or (driver is not None and name == driver.display_name(me))

    async def post_chat(self, text: str, *, assistant: bool = False) -> None:
        """Post ``text`` in the meeting chat and record it in chat.jsonl."""
        driver = self.session.driver if self.session is not None else None
        if driver is None or not self.lifecycle.joined:
            raise VpError("not in a meeting")
        await driver.send_chat(text)
        self.artifacts.chat(self.config.name, text, direction="out", assistant=assistant)

    async def _post_chat(self, text: str, assistant: bool) -> None:
        await self.post_chat(text, assistant=assistant)

    def _speaker_change(self, name: str) -> None:
        self._transcriber.speaker_change(name)
        self.artifacts.speaker(name)

    def _on_segment(self, segment: TranscriptSegment) -> None:
        if self._consent.hides(segment):
            return
        self.artifacts.transcript(segment)
        if self.assistant is not None:
            self.assistant.on_segment(segment)
        if self._on_segment_cb is not None:
            self._on_segment_cb(segment)

    # -- shutdown ----------------------------------------------------------------------
    def _parts(self) -> list[CallPart]:
        """The call's parts, in the order they are closed and their notes and summaries
        written."""
        parts = (self.assistant, self._voice, self._watch, self._consent, self._memory)
        return [part for part in (*parts, self._transcriber) if part is not None]

    async def _shutdown(self, reason: Reason, detail: str | None) -> StatusEvent:
        """Leave, flush and close everything, then record the terminal status."""
        session = self.session
        if session is not None:
            await session.cancel_recovery()
        capture = session.capture if session is not None else None
        if capture is not None:
            # Read before leaving: leaving removes the meeting's tracks from the page.
            self._capture_health = capture.health()
            self.audio.at_end(self._capture_health.state)
        if self.lifecycle.joined and self.lifecycle.status in (Status.JOINED,):
            await self._leave(reason, detail)
        if capture is not None:
            capture.stop()
        if self._pipeline is not None:
            self._pipeline.flush()
        self._consent.delay.flush()
        await self._transcriber.end(END_TIMEOUT)
        await self._owner.aclose()
        for part in self._parts():
            await part.aclose()
        if session is not None:
            await session.close()
        self.artifacts.close()
        if self.lifecycle.terminal:  # pragma: no cover - defensive
            return self.lifecycle.history[-1]
        client = self._transcriber.client
        rejoins = session.rejoins if session is not None else []
        detail = with_losses(detail, rejoins=rejoins, audio=self.audio, client=client)
        for note in filter(None, (part.note() for part in self._parts())):
            detail = f"{detail}; {note}" if detail else note
        return self._status.finish(reason, detail)

    async def _leave(self, reason: Reason, detail: str | None) -> None:
        """LEAVING: say goodbye when still in the meeting, then leave through the UI."""
        self._status.advance(
            Status.LEAVING, reason if reason in COMPLETED_REASONS else None, detail
        )
        if self._voice is not None and reason in _STILL_IN_MEETING:
            self._voice.say_goodbye()
        if self.assistant is not None and reason in _STILL_IN_MEETING:
            try:
                await asyncio.wait_for(self.assistant.say_goodbye(), LEAVE_TIMEOUT)
            except Exception as exc:
                log.warning("vp.exit_message_failed", error=type(exc).__name__)
        if self.assistant is not None:
            await self.assistant.stop_answering()
        if self._voice is not None:
            await self._voice.finish_goodbye(LEAVE_TIMEOUT)
        driver = self.session.driver if self.session is not None else None
        if driver is not None and reason is not Reason.BROWSER_CRASHED:
            try:
                await asyncio.wait_for(driver.leave(), LEAVE_TIMEOUT)
            except Exception as exc:
                log.warning("vp.leave_failed", error=type(exc).__name__)

    def _write_summary(self) -> None:
        session = self.session
        joined_at = self._result.joined_at
        stats = build_summary(
            self._result.final,
            pipeline=self._pipeline,
            client=self._transcriber.client,
            capture=self._capture_health,
            audio=self.audio,
            rejoins=session.rejoins if session is not None and session.generation else None,
            blocked=session.blocked if session is not None else [],
            join_latency_s=None if joined_at is None else joined_at - self._result.started_at,
        )
        for part in self._parts():
            part.summarize(stats)
        self._result.stats = stats
        self.artifacts.write_summary(stats)


# Reasons to end after which the VP is still in the meeting and can say goodbye in chat.
_STILL_IN_MEETING = frozenset(
    {Reason.ALONE, Reason.END_COMMAND, Reason.MAX_DURATION, Reason.STOPPED}
    | {Reason.TRANSCRIBER_UNAVAILABLE, Reason.INTERNAL_ERROR}
)
