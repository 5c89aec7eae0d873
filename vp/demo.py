"""``vp demo``: the embedded default, fully offline and local.

``--platform janus`` (default) starts Janus on loopback with a fresh AudioBridge room and a
simulated participant (a second Chromium whose fake microphone plays espeak-ng speech followed
by the tone test signal). ``--platform zoom|teams|chime|meet|webex`` serves that client's local
replica instead, with two participants who speak in turn through the platform's audio plumbing and
chat. Either way a VP joins with the in-process reference transcriber, and the live transcript
scrolls in the terminal. Everything lands under one folder; every process it started is
stopped on the way out.
"""

from __future__ import annotations

import asyncio
import json
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
from vp.localmeeting.participant import (
    SimulatedParticipant,
    speech_then_tones_wav,
)
from vp.runner import VirtualParticipant
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode
from vp.status import CallbackSink
from vp.transcriber.protocol import TranscriptSegment

REPLICA_MEETING_IDS = {
    "zoom": "85012345678",
    "teams": "4123456789012",
    "chime": "8123456789",
    "webex": "m5f3a9c0e12",
    "meet": "abc-defg-hij",
}
REPLICA_PASSCODE = "482913"
# A listener's level samples (SimulatedParticipant.levels): one per 50 ms; above this, sound.
LEVEL_STEP_S = 0.05
HEARD_LEVEL = 0.02
BOB_SPEECH = "Thanks Alice. The budget review is on track and the release is planned for March."
DEMO_SPEECH = (
    "Hello everyone, and welcome to the weekly planning meeting. "
    "Today we will review the budget and the release schedule. "
    "Please send me your numbers by Friday."
)


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(
    out_dir: Path, duration: float = 30.0, platform: str = "janus", voice: str = "off"
) -> int:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(out_dir / "vp.log", "a", encoding="utf-8")
    vplog.configure("INFO", stream=log_file)
    started = time.monotonic()
    _say(f"vp demo: everything goes to {out_dir}")
    try:
        if platform == "janus":
            code = await _janus_demo(out_dir, duration, voice)
        else:
            code = await _replica_demo(out_dir, duration, platform, voice)
    finally:
        log_file.close()
    _say(f"vp demo: done in {time.monotonic() - started:.1f} s; files in {out_dir}")
    return code


async def _janus_demo(out_dir: Path, duration: float, voice: str) -> int:
    async with LocalMeeting(out_dir / "janus") as meeting:
        _say(f"  janus up, room {meeting.room_id} at {meeting.url}")
        os.environ["VP_ALLOWED_HOSTS"] = meeting.allowed_host
        audio = speech_then_tones_wav(out_dir / "participant.wav", DEMO_SPEECH)
        async with SimulatedParticipant(meeting.url, "Alice", audio) as alice:
            _say("  Alice joined and is speaking (espeak-ng speech, then tones)")
            if voice == "off":
                return await _run_vp(meeting.url, out_dir / "vp", duration, "janus", None)
            # Alice also listens: the AudioBridge mixes everyone but herself, so all she hears
            # is the VP (another participant would make the active speaker ambiguous).
            await alice.start_listening()
            _say(f"  Alice listens (open {meeting.url} in a browser to hear the VP too)")
            code = await _run_vp(meeting.url, out_dir / "vp", duration, "janus", None, voice)
            levels = await alice.levels()
        heard = sum(LEVEL_STEP_S for _t, level in levels if level > HEARD_LEVEL)
        _say(f"  Alice heard the VP speak for {heard:.1f} s")
        return code


async def _replica_demo(out_dir: Path, duration: float, platform: str, voice: str) -> int:
    from platforms.replicas.server import ChatLine, ParticipantSpec, ReplicaServer, Scenario

    with ReplicaServer(platform) as server:
        os.environ["VP_ALLOWED_HOSTS"] = server.allowed_host
        meeting_id = REPLICA_MEETING_IDS[platform]
        server.add_meeting(
            Scenario(
                meeting_id=meeting_id,
                passcode=REPLICA_PASSCODE,
                waiting_room_s=2,
                participants=[
                    ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5), speech=DEMO_SPEECH),
                    ParticipantSpec(name="Bob", symbols=(6, 2, 4, 0, 5, 1), speech=BOB_SPEECH),
                ],
                speak_turn_s=12,
                chat=[ChatLine(at_s=3, sender="Bob", text="Could someone share the agenda?")],
            )
        )
        url = server.meeting_url(meeting_id, REPLICA_PASSCODE)
        _say(f"  {platform} replica up at {url} (Alice and Bob speak in turn)")
        return await _run_vp(url, out_dir / "vp", duration, platform, REPLICA_PASSCODE, voice)


async def _run_vp(
    url: str,
    out_dir: Path,
    duration: float,
    platform: str,
    passcode: str | None,
    voice: str = "off",
) -> int:
    def on_status(event: StatusEvent) -> None:
        reason = f" ({event.reason})" if event.reason else ""
        _say(f"  [status] {event.status}{reason}")

    def on_segment(segment: TranscriptSegment) -> None:
        if not segment.is_partial:
            _say(f"  [{segment.start_time:6.1f}s] {segment.speaker}: {segment.transcript}")

    config = JoinConfig(
        meeting_url=url,
        platform=platform,
        passcode=passcode,
        name="Scribe",
        out_dir=out_dir,
        max_duration=duration,
        join_timeout=60,
        voice=voice,
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
        symbols = decode(np.ascontiguousarray(pcm[:, 0]))
        heard = count_sequence(
            symbols, DEFAULT_SYMBOLS if platform == "janus" else (0, 3, 1, 4, 2, 5)
        )
        _say(f"  tone signal heard intact {heard} time(s) in recording.wav ch0")
    spoken = stats.get("voice")
    if spoken:
        _say(
            f"  voice: {spoken['utterances']} utterance(s), {spoken['spoken_s']:.1f} s spoken "
            "(recording.wav ch1)"
        )
    chat = out_dir / "chat.jsonl"
    if chat.exists():
        for line in chat.read_text().splitlines():
            message = json.loads(line)
            _say(f"  [chat] {message['sender']}: {message['text']}")
    sys.stdout.flush()
    return result.exit_code
