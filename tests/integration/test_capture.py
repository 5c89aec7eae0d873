"""In-page audio capture against real headless Chromium, asserted with real tones.

Pages come from ``tests/integration/pages`` over ``http.server`` on 127.0.0.1 (a secure context,
so AudioWorklet is available). One Chromium serves the whole module; each test gets fresh
contexts, like separate VPs.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page

from tests.support import wait_until
from vp.browser import BrowserHost
from vp.capture import AudioCapture, CaptureFrame, capture_script

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PAGES = Path(__file__).with_name("pages")
RATE = 16000
STATS_JS = "() => window[Symbol.for('vp.capture.v1')]?.stats()"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host() -> AsyncIterator[BrowserHost]:
    async with BrowserHost() as h:
        yield h


@dataclass
class Rig:
    """One VP: a context with capture installed, a page, and every frame with its arrival."""

    context: BrowserContext
    page: Page = field(init=False)
    capture: AudioCapture = field(init=False)
    frames: list[CaptureFrame] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)

    def on_frame(self, frame: CaptureFrame) -> None:
        self.frames.append(frame)
        self.arrivals.append(time.monotonic())
        self.wall_ms.append(time.time() * 1000)

    last_stats: dict[str, Any] = field(default_factory=dict)

    async def refresh_stats(self) -> None:
        self.last_stats = await self.page.evaluate(STATS_JS) or {}

    def pcm_since(self, index: int) -> np.ndarray:
        data = b"".join(f.pcm for f in self.frames[index:])
        return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0

    async def record(self, seconds: float) -> np.ndarray:
        """Audio captured during the next ``seconds``."""
        start = len(self.frames)
        await asyncio.sleep(seconds)
        return self.pcm_since(start)


@pytest_asyncio.fixture(loop_scope="module")
async def rigs(host: BrowserHost, base_url: str) -> AsyncIterator[Any]:
    made: list[Rig] = []

    async def make(page_name: str = "capture_lab.html", **options: Any) -> Rig:
        context = await host.new_context()
        rig = Rig(context)
        options.setdefault("frame_server", host.frame_server)
        rig.capture = AudioCapture(rig.on_frame, **options)
        await rig.capture.install(context)
        rig.page = await context.new_page()
        await rig.page.goto(f"{base_url}/{page_name}")
        rig.capture.start()
        made.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in made:
            await rig.context.close()


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * RATE / len(x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


SINE_RMS = 0.5 / np.sqrt(2)  # the lab pages play sines of amplitude 0.5


async def settle(rig: Rig, sources: int = 1, sound: bool = True) -> None:
    """Wait until frames carry ``sources`` sources (and sound: a remote track is silent until
    its peer connection is up), then 0.3 s more."""
    await wait_until(
        lambda: (
            bool(rig.frames)
            and rig.frames[-1].sources == sources
            and (not sound or rig.frames[-1].peak > 0.1)
        )
    )
    await asyncio.sleep(0.3)


async def test_remote_track_tone_arrives_once_however_the_page_plays_it(rigs: Any) -> None:
    # Four VPs at once: remote track alone, also on an <audio>, also through page WebAudio,
    # and a silent one (gain 0).
    plain, element, webaudio, silent = await asyncio.gather(*(rigs() for _ in range(4)))
    infos = await asyncio.gather(
        plain.page.evaluate("lab.loopback({freq: 440})"),
        element.page.evaluate("lab.loopback({freq: 440, element: true})"),
        webaudio.page.evaluate("lab.loopback({freq: 440, webaudio: true})"),
        silent.page.evaluate("lab.loopback({freq: 440, gain: 0})"),
    )
    assert all(info["instanceofPC"] for info in infos)
    await asyncio.gather(
        *(settle(r) for r in (plain, element, webaudio)), settle(silent, sound=False)
    )
    audio = await asyncio.gather(*(r.record(1.5) for r in (plain, element, webaudio)))

    levels = [rms(x) for x in audio]
    for x, level in zip(audio, levels, strict=True):
        assert dominant_hz(x) == pytest.approx(440, abs=3)
        assert level == pytest.approx(SINE_RMS, rel=0.12)
    # Counted once: the duplicate paths stay within 10 % of the single path (doubled = +100 %).
    assert levels[1] == pytest.approx(levels[0], rel=0.1)
    assert levels[2] == pytest.approx(levels[0], rel=0.1)
    assert plain.frames[-1].peak == pytest.approx(0.5, rel=0.12)

    stats = await webaudio.page.evaluate(STATS_JS)
    assert stats["sources"] == 1 and stats["keys"][0].startswith("c:")  # heard via the tap only
    for rig in (plain, element, webaudio):
        assert rig.capture.health().state == "active"
        assert rig.capture.health().max_sources == 1
    health = silent.capture.health()
    assert health.sources == 1
    assert health.seconds_since_sound is None
    assert health.state == "silent"


async def test_webaudio_to_destination_is_captured_and_disconnect_releases_it(rigs: Any) -> None:
    rig = await rigs()
    assert await rig.page.evaluate("lab.webaudio({freq: 660})") == "running"
    await settle(rig)
    x = await rig.record(1.0)
    assert dominant_hz(x) == pytest.approx(660, abs=3)
    assert rms(x) == pytest.approx(SINE_RMS, rel=0.12)

    await rig.page.evaluate("lab.stopWebaudio()")
    await wait_until(lambda: rig.frames[-1].sources == 0)
    assert rig.capture.health().state == "no-source"


async def test_page_without_audio_is_no_source(rigs: Any) -> None:
    rig = await rigs("capture_empty.html")
    await wait_until(lambda: len(rig.frames) >= 5)
    health = rig.capture.health()
    assert health.state == "no-source"
    assert health.max_sources == 0
    assert all(f.peak == 0 for f in rig.frames)


async def test_frames_are_100ms_in_sequence_at_real_time_rate(rigs: Any) -> None:
    rig = await rigs()
    await rig.page.evaluate("lab.webaudio({freq: 500})")
    await settle(rig)
    first = len(rig.frames)
    await asyncio.sleep(3.0)
    frames = rig.frames[first:]
    arrivals = rig.arrivals[first:]
    wall_ms = rig.wall_ms[first:]  # taken together: frames keep arriving during the awaits

    assert all(len(f.pcm) == 3200 for f in frames)
    seqs = [f.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gaps, nothing dropped
    assert rig.capture.health().dropped_in_page == 0
    assert (await rig.page.evaluate(STATS_JS))["mode"] == "worklet"

    # Samples received vs elapsed time. Page clock: first to last frame. Python clock: the
    # slope of arrival time over sample count, so one late delivery does not skew it.
    samples = 1600 * (len(frames) - 1)
    page_s = (frames[-1].page_ts_ms - frames[0].page_ts_ms) / 1000
    assert samples / (page_s * RATE) == pytest.approx(1.0, rel=0.03)
    seconds_per_frame = np.polyfit(np.arange(len(arrivals)), np.array(arrivals), 1)[0]
    python_rate = 1600 / seconds_per_frame
    assert python_rate / RATE == pytest.approx(1.0, rel=0.04)

    latencies = [w - f.page_ts_ms for f, w in zip(frames, wall_ms, strict=True)]
    assert 0 <= float(np.median(latencies)) < 250
    print(
        f"capture latency ms: median {np.median(latencies):.1f}, max {max(latencies):.1f}; "
        f"rate {python_rate:.0f} samples/s"
    )


async def test_start_gates_delivery(rigs: Any) -> None:
    rig = await rigs()
    rig.capture.stop()
    before = len(rig.frames)
    await wait_until(lambda: rig.capture.health().dropped_before_start >= 3)
    assert len(rig.frames) == before
    health = rig.capture.health()
    assert health.frames_received > health.frames
    rig.capture.start()
    await wait_until(lambda: len(rig.frames) > before)


async def test_get_user_media_gives_the_vp_voice(rigs: Any) -> None:
    rig = await rigs()
    mic = await rig.page.evaluate("lab.mic()")
    assert mic["state"] == "live"
    # The receiving side of the loopback is captured like a meeting participant: silent first.
    await settle(rig, sound=False)
    await asyncio.sleep(0.5)
    assert rig.capture.health().state == "silent"

    t = np.arange(RATE * 4) / RATE
    tone = (0.4 * np.sin(2 * np.pi * 1000 * t) * 32767).astype("<i2").tobytes()
    queued = await rig.capture.voice_play(rig.page, tone)
    assert queued == pytest.approx(4.0, abs=0.1)
    await asyncio.sleep(0.5)
    x = await rig.record(1.0)
    assert dominant_hz(x) == pytest.approx(1000, abs=3)
    assert rms(x) == pytest.approx(0.4 / np.sqrt(2), rel=0.15)
    assert rig.capture.health().state == "active"

    # Stopping cuts the queue: silence comes well before the tone's natural end (4 s).
    await rig.capture.voice_stop(rig.page)
    stopped = time.monotonic()
    await wait_until(lambda: rig.frames[-1].peak < 0.01, timeout=2.0)
    assert time.monotonic() - stopped < 2.0


async def test_script_is_harmless_without_binding_and_stays_in_the_top_frame(
    host: BrowserHost, base_url: str
) -> None:
    context = await host.new_context()
    try:
        # Twice, and no binding: Python never attached.
        await context.add_init_script(script=capture_script())
        await context.add_init_script(script=capture_script())
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{base_url}/capture_lab.html")
        info = await page.evaluate("lab.loopback({freq: 440})")
        assert info["instanceofPC"]
        assert await page.evaluate(
            """() => {
                const pc = new RTCPeerConnection();
                const ok = pc.constructor === RTCPeerConnection
                    && typeof RTCPeerConnection.generateCertificate === 'function';
                pc.close();
                try { RTCPeerConnection(); return false; } catch (e) { return ok; }
            }"""
        )
        await asyncio.sleep(0.5)
        stats = await page.evaluate(STATS_JS)
        assert stats["sources"] == 1
        assert stats["sent"] == 0 and stats["dropped"] == stats["seq"] > 0
        in_iframe = await page.evaluate(
            """() => new Promise((resolve) => {
                const f = document.createElement('iframe');
                f.srcdoc = '<p>x</p>';
                f.onload = () => resolve(!!f.contentWindow[Symbol.for('vp.capture.v1')]);
                document.body.appendChild(f);
            })"""
        )
        assert in_iframe is False
        assert errors == []
    finally:
        await context.close()


async def test_ended_tracks_are_released_and_track_filter_applies(rigs: Any) -> None:
    ended, rejected, kept = await asyncio.gather(
        rigs(),
        rigs(track_filter_js="() => false"),
        rigs(track_filter_js="(t) => t.origin === 'pc' && t.streamIds.length === 1"),
    )
    await asyncio.gather(*(r.page.evaluate("lab.loopback({})") for r in (ended, rejected, kept)))
    await asyncio.gather(settle(ended), settle(kept))
    assert rejected.capture.health().max_sources == 0
    assert rejected.capture.health().state == "no-source"

    await ended.page.evaluate("lab.hangup()")
    await wait_until(lambda: ended.frames[-1].sources == 0)
    stats = await ended.page.evaluate(STATS_JS)
    assert stats["tracks"] == 0  # registry entry and its muted sink element are gone


@pytest.mark.parametrize("transport", ["auto", "binding"])
async def test_overflow_drops_the_oldest_frames(rigs: Any, transport: str) -> None:
    rig = await rigs(max_in_flight=1, max_queued=2, transport=transport)
    await rig.page.evaluate("lab.webaudio({})")
    await settle(rig)
    first = len(rig.frames)
    time.sleep(1.5)  # noqa: ASYNC251 -- stall the loop on purpose: nothing is acknowledged
    unstalled_ms = time.time() * 1000
    await asyncio.sleep(0.6)
    frames = rig.frames[first:]
    gaps = [b.seq - a.seq - 1 for a, b in zip(frames, frames[1:], strict=False)]
    # The page reports its drop counter with later frames: under load it can trail the gaps.
    await wait_until(lambda: rig.capture.health().dropped_in_page >= sum(gaps), 5)
    dropped = rig.capture.health().dropped_in_page
    assert dropped >= 8
    assert sum(gaps) == dropped  # every missing seq is a counted drop
    # What survived the stall is the newest audio, not the oldest.
    after_gap = frames[gaps.index(max(gaps)) + 1]
    assert unstalled_ms - after_gap.page_ts_ms < 350
    via_ws = rig.capture.health().frames_via_websocket
    assert via_ws == (rig.capture.health().frames_received if transport == "auto" else 0)


async def test_insecure_origin_falls_back_to_script_processor(rigs: Any, host: BrowserHost) -> None:
    # http on a non-loopback name is not a secure context: no AudioWorklet there.
    html = (PAGES / "capture_lab.html").read_text(encoding="utf-8")
    context = await host.new_context()
    try:
        frames: list[CaptureFrame] = []
        capture = AudioCapture(frames.append, frame_server=host.frame_server)
        await capture.install(context)
        await context.route(
            "http://insecure.test/**",
            lambda route: route.fulfill(body=html, content_type="text/html"),
        )
        page = await context.new_page()
        await page.goto("http://insecure.test/capture_lab.html")
        capture.start()
        assert await page.evaluate("window.isSecureContext") is False
        await page.evaluate("lab.webaudio({freq: 880})")
        await wait_until(lambda: len(frames) > 12 and frames[-1].sources == 1)
        x = np.frombuffer(b"".join(f.pcm for f in frames[-8:]), "<i2") / 32768.0
        assert dominant_hz(x) == pytest.approx(880, abs=3)
        assert rms(x) == pytest.approx(SINE_RMS, rel=0.12)
        assert (await page.evaluate(STATS_JS))["mode"] == "script-processor"
    finally:
        await context.close()


async def test_frames_come_over_the_websocket_and_the_binding_carries_the_same(
    rigs: Any,
) -> None:
    ws_rig, binding_rig = await asyncio.gather(rigs(), rigs(transport="binding"))
    await asyncio.gather(
        *(r.page.evaluate("lab.webaudio({freq: 700})") for r in (ws_rig, binding_rig))
    )
    await asyncio.gather(settle(ws_rig), settle(binding_rig))
    for rig, transport in ((ws_rig, "websocket"), (binding_rig, "binding")):
        x = await rig.record(1.0)
        assert dominant_hz(x) == pytest.approx(700, abs=3)
        assert rms(x) == pytest.approx(SINE_RMS, rel=0.12)
        stats = await rig.page.evaluate(STATS_JS)
        assert stats["transport"] == transport
        assert all(len(f.pcm) == 3200 for f in rig.frames)
    health = ws_rig.capture.health()
    assert health.frames_via_websocket == health.frames_received > 10
    assert binding_rig.capture.health().frames_via_websocket == 0
    # The page does not keep the socket's address where page scripts could read it.
    assert await ws_rig.page.evaluate("'wsUrl' in (window.__vpCaptureConfig || {})") is False


async def _page_and_its_sockets(host: BrowserHost) -> tuple[Any, Page, list[str], AudioCapture]:
    """A context with capture, its page, the URLs of every WebSocket Playwright reported."""
    context = await host.new_context()
    capture = AudioCapture(lambda frame: None, frame_server=host.frame_server)
    await capture.install(context)
    sockets: list[str] = []
    context.on("page", lambda page: page.on("websocket", lambda ws: sockets.append(ws.url)))
    page = await context.new_page()
    capture.start()
    return context, page, sockets, capture


async def test_the_socket_is_opened_by_a_relay_worker_that_cdp_does_not_see(
    host: BrowserHost, base_url: str
) -> None:
    # A page's own WebSocket is reported to Playwright frame by frame (base64 over CDP,
    # through the driver to Python); the relay worker's socket is not.
    context, page, sockets, capture = await _page_and_its_sockets(host)
    try:
        await page.goto(f"{base_url}/capture_lab.html")
        await page.evaluate("lab.webaudio({freq: 660})")
        await wait_until(lambda: capture.health().frames_received > 12, timeout=8)
        stats = await page.evaluate(STATS_JS)
        assert stats["transport"] == "websocket"
        assert stats["relay"] is True
        assert stats["acked"] > 10
        assert not [url for url in sockets if url.endswith("/" + stats["inst"])]
    finally:
        await context.close()


async def test_an_opaque_origin_document_opens_the_socket_itself(host: BrowserHost) -> None:
    # A new page's about:blank has an opaque origin, which may not start a SharedWorker: its
    # capture opens the socket directly (and Playwright sees that one).
    context, page, sockets, capture = await _page_and_its_sockets(host)
    try:
        await wait_until(lambda: capture.health().frames_received > 3, timeout=8)
        stats = await page.evaluate(STATS_JS)
        assert page.url == "about:blank"
        assert stats["transport"] == "websocket"
        assert stats["relay"] is False
        assert [url for url in sockets if url.endswith("/" + stats["inst"])]
    finally:
        await context.close()


async def test_public_origin_gets_the_websocket_only_when_granted(
    host: BrowserHost,
) -> None:
    # Chromium's Local Network Access blocks a public page's socket to 127.0.0.1 unless its
    # origin was granted the permission: the granted meeting origin uses the WebSocket, any
    # other origin falls back to the binding, and both deliver the audio.
    html = (PAGES / "capture_lab.html").read_text(encoding="utf-8")
    results = {}
    for name, origins in (("granted", ["https://meeting.example/room?pwd=x"]), ("other", [])):
        context = await host.new_context()
        try:
            frames: list[CaptureFrame] = []
            capture = AudioCapture(frames.append, frame_server=host.frame_server)
            await capture.install(context, origins=origins)
            await context.route(
                "https://meeting.example/**",
                lambda route: route.fulfill(body=html, content_type="text/html"),
            )
            page = await context.new_page()
            await page.goto("https://meeting.example/capture_lab.html")
            capture.start()
            await page.evaluate("lab.webaudio({freq: 880})")
            await wait_until(
                lambda fs=frames: len(fs) > 12 and fs[-1].sources == 1,  # type: ignore[misc]
                timeout=8,
            )
            x = np.frombuffer(b"".join(f.pcm for f in frames[-8:]), "<i2") / 32768.0
            assert dominant_hz(x) == pytest.approx(880, abs=3)
            results[name] = (await page.evaluate(STATS_JS))["transport"]
            assert (capture.health().frames_via_websocket > 0) == (name == "granted")
        finally:
            await context.close()
    assert results == {"granted": "websocket", "other": "binding"}


async def test_frame_server_refuses_unknown_captures(rigs: Any, host: BrowserHost) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    rig = await rigs()
    await wait_until(lambda: len(rig.frames) >= 3)
    assert host.frame_server is not None
    for path in ("/", "/x" * 20, "/" + "A" * 24 + "/inst1", "/../etc/passwd"):
        with pytest.raises(InvalidStatus) as info:
            async with connect(host.frame_server.url + path):
                pass
        assert info.value.response.status_code == 403
    assert host.frame_server.refused >= 4
    before = len(rig.frames)
    await wait_until(lambda: len(rig.frames) > before + 3)  # the real capture is unaffected


async def test_idle_voice_is_suspended_and_wakes_up_to_speak(rigs: Any) -> None:
    rig = await rigs()
    await rig.page.evaluate("lab.mic()")
    await settle(rig, sound=False)
    # Idle: the voice context is suspended (no output stream, nothing encoded or sent).
    await wait_until(
        lambda: rig.last_stats.get("voice") == "suspended",
        timeout=6,
        poll=lambda: rig.refresh_stats(),
    )
    t = np.arange(RATE * 2) / RATE
    tone = (0.4 * np.sin(2 * np.pi * 1200 * t) * 32767).astype("<i2").tobytes()
    await rig.capture.voice_play(rig.page, tone)
    await asyncio.sleep(0.6)
    x = await rig.record(0.8)
    assert dominant_hz(x) == pytest.approx(1200, abs=3)
    assert rms(x) == pytest.approx(0.4 / np.sqrt(2), rel=0.15)
    assert (await rig.page.evaluate(STATS_JS))["voice"] == "running"
    # Done speaking: suspended again after the idle delay (2 s).
    await wait_until(
        lambda: rig.last_stats.get("voice") == "suspended",
        timeout=6,
        poll=lambda: rig.refresh_stats(),
    )


@pytest.mark.parametrize("setting", ["suppress", "receive"])
async def test_incoming_video_is_negotiated_away_when_the_page_offers(
    host: BrowserHost, base_url: str, setting: str
) -> None:
    """vp/incoming_video.js on the offering side (the replicas cover the answering side in the
    conformance suite): the receive-only video goes inactive, nothing is encoded or decoded,
    the audio transceiver is untouched; VP_INCOMING_VIDEO=receive leaves the video flowing."""
    from vp.incoming_video import IncomingVideo, effective_mode, incoming_video_script

    context = await host.new_context()
    try:
        mode = effective_mode(IncomingVideo.NEGOTIATE_INACTIVE, setting)
        await context.add_init_script(script=incoming_video_script(mode))
        page = await context.new_page()
        await page.goto(f"{base_url}/incoming_video.html")
        result = await page.evaluate("() => window.offerVideo()")
    finally:
        await context.close()
    assert result["audio"] == "recvonly" and result["nativeLooking"], result
    if setting == "suppress":
        assert (result["video"], result["encoded"], result["decoded"]) == ("inactive", 0, 0)
    else:
        assert result["video"] == "recvonly" and result["decoded"] > 0, result
