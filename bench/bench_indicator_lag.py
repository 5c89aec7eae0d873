"""How far the active-speaker indicator lags the audio, per replica and on Janus. Prints JSON.

    python -m bench.bench_indicator_lag [--platforms zoom,teams,chime,webex,meet,janus]
                                        [--seconds 20]

Consent (contract 1) silences ch0 while an opted-out participant is shown speaking, with a
margin before and after; the margins come from these figures.

Replicas: Alice plays a continuous 1 kHz tone during her turns and Bob is shown speaking in
his turns with silent audio (``silent_loads``), so every turn of Alice's has a sharp onset and
offset in ch0. Both are read where the VP's consent acts, on the transcriber stream
(contract 3): ``lag_on_s`` = position of SPEAKER_CHANGE(Alice) − Alice's audio onset in ch0,
``lag_off_s`` = position of SPEAKER_CHANGE(Bob) − her audio offset (positive: the indicator
comes later than the audio). The replicas switch indicator and audio in the same instant, so
the figures are the VP's own share: the driver's poll (1 s) and page evaluation against the
WebRTC and capture latency.

Janus: the AudioBridge demo page has no speaker display (the driver reports the one other
participant), so the indicator measured is the server's own ``talking`` flag (audiolevel
events, ``audio_active_packets`` 50, ``audio_level_average`` 40), polled every 50 ms, against
Alice's tone bursts (2 s on, 2 s off) in ch0 — the lag of a server-side voice-activity
indicator, which real platforms' indicators resemble.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from platforms.replicas.server import AUDIO_RATE, ParticipantSpec, ReplicaServer, Scenario
from tests.recording_server import Connection, RecordingServer
from vp.config import JoinConfig
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import FAKE_CAPTURE_RATE, SimulatedParticipant
from vp.runner import VirtualParticipant
from vp.signal import write_wav

RATE = 16_000
BLOCK = 160  # 10 ms
ON_RMS = 0.02  # of full scale; the tone plays at 0.3
QUIET_S = 0.3  # an onset needs this much silence before it (and an offset after it)
MEETING_IDS = {
    "zoom": "85012345777",
    "teams": "4123456789777",
    "chime": "8123456777",
    "webex": "m5f3a9c0e777",
    "meet": "abc-defg-lag",
}
REPLICAS = ("zoom", "teams", "chime", "webex", "meet")


def tone(seconds: float, rate: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 1000.0 * t) * amplitude * 32767).astype(np.int16)


class ContinuousToneReplica(ReplicaServer):
    """A replica whose participants play a gapless 1 kHz tone (silent ones: zeros), so a turn's
    audio starts and stops exactly when the replica switches the speaker."""

    def participant_wav(self, spec: ParticipantSpec, *, silent: bool = False) -> bytes:
        pcm = tone(10.0, AUDIO_RATE)  # 10 s of 1 kHz at 48 kHz: whole cycles, loops cleanly
        if silent:
            pcm = np.zeros_like(pcm)
        buf = io.BytesIO()
        sf.write(buf, pcm, AUDIO_RATE, format="WAV", subtype="PCM_16")
        return buf.getvalue()


def edges(ch0: np.ndarray) -> tuple[list[float], list[float]]:
    """Onsets and offsets (seconds into ch0) of sound with ≥ QUIET_S of silence around it."""
    samples = ch0.astype(np.float64) / 32768
    blocks = samples[: samples.size // BLOCK * BLOCK].reshape(-1, BLOCK)
    loud = np.sqrt((blocks**2).mean(axis=1)) > ON_RMS
    quiet = round(QUIET_S * RATE / BLOCK)
    onsets, offsets = [], []
    for i in range(quiet, loud.size - quiet):
        if loud[i] and not loud[i - 1] and not loud[i - quiet : i].any():
            onsets.append(i * BLOCK / RATE)
        if loud[i] and not loud[i + 1] and not loud[i + 1 : i + 1 + quiet].any():
            offsets.append((i + 1) * BLOCK / RATE)
    return onsets, offsets


def speaker_positions(conn: Connection) -> list[tuple[float, str]]:
    """Each SPEAKER_CHANGE with its place in the stream (seconds of audio sent before it)."""
    samples, out, events = 0, [], iter(conn.events)
    frames = iter(conn.frames)
    for kind in conn.order:
        if kind == "audio":
            samples += len(next(frames)) // 4
        else:
            event = next(events)
            if event.get("callEvent") == "SPEAKER_CHANGE":
                out.append((samples / RATE, str(event["activeSpeaker"])))
    return out


def nearest_lags(marks: list[float], audio: list[float], window: float = 1.9) -> list[float]:
    """For each indicator mark, mark − the nearest audio edge within ``window``."""
    lags = []
    for m in marks:
        near = [m - a for a in audio if abs(m - a) <= window]
        if near:
            lags.append(min(near, key=abs))
    return lags


def summarise(lags_on: list[float], lags_off: list[float]) -> dict[str, Any]:
    def stats(xs: list[float]) -> dict[str, Any]:
        if not xs:
            return {"n": 0}
        return {
            "n": len(xs),
            "min_s": round(min(xs), 3),
            "median_s": round(statistics.median(xs), 3),
            "max_s": round(max(xs), 3),
        }

    return {"lag_on": stats(lags_on), "lag_off": stats(lags_off)}


def config(url: str, platform: str, out: Path, transcriber: str, seconds: float) -> JoinConfig:
    return JoinConfig(
        meeting_url=url,
        platform=platform,
        name="Scribe",
        transcriber_url=transcriber,
        out_dir=out,
        max_duration=seconds,
        join_timeout=40,
        intro_message="",
        exit_message="",
    )


async def replica_lag(platform: str, tmp: Path, seconds: float) -> dict[str, Any]:
    alice = ParticipantSpec(name="Alice")
    bob = ParticipantSpec(name="Bob", silent_loads=99)
    with ContinuousToneReplica(platform) as server:
        os.environ["VP_ALLOWED_HOSTS"] = server.allowed_host
        server.add_meeting(
            Scenario(meeting_id=MEETING_IDS[platform], participants=[alice, bob], speak_turn_s=2)
        )
        recorder = await RecordingServer().start()
        try:
            cfg = config(
                server.meeting_url(MEETING_IDS[platform]),
                platform,
                tmp / platform,
                recorder.url,
                seconds,
            )
            await VirtualParticipant(cfg).run()
        finally:
            await recorder.aclose()
    conn = recorder.connections[0]
    audio = b"".join(conn.frames)
    ch0 = np.frombuffer(audio, dtype="<i2").reshape(-1, 2)[:, 0]
    onsets, offsets = edges(ch0)
    marks = speaker_positions(conn)
    alice_on = [t for t, name in marks if name == "Alice"]
    bob_on = [t for t, name in marks if name == "Bob"]
    return {
        **summarise(nearest_lags(alice_on, onsets), nearest_lags(bob_on, offsets)),
        "turns": len(alice_on),
    }


async def janus_lag(tmp: Path, seconds: float) -> dict[str, Any]:
    burst = np.concatenate([tone(2.0, FAKE_CAPTURE_RATE), np.zeros(2 * FAKE_CAPTURE_RATE)])
    wav = write_wav(tmp / "bursts.wav", burst.astype(np.int16), FAKE_CAPTURE_RATE)
    talking: list[tuple[float, bool]] = []
    async with LocalMeeting(tmp / "janus") as meeting:
        os.environ["VP_ALLOWED_HOSTS"] = meeting.allowed_host
        async with SimulatedParticipant(meeting.url, "Alice", wav):
            recorder = await RecordingServer().start()

            async def poll() -> None:
                was = None
                while True:
                    people = await meeting.janus.client.participants(meeting.room_id)
                    now = bool(any(p.get("talking") for p in people if p.get("display") == "Alice"))
                    if now != was:
                        talking.append((time.monotonic(), now))
                        was = now
                    await asyncio.sleep(0.05)

            poller = asyncio.create_task(poll())
            try:
                cfg = config(meeting.url, "janus", tmp / "vp-janus", recorder.url, seconds)
                await VirtualParticipant(cfg).run()
            finally:
                poller.cancel()
                await recorder.aclose()
    conn = recorder.connections[0]
    # Map a monotonic time to a stream position by the frames received before it.
    sizes = np.cumsum([len(f) // 4 for f in conn.frames])
    times = np.asarray(conn.frame_times)

    def position(at: float) -> float:
        i = int(np.searchsorted(times, at))
        return float(sizes[i - 1]) / RATE if i else 0.0

    audio = b"".join(conn.frames)
    onsets, offsets = edges(np.frombuffer(audio, dtype="<i2").reshape(-1, 2)[:, 0])
    on_marks = [position(t) for t, now in talking if now]
    off_marks = [position(t) for t, now in talking if not now]
    return {
        **summarise(nearest_lags(on_marks, onsets), nearest_lags(off_marks, offsets)),
        "turns": len(on_marks),
        "indicator": "janus talking flag (audiolevel_event), polled every 50 ms",
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", default=",".join((*REPLICAS, "janus")))
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vp-lag-") as tmp:
        for platform in args.platforms.split(","):
            where = Path(tmp) / platform
            where.mkdir()
            if platform == "janus":
                results[platform] = await janus_lag(where, args.seconds)
            else:
                results[platform] = await replica_lag(platform, where, args.seconds)
            print(json.dumps({platform: results[platform]}), flush=True)
    print(json.dumps({"indicator_lag": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
