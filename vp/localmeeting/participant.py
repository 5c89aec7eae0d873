"""A simulated speaking participant: its own headless Chromium in an AudioBridge demo room.

Chromium plays a WAV file as its microphone (``--use-file-for-fake-audio-capture``; the file
loops), so the room hears a known signal. The participant joins through Janus' own demo page,
exactly like a human would: click *Start*, type a display name, click *Join the room*.

Audio files: :func:`tone_wav` (the decodable test signal of :mod:`vp.signal`),
:func:`speech_wav` (espeak-ng) and :func:`speech_then_tones_wav`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vp.browser import BrowserHost
from vp.localmeeting.janus import descendant_pids
from vp.signal import (
    DEFAULT_SYMBOLS,
    Int16Array,
    make_signal,
    read_wav,
    resample,
    write_wav,
)

# Chromium's fake capture (measured with Debian Chromium 156) plays RIFF/WAVE files with 8- or
# 16-bit integer PCM or 32-bit float, mono or stereo, at any sample rate (16, 22.05, 44.1 and
# 48 kHz all work; it resamples). 24-bit PCM, FLAC and a missing file all give SILENCE without
# any error, hence check_fake_capture_wav(). We write 48 kHz mono 16-bit (the device rate).
FAKE_CAPTURE_RATE = 48000
_NAME_RE = re.compile(r"^[A-Za-z0-9]+$")


class ParticipantError(Exception):
    """The simulated participant could not join (or the demo page reported an error)."""


# --------------------------------------------------------------------------------------------
# Audio files


def check_fake_capture_wav(path: Path | str) -> None:
    """Raise ValueError unless Chromium's fake audio capture can play ``path``."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file (Chromium would capture silence)")
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            fmt = head[pos + 8 : pos + 8 + min(size, 40)]
            tag = int.from_bytes(fmt[0:2], "little")
            channels = int.from_bytes(fmt[2:4], "little")
            bits = int.from_bytes(fmt[14:16], "little")
            if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the GUID's tag
                tag = int.from_bytes(fmt[24:26], "little")
            if not ((tag == 1 and bits in (8, 16)) or (tag == 3 and bits == 32)):
                raise ValueError(
                    f"{path}: WAV format tag {tag} with {bits}-bit samples; Chromium's fake "
                    "capture needs 8/16-bit PCM or 32-bit float (it would capture silence)"
                )
            if channels not in (1, 2):
                raise ValueError(f"{path}: {channels} channels; use mono or stereo")
            return
        pos += 8 + size + (size & 1)
    raise ValueError(f"{path}: no fmt chunk in the first 4 KiB")


def tone_wav(
    path: Path | str,
    symbols: Sequence[int] = DEFAULT_SYMBOLS,
    *,
    sample_rate: int = FAKE_CAPTURE_RATE,
    **signal_kwargs: Any,
) -> Path:
    """Write one frame of the tone test signal (Chromium loops it)."""
    return write_wav(path, make_signal(symbols, sample_rate, **signal_kwargs), sample_rate)


