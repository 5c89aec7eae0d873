"""The local meeting really works: Janus + demo pages + a simulated speaker + a listener."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from vp.browser import BrowserHost
from vp.localmeeting.janus import JanusServer
from vp.localmeeting.participant import (
    SimulatedParticipant,
    check_fake_capture_wav,
    speech_then_tones_wav,
    tone_wav,
)
from vp.localmeeting.site import DemoSite
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode, read_wav, resample, write_wav

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOM = 4321
CAPTURE_SECONDS = 6.0

# Taps the demo's #roomaudio stream (already playing in its <audio>, which Chromium needs for
# remote WebRTC audio to reach WebAudio) at 16 kHz and returns base64 PCM16 after `seconds`.
CAPTURE_JS = """
async (seconds) => {
  const el = document.querySelector('#roomaudio');
  const ctx = new AudioContext({sampleRate: 16000});
  await ctx.resume();
  const src = ctx.createMediaStreamSource(el.srcObject);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  src.connect(proc);
  const sink = ctx.createGain();
  sink.gain.value = 0;
  proc.connect(sink).connect(ctx.destination);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  proc.disconnect(); src.disconnect(); await ctx.close();
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const pcm = new Int16Array(n);
  let o = 0;
  for (const c of chunks) for (let i = 0; i < c.length; i++) {
    pcm[o++] = Math.max(-32768, Math.min(32767, Math.round(c[i] * 32767)));
  }
  let s = '';
  const bytes = new Uint8Array(pcm.buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
"""


@pytest.fixture
async def janus(tmp_path: Path) -> AsyncIterator[JanusServer]:
    async with JanusServer(tmp_path / "janus", http_port=0) as server:
        yield server


@pytest.fixture
async def site(janus: JanusServer) -> AsyncIterator[DemoSite]:
    async with DemoSite(janus.http_url) as demo:
        yield demo


async def test_janus_room_admin(janus: JanusServer) -> None:
    assert janus.pids and janus.pid in janus.pids
    assert janus.log_path.exists()
    client = janus.client
    await client.create_room(ROOM)
    assert ROOM in await client.list_rooms()
    assert await client.list_participants(ROOM) == []
    await client.destroy_room(ROOM)
    assert not await client.room_exists(ROOM)


async def test_site_serves_rewritten_settings(site: DemoSite, janus: JanusServer) -> None:
    def get(path: str) -> tuple[int, bytes]:
        import urllib.request

        with urllib.request.urlopen(site.base_url + path, timeout=5) as resp:
            return resp.status, resp.read()

    status, body = await asyncio.to_thread(get, "/settings.js")
    assert status == 200
    assert janus.http_url.encode() in body
    assert b"var token = null" in body and b"var apisecret = null" in body
    status, body = await asyncio.to_thread(get, "/javascript/janus-gateway/janus.min.js")
    assert status == 200 and len(body) > 10000
    assert site.room_url(7).endswith("/audiobridgetest.html?room=7")


def test_audio_files(tmp_path: Path) -> None:
    wav = speech_then_tones_wav(tmp_path / "mixed.wav", "hello from the test meeting")
    check_fake_capture_wav(wav)
    pcm, rate = read_wav(wav)
    assert rate == 48000
    assert count_sequence(decode(resample(pcm, rate, 16000)), DEFAULT_SYMBOLS) == 1
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"fLaC" + bytes(100))
    with pytest.raises(ValueError):
        SimulatedParticipant("http://127.0.0.1:1/", "Bob", bad)
    with pytest.raises(ValueError):
        SimulatedParticipant("http://127.0.0.1:1/", "Bob Smith", wav)


async def test_speaker_is_heard_by_listener(
    janus: JanusServer, site: DemoSite, tmp_path: Path
) -> None:
    await janus.client.create_room(ROOM, sampling_rate=16000)
    wav = tone_wav(tmp_path / "tones.wav", DEFAULT_SYMBOLS)
    speaker = SimulatedParticipant(site.room_url(ROOM), "Alice", wav)
    listener_host = BrowserHost()
    try:
        t0 = time.monotonic()
        await speaker.join()
        print(f"speaker joined in {time.monotonic() - t0:.2f}s; pids {speaker.pids}")
        assert speaker.pids
        assert "Alice" in await janus.client.list_participants(ROOM)
        # Her file reaches the room as written: no echo canceller, denoiser or gain control.
        assert await speaker.microphone_processing() == {
            "echoCancellation": False,
            "noiseSuppression": False,
            "autoGainControl": False,
        }

        await listener_host.start()
        ctx = await listener_host.new_context()
        page = await ctx.new_page()
        await page.goto(site.room_url(ROOM))
        await page.wait_for_function("() => typeof Janus !== 'undefined' && Janus.initDone")
        await page.click("#start")
        await page.fill("#username", "Listener")
        await page.click("#register")
        # The listener's #list shows the *other* participants: Alice.
        await page.wait_for_selector("#list li:has-text('Alice')", timeout=15000)
        await page.wait_for_function(
            "() => { const a = document.querySelector('#roomaudio');"
            " return a && a.srcObject && !a.paused; }",
            timeout=15000,
        )
        names = await janus.client.list_participants(ROOM)
        assert sorted(names) == ["Alice", "Listener"]

        b64 = await asyncio.wait_for(page.evaluate(CAPTURE_JS, CAPTURE_SECONDS), 30)
        pcm = np.frombuffer(base64.b64decode(b64), dtype="<i2")
        assert len(pcm) > 16000 * (CAPTURE_SECONDS - 1)
        write_wav(tmp_path / "listener-capture.wav", pcm, 16000)  # kept for post-mortems
        decoded = decode(pcm)
        print("decoded:", decoded)
        assert count_sequence(decoded, DEFAULT_SYMBOLS) >= 1

        # Leaving removes the speaker from the room; the listener stays.
        await speaker.leave()
        for _ in range(50):
            if await janus.client.list_participants(ROOM) == ["Listener"]:
                break
            await asyncio.sleep(0.1)
        assert await janus.client.list_participants(ROOM) == ["Listener"]

        await janus.client.destroy_room(ROOM)
        await page.wait_for_selector("text=The room has been destroyed", timeout=10000)
    finally:
        await speaker.aclose()
        await listener_host.aclose()
    assert speaker.pids == []
