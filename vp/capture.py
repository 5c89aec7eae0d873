"""The Python end of the in-page audio capture (``capture.js``).

``capture.js`` runs in the meeting page before its own scripts, mixes everything the page plays
(remote WebRTC tracks, MediaStreams on media elements, WebAudio sent to ``destination``) once,
and calls the Playwright binding ``__vpAudio`` with one frame of 16 kHz mono PCM16 at a time
(base64, 100 ms by default) plus metadata. The page keeps at most a few calls unacknowledged and
drops its OLDEST queued frame beyond that (see the comment at the top of ``capture.js``).

:class:`AudioCapture` installs the script into a browser context, gates delivery with
:meth:`~AudioCapture.start`/:meth:`~AudioCapture.stop`, and keeps :class:`CaptureHealth` so a
watchdog can tell "no frames" (dead pipe) from "no source" and "silent".

One context may run several documents (reloads, popups, iframes with ``all_frames``): each has
its own capture instance. Frames are delivered from one instance at a time: the first one seen,
replaced when it goes quiet (no frame for ``switch_after_s``) or when another one has sources
while it has none.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import structlog
from playwright.async_api import BrowserContext, Page

log = structlog.get_logger(__name__)

BINDING_NAME = "__vpAudio"
SAMPLE_RATE = 16000
_JS_PATH = Path(__file__).with_name("capture.js")
_MAX_TRACKED_INSTANCES = 32

CaptureState = Literal["no-frames", "no-source", "silent", "active"]


@cache
def capture_script() -> str:
    """The init script's source text."""
    return _JS_PATH.read_text(encoding="utf-8")


@dataclass(slots=True)
class CaptureFrame:
    """One frame of what the meeting page plays."""

    pcm: bytes
    """Mono PCM16 little-endian at 16 kHz (``frame_ms`` worth, 3,200 bytes for 100 ms)."""
    seq: int
    """Page sequence number; gaps are frames dropped in the page. Restarts with a new document."""
    page_ts_ms: float
    """Page ``Date.now()`` when the frame's last sample was produced (capture latency)."""
    sources: int
    """Sources mixed into this frame (direct tracks + WebAudio taps)."""
    peak: float
    """Peak absolute sample, 0..1."""
    rms: float = 0.0
    """RMS level, 0..1."""


@dataclass(frozen=True, slots=True)
class CaptureHealth:
    """A snapshot of the capture pipe, for watchdogs and status details."""

    frames: int
    """Frames delivered to ``on_frame``."""
    frames_received: int
    """Frames that reached Python from the selected page, delivered or not."""
    dropped_in_page: int
    """Frames the page dropped (queue overflow or no binding), summed over documents."""
    dropped_before_start: int
    """Frames that arrived while delivery was stopped."""
    ignored_other_page: int
    """Frames from a document other than the selected one."""
    max_sources: int
    sources: int
    """Sources in the most recent frame."""
    seconds_since_frame: float | None
    seconds_since_sound: float | None
    """Since the last frame whose peak reached ``silence_peak``; None if never."""
    stale_after_s: float
    active_within_s: float

    @property
    def state(self) -> CaptureState:
        """``no-frames``: nothing arrives (dead pipe); ``no-source``: frames, but the page plays
        nothing; ``silent``: sources present, no sound lately; ``active``: sound lately."""
        if self.seconds_since_frame is None or self.seconds_since_frame > self.stale_after_s:
            return "no-frames"
        if self.sources == 0:
            return "no-source"
        if self.seconds_since_sound is None or self.seconds_since_sound > self.active_within_s:
            return "silent"
        return "active"