def synthesize_speech(
    text: str, *, voice: str = "en-us", words_per_minute: int = 150, sample_rate: int = 48000
) -> Int16Array:
    """Speak ``text`` with espeak-ng; mono int16 PCM at ``sample_rate``."""
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak is None:
        raise FileNotFoundError("espeak-ng not found (install Debian's espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="vp-tts-") as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        pcm, rate = read_wav(raw)
    return resample(pcm, rate, sample_rate)


def speech_wav(
    path: Path | str,
    text: str,
    *,
    voice: str = "en-us",
    words_per_minute: int = 150,
    sample_rate: int = FAKE_CAPTURE_RATE,
    tail_seconds: float = 0.5,
) -> Path:
    """Write espeak-ng speech (followed by a little silence, since the file loops)."""
    speech = synthesize_speech(
        text, voice=voice, words_per_minute=words_per_minute, sample_rate=sample_rate
    )
    pcm = np.concatenate([speech, np.zeros(round(tail_seconds * sample_rate), np.int16)])
    return write_wav(path, pcm, sample_rate)


def speech_then_tones_wav(
    path: Path | str,
    text: str,
    symbols: Sequence[int] = DEFAULT_SYMBOLS,
    *,
    voice: str = "en-us",
    words_per_minute: int = 150,
    pause_seconds: float = 0.5,
    sample_rate: int = FAKE_CAPTURE_RATE,
) -> Path:
    """Write speech, a pause, then one frame of the tone signal."""
    speech = synthesize_speech(
        text, voice=voice, words_per_minute=words_per_minute, sample_rate=sample_rate
    )
    pause = np.zeros(round(pause_seconds * sample_rate), np.int16)
    tones = make_signal(symbols, sample_rate)
    return write_wav(path, np.concatenate([speech, pause, tones]), sample_rate)


# --------------------------------------------------------------------------------------------
# The participant

# True once the demo page's PeerConnection is up and our microphone packets are flowing.
_PUBLISHING_JS = """
async () => {
  // bootbox alerts (errors such as "room does not exist") are removed from the DOM on close.
  const alert = document.querySelector('.bootbox .bootbox-body');
  if (alert && alert.textContent.trim()) return 'error:' + alert.textContent.trim();
  const you = document.querySelector('#you');
  if (you && /warning/.test(you.className) && you.innerText) return 'error:' + you.innerText;
  if (typeof mixertest === 'undefined' || !mixertest || !mixertest.webrtcStuff) return 'no-handle';
  const pc = mixertest.webrtcStuff.pc;
  if (!pc) return 'no-pc';
  const ice = pc.iceConnectionState;
  if (ice !== 'connected' && ice !== 'completed') return 'ice:' + ice;
  let sent = 0;
  (await pc.getStats()).forEach(r => {
    if (r.type === 'outbound-rtp' && r.kind === 'audio') sent += r.packetsSent || 0;
  });
  return sent > 0 ? 'ok' : 'no-packets';
}
"""

# Before any page script: the microphone is asked for without echo cancellation, noise
# suppression or gain control. The participant's file must reach the room as written: with
# the defaults, its echo canceller treats the room audio it plays (the VP speaking) as echo
# and cut tone-signal markers that overlapped the VP's voice (seen in the demo).
_RAW_MICROPHONE_JS = """
(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const original = devices.getUserMedia.bind(devices);
  const raw = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  devices.getUserMedia = (constraints) => {
    if (constraints && constraints.audio) {
      const audio = constraints.audio === true ? {} : constraints.audio;
      constraints = { ...constraints, audio: { ...audio, ...raw } };
    }
    return original(constraints);
  };
})();
"""

# The processing the published microphone track runs with (see _RAW_MICROPHONE_JS).
_MICROPHONE_SETTINGS_JS = """
() => {
  const pc = mixertest.webrtcStuff.pc;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
  const settings = sender.track.getSettings();
  return {
    echoCancellation: settings.echoCancellation,
    noiseSuppression: settings.noiseSuppression,
    autoGainControl: settings.autoGainControl,
  };
}
"""

_LEAVE_JS = """
() => new Promise((resolve) => {
  if (typeof janus === 'undefined' || !janus) return resolve('no-session');
  setTimeout(() => resolve('timeout'), 3000);
  janus.destroy({
    notifyDestroyed: false,
    success: () => resolve('ok'),
    error: (e) => resolve('error:' + e),
  });
})
"""


# RMS of the demo page's remote (mixed room) stream every 50 ms, stamped with the page's clock.
_LISTEN_JS = """
() => {
  if (window.__vpLevels) return;
  const ctx = new AudioContext();
  const an = ctx.createAnalyser();
  an.fftSize = 2048;
  ctx.createMediaStreamSource(window.remoteStream).connect(an);
  const buf = new Float32Array(an.fftSize);
  window.__vpLevels = [];
  setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let s = 0;
    for (const v of buf) s += v * v;
    if (window.__vpLevels.length < 20000) {
      window.__vpLevels.push([Date.now() / 1000, Math.sqrt(s / buf.length)]);
    }
  }, 50);
}
"""


def silence_wav(path: Path | str, seconds: float = 1.0) -> Path:
    """A silent fake-capture file, for a participant who only listens."""
    return write_wav(
        path, np.zeros(round(seconds * FAKE_CAPTURE_RATE), np.int16), FAKE_CAPTURE_RATE
    )


class SimulatedParticipant:
    """A participant that speaks ``audio_file`` (looped) into an AudioBridge demo room.

    ``room_url`` comes from :meth:`vp.localmeeting.site.DemoSite.room_url`. The display name
    must be alphanumeric (the demo page refuses anything else).

    Use as ``async with SimulatedParticipant(url, "Alice", wav) as alice: ...`` (joins on
    enter, closes Chromium on exit), or call :meth:`join`, :meth:`leave`, :meth:`aclose`.
    """

    def __init__(
        self,
        room_url: str,
        display_name: str,
        audio_file: Path | str,
        *,
        join_timeout: float = 30.0,
        headless: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        if not _NAME_RE.match(display_name):
            raise ValueError(f"display name must be alphanumeric, got {display_name!r}")
        self.room_url = room_url
        self.display_name = display_name
        self.audio_file = Path(audio_file).resolve()
        if not self.audio_file.is_file():
            raise FileNotFoundError(self.audio_file)
        check_fake_capture_wav(self.audio_file)
        self.join_timeout = join_timeout
        self.host = BrowserHost(
            extra_args=[
                f"--use-file-for-fake-audio-capture={self.audio_file}",
                *extra_args,
            ],
            headless=headless,
        )
        self._context: Any = None
        self._page: Any = None
        self.join_seconds: float | None = None

    @property
    def page(self) -> Any:
        """The Playwright page of the demo (None when not joined)."""
        return self._page

    @property
    def joined(self) -> bool:
        return self._page is not None

    async def join(self) -> None:
        """Open the demo page, join the room and wait until our audio is being published."""
        if self._page is not None:
            raise RuntimeError(f"{self.display_name} already joined")
        started = time.monotonic()
        if not self.host.connected:
            await self.host.start()
        self._context = await self.host.new_context()
        await self._context.add_init_script(_RAW_MICROPHONE_JS)
        page = self._page = await self._context.new_page()
        timeout_ms = self.join_timeout * 1000
        try:
            await page.goto(self.room_url, wait_until="load", timeout=timeout_ms)
            await page.wait_for_function(
                "() => typeof Janus !== 'undefined' && Janus.initDone === true",
                timeout=timeout_ms,
            )
            await page.click("#start", timeout=timeout_ms)
            await page.wait_for_selector("#username", state="visible", timeout=timeout_ms)
            await page.fill("#username", self.display_name)
            await page.click("#register", timeout=timeout_ms)
            await self._wait_publishing(started + self.join_timeout)
        except BaseException:
            await self._close_page()
            raise
        self.join_seconds = time.monotonic() - started

    async def _wait_publishing(self, deadline: float) -> None:
        state = "?"
        while time.monotonic() < deadline:
            state = await self._page.evaluate(_PUBLISHING_JS)
            if state == "ok":
                return
            if state.startswith("error:"):
                raise ParticipantError(f"{self.display_name}: demo page says {state[6:]!r}")
            await asyncio.sleep(0.1)
        raise ParticipantError(
            f"{self.display_name} not publishing after {self.join_timeout:.0f}s (last: {state})"
        )

    async def microphone_processing(self) -> dict[str, bool]:
        """What processing the published microphone track runs with (all False: raw)."""
        if self._page is None:
            raise RuntimeError(f"{self.display_name} has not joined")
        settings: dict[str, bool] = await self._page.evaluate(_MICROPHONE_SETTINGS_JS)
        return settings

    async def start_listening(self) -> None:
        """Measure what this participant hears of the room (AudioBridge mixes everyone but
        itself): the level of the demo page's remote stream every 50 ms (:meth:`levels`)."""
        if self._page is None:
            raise RuntimeError(f"{self.display_name} has not joined")
        await self._page.wait_for_function("() => !!window.remoteStream", timeout=30_000)
        await self._page.evaluate(_LISTEN_JS)

    async def levels(self) -> list[tuple[float, float]]:
        """``(unix time, RMS 0..1)`` of what was heard since :meth:`start_listening`."""
        if self._page is None:
            return []
        raw = await self._page.evaluate("() => window.__vpLevels || []")
        return [(float(t), float(level)) for t, level in raw]

    async def leave(self) -> None:
        """Leave the room (destroy the Janus session, close the page); Chromium keeps running."""
        page = self._page
        if page is None:
            return
        try:
            # What the demo's Stop button does, minus its page reload.
            await asyncio.wait_for(page.evaluate(_LEAVE_JS), 5.0)
        except Exception:
            pass  # page gone or stuck: closing it below hangs up anyway
        await self._close_page()

    async def _close_page(self) -> None:
        context, self._context, self._page = self._context, None, None
        if context is not None:
            try:
                await asyncio.wait_for(context.close(), 10.0)
            except Exception:
                pass  # a stuck context dies with the browser in aclose()

    async def aclose(self) -> None:
        """Leave (if joined) and close this participant's Chromium."""
        try:
            await self.leave()
        finally:
            await self.host.aclose()

    async def __aenter__(self) -> SimulatedParticipant:
        try:
            await self.join()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def pids(self) -> list[int]:
        """PIDs of this participant's Chromium processes (browser and its children)."""
        return chromium_pids(f"--use-file-for-fake-audio-capture={self.audio_file}")


def chromium_pids(marker: str) -> list[int]:
    """Chromium processes whose command line contains ``marker``, and their descendants."""
    roots: list[int] = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if needle in cmdline and b"--type=" not in cmdline:
            roots.append(int(entry))
    found: set[int] = set()
    for root in roots:
        found.add(root)
        found.update(descendant_pids(root))
    return sorted(found)
