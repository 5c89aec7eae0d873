"""The Python end of the in-page audio capture script, "capture.js".

``capture.js`` (kept in parts in ``vp/capture_js/``, joined by :func:`capture_script`) runs in
the meeting page before its own scripts, mixes everything the page plays (remote WebRTC
tracks, MediaStreams on media elements, WebAudio sent to ``destination``) once, and ships one
frame of 16 kHz mono PCM16 at a time (100 ms by default) plus metadata to Python.
The page keeps at most a few frames unacknowledged and drops its OLDEST queued frame beyond that
(see the comment at the top of ``capture_js/00-prelude.js``).

Two transports carry the frames. Preferred: a binary WebSocket from the page to this process's
:class:`FrameServer` on 127.0.0.1 (one per :class:`~vp.browser.BrowserHost`, shared by all its
contexts and handed to each :class:`AudioCapture`; each capture has its own unguessable path
token), acknowledged with a short text
message per frame. Fallback: the Playwright binding ``__vpAudio`` with base64 text, acknowledged
by the binding's return; the page falls back by itself when the socket cannot be opened. The
socket is opened by a private SharedWorker in the page (a relay): Playwright reports every frame
of a page's own WebSocket over CDP (base64, through its driver, to this process), but not a
shared worker's. So the audio skips base64, CDP's JSON and the Playwright driver: measured in
bench/, it is the cheaper path. Documents that cannot start the worker (opaque origins) open
the socket themselves. Request interception must leave it alone: it only ever goes to
127.0.0.1, on a per-capture random path (vp/navguard.py intercepts documents only, so it does).

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
import contextlib
import json
import re
import secrets
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog
from playwright.async_api import BrowserContext, Frame, Page
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vp.settings import VpSettings

log = structlog.get_logger(__name__)

BINDING_NAME = "__vpAudio"
SAMPLE_RATE = 16000
_JS_DIR = Path(__file__).with_name("capture_js")
_MAX_TRACKED_INSTANCES = 32

CaptureState = Literal["no-frames", "no-source", "silent", "active"]
Transport = Literal["auto", "binding"]

# The WebSocket frame header (capture.js sendWs): seq, pageTsMs, sources, pad, peak, rms, dropped.
_HEADER = struct.Struct("<IdHHffI")
_PATH_RE = re.compile(r"^/([A-Za-z0-9_-]{16,64})/([A-Za-z0-9]{1,40})$")
WsFrameHandler = Callable[[str, bytes], int | None]


class FrameServer:
    """The loopback WebSocket server that pages send capture frames to (binary, see capture.js).

    One per Chromium (:class:`~vp.browser.BrowserHost` starts and stops it). Each
    :class:`AudioCapture` registers a handler under a random token; a connection to any other
    path is refused before the handshake completes. Every frame is acknowledged (text: its seq)
    after its handler returned, which is what bounds the page's in-flight frames.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: Server | None = None
        self._routes: dict[str, WsFrameHandler] = {}
        self.connections = 0
        self.refused = 0

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self._host,
            0,
            process_request=self._check,
            compression=None,
            max_size=1 << 16,  # a 1 s frame is 32 kB; anything larger is not ours
            ping_interval=None,  # loopback: no keepalive traffic needed
            max_queue=4,
        )

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FrameServer is not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://{self._host}:{port}"

    def register(self, handler: WsFrameHandler) -> str:
        """Route a fresh token to ``handler(inst, message)``; returns the page's base URL."""
        token = secrets.token_urlsafe(18)
        self._routes[token] = handler
        return f"{self.url}/{token}"

    def unregister(self, url: str) -> None:
        self._routes.pop(url.rsplit("/", 1)[-1], None)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        m = _PATH_RE.match(request.path)
        if m is None or m.group(1) not in self._routes:
            self.refused += 1
            return connection.respond(HTTPStatus.FORBIDDEN, "unknown capture\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        m = _PATH_RE.match(ws.request.path)
        if m is None:  # pragma: no cover - refused in _check
            return
        token, inst = m.group(1), m.group(2)
        self.connections += 1
        try:
            async for message in ws:
                handler = self._routes.get(token)
                if handler is None:
                    break  # the capture is gone (its context closed)
                if not isinstance(message, bytes):
                    continue
                acked = handler(inst, message)
                if acked is not None:
                    await ws.send(str(acked))
        except ConnectionClosed:
            pass

    async def aclose(self) -> None:
        server, self._server = self._server, None
        self._routes.clear()
        if server is not None:
            server.close()
            await server.wait_closed()


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def capture_script_parts() -> list[Path]:
    """The parts of the capture script (vp/capture_js/*.js), in the order they are joined."""
    return sorted(_JS_DIR.glob("*.js"))


@cache
def capture_script() -> str:
    """The init script's source text: its parts joined (see vp/capture_js/00-prelude.js)."""
    return "".join(part.read_text(encoding="utf-8") for part in capture_script_parts())


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
    frames_via_websocket: int = 0
    """Frames that came over the WebSocket transport (the rest over the binding)."""

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
        transport: Transport | None = None,
        frame_server: FrameServer | None = None,
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
            transport: ``auto`` = the WebSocket to ``frame_server`` when one is given (falling
                back to the binding in the page), ``binding`` = the Playwright binding only.
                Default: ``VP_CAPTURE_TRANSPORT``, else ``auto``.
            frame_server: the :class:`FrameServer` of the Chromium the context belongs to
                (``BrowserHost.frame_server``); None = the binding only.
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
        if transport is None:
            configured = VpSettings.from_env(only=frozenset({"capture_transport"}))
            transport = configured.capture_transport or "auto"
        self._transport = transport
        self._frame_server = frame_server
        self._ws_url: str | None = None
        self._ws_frames = 0
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
        cfg: dict[str, object] = {
            "frameMs": self._frame_ms,
            "maxInFlight": self._max_in_flight,
            "maxQueued": self._max_queued,
            "allFrames": self._all_frames,
            "voice": self._voice,
        }
        if self._ws_url is not None:
            cfg["wsUrl"] = self._ws_url
        filt = ""
        if self._track_filter_js is not None:
            filt = f"c.trackFilter = ({self._track_filter_js});"
        return (
            "(() => { try { const c = (window.__vpCaptureConfig = window.__vpCaptureConfig || {});"
            f" Object.assign(c, {json.dumps(cfg)}); {filt} }} catch (e) {{}} }})();"
        )

    async def install(self, context: BrowserContext, origins: Sequence[str] = ()) -> None:
        """Expose the binding and add the config and capture init scripts to ``context``.

        Affects documents created afterwards: install before the first navigation.
        ``origins``: the meeting's URLs or origins (only ``scheme://host[:port]`` is used).
        Chromium's Local Network
        Access blocks a public page's WebSocket to 127.0.0.1 unless the origin holds the
        ``local-network-access`` permission; it is granted to these origins only, so their
        documents use the WebSocket, and any other document falls back to the binding.
        """
        if self._installed:
            raise RuntimeError("AudioCapture is already installed")
        self._installed = True
        server = self._frame_server if self._transport == "auto" else None
        if server is not None:
            url = self._ws_url = server.register(self._on_ws_frame)
            context.on("close", lambda _ctx: server.unregister(url))
            for origin in sorted({o for o in map(_origin, origins) if o}):
                await context.grant_permissions(["local-network-access"], origin=origin)
        await context.expose_binding(BINDING_NAME, self._on_binding)
        await context.add_init_script(script=self.config_script())
        await context.add_init_script(script=capture_script())
        log.debug("capture.installed", frame_ms=self._frame_ms, websocket=server is not None)

    def start(self) -> None:
        """Deliver frames to ``on_frame`` from now on."""
        self._started = True

    def stop(self) -> None:
        """Stop delivering; frames keep arriving and are counted as dropped_before_start."""
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    async def reattach(self, page: Page) -> None:
        """Rebuild the page's capture graph from its current sources (capture health: the UI
        shows speech the capture does not hear), in every frame the script runs in."""
        for frame in page.frames:
            with contextlib.suppress(Exception):  # a frame navigating or cross-process gone
                await frame.evaluate(
                    "() => { const a = window[Symbol.for('vp.capture.v1')];"
                    " return a && a.reattach ? a.reattach() : null; }"
                )

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
        self._accept(inst, seq, float(page_ts), sources, float(peak), float(rms), dropped, data)

    def _on_ws_frame(self, inst: str, message: bytes) -> int | None:
        """One binary frame from the FrameServer; returns the seq to acknowledge."""
        if len(message) < _HEADER.size or (len(message) - _HEADER.size) % 2:
            return None
        seq, page_ts, sources, _pad, peak, rms, dropped = _HEADER.unpack_from(message)
        self._ws_frames += 1
        self._accept(inst, seq, page_ts, sources, peak, rms, dropped, message)
        return int(seq)

    def _accept(
        self,
        inst: str,
        seq: int,
        page_ts: float,
        sources: int,
        peak: float,
        rms: float,
        dropped: int,
        payload: str | bytes,
    ) -> None:
        """A frame from either transport: ``payload`` is base64 text (binding) or a whole
        WebSocket message (header + PCM)."""
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
        if isinstance(payload, bytes):
            pcm = payload[_HEADER.size :]
        else:
            try:
                pcm = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                return
            if len(pcm) % 2:
                return
        self._frames += 1
        if self._frames == 1:
            log.info("capture.first_frame", sources=sources, websocket=isinstance(payload, bytes))
        try:
            self._on_frame(CaptureFrame(pcm, seq, page_ts, sources, peak, rms))
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
            frames_via_websocket=self._ws_frames,
        )

    async def voice_play(self, page: Page | Frame, pcm16_16k_mono: bytes) -> float:
        """Queue PCM16LE mono 16 kHz on the VP's outgoing voice track in ``page`` (or a
        frame of it that runs the client).

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

    async def voice_stop(self, page: Page | Frame) -> None:
        """Cut the VP's queued outgoing speech."""
        await page.evaluate("() => window.__vpVoice && window.__vpVoice.stop()")
