"""One virtual participant, from INITIALIZING to its terminal status: the wiring.

    driver joins ─► capture script ─► AudioPipeline ─┬─► WavRecorder (recording.wav)
                                                     └─► TranscriberClient ─► transcriber
    driver events ─► SPEAKER_CHANGE / participants      transcript segments ◄─┘

The parts live in their own modules: the page, its driver and their recovery in
:mod:`vp.page_session`; the output files and summary.json in :mod:`vp.artifacts`; the audio
health checks in :mod:`vp.audio_health`; why the call ends in :mod:`vp.call_end`. This
module builds them, routes events between them, and owns every task it starts.

Whatever ends the VP — the meeting, max duration, a signal, a crash, the transcriber — goes
through one place (:class:`~vp.call_end.CallEnd`), so the shutdown sequence is always the
same: LEAVING, leave through the UI, stop capture, flush the pipeline, END to the
transcriber, close files and the browser, then the terminal status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import Error as PlaywrightError
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
from vp.assistant.assistant import DEFAULT_EXIT, DEFAULT_INTRO, AssistantSettings, MeetingAssistant
from vp.assistant.engines import create_engine
from vp.audio_health import AudioHealth, SilenceAction, SilenceMonitor
from vp.browser import BrowserHost
from vp.call_end import CallEnd
from vp.capture import CaptureFrame, CaptureHealth
from vp.config import JoinConfig
from vp.consent import Consent, RedactingDelay
from vp.errors import InvalidUrl, VpError
from vp.lifecycle import COMPLETED_REASONS, Lifecycle, Reason, Status, StatusEvent
from vp.memory_guard import MemoryGuard, find_limit
from vp.page_session import BrowserProvider, PageSession, first_line
from vp.pipeline import AudioPipeline
from vp.status import FanOut, JsonlFileSink, StatusSink
from vp.tasks import TaskOwner
from vp.transcriber.client import TranscriberClient
from vp.transcriber.engines import create_engine as create_transcriber_engine
from vp.transcriber.protocol import TranscriptSegment
from vp.transcriber.server import LocalTranscriber
from vp.urls import url_secrets
from vp.voice.page import PageVoiceOutput
from vp.voice.speaker import EnergyRise, Speaker
from vp.voice.synthesis import SpeechSynthesizer, create_synthesizer

log = structlog.get_logger(__name__)

LEAVE_TIMEOUT = 5.0
END_TIMEOUT = 5.0
SILENCE_POLL_S = 1.0  # capture health: how often the silence monitor is polled


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


SegmentCallback = Callable[[TranscriptSegment], None]


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
        self.lifecycle = Lifecycle(config.vp_id)
        self._sink = FanOut(list(sinks or []))
        self._owner = TaskOwner()
        self._end = CallEnd(self._owner)
        self.joined_event = asyncio.Event()  # set on JOINED (for callers that wait on it)
        self.participants: tuple[str, ...] = ()
        self.active_speaker: str | None = None
        self.meeting: ResolvedMeeting | None = None
        self.assistant: MeetingAssistant | None = None
        self.audio = AudioHealth()
        self.silence: SilenceMonitor | None = None  # from the start of recording.wav
        self.consent: Consent | None = None  # /norecord opt-outs, from the start of recording
        self.artifacts = CallArtifacts(self.out_dir)
        # Between the pipeline and its sinks: ch0 redacted, held back once someone opts out.
        self._redacting = RedactingDelay([self.artifacts.record, self._send_frame])
        # set up in run()
        self.session: PageSession | None = None
        self._pipeline: AudioPipeline | None = None
        self._client: TranscriberClient | None = None
        self._local_transcriber: LocalTranscriber | None = None
        self._capture_health: CaptureHealth | None = None
        # The VP's voice (None with --voice off: nothing of it runs, nothing costs).
        self.speaker: Speaker | None = None
        self._energy = EnergyRise()
        self._energy_armed = False
        self._voice_refused = False  # the platform would not unmute: said in the final detail
        self.memory: MemoryGuard | None = None  # while JOINED, when a memory limit applies
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

    # -- status ------------------------------------------------------------------------
    def _advance(
        self, status: Status, reason: Reason | None = None, detail: str | None = None
    ) -> StatusEvent:
        event = self.lifecycle.advance(status, reason, vplog.scrub(detail) if detail else None)
        self._sink.emit(event)
        log.info("vp.status", status=status.value, reason=reason.value if reason else None)
        return event

    def _finish(self, reason: Reason, detail: str | None) -> StatusEvent:
        event = self.lifecycle.finish(reason, vplog.scrub(detail) if detail else None)
        self._sink.emit(event)
        log.info("vp.status", status=event.status.value, reason=reason.value)
        return event

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
        self._sink.sinks.append(JsonlFileSink(self.out_dir / "status.jsonl"))
        self._advance(Status.INITIALIZING)
        try:
            # The SSRF guard: nothing is opened, not even a browser, for a URL off the list.
            self.meeting = resolve(self.config.meeting_url, self.config.platform)
        except InvalidUrl as exc:
            self._result.final = self._finish(exc.reason, exc.detail)
            self._sink.close()
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
        self._sink.close()
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
        self._pipeline = AudioPipeline(sinks=[self._redacting.push])
        await self.session.start()
        if not await self._hold_until_join_time():
            conclusion = self._end.result()
            return await self._shutdown(conclusion.reason, conclusion.detail)

        # Join, bounded by join_timeout and interruptible by any conclusion.
        self._advance(Status.JOINING)
        try:
            joined = await self._end.race(
                asyncio.wait_for(self.session.join(), cfg.join_timeout), "join"
            )
        except TimeoutError:
            waited = "in the waiting room" if self.lifecycle.status is Status.WAITING_ROOM else ""
            return await self._shutdown(
                Reason.WAITING_ROOM_TIMEOUT,
                f"not admitted {waited} within {cfg.join_timeout:.0f} s".replace("  ", " "),
            )
        except PlaywrightError as exc:
            if not self._end.done:
                raise VpError(f"join failed: {first_line(exc)}") from exc
            joined = None
        if joined is None:
            conclusion = self._end.result()
            return await self._shutdown(conclusion.reason, conclusion.detail)

        self._advance(Status.JOINED)
        self._result.joined_at = time.monotonic()
        self.joined_event.set()
        await self._start_streaming(meeting)
        self.session.watch()
        if cfg.voice != "off":
            self._start_voice(meeting)
        if meeting.driver.supports_chat:
            self.assistant = build_assistant(
                cfg,
                chat_limit=meeting.driver.chat_limit,
                post=self._assistant_post,
                on_end_command=lambda _sender: self._end.conclude(
                    Reason.END_COMMAND, "asked to leave in the meeting chat"
                ),
                participants=self.participants,
            )
            self._owner.spawn(self.assistant.introduce(), "assistant-intro")
        conclusion = await self._end.wait()
        return await self._shutdown(conclusion.reason, conclusion.detail)

    async def _hold_until_join_time(self) -> bool:
        """Prepared early: wait for ``join_not_before``. False when the VP must end first."""
        if self._join_not_before is None:
            return True
        # +1 ms: status times have millisecond precision, and JOINING must not read earlier.
        delay = (self._join_not_before - datetime.now(UTC)).total_seconds() + 0.001
        if delay <= 0:
            return True
        log.info("vp.waiting_to_join", seconds=round(delay, 1))
        return await self._end.race(asyncio.sleep(delay, True), "hold-until-join") is not None

    async def _assistant_post(self, text: str, assistant: bool) -> None:
        await self.post_chat(text, assistant=assistant)
        if assistant and self.speaker is not None and self.assistant is not None:
            prefix = self.assistant.settings.prefix
            self.speaker.say(text.removeprefix(prefix), "answer")

    # -- voice -------------------------------------------------------------------------
    def _start_voice(self, meeting: ResolvedMeeting) -> None:
        """The speaker, and the intro spoken right after JOINED (chat or not)."""
        assert self.session is not None and self._pipeline is not None
        pipeline = self._pipeline
        self.speaker = Speaker(
            build_synthesizer(self.config),
            PageVoiceOutput(self.session),
            on_pcm=pipeline.push_voice,
            on_cut=pipeline.clear_voice,
            on_refused=self._on_unmute_refused,
        )
        self._owner.spawn(self.speaker.run(), "speaker")
        intro = self._render(self.config.intro_message, DEFAULT_INTRO)
        if intro:
            self.speaker.say(intro, "intro")

    def _render(self, template: str | None, default: str) -> str | None:
        settings = AssistantSettings(vp_name=self.config.name, invited_by=self.config.invited_by)
        return settings.render(default if template is None else template)

    def _on_unmute_refused(self) -> None:
        self._voice_refused = True

    async def _start_streaming(self, meeting: ResolvedMeeting) -> None:
        assert self._pipeline is not None and self.session is not None
        assert self.session.capture is not None
        cfg = self.config
        self._client, self._local_transcriber = await open_transcriber(
            cfg, self.active_speaker, self._on_segment
        )
        self._pipeline.start()
        self.silence = SilenceMonitor(cfg.capture_silence_s)
        self.consent = Consent(cfg.name)
        self.consent.speaker(self.active_speaker)
        self._redacting.attach(self.consent)
        self.session.capture.start()
        self._owner.spawn(self._run_client(), "transcriber-client")
        self._owner.spawn(self._pipeline.run(), "pipeline-stall-watchdog")
        self._owner.spawn(self.audio.watch(self._current_capture_health), "audio-health")
        self._owner.spawn(self._watch_silence(self.silence), "capture-silence")
        await self._start_memory_guard()
        if cfg.max_duration is not None:
            self._owner.spawn(self._max_duration(cfg.max_duration), "max-duration")
        log.info("vp.streaming", meeting=meeting.public_url, call_id=cfg.effective_call_id)

    async def _start_memory_guard(self) -> None:
        """Watch memory against the VP's limit (vp.memory_guard), if one applies. In pool
        mode the tree is every VP's: the guard reports, but one VP's reload would not help."""
        limit = await asyncio.to_thread(find_limit, self.config.memory_limit)
        if limit is None:
            return
        self.memory = MemoryGuard(
            limit, reload=self._reload_for_memory, can_reload=self._shared_browser is None
        )
        log.info("vp.memory_guard", limit_bytes=limit.limit_bytes, source=limit.source)
        self._owner.spawn(self.memory.run(), "memory-guard")

    def _reload_for_memory(self, cause: str) -> None:
        """Reload the meeting page through the recovery path (relaunch-and-rejoin, once)."""
        if self.session is not None and self.lifecycle.status is Status.JOINED:
            self.session.lost(self.session.generation, cause)

    def _current_capture_health(self) -> CaptureHealth | None:
        capture = self.session.capture if self.session is not None else None
        return capture.health() if capture is not None else None

    async def _watch_silence(self, monitor: SilenceMonitor) -> None:
        """Capture health (contract 1): act on :class:`SilenceMonitor`'s decisions."""
        while True:
            await asyncio.sleep(SILENCE_POLL_S)
            health = self._current_capture_health()
            action = monitor.poll(health.seconds_since_sound if health is not None else None)
            if action is SilenceAction.RAISE:
                interval = monitor.degraded[-1]
                log.warning("vp.capture_degraded", start_s=round(interval.start_s, 3))
                self.artifacts.event(
                    "vp.capture_degraded", start_s=round(interval.start_s, 3), cause=interval.cause
                )
                await self._reattach_capture()
            elif action is SilenceAction.REJOIN and self.session is not None:
                self.session.lost(self.session.generation, "the capture stayed silent")
            elif action is SilenceAction.RECOVERED:
                log.info("vp.capture_recovered", end_s=round(monitor.degraded[-1].end_s or 0, 3))

    async def _reattach_capture(self) -> None:
        session = self.session
        if session is None or session.capture is None or session.page is None:
            return
        try:
            await asyncio.wait_for(session.capture.reattach(session.page), 5)
        except Exception as exc:  # a page navigating or hung: the rejoin step follows
            log.warning("vp.capture_reattach_failed", error=type(exc).__name__)

    async def _run_client(self) -> None:
        assert self._client is not None
        try:
            await self._client.run()
        except VpError as exc:
            self._end.conclude(exc.reason, exc.detail)

    async def _max_duration(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._end.conclude(Reason.MAX_DURATION, f"reached --max-duration {seconds:g} s")

    # -- hot path callbacks ------------------------------------------------------------
    def _on_capture_frame(self, frame: CaptureFrame) -> None:
        self.audio.on_frame()
        if self._pipeline is not None:
            self._pipeline.push_meeting(frame.pcm)
        speaker = self.speaker
        if speaker is not None:
            # Barge-in by sound: ch0 is the meeting without the VP, so a rise while the VP
            # speaks is someone talking over it.
            if speaker.speaking != self._energy_armed:
                self._energy_armed = speaker.speaking
                if speaker.speaking:
                    self._energy.start()
                else:
                    self._energy.stop()
            if self._energy.feed(frame.pcm):
                speaker.barge_in()

    def _send_frame(self, frame: bytes) -> None:
        if self._client is not None:
            self._client.send_audio(frame)

    # -- events ------------------------------------------------------------------------
    def _on_driver_event(self, event: DriverEvent) -> None:
        if isinstance(event, WaitingRoom):
            if self.lifecycle.status is Status.JOINING:
                # The lobby's own words ("Asking to be let in…"), when the driver read them.
                self._advance(Status.WAITING_ROOM, detail=event.text or None)
        elif isinstance(event, SpeakerChanged):
            if self._is_me(event.name) or event.name == self.active_speaker:
                return
            if self.speaker is not None:
                self.speaker.barge_in()  # someone else talks while the VP speaks
            self.active_speaker = event.name
            if self.silence is not None:
                self.silence.speaker_shown()
            if self.consent is not None:
                self.consent.speaker(event.name)
            # With the audio it belongs to (held back while someone is opted out).
            self._redacting.in_order(functools.partial(self._speaker_change, event.name))
        elif isinstance(event, ParticipantsChanged):
            self.participants = event.names
            if self.assistant is not None:
                self.assistant.participants = event.names
            log.info("meeting.participants", count=len(event.names))
        elif isinstance(event, ChatReceived):
            self.artifacts.chat(event.sender, event.text, direction="in")
            confirm = self.consent.on_chat(event.sender, event.text) if self.consent else None
            if confirm is not None:
                self._owner.spawn(self._confirm_consent(confirm), "consent-confirm")
            if self.assistant is not None:
                self.assistant.on_chat(event.sender, event.text)

    def _speaker_change(self, name: str) -> None:
        if self._client is not None:
            self._client.speaker_change(name)
        self.artifacts.speaker(name)

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

    async def _confirm_consent(self, text: str) -> None:
        try:
            await self.post_chat(text)
        except Exception as exc:  # the chat may be gone (leaving): the opt-out stands anyway
            log.warning("vp.consent_confirm_failed", error=type(exc).__name__)

    def _on_segment(self, segment: TranscriptSegment) -> None:
        consent = self.consent
        if consent is not None and consent.redacts(
            segment.speaker, segment.start_time, segment.end_time
        ):
            return  # never a line of a participant who opted out
        self.artifacts.transcript(segment)
        if not segment.is_partial and segment.channel == "CALLER" and self.assistant is not None:
            self.assistant.on_transcript(segment.speaker, segment.transcript)
        if self._on_segment_cb is not None:
            self._on_segment_cb(segment)

    # -- shutdown ----------------------------------------------------------------------
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
        self._redacting.flush()
        if self._client is not None:
            await self._client.end(END_TIMEOUT)
        await self._owner.aclose()
        if self._local_transcriber is not None:
            await self._local_transcriber.aclose()
        if session is not None:
            await session.close()
        self.artifacts.close()
        if self.lifecycle.terminal:  # pragma: no cover - defensive
            return self.lifecycle.history[-1]
        rejoins = session.rejoins if session is not None else []
        detail = with_losses(detail, rejoins=rejoins, audio=self.audio, client=self._client)
        if self._voice_refused:
            note = "the platform refused to unmute the VP (answers stayed in chat)"
            detail = f"{detail}; {note}" if detail else note
        detail = with_degraded(detail, self.silence)
        memory_note = self.memory.note() if self.memory is not None else None
        if memory_note:
            detail = f"{detail}; {memory_note}" if detail else memory_note
        return self._finish(reason, detail)

    async def _leave(self, reason: Reason, detail: str | None) -> None:
        """LEAVING: say goodbye when still in the meeting, then leave through the UI."""
        self._advance(Status.LEAVING, reason if reason in COMPLETED_REASONS else None, detail)
        speaking_exit = False
        if self.speaker is not None and reason in _STILL_IN_MEETING:
            exit_text = self._render(self.config.exit_message, DEFAULT_EXIT)
            speaking_exit = bool(exit_text) and self.speaker.say(exit_text or "", "exit")
        if self.assistant is not None and reason in _STILL_IN_MEETING:
            try:
                await asyncio.wait_for(self.assistant.say_goodbye(), LEAVE_TIMEOUT)
            except Exception as exc:
                log.warning("vp.exit_message_failed", error=type(exc).__name__)
        if self.assistant is not None:
            await self.assistant.aclose()
        if speaking_exit and self.speaker is not None:
            await self.speaker.drain(LEAVE_TIMEOUT)
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
            client=self._client,
            capture=self._capture_health,
            audio=self.audio,
            rejoins=session.rejoins if session is not None and session.generation else None,
            blocked=session.blocked if session is not None else [],
            join_latency_s=None if joined_at is None else joined_at - self._result.started_at,
        )
        if self.speaker is not None:
            stats["voice"] = dataclasses.asdict(self.speaker.stats)
        if self.silence is not None:
            self.silence.at_end()
        degraded = self.silence.degraded if self.silence is not None else []
        stats.setdefault("capture", {})["degraded"] = [d.to_dict() for d in degraded]
        if self.consent is not None:
            self.consent.at_end()
        stats["redactions"] = [r.to_dict() for r in self.consent.redactions] if self.consent else []
        if self.consent is not None:
            stats["consent"] = self.consent.summary(self._redacting)
        if self.memory is not None:
            stats["memory"] = self.memory.summary()
        self._result.stats = stats
        self.artifacts.write_summary(stats)


