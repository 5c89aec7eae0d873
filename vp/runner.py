"""One virtual participant, from INITIALIZING to its terminal status.

The runner wires the parts together and owns every task it starts:

    driver joins ─► capture script ─► AudioPipeline ─┬─► WavRecorder (recording.wav)
                                                     └─► TranscriberClient ─► transcriber
    driver events ─► SPEAKER_CHANGE / participants      transcript segments ◄─┘

Whatever ends the VP — the meeting, max duration, a signal, a crash, the transcriber — goes
through one place (:meth:`VirtualParticipant._conclude`), so the shutdown sequence is always
the same: LEAVING, leave through the UI, stop capture, flush the pipeline, END to the
transcriber, close files and the browser, then the terminal status.

Faults it survives (README "Faults survived"): the meeting page or Chromium crashing — or the
page hanging, seen by a watchdog — while JOINED is answered by ONE relaunch and rejoin within
``rejoin_timeout``; the lifecycle stays JOINED (it has no way back to JOINING), the pipeline
fills the gap with silence so the stream stays real time, and the gap is reported (log,
summary.json, the terminal status detail). Anything else ends FAILED browser-crashed. Every
document the pages load is checked against the allow-list (vp.navguard).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from platforms.base import (
    ChatReceived,
    DriverEvent,
    DriverSettings,
    ParticipantsChanged,
    PlatformDriver,
    SpeakerChanged,
    WaitingRoom,
)
from platforms.registry import ResolvedMeeting, resolve
from vp import log as vplog
from vp.assistant.assistant import DEFAULT_EXIT, DEFAULT_INTRO, AssistantSettings, MeetingAssistant
from vp.assistant.engines import create_engine
from vp.browser import BrowserHost
from vp.capture import AudioCapture, CaptureFrame, CaptureHealth
from vp.config import JoinConfig
from vp.errors import BrowserCrashed, InvalidUrl, VpError
from vp.files import JsonlWriter
from vp.lifecycle import COMPLETED_REASONS, Lifecycle, Reason, Status, StatusEvent
from vp.navguard import BlockedNavigation, NavigationGuard
from vp.pipeline import AudioPipeline
from vp.recording import WavRecorder
from vp.status import FanOut, JsonlFileSink, StatusSink
from vp.tasks import TaskOwner
from vp.transcriber.client import TranscriberClient
from vp.transcriber.engines import create_engine as create_transcriber_engine
from vp.transcriber.protocol import TranscriptSegment
from vp.transcriber.server import LocalTranscriber
from vp.urls import url_secrets

log = structlog.get_logger(__name__)

LEAVE_TIMEOUT = 5.0
END_TIMEOUT = 5.0
HEALTH_INTERVAL = 5.0
NO_SOURCE_AFTER = 10.0
HANG_CHECK_EVERY = 5.0  # the page watchdog's period (its timeout is config.hang_timeout)
MAX_REJOINS = 1


@dataclass(slots=True)
class _Conclusion:
    reason: Reason
    detail: str | None = None


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
        browser_provider: Callable[[], Awaitable[BrowserHost]] | None = None,
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
        self._extra_sinks = sinks or []
        self._shared_browser = browser
        self._browser_provider = browser_provider
        self._on_segment_cb = on_segment
        self._join_not_before = join_not_before
        self.lifecycle = Lifecycle(config.vp_id)
        self._sink = FanOut(list(self._extra_sinks))
        self._owner = TaskOwner()
        self._conclusion: asyncio.Future[_Conclusion] | None = None
        self._stop_requested = False
        self.joined_event = asyncio.Event()  # set on JOINED (for callers that wait on it)
        self.participants: tuple[str, ...] = ()
        self.active_speaker: str | None = None
        self.meeting: ResolvedMeeting | None = None
        # set up in run()
        self._browser: BrowserHost | None = None
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._driver: PlatformDriver | None = None
        self._capture: AudioCapture | None = None
        self._pipeline: AudioPipeline | None = None
        self._recorder: WavRecorder | None = None
        self._client: TranscriberClient | None = None
        self._local_transcriber: LocalTranscriber | None = None
        self._transcript: JsonlWriter | None = None
        self._chat: JsonlWriter | None = None
        self._speakers: JsonlWriter | None = None  # speakers.jsonl: the SPEAKER_CHANGE history
        self._warned_audio: set[str] = set()
        self._audio_warnings: set[str] = set()  # every state ever warned about (summary)
        # Browser/page recovery: a generation per page, so events of a discarded page (its
        # crash, its Chromium's exit) are ignored.
        self._generation = 0
        self._on_disconnected: Callable[[Any], None] | None = None
        self._guard: NavigationGuard | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._rejoins_left = MAX_REJOINS
        self._rejoins: list[dict[str, Any]] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._last_frame_at: float | None = None
        self._gap_since: float | None = None  # capture interrupted since (monotonic)
        self._audio_gaps: list[float] = []
        self._blocked: list[BlockedNavigation] = []
        self.assistant: MeetingAssistant | None = None
        self._capture_health: CaptureHealth | None = None
        self._result = RunResult(
            final=StatusEvent("", config.vp_id, Status.INITIALIZING), out_dir=self.out_dir
        )

    @property
    def page(self) -> Page | None:
        """The current meeting page (a new one after a rejoin); for tests and tools."""
        return self._page

    @property
    def browser_host(self) -> BrowserHost | None:
        """The Chromium the meeting page runs in (a new one after a relaunch)."""
        return self._browser

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

    # -- ending ------------------------------------------------------------------------
    def _conclude(self, reason: Reason, detail: str | None = None) -> None:
        """Record the first reason the VP has to end; later ones are ignored."""
        if self._conclusion is not None and not self._conclusion.done():
            self._conclusion.set_result(_Conclusion(reason, detail))

    def stop(self) -> None:
        """Ask the VP to leave (SIGTERM/SIGINT, cancel): ends COMPLETED stopped once joined."""
        self._stop_requested = True
        self._conclude(Reason.STOPPED, "stop requested")

    # -- main --------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._result.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._conclusion = loop.create_future()
        if self._stop_requested:
            self._conclusion.set_result(_Conclusion(Reason.STOPPED, "stop requested"))
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
            self._open_files()
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

    def _open_files(self) -> None:
        self._transcript = JsonlWriter(self.out_dir / "transcript.jsonl")
        self._chat = JsonlWriter(self.out_dir / "chat.jsonl")
        self._speakers = JsonlWriter(self.out_dir / "speakers.jsonl")
        self._recorder = WavRecorder(self.out_dir / "recording.wav")

    async def _race(self, coro: Any, name: str) -> Any:
        """Run ``coro`` until it finishes or the VP must end; None when the VP must end."""
        assert self._conclusion is not None
        task = self._owner.spawn(coro, name)
        await asyncio.wait({task, self._conclusion}, return_when=asyncio.FIRST_COMPLETED)
        if not self._conclusion.done():
            return task.result()
        # The VP must end; whatever the task did meanwhile (e.g. a navigation the guard
        # blocked failing the join) follows from that and must not replace the reason.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return None

    async def _run_meeting(self, meeting: ResolvedMeeting) -> StatusEvent:
        assert self._conclusion is not None
        cfg = self.config
        # Browser and page.
        if self._shared_browser is not None:
            self._browser = self._shared_browser
        else:
            self._browser = BrowserHost()
            await self._browser.start()
        self._pipeline = AudioPipeline(sinks=[self._record_frame, self._send_frame])
        await self._open_page(meeting)
        if not await self._hold_until_join_time():
            conclusion = self._conclusion.result()
            return await self._shutdown(conclusion.reason, conclusion.detail)

        # Join, bounded by join_timeout and interruptible by any conclusion.
        self._advance(Status.JOINING)
        try:
            joined = await self._race(
                asyncio.wait_for(self._join(meeting.url), cfg.join_timeout), "join"
            )
        except TimeoutError:
            waited = "in the waiting room" if self.lifecycle.status is Status.WAITING_ROOM else ""
            return await self._shutdown(
                Reason.WAITING_ROOM_TIMEOUT,
                f"not admitted {waited} within {cfg.join_timeout:.0f} s".replace("  ", " "),
            )
        except PlaywrightError as exc:
            if self._conclusion.done():
                joined = None
            else:
                raise VpError(f"join failed: {_first_line(exc)}") from exc
        if joined is None:
            conclusion = self._conclusion.result()
            return await self._shutdown(conclusion.reason, conclusion.detail)

        self._advance(Status.JOINED)
        self._result.joined_at = time.monotonic()
        self.joined_event.set()
        await self._start_streaming(meeting)
        self._watch_task = self._owner.spawn(self._watch(self._generation), "driver-watch")
        if meeting.driver.supports_chat:
            self.assistant = self._make_assistant(meeting)
            self._owner.spawn(self.assistant.introduce(), "assistant-intro")
        conclusion = await self._conclusion
        return await self._shutdown(conclusion.reason, conclusion.detail)

    async def _hold_until_join_time(self) -> bool:
        """Prepared early: wait for ``join_not_before``. False when the VP must end first."""
        if self._join_not_before is None:
            return True
        delay = (self._join_not_before - datetime.now(UTC)).total_seconds()
        if delay <= 0:
            return True
        log.info("vp.waiting_to_join", seconds=round(delay, 1))
        return await self._race(asyncio.sleep(delay, True), "hold-until-join") is not None

    def _make_assistant(self, meeting: ResolvedMeeting) -> MeetingAssistant:
        cfg = self.config
        options = {}
        if cfg.assistant_engine == "bedrock" and cfg.bedrock_model_id:
            options["model_id"] = cfg.bedrock_model_id
        settings = AssistantSettings(
            vp_name=cfg.name,
            intro_message=DEFAULT_INTRO if cfg.intro_message is None else cfg.intro_message,
            exit_message=DEFAULT_EXIT if cfg.exit_message is None else cfg.exit_message,
            invited_by=cfg.invited_by,
            wake_phrases=cfg.wake_phrases,
            chat_limit=meeting.driver.chat_limit,
        )
        return MeetingAssistant(
            settings,
            create_engine(cfg.assistant_engine, **options),
            post=self._assistant_post,
            on_end_command=lambda _sender: self._conclude(
                Reason.END_COMMAND, "asked to leave in the meeting chat"
            ),
            participants=self.participants,
        )

    async def _assistant_post(self, text: str, assistant: bool) -> None:
        await self.post_chat(text, assistant=assistant)

    async def _join(self, url: str) -> bool:
        assert self._driver is not None
        await self._driver.join(url)
        return True

    async def _start_streaming(self, meeting: ResolvedMeeting) -> None:
        assert self._pipeline is not None and self._capture is not None
        cfg = self.config
        url = cfg.transcriber_url
        token = cfg.transcriber_token.get_secret_value() if cfg.transcriber_token else None
        back_channel: SegmentCallback | None = self._on_segment
        if url is None:
            # In-process: segments come straight from the server, including the finals it
            # decodes after END (the server drains its engines on close), so none is lost.
            self._local_transcriber = LocalTranscriber(
                engine=functools.partial(
                    create_transcriber_engine, cfg.engine, wake_phrases=cfg.wake_phrases
                ),
                on_segment=self._on_segment,
            )
            await self._local_transcriber.start()
            url = self._local_transcriber.url
            back_channel = None
        self._client = TranscriberClient(
            url,
            call_id=cfg.effective_call_id,
            agent_id=cfg.name,
            token=token,
            active_speaker=self.active_speaker or "n/a",
            buffer_seconds=cfg.transcriber_buffer,
            unavailable_after=cfg.transcriber_wait,
            on_segment=back_channel,
        )
        self._pipeline.start()
        self._capture.start()
        self._owner.spawn(self._run_client(), "transcriber-client")
        self._owner.spawn(self._pipeline.run(), "pipeline-stall-watchdog")
        self._owner.spawn(self._audio_health(), "audio-health")
        if cfg.max_duration is not None:
            self._owner.spawn(self._max_duration(cfg.max_duration), "max-duration")
        log.info("vp.streaming", meeting=meeting.public_url, call_id=cfg.effective_call_id)

    async def _run_client(self) -> None:
        assert self._client is not None
        try:
            await self._client.run()
        except VpError as exc:
            self._conclude(exc.reason, exc.detail)

    async def _watch(self, generation: int) -> None:
        assert self._driver is not None
        try:
            over = await self._driver.watch()
        except PlaywrightError as exc:
            self._browser_lost(generation, f"the meeting page failed: {_first_line(exc)}")
        except VpError as exc:
            self._conclude(exc.reason, exc.detail)
        else:
            self._conclude(over.reason, over.detail)

    async def _max_duration(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._conclude(Reason.MAX_DURATION, f"reached --max-duration {seconds:g} s")

    async def _audio_health(self) -> None:
        """Tell "no audio source" apart from "sources present but silent", once each."""
        assert self._capture is not None
        joined_at = time.monotonic()
        while True:
            await asyncio.sleep(HEALTH_INTERVAL)
            if time.monotonic() - joined_at < NO_SOURCE_AFTER:
                continue
            state = self._capture.health().state
            if state in ("no-frames", "no-source", "silent") and state not in self._warned_audio:
                self._warned_audio.add(state)
                self._audio_warnings.add(state)
                log.warning("audio.health", state=state)
            elif state == "active" and self._warned_audio:
                self._warned_audio.clear()
                log.info("audio.health", state=state)

    # -- the page, its guard and watchdog, and recovery --------------------------------
    async def _open_page(self, meeting: ResolvedMeeting) -> None:
        """A fresh context, capture, navigation guard, page and driver (also for a rejoin)."""
        assert self._browser is not None
        cfg = self.config
        self._generation += 1
        generation = self._generation
        self._context = await self._browser.new_context()
        self._capture = AudioCapture(
            on_frame=self._on_capture_frame,
            track_filter_js=meeting.driver.capture_track_filter_js,
        )
        # The meeting's origin may open the capture WebSocket to 127.0.0.1 (see vp.capture).
        await self._capture.install(self._context, origins=[meeting.url])
        self._page = await self._context.new_page()
        self._guard = NavigationGuard(meeting.allows, self._on_navigation_blocked)
        await self._guard.protect(self._page)
        self._guard.watch_popups(self._context, self._page)
        self._page.on(
            "crash", lambda _page: self._browser_lost(generation, "the meeting page crashed")
        )
        # Removed again in _discard_page: a shared (pool) browser outlives this VP.
        self._on_disconnected = lambda _b: self._browser_lost(generation, "Chromium exited")
        self._browser.browser.on("disconnected", self._on_disconnected)
        settings = DriverSettings(
            name=cfg.name,
            passcode=cfg.passcode.get_secret_value() if cfg.passcode else None,
            join_timeout=cfg.join_timeout,
            alone_timeout=cfg.alone_timeout,
        )
        self._driver = meeting.driver(self._page, settings, self._on_driver_event)
        self._watchdog_task = self._owner.spawn(
            self._page_watchdog(generation, self._page), "page-watchdog"
        )

    def _on_navigation_blocked(self, blocked: BlockedNavigation) -> None:
        self._blocked.append(blocked)
        if blocked.main_frame:  # the meeting page would be gone: end (frames only log)
            self._conclude(
                Reason.INVALID_URL,
                f"the meeting page tried to open {blocked.host}, which is not allowed",
            )

    async def _page_watchdog(self, generation: int, page: Page) -> None:
        """A hung page (a script that never yields) answers no evaluate: one trivial
        evaluate every HANG_CHECK_EVERY s must return within config.hang_timeout."""
        timeout = self.config.hang_timeout
        while True:
            await asyncio.sleep(HANG_CHECK_EVERY)
            try:
                await asyncio.wait_for(page.evaluate("1"), timeout)
            except TimeoutError:
                self._browser_lost(
                    generation, f"the meeting page hung (no answer in {timeout:g} s)"
                )
                return
            except PlaywrightError:
                if page.is_closed():
                    self._browser_lost(generation, "the meeting page closed")
                    return
                # else: a navigation replaced the document mid-call; ask again next period

    def _browser_lost(self, generation: int, cause: str) -> None:
        """The page or Chromium of ``generation`` died or hung: rejoin once if in the call."""
        if generation != self._generation or self._conclusion is None:
            return  # a page already discarded
        if self._conclusion.done() or (self._recovery is not None and not self._recovery.done()):
            return
        if self.lifecycle.status is not Status.JOINED:
            self._conclude(Reason.BROWSER_CRASHED, cause)
        elif self._rejoins_left <= 0:
            self._conclude(Reason.BROWSER_CRASHED, f"{cause} again after a rejoin")
        else:
            self._rejoins_left -= 1
            self._recovery = self._owner.spawn(self._recover(cause), "rejoin")

    async def _recover(self, cause: str) -> None:
        """Discard the page (and a dead Chromium), open a new one and rejoin, once."""
        assert self._browser is not None and self.meeting is not None
        lost_at = time.monotonic()
        log.warning("vp.browser_lost", cause=cause, action="rejoin")
        if self._gap_since is None:
            self._gap_since = self._last_frame_at or lost_at
        for task in (self._watch_task, self._watchdog_task):
            if task is not None:
                task.cancel()
        if self._capture is not None:
            self._capture.stop()
        try:
            await self._discard_page()
            if not self._browser.connected:
                if self._browser is self._shared_browser:
                    if self._browser_provider is None:
                        raise BrowserCrashed("the shared Chromium exited")
                    # One fresh Chromium for every VP that was in the dead one.
                    self._browser = self._shared_browser = await self._browser_provider()
                    if not self._browser.connected:
                        raise BrowserCrashed("the shared Chromium exited")
                else:
                    await self._browser.aclose()
                    self._browser = BrowserHost()
                    await self._browser.start()
            await self._open_page(self.meeting)
            timeout = self.config.rejoin_timeout
            joined = await self._race(
                asyncio.wait_for(self._join(self.meeting.url), timeout), "rejoin-join"
            )
        except TimeoutError:
            self._conclude(
                Reason.BROWSER_CRASHED,
                f"{cause}; no rejoin within {self.config.rejoin_timeout:g} s",
            )
            return
        except Exception as exc:  # Playwright, the driver's JoinError, a failed relaunch…
            self._conclude(
                Reason.BROWSER_CRASHED, f"{cause}; the rejoin failed: {_first_line(exc)}"
            )
            return
        if joined is None:
            return  # the VP is ending anyway
        assert self._capture is not None
        self._capture.start()
        self._watch_task = self._owner.spawn(self._watch(self._generation), "driver-watch")
        took = round(time.monotonic() - lost_at, 3)
        self._rejoins.append({"cause": cause, "rejoin_s": took})
        log.info("vp.rejoined", cause=cause, rejoin_s=took)

    async def _discard_page(self) -> None:
        """Close the current page's guard and context (bounded: the page may hang)."""
        guard, self._guard = self._guard, None
        context, self._context = self._context, None
        listener, self._on_disconnected = self._on_disconnected, None
        if listener is not None and self._browser is not None and self._browser.connected:
            self._browser.browser.remove_listener("disconnected", listener)
        if guard is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(guard.aclose(), 5)
        if context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.close(), 5)

    # -- hot path callbacks ------------------------------------------------------------
    def _on_capture_frame(self, frame: CaptureFrame) -> None:
        now = time.monotonic()
        if self._gap_since is not None:
            gap = now - self._gap_since
            self._gap_since = None
            self._audio_gaps.append(gap)
            log.info("vp.audio_resumed", gap_s=round(gap, 3))
        self._last_frame_at = now
        if self._pipeline is not None:
            self._pipeline.push_meeting(frame.pcm)

    def _record_frame(self, frame: bytes) -> None:
        if self._recorder is not None:
            self._recorder.write(frame)

    def _send_frame(self, frame: bytes) -> None:
        if self._client is not None:
            self._client.send_audio(frame)

    # -- events ------------------------------------------------------------------------
    def _on_driver_event(self, event: DriverEvent) -> None:
        if isinstance(event, WaitingRoom):
            if self.lifecycle.status is Status.JOINING:
                self._advance(Status.WAITING_ROOM)
        elif isinstance(event, SpeakerChanged):
            if event.name == self.config.name or event.name == self.active_speaker:
                return
            self.active_speaker = event.name
            if self._client is not None:
                self._client.speaker_change(event.name)
            if self._speakers is not None:
                # t: seconds into recording.wav, where the meeting page's timeline puts it.
                at = self._recorder.seconds if self._recorder is not None else 0.0
                self._speakers.write({"ts": time.time(), "t": round(at, 3), "speaker": event.name})
        elif isinstance(event, ParticipantsChanged):
            self.participants = event.names
            if self.assistant is not None:
                self.assistant.participants = event.names
            log.info("meeting.participants", count=len(event.names))
        elif isinstance(event, ChatReceived):
            if self._chat is not None:
                self._chat.write(
                    {
                        "ts": time.time(),
                        "sender": event.sender,
                        "text": event.text,
                        "direction": "in",
                        "assistant": False,
                    }
                )
            if self.assistant is not None:
                self.assistant.on_chat(event.sender, event.text)

    async def post_chat(self, text: str, *, assistant: bool = False) -> None:
        """Post ``text`` in the meeting chat and record it in chat.jsonl."""
        if self._driver is None or not self.lifecycle.joined:
            raise VpError("not in a meeting")
        await self._driver.send_chat(text)
        if self._chat is not None:
            self._chat.write(
                {
                    "ts": time.time(),
                    "sender": self.config.name,
                    "text": text,
                    "direction": "out",
                    "assistant": assistant,
                }
            )

    def _on_segment(self, segment: TranscriptSegment) -> None:
        if not segment.is_partial and self._transcript is not None:
            self._transcript.write(
                {
                    "ts": time.time(),
                    "segment_id": segment.segment_id,
                    "channel": segment.channel,
                    "speaker": segment.speaker,
                    "start": segment.start_time,
                    "end": segment.end_time,
                    "text": segment.transcript,
                }
            )
        if not segment.is_partial and segment.channel == "CALLER" and self.assistant is not None:
            self.assistant.on_transcript(segment.speaker, segment.transcript)
        if self._on_segment_cb is not None:
            self._on_segment_cb(segment)

    # -- shutdown ----------------------------------------------------------------------
    async def _shutdown(self, reason: Reason, detail: str | None) -> StatusEvent:
        """Leave, flush and close everything, then record the terminal status."""
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recovery
        if self._capture is not None:
            # Read before leaving: leaving removes the meeting's tracks from the page.
            self._capture_health = self._capture.health()
            self._warn_if_never_heard(self._capture_health.state)
        if self.lifecycle.joined and self.lifecycle.status in (Status.JOINED,):
            self._advance(
                Status.LEAVING, reason if reason in COMPLETED_REASONS else None, detail=detail
            )
            if self.assistant is not None and reason in _STILL_IN_MEETING:
                try:
                    await asyncio.wait_for(self.assistant.say_goodbye(), LEAVE_TIMEOUT)
                except Exception as exc:
                    log.warning("vp.exit_message_failed", error=type(exc).__name__)
            if self.assistant is not None:
                await self.assistant.aclose()
            if self._driver is not None and reason is not Reason.BROWSER_CRASHED:
                try:
                    await asyncio.wait_for(self._driver.leave(), LEAVE_TIMEOUT)
                except Exception as exc:
                    log.warning("vp.leave_failed", error=type(exc).__name__)
        if self._capture is not None:
            self._capture.stop()
        if self._pipeline is not None:
            self._pipeline.flush()
        if self._client is not None:
            await self._client.end(END_TIMEOUT)
        await self._owner.aclose()
        if self._local_transcriber is not None:
            await self._local_transcriber.aclose()
        await self._close_browser()
        for writer in (self._transcript, self._chat, self._speakers):
            if writer is not None:
                writer.close()
        if self._recorder is not None:
            self._recorder.close()
        if self.lifecycle.terminal:  # pragma: no cover - defensive
            return self.lifecycle.history[-1]
        return self._finish(reason, self._with_losses(detail))

    def _warn_if_never_heard(self, state: str) -> None:
        """A call that ends with no audio source (or no frames) says so, even if it was too
        short for the periodic check: "no-source" must never pass for silence."""
        if self._gap_since is not None:  # a crash gap still open at the end
            self._audio_gaps.append(time.monotonic() - self._gap_since)
            self._gap_since = None
        if state in ("no-frames", "no-source") and state not in self._audio_warnings:
            self._audio_warnings.add(state)
            log.warning("audio.health", state=state, at="end")

    def _with_losses(self, detail: str | None) -> str | None:
        """The terminal detail, plus what faults cost the call (rejoins, audio lost)."""
        notes = []
        if self._rejoins:
            gap = sum(self._audio_gaps)
            notes.append(f"rejoined after: {self._rejoins[0]['cause']} (audio gap {gap:.1f} s)")
        if self._client is not None and self._client.stats.lost_seconds >= 0.05:
            notes.append(
                f"{self._client.stats.lost_seconds:.1f} s of audio did not reach the transcriber"
            )
        if not notes:
            return detail
        return "; ".join([detail, *notes] if detail else notes)

    async def _close_browser(self) -> None:
        await self._discard_page()
        if self._browser is not None and self._browser is not self._shared_browser:
            await self._browser.aclose()

    def _write_summary(self) -> None:
        stats: dict[str, Any] = {"final": self._result.final.to_dict()}
        if self._pipeline is not None:
            p = self._pipeline.stats
            stats["pipeline"] = {
                "audio_seconds": round(p.emitted_seconds, 3),
                "frames": p.frames,
                "max_frame_bytes": p.max_frame_bytes,
                "filled_seconds": round(p.filled_samples / 16000, 3),
                "dropped_seconds": round(p.dropped_samples / 16000, 3),
            }
        if self._client is not None:
            c = self._client.stats
            stats["transcriber"] = {
                "connects": c.connects,
                "sent_seconds": round(c.sent_seconds, 3),
                "dropped_seconds": round(c.dropped_seconds, 3),
                "lost_seconds": round(c.lost_seconds, 3),
                "buffer_seconds": round(self._client.buffer_seconds, 3),
                "outages": c.outages,
                "outage_seconds": round(c.outage_seconds, 3),
                "longest_outage_s": round(c.longest_outage_s, 3),
                "end_sent": c.end_sent,
            }
        h = self._capture_health
        if h is not None:
            stats["capture"] = {
                "state": h.state,
                "frames": h.frames,
                "max_sources": h.max_sources,
                "dropped_in_page": h.dropped_in_page,
                "warnings": sorted(self._audio_warnings),
            }
        if self._generation:
            stats["browser"] = {
                "rejoins": self._rejoins,
                "audio_gap_s": round(sum(self._audio_gaps), 3),
                "navigations_blocked": [b.host for b in self._blocked],
            }
        if self._result.joined_at is not None:
            stats["join_latency_s"] = round(self._result.joined_at - self._result.started_at, 3)
        self._result.stats = stats
        if self.out_dir.exists():
            (self.out_dir / "summary.json").write_text(json.dumps(stats, indent=2) + "\n")


# Reasons to end after which the VP is still in the meeting and can say goodbye in chat.
_STILL_IN_MEETING = frozenset(
    {Reason.ALONE, Reason.END_COMMAND, Reason.MAX_DURATION, Reason.STOPPED}
    | {Reason.TRANSCRIBER_UNAVAILABLE, Reason.INTERNAL_ERROR}
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return vplog.scrub(text[0][:200]) if text else type(exc).__name__
