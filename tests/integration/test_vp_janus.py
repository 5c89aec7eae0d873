"""End to end: a VP joins a real Janus AudioBridge room in headless Chromium and streams the
meeting's audio to a real LMA-protocol WebSocket server.

A simulated participant (a second Chromium) plays a known tone sequence; it must arrive on
ch0 intact, in real time, across a dropped transcriber connection, with nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.recording_server import RecordingServer
from tests.support import scribe_config
from vp.config import JoinConfig
from vp.lifecycle import Reason, Status
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, silence_wav, tone_wav
from vp.runner import VirtualParticipant
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode
from vp.transcriber.protocol import MAX_FRAME_BYTES

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
VP_BIN = str(REPO / ".venv" / "bin" / "vp")


@pytest.fixture
async def meeting(tmp_path, monkeypatch):
    async with LocalMeeting(tmp_path / "janus") as m:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", m.allowed_host)
        yield m


@pytest.fixture
async def speaker(meeting, tmp_path):
    wav = tone_wav(tmp_path / "tones.wav")
    async with SimulatedParticipant(meeting.url, "Alice", wav) as alice:
        yield alice


def statuses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "status.jsonl").read_text().splitlines()]


def ch0(stereo_bytes: bytes) -> np.ndarray:
    return np.frombuffer(stereo_bytes, dtype="<i2").reshape(-1, 2)[:, 0].copy()


async def test_audio_reaches_transcriber_intact_and_in_real_time(meeting, speaker, tmp_path):
    server = await RecordingServer(token="secret-jwt-value").start()
    out = tmp_path / "vp"
    config = scribe_config(
        meeting.url,
        out,
        server.url,
        transcriber_token="secret-jwt-value",
        call_id="call-e2e",
        max_duration=12,
    )
    result = await VirtualParticipant(config).run()
    await server.aclose()

    assert result.final.status is Status.COMPLETED
    assert result.final.reason is Reason.MAX_DURATION
    assert [s["status"] for s in statuses(out)] == [
        "INITIALIZING",
        "JOINING",
        "JOINED",
        "LEAVING",
        "COMPLETED",
    ]
    (conn,) = server.connections
    assert conn.headers["authorization"] == "Bearer secret-jwt-value"
    start = conn.events[0]
    assert start["callEvent"] == "START"
    assert (start["callId"], start["agentId"], start["samplingRate"]) == (
        "call-e2e",
        "Scribe",
        16000,
    )
    assert conn.order[-1] == "END"
    # Alice was in the room first: the call starts with her as the active speaker.
    assert start["activeSpeaker"] == "Alice"

    assert all(0 < len(f) <= MAX_FRAME_BYTES and len(f) % 4 == 0 for f in conn.frames)
    audio = server.audio_bytes
    audio_seconds = len(audio) / 64000
    wall = conn.frame_times[-1] - conn.frame_times[0]
    assert audio_seconds == pytest.approx(wall, rel=0.05, abs=0.3), "real time, nothing lost"
    assert audio_seconds >= 10

    heard = count_sequence(decode(ch0(audio)), DEFAULT_SYMBOLS)
    assert heard >= 2, "the participant's tone sequence decodes intact on ch0"
    stereo = np.frombuffer(audio, dtype="<i2").reshape(-1, 2)
    assert not stereo[:, 1].any(), "ch1 (the VP's own voice) is silence"

    recorded, rate = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert rate == 16000 and recorded.shape[1] == 2
    assert recorded.tobytes() == audio, "recording.wav holds exactly what was streamed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["capture"]["state"] == "active"
    for path in out.iterdir():
        assert b"secret-jwt-value" not in path.read_bytes(), path.name


async def test_dropped_connection_reconnects_and_loses_nothing(meeting, speaker, tmp_path):
    server = await RecordingServer(drop_after_frames=40).start()  # drop after ~4 s
    out = tmp_path / "vp"
    config = scribe_config(meeting.url, out, server.url, call_id="call-drop", max_duration=10)
    result = await VirtualParticipant(config).run()
    await server.aclose()
    assert result.final.status is Status.COMPLETED
    assert len(server.connections) == 2
    starts = [e for e in server.all_events if e["callEvent"] == "START"]
    assert [s["callId"] for s in starts] == ["call-drop", "call-drop"]
    assert server.all_events[-1]["callEvent"] == "END"
    recorded, _ = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert server.audio_bytes == recorded.tobytes(), "every recorded sample reached the server"
    assert count_sequence(decode(ch0(server.audio_bytes)), DEFAULT_SYMBOLS) >= 1


async def test_room_destroyed_ends_host_ended(meeting, speaker, tmp_path):
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    config = scribe_config(meeting.url, out, server.url, max_duration=60)
    vp = VirtualParticipant(config)
    task = asyncio.create_task(vp.run())
    for _ in range(300):
        if vp.lifecycle.joined:
            break
        await asyncio.sleep(0.1)
    assert vp.lifecycle.joined
    await asyncio.sleep(1.0)
    assert "Alice" in vp.participants
    destroyed_at = time.monotonic()
    await meeting.end_meeting()
    result = await asyncio.wait_for(task, 20)
    await server.aclose()
    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.HOST_ENDED)
    assert time.monotonic() - destroyed_at < 10
    assert server.all_events[-1]["callEvent"] == "END"


async def test_disallowed_url_fails_fast_before_any_browser(tmp_path, monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        VP_BIN,
        "join",
        "http://169.254.169.254/audiobridgetest.html",
        "--json",
        "--out",
        str(tmp_path / "vp"),
        "--passcode",
        "pass-should-not-leak",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert time.monotonic() - started < 10
    last = json.loads(stdout.decode().splitlines()[-1])
    assert (last["status"], last["reason"]) == ("FAILED", "invalid-url")
    assert b"pass-should-not-leak" not in stdout + stderr
    assert statuses(tmp_path / "vp")[-1]["reason"] == "invalid-url"
    assert not (tmp_path / "vp" / "recording.wav").exists()


async def test_usage_error_exits_1():
    proc = await asyncio.create_subprocess_exec(
        VP_BIN,
        "join",
        "--max-duration",
        "soon",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await proc.communicate()
    assert proc.returncode == 1


async def test_sigterm_leaves_sends_end_and_flushes(meeting, speaker, tmp_path):
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    env = {**os.environ, "VP_TRANSCRIBER_URL": server.url, "VP_PASSCODE": "pc-should-not-leak"}
    proc = await asyncio.create_subprocess_exec(
        VP_BIN,
        "join",
        meeting.url,
        "--name",
        "Scribe",
        "--out",
        str(out),
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    seen = []
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, "vp exited before JOINED"
        seen.append(json.loads(line)["status"])
        if seen[-1] == "JOINED":
            break
    await asyncio.sleep(3)
    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    rest, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert time.monotonic() - signalled < 10
    assert proc.returncode == 0, stderr.decode()[-2000:]
    final = json.loads(rest.decode().splitlines()[-1])
    assert (final["status"], final["reason"]) == ("COMPLETED", "stopped")
    await server.aclose()
    assert server.all_events[-1]["callEvent"] == "END"
    recorded, _ = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert recorded.shape[0] >= 16000 * 2
    for path in out.iterdir():
        assert b"pc-should-not-leak" not in path.read_bytes()
    assert b"pc-should-not-leak" not in stderr


def speech_seconds(pcm: np.ndarray, threshold: float = 300.0, window: int = 1600) -> float:
    """Seconds of 100 ms windows of ``pcm`` (int16 mono 16 kHz) louder than ``threshold``."""
    n = pcm.size // window
    if n == 0:
        return 0.0
    frames = pcm[: n * window].astype(np.float64).reshape(n, window)
    return float((np.sqrt((frames**2).mean(axis=1)) > threshold).sum() * window / 16000)


TOGGLE_LABELS_JS = """() => {
  const toggle = document.querySelector('#toggleaudio');
  let last = toggle.textContent.trim();
  console.log('toggle:' + last);
  new MutationObserver(() => {
    const label = toggle.textContent.trim();
    if (label !== last) console.log('toggle:' + (last = label));
  }).observe(toggle, { childList: true, characterData: true, subtree: true });
}"""


async def test_voice_intro_is_heard_in_the_room_and_on_ch1_not_ch0(meeting, tmp_path):
    """--voice espeak-ng: a silent listener hears the spoken intro soon after JOINED and
    silence otherwise; ch1 of recording.wav and of the stream carry it; ch0 does not."""
    silence = silence_wav(tmp_path / "silence.wav")
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    config = scribe_config(
        meeting.url,
        out,
        server.url,
        max_duration=16,
        voice="espeak-ng",
        intro_message="Hello everyone, I am Scribe, the meeting assistant.",
        exit_message="Goodbye.",
    )
    async with SimulatedParticipant(meeting.url, "Bob", silence) as bob:
        await bob.start_listening()
        vp = VirtualParticipant(config)
        labels: list[str] = []

        async def watch_mute_button() -> None:
            # The demo's mute toggle in the VP's page ("Unmute" while muted, "Mute" while
            # not), every label it shows from JOINED on, reported by the page as it changes.
            await vp.joined_event.wait()
            page = vp.page
            page.on("console", lambda m: m.text.startswith("toggle:") and labels.append(m.text[7:]))
            await page.evaluate(TOGGLE_LABELS_JS)

        watcher = asyncio.create_task(watch_mute_button())
        result = await vp.run()
        assert watcher.done(), "the VP never reached JOINED"
        watcher.result()
        levels = await bob.levels()
    await server.aclose()
    assert result.final.status is Status.COMPLETED, result.final
    joined_ts = next(s["ts"] for s in statuses(out) if s["status"] == "JOINED")
    leaving_ts = next(s["ts"] for s in statuses(out) if s["status"] == "LEAVING")
    from datetime import datetime

    joined = datetime.fromisoformat(joined_ts).timestamp()
    leaving = datetime.fromisoformat(leaving_ts).timestamp()
    voice = result.stats["voice"]
    assert voice["utterances"] == 2 and voice["barge_ins"] == 0, voice  # intro and exit
    # Muted, unmuted for the intro, muted again; then the same for the exit message. JOINED
    # comes at admission, before the VP's first click (the demo shows "Mute" until then).
    sequence = labels[1:] if labels[:1] == ["Mute"] else labels
    assert sequence == ["Unmute", "Mute", "Unmute", "Mute", "Unmute"], labels

    # Bob hears at least a second of the intro within 20 s of JOINED ...
    loud = [t for t, level in levels if level > 0.02]
    intro = [t for t in loud if joined <= t <= joined + 20 and t < leaving]
    assert len(intro) * 0.05 >= 1.0, f"heard {len(intro) * 0.05:.2f} s of the intro"
    # ... and silence from the VP between the intro and the exit message.
    quiet_from = intro[-1] + 1.0
    between = [level for t, level in levels if quiet_from <= t <= leaving - 0.5]
    assert between and max(between) < 0.01, "the VP is silent when not speaking"

    recorded, _ = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert recorded.tobytes() == server.audio_bytes
    spoken = speech_seconds(recorded[:, 1])
    assert spoken >= 1.0 + 0.3, f"ch1 carries the intro and the exit ({spoken:.1f} s)"
    # ch1's first sound comes within 20 s of the start (the recording starts at JOINED).
    first = np.argmax(np.abs(recorded[:, 1]) > 300) / 16000
    assert 0 < first < 20
    # The VP does not hear itself: ch0 (Bob is silent) stays quiet while ch1 speaks.
    assert speech_seconds(recorded[:, 0]) < 0.3


async def test_voice_refused_unmute_is_reported_and_nothing_is_sent(meeting, tmp_path, monkeypatch):
    """A platform that will not unmute the VP (host muted everyone): the intro is not sent,
    ch1 stays silent, and the final status detail says why."""
    from platforms.janus.driver import JanusDriver

    async def refuse(self: JanusDriver, on: bool) -> bool:
        return not on  # muting works, unmuting is refused

    monkeypatch.setattr(JanusDriver, "set_microphone", refuse)
    out = tmp_path / "vp"
    config = JoinConfig(
        meeting_url=meeting.url,
        name="Scribe",
        out_dir=out,
        max_duration=8,
        voice="espeak-ng",
        exit_message="",
    )
    silence = silence_wav(tmp_path / "silence.wav")
    async with SimulatedParticipant(meeting.url, "Bob", silence):
        result = await VirtualParticipant(config).run()
    assert result.final.status is Status.COMPLETED
    assert "refused to unmute" in (result.final.detail or "")
    assert result.stats["voice"]["refused"] == 1 and result.stats["voice"]["utterances"] == 0
    recorded, _ = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert not recorded[:, 1].any(), "nothing spoken while muted"