def with_degraded(detail: str | None, silence: SilenceMonitor | None) -> str | None:
    """The terminal detail, plus a warning when capture was degraded (contract 1)."""
    if silence is None or not silence.degraded:
        return detail
    silence.at_end()
    first = silence.degraded[0]
    note = (
        f"warning: capture degraded {len(silence.degraded)} time(s), first at "
        f"{first.start_s:.1f} s ({first.cause})"
    )
    return f"{detail}; {note}" if detail else note


# Reasons to end after which the VP is still in the meeting and can say goodbye in chat.
_STILL_IN_MEETING = frozenset(
    {Reason.ALONE, Reason.END_COMMAND, Reason.MAX_DURATION, Reason.STOPPED}
    | {Reason.TRANSCRIBER_UNAVAILABLE, Reason.INTERNAL_ERROR}
)


def build_synthesizer(cfg: JoinConfig) -> SpeechSynthesizer:
    """The speech engine of a VP whose voice is on (``cfg.voice`` not ``off``)."""
    options: dict[str, Any] = {}
    if cfg.voice == "espeak-ng" and cfg.voice_id:
        options["voice"] = cfg.voice_id
    elif cfg.voice == "polly":
        options["engine"] = cfg.polly_engine
        if cfg.voice_id:
            options["voice_id"] = cfg.voice_id
    return create_synthesizer(cfg.voice, **options)