class AudioCapture:
    """Receives the page's audio frames for one browser context (one VP).

    ``on_frame`` is called synchronously on the event loop for every delivered frame; it must be
    cheap (e.g. ``queue.put_nowait``) and should not raise (exceptions are logged and dropped).
    """

    def __init__(
        self,
        on_frame: Callable[[CaptureFrame], None],
        *,
        frame_ms: int = 100,
        max_in_flight: int = 4,
        max_queued: int = 10,
        all_frames: bool = False,
        voice: bool = True,
        track_filter_js: str | None = None,
        silence_peak: float = 1e-3,
        stale_after_s: float = 2.0,
        active_within_s: float = 2.0,
        switch_after_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            frame_ms: frame length in the page (10..1000).
            max_in_flight / max_queued: the page's bound on unacknowledged binding calls, and on
                frames waiting behind them (the oldest is dropped beyond it).
            all_frames: capture in iframes too (default: top frame only).
            voice: override ``getUserMedia`` audio with the VP's own voice track.
            track_filter_js: a JS function expression
                ``({id, label, streamIds, origin}) => boolean`` that decides, once per track,
                whether a remote/element track is captured (for platform drivers).
            silence_peak: a frame with a lower peak counts as silent (1e-3 is about -60 dBFS).
        """
        if not 10 <= frame_ms <= 1000:
            raise ValueError("frame_ms must be within 10..1000")
        if max_in_flight < 1 or max_queued < 1:
            raise ValueError("max_in_flight and max_queued must be positive")
        self._on_frame = on_frame
        self._frame_ms = frame_ms
        self._max_in_flight = max_in_flight
        self._max_queued = max_queued
        self._all_frames = all_frames
        self._voice = voice
        self._track_filter_js = track_filter_js
        self._silence_peak = silence_peak
        self._stale_after_s = stale_after_s
        self._active_within_s = active_within_s
        self._switch_after_s = switch_after_s
        self._clock = clock

        self._installed = False
        self._started = False
        self._frames = 0
        self._received = 0
        self._dropped_before_start = 0
        self._ignored_other = 0
        self._max_sources = 0
        self._sources = 0
        self._last_frame: float | None = None
        self._last_sound: float | None = None
        self._callback_errors = 0
        # The selected document (capture instance) and what it last said.
        self._inst: str | None = None
        self._inst_last = 0.0
        self._inst_sources = 0
        # Cumulative in-page drop counters per instance; retired ones folded into the base.
        self._page_dropped: dict[str, int] = {}
        self._page_dropped_base = 0

    # -- setup ---------------------------------------------------------------------------------

    def config_script(self) -> str:
        """The init script that sets ``window.__vpCaptureConfig`` (merged with any earlier one)."""
        cfg = {
            "frameMs": self._frame_ms,
            "maxInFlight": self._max_in_flight,
            "maxQueued": self._max_queued,
            "allFrames": self._all_frames,
            "voice": self._voice,
        }
        filt = ""
        if self._track_filter_js is not None:
            filt = f"c.trackFilter = ({self._track_filter_js});"
        return (
            "(() => { try { const c = (window.__vpCaptureConfig = window.__vpCaptureConfig || {});"
            f" Object.assign(c, {json.dumps(cfg)}); {filt} }} catch (e) {{}} }})();"
        )

    async def install(self, context: BrowserContext) -> None:
        """Expose the binding and add the config and capture init scripts to ``context``.

        Affects documents created afterwards: install before the first navigation.
        """
        if self._installed:
            raise RuntimeError("AudioCapture is already installed")
        self._installed = True
        await context.expose_binding(BINDING_NAME, self._on_binding)
        await context.add_init_script(script=self.config_script())
        await context.add_init_script(script=capture_script())
        log.debug("capture.installed", frame_ms=self._frame_ms)

    def start(self) -> None:
        """Deliver frames to ``on_frame`` from now on."""
        self._started = True

    def stop(self) -> None:
        """Stop delivering; frames keep arriving and are counted as dropped_before_start."""
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    # -- the binding -------------------------------------------------------------------------

    def _on_binding(
        self,
        source: Any,
        data: Any,
        seq: Any,
        page_ts: Any,
        sources: Any,
        peak: Any,
        rms: Any,
        dropped: Any,
        inst: Any,
    ) -> None:
        """``__vpAudio(base64Pcm16, seq, pageTsMs, sources, peak, rms, droppedTotal, inst)``.

        Returns quickly: its return is the page's acknowledgement. Malformed calls are ignored.
        """
        del source
        if not (
            isinstance(data, str)
            and isinstance(seq, int)
            and isinstance(page_ts, int | float)
            and isinstance(sources, int)
            and isinstance(peak, int | float)
            and isinstance(rms, int | float)
            and isinstance(dropped, int)
            and isinstance(inst, str)
        ):
            return
        now = self._clock()
        if not self._select(inst, sources, now):
            self._ignored_other += 1
            return
        self._note_dropped(inst, dropped)
        self._received += 1
        self._last_frame = now
        self._sources = sources
        if sources > self._max_sources:
            self._max_sources = sources
        if peak >= self._silence_peak:
            self._last_sound = now
        if not self._started:
            self._dropped_before_start += 1
            return
        try:
            pcm = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return
        if len(pcm) % 2:
            return
        self._frames += 1
        if self._frames == 1:
            log.info("capture.first_frame", sources=sources)
        try:
            self._on_frame(CaptureFrame(pcm, seq, float(page_ts), sources, float(peak), float(rms)))
        except Exception:
            self._callback_errors += 1
            if self._callback_errors in (1, 10, 100, 1000):
                log.exception("capture.on_frame_failed", errors=self._callback_errors)

    def _select(self, inst: str, sources: int, now: float) -> bool:
        if inst == self._inst:
            self._inst_last = now
            self._inst_sources = sources
            return True
        if (
            self._inst is None
            or now - self._inst_last > self._switch_after_s
            or (sources > 0 and self._inst_sources == 0)
        ):
            if self._inst is not None:
                log.debug("capture.document_switched", sources=sources)
            self._inst = inst
            self._inst_last = now
            self._inst_sources = sources
            return True
        return False

    def _note_dropped(self, inst: str, dropped: int) -> None:
        if inst not in self._page_dropped and len(self._page_dropped) >= _MAX_TRACKED_INSTANCES:
            oldest = next(iter(self._page_dropped))
            self._page_dropped_base += self._page_dropped.pop(oldest)
        previous = self._page_dropped.get(inst, 0)
        if dropped > previous:
            self._page_dropped[inst] = dropped
            log.debug("capture.dropped_in_page", total=self.health().dropped_in_page)
        else:
            self._page_dropped.setdefault(inst, previous)

    # -- health, voice -------------------------------------------------------------------------

    def health(self) -> CaptureHealth:
        now = self._clock()
        return CaptureHealth(
            frames=self._frames,
            frames_received=self._received,
            dropped_in_page=self._page_dropped_base + sum(self._page_dropped.values()),
            dropped_before_start=self._dropped_before_start,
            ignored_other_page=self._ignored_other,
            max_sources=self._max_sources,
            sources=self._sources,
            seconds_since_frame=None if self._last_frame is None else now - self._last_frame,
            seconds_since_sound=None if self._last_sound is None else now - self._last_sound,
            stale_after_s=self._stale_after_s,
            active_within_s=self._active_within_s,
        )

    async def voice_play(self, page: Page, pcm16_16k_mono: bytes) -> float:
        """Queue PCM16LE mono 16 kHz on the VP's outgoing voice track in ``page``.

        Returns the seconds until everything queued has been played.
        """
        if len(pcm16_16k_mono) % 2:
            raise ValueError("PCM16 needs an even number of bytes")
        encoded = base64.b64encode(pcm16_16k_mono).decode("ascii")
        result = await page.evaluate(
            "b => (window.__vpVoice ? window.__vpVoice.play(b) : null)", encoded
        )
        if not isinstance(result, int | float):
            raise RuntimeError("the page has no __vpVoice: capture not installed or voice=False")
        return float(result)

    async def voice_stop(self, page: Page) -> None:
        """Cut the VP's queued outgoing speech."""
        await page.evaluate("() => window.__vpVoice && window.__vpVoice.stop()")
