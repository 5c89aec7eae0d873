"""``vp demo``: the embedded default, fully offline and local.

It starts Janus on loopback with a fresh AudioBridge room, a simulated participant (a second
Chromium whose fake microphone plays espeak-ng speech followed by the tone test signal), and
a VP with the in-process reference transcriber; the live transcript scrolls in the terminal.
Everything lands under one folder; every process it started is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from vp import log as vplog
from vp.config import JoinConfig
from vp.lifecycle import StatusEvent
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, speech_then_tones_wav
from vp.runner import VirtualParticipant
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode
from vp.status import CallbackSink
from vp.transcriber.protocol import TranscriptSegment

DEMO_SPEECH = (
    "Hello everyone, and welcome to the weekly planning meeting. "
    "Today we will review the budget and the release schedule. "
    "Please send me your numbers by Friday."
)


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(out_dir: Path, duration: float = 30.0, platform: str = "janus") -> int:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(out_dir / "vp.log", "a", encoding="utf-8")
    vplog.configure("INFO", stream=log_file)
    started = time.monotonic()
    _say(f"vp demo: everything goes to {out_dir}")
    try:
        async with LocalMeeting(out_dir / "janus") as meeting:
            _say(f"  janus up, room {meeting.room_id} at {meeting.url}")
            os.environ["VP_ALLOWED_HOSTS"] = meeting.allowed_host
            audio = speech_then_tones_wav(out_dir / "participant.wav", DEMO_SPEECH)
            async with SimulatedParticipant(meeting.url, "Alice", audio):
                _say("  Alice joined and is speaking (espeak-ng speech, then tones)")
                code = await _run_vp(meeting.url, out_dir / "vp", duration)
    finally:
        log_file.close()
    _say(f"vp demo: done in {time.monotonic() - started:.1f} s; files in {out_dir}")
    return code


async def _run_vp(url: str, out_dir: Path, duration: float) -> int:
    def on_status(event: StatusEvent) -> None:
        reason = f" ({event.reason})" if event.reason else ""
        _say(f"  [status] {event.status}{reason}")

    def on_segment(segment: TranscriptSegment) -> None:
        if not segment.is_partial:
            _say(f"  [{segment.start_time:6.1f}s] {segment.speaker}: {segment.transcript}")

    config = JoinConfig(
        meeting_url=url, name="Scribe", out_dir=out_dir, max_duration=duration, join_timeout=60
    )
    vp = VirtualParticipant(config, sinks=[CallbackSink(on_status)], on_segment=on_segment)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, vp.stop)
    try:
        result = await vp.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    stats = result.stats
    pipeline = stats.get("pipeline", {})
    _say(
        f"  audio: {pipeline.get('audio_seconds', 0):.1f} s streamed, "
        f"join latency {stats.get('join_latency_s', float('nan')):.2f} s, "
        f"capture {stats.get('capture', {}).get('state', '?')}"
    )
    wav = out_dir / "recording.wav"
    if wav.exists():
        pcm, _ = sf.read(str(wav), dtype="int16", always_2d=True)
        heard = count_sequence(decode(np.ascontiguousarray(pcm[:, 0])), DEFAULT_SYMBOLS)
        _say(f"  tone signal heard intact {heard} time(s) in recording.wav ch0")
    sys.stdout.flush()
    return result.exit_code