def build_assistant(
    cfg: JoinConfig,
    *,
    chat_limit: int,
    post: Callable[[str, bool], Awaitable[None]],
    on_end_command: Callable[[str], None],
    participants: tuple[str, ...],
) -> MeetingAssistant:
    """The meeting assistant of a VP whose platform has chat, configured by ``cfg``."""
    options = {}
    if cfg.assistant_engine == "bedrock" and cfg.bedrock_model_id:
        options["model_id"] = cfg.bedrock_model_id
    settings = AssistantSettings(
        vp_name=cfg.name,
        intro_message=DEFAULT_INTRO if cfg.intro_message is None else cfg.intro_message,
        exit_message=DEFAULT_EXIT if cfg.exit_message is None else cfg.exit_message,
        invited_by=cfg.invited_by,
        wake_phrases=cfg.wake_phrases,
        chat_limit=chat_limit,
    )
    return MeetingAssistant(
        settings,
        create_engine(cfg.assistant_engine, **options),
        post=post,
        on_end_command=on_end_command,
        participants=participants,
    )


async def open_transcriber(
    cfg: JoinConfig, active_speaker: str | None, on_segment: SegmentCallback
) -> tuple[TranscriberClient, LocalTranscriber | None]:
    """The transcriber client (not yet running) for ``cfg``'s transcriber URL, or for the
    local reference transcriber started here in-process when there is none."""
    url = cfg.transcriber_url
    token = cfg.transcriber_token.get_secret_value() if cfg.transcriber_token else None
    back_channel: SegmentCallback | None = on_segment
    local = None
    if url is None:
        # In-process: segments come straight from the server, including the finals it
        # decodes after END (the server drains its engines on close), so none is lost.
        local = LocalTranscriber(
            engine=functools.partial(
                create_transcriber_engine, cfg.engine, wake_phrases=cfg.wake_phrases
            ),
            on_segment=on_segment,
        )
        try:
            await local.start()
        except BaseException:
            await local.aclose()
            raise
        url = local.url
        back_channel = None
    client = TranscriberClient(
        url,
        call_id=cfg.effective_call_id,
        agent_id=cfg.name,
        token=token,
        active_speaker=active_speaker or "n/a",
        buffer_seconds=cfg.transcriber_buffer,
        unavailable_after=cfg.transcriber_wait,
        on_segment=back_channel,
    )
    return client, local
