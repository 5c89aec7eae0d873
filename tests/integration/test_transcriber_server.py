"""LocalTranscriber against a real websockets client on loopback, with real PocketSphinx."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import jwt
import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vp.transcriber.engines import Engine, EngineStream
from vp.transcriber.engines.base import BufferedStream
from vp.transcriber.protocol import (
    EndEvent,
    SpeakerChangeEvent,
    StartEvent,
    TranscriptSegment,
    encode_event,
    parse_server_message,
)
from vp.transcriber.server import LocalTranscriber, safe_call_dir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SR = 16_000
FRAME_SAMPLES = 3200  # 200 ms per channel = 12,800 bytes stereo


def espeak_pcm(path: Path, text: str) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required: run scripts/install-system-packages.sh")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, timeout=30)
    data, rate = sf.read(str(path), dtype="int16")
    n = int(len(data) * SR / rate)
    pos = np.arange(n) * rate / SR
    return np.interp(pos, np.arange(len(data)), data.astype(np.float64)).astype("<i2")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    return espeak_pcm(
        tmp_path_factory.mktemp("speech") / "s.wav",
        "Hello everyone, welcome to the weekly project meeting.",
    )


def stereo(ch0: np.ndarray | None = None, ch1: np.ndarray | None = None, seconds: float = 0):
    n = max(len(ch0) if ch0 is not None else 0, len(ch1) if ch1 is not None else 0)
    n = max(n, int(seconds * SR))
    out = np.zeros((n, 2), dtype="<i2")
    if ch0 is not None:
        out[: len(ch0), 0] = ch0
    if ch1 is not None:
        out[: len(ch1), 1] = ch1
    return out


def silence(seconds: float) -> np.ndarray:
    return stereo(seconds=seconds)


async def send_audio(ws: ClientConnection, audio: np.ndarray, pause: float = 0.01) -> None:
    for i in range(0, len(audio), FRAME_SAMPLES):
        await ws.send(audio[i : i + FRAME_SAMPLES].tobytes())
        await asyncio.sleep(pause)  # ~20x real time: the engine keeps up without drops


def start(call_id: str = "call-1", speaker: str = "n/a", **extra) -> str:
    return encode_event(
        StartEvent(callId=call_id, agentId="VP Bot", activeSpeaker=speaker, **extra)
    )


async def read_segments(ws: ClientConnection) -> list[TranscriptSegment]:
    segments = []
    try:
        async for message in ws:
            assert isinstance(message, str)
            seg = parse_server_message(message)
            if seg is not None:
                segments.append(seg)
    except ConnectionClosed:
        pass
    return segments


async def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        for _ in range(100):
            await asyncio.wait_for(ws.recv(), timeout=5)
    return ws.close_code


@pytest.fixture
async def server(tmp_path):
    async with LocalTranscriber(out_dir=tmp_path / "out") as srv:
        yield srv


async def test_start_frames_and_end_are_recorded(server, tmp_path):
    async with connect(server.url) as ws:
        await ws.send(start("call-1", speaker="Bob", fromNumber="+1555", shouldRecordCall=True))
        await send_audio(ws, silence(1.0), pause=0)
        await ws.send(b"\x00\x00" * 2 * 800)  # a 50 ms frame: smaller frames are fine
        await ws.send(encode_event(EndEvent(callId="call-1")))
        assert await read_segments(ws) == []
        assert ws.close_code == 1000
    call = server.calls["call-1"]
    assert call.agent_id == "VP Bot"
    assert call.frames == 6
    assert call.audio_seconds == pytest.approx(1.05)
    assert call.connections == 1 and call.ended
    assert [e["callEvent"] for e in call.events] == ["START", "END"]
    assert call.events[0]["fromNumber"] == "+1555"
    assert call.events[0]["activeSpeaker"] == "Bob"
    summary = json.loads((tmp_path / "out" / "call-1" / "call.json").read_text())
    assert summary["callId"] == "call-1" and summary["agentId"] == "VP Bot"
    assert summary["audio_seconds"] == pytest.approx(1.05)
    assert summary["frames"] == 6 and summary["connections"] == 1
    assert summary["end_received"] is True
    assert summary["started_at"] and summary["ended_at"]
    # A finished call cannot be restarted.
    async with connect(server.url) as ws:
        await ws.send(start("call-1"))
        assert await closed_code(ws) == 1008


async def test_oversized_frame_is_rejected(server):
    async with connect(server.url) as ws:
        await ws.send(start("big"))
        await ws.send(bytes(12_800))  # exactly 200 ms: accepted
        await ws.send(bytes(12_804))
        assert await closed_code(ws) == 1009
    async with connect(server.url) as ws:
        await ws.send(start("bigger"))
        await ws.send(bytes(200_000))  # over websockets' max_size
        assert await closed_code(ws) == 1009
    async with connect(server.url) as ws:
        await ws.send(start("odd"))
        await ws.send(bytes(6))  # not whole stereo samples
        assert await closed_code(ws) == 1008
    assert server.calls["big"].frames == 1


@pytest.mark.parametrize(
    "first",
    [
        bytes(640),
        encode_event(SpeakerChangeEvent(callId="c", agentId="a", activeSpeaker="x")),
        encode_event(EndEvent(callId="c")),
        "not json",
        json.dumps({"callEvent": "START", "callId": ""}),
    ],
)
async def test_first_frame_must_be_start(server, first):
    async with connect(server.url) as ws:
        await ws.send(first)
        assert await closed_code(ws) == 1008
    assert server.calls == {}


async def test_mismatched_call_id_is_rejected(server):
    async with connect(server.url) as ws:
        await ws.send(start("one"))
        await ws.send(encode_event(EndEvent(callId="two")))
        assert await closed_code(ws) == 1008


async def test_call_limit(tmp_path):
    async with LocalTranscriber(max_calls=1) as srv, connect(srv.url) as first:
        await first.send(start("a"))
        await first.send(bytes(640))
        async with connect(srv.url) as second:
            await second.send(start("b"))
            assert await closed_code(second) == 1013


async def test_jwt_required(tmp_path):
    secret = "s3cret-for-tests-only-0123456789abcdef"
    good = jwt.encode({"sub": "user-1", "exp": int(time.time()) + 60}, secret, algorithm="HS256")
    forged = jwt.encode({"sub": "user-1"}, "another-secret-0123456789abcdef-xyz", algorithm="HS256")
    expired = jwt.encode({"sub": "u", "exp": int(time.time()) - 60}, secret, algorithm="HS256")
    async with LocalTranscriber(jwt_secret=secret) as srv:
        for headers, query in [
            ({}, ""),
            ({"Authorization": f"Bearer {forged}"}, ""),
            ({"Authorization": f"Bearer {expired}"}, ""),
            ({"Authorization": good}, ""),  # no Bearer scheme
            ({}, f"?token={forged}"),
        ]:
            with pytest.raises(InvalidStatus) as info:
                async with connect(srv.url + query, additional_headers=headers):
                    pass
            assert info.value.response.status_code == 401
        for headers, query in [
            ({"Authorization": f"Bearer {good}"}, ""),
            ({}, f"?authorization=Bearer%20{good}"),
            ({}, f"?token={good}"),
        ]:
            async with connect(srv.url + query, additional_headers=headers) as ws:
                call_id = f"jwt-{len(srv.calls)}"
                await ws.send(start(call_id))
                await ws.send(encode_event(EndEvent(callId=call_id)))
                await read_segments(ws)
                assert ws.close_code == 1000
        assert len(srv.calls) == 3


async def test_health_check_and_unknown_path(server):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /health/check HTTP/1.1\r\nHost: x\r\n\r\n")
    status = await reader.readline()
    writer.close()
    assert b" 200 " in status
    with pytest.raises(InvalidStatus) as info:
        async with connect(server.url.replace("/api/v1/ws", "/nope")):
            pass
    assert info.value.response.status_code == 404


async def test_speech_is_transcribed_with_active_speaker(tmp_path, speech):
    seen: list[TranscriptSegment] = []
    out = tmp_path / "out"
    async with LocalTranscriber(out_dir=out, on_segment=seen.append) as srv:
        async with connect(srv.url) as ws:
            reader = asyncio.create_task(read_segments(ws))
            await ws.send(start("meet/../1", speaker="Bob"))
            await send_audio(ws, silence(0.6))
            await ws.send(
                encode_event(
                    SpeakerChangeEvent(callId="meet/../1", agentId="VP Bot", activeSpeaker="Alice")
                )
            )
            await send_audio(ws, np.concatenate([stereo(speech), silence(1.0)]))
            await ws.send(encode_event(EndEvent(callId="meet/../1")))
            segments = await reader
        call = srv.calls["meet/../1"]
    finals = [s for s in segments if not s.is_partial]
    assert finals, segments
    for seg in finals:
        assert seg.channel == "CALLER" and seg.speaker == "Alice"
        assert seg.call_id == "meet/../1"
        assert 0.6 <= seg.start_time < seg.end_time <= call.audio_seconds
        assert seg.transcript
    assert [s.segment_id for s in seen] == [s.segment_id for s in segments]
    # Files: confined to out_dir, one line per final.
    (call_dir,) = out.iterdir()
    assert call_dir.name == safe_call_dir("meet/../1")
    assert "/" not in call_dir.name and not call_dir.name.startswith(".")
    lines = [json.loads(x) for x in (call_dir / "transcript.jsonl").read_text().splitlines()]
    assert len(lines) == len(finals)
    assert set(lines[0]) >= {"ts", "speaker", "channel", "start", "end", "text"}
    assert lines[0]["speaker"] == "Alice" and lines[0]["text"] == finals[0].transcript
    summary = json.loads((call_dir / "call.json").read_text())
    assert summary["end_received"] is True
    assert summary["final_segments"] == len(finals)
    assert summary["dropped_audio_seconds"] == 0


async def test_reconnect_continues_audio_time_and_agent_channel(tmp_path, speech):
    async with LocalTranscriber(out_dir=tmp_path) as srv:
        ws = await connect(srv.url)
        await ws.send(start("rc", speaker="Carol"))
        await send_audio(ws, silence(2.0), pause=0)
        await asyncio.sleep(0.1)
        ws.transport.abort()  # the network drops; no END
        await asyncio.sleep(0.2)
        call = srv.calls["rc"]
        assert not call.connected and not call.ended
        assert call.audio_seconds == pytest.approx(2.0)
        assert "AGENT" not in call.channels  # ch1 silent so far: no engine stream

        async with connect(srv.url) as ws:
            reader = asyncio.create_task(read_segments(ws))
            await ws.send(start("rc", speaker="Carol"))
            # The VP itself speaks on ch1 while the meeting is quiet.
            await send_audio(ws, np.concatenate([stereo(ch1=speech), silence(1.0)]))
            await ws.send(encode_event(EndEvent(callId="rc")))
            segments = await reader
    assert call.connections == 2
    assert call.audio_seconds == pytest.approx(2.0 + (len(speech) + SR) / SR, abs=0.21)
    finals = [s for s in segments if not s.is_partial]
    assert finals, segments
    assert {s.channel for s in finals} == {"AGENT"}
    assert {s.speaker for s in finals} == {"VP Bot"}
    assert all(s.start_time >= 2.0 for s in finals)  # the clock did not restart at 0
    summary = json.loads((tmp_path / "rc" / "call.json").read_text())
    assert summary["connections"] == 2 and summary["end_received"] is True


async def test_disconnected_call_is_suspended_after_grace_and_resumes(tmp_path):
    async with LocalTranscriber(out_dir=tmp_path, reconnect_grace=0.2) as srv:
        async with connect(srv.url) as ws:
            await ws.send(start("g"))
            await send_audio(ws, silence(0.4), pause=0)
        call = srv.calls["g"]
        for _ in range(100):  # the grace is 0.2 s; flushing the engine takes a moment
            if call.suspended:
                break
            await asyncio.sleep(0.1)
        assert call.suspended and not call.ended
        assert json.loads((tmp_path / "g" / "call.json").read_text())["end_received"] is False
        async with connect(srv.url) as ws:
            await ws.send(start("g"))
            await send_audio(ws, silence(0.4), pause=0)
            await ws.send(encode_event(EndEvent(callId="g")))
            await read_segments(ws)
        assert call.audio_seconds == pytest.approx(0.8)
        assert call.ended and call.connections == 2


class StalledStream(BufferedStream):
    """An engine that decodes nothing until the stream is finished (a very slow engine)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.done = asyncio.Event()

    async def finish(self) -> None:
        await super().finish()
        self.done.set()

    async def _run(self) -> None:
        await self.done.wait()
        while await self._take() is not None:
            pass


class BrokenStream(BufferedStream):
    async def _run(self) -> None:
        await self._take()
        raise RuntimeError("decoder exploded")


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, stream_type: type[BufferedStream]) -> None:
        self.stream_type = stream_type
        self.opened = 0

    async def open_stream(self, *, sample_rate: int = 16_000) -> EngineStream:
        self.opened += 1
        stream = self.stream_type(sample_rate=sample_rate, max_buffer_seconds=1.0)
        stream.start()
        return stream


async def test_slow_engine_drops_oldest_audio_but_counts_everything(tmp_path):
    engine = FakeEngine(StalledStream)
    async with LocalTranscriber(engine=lambda: engine, out_dir=tmp_path) as srv:
        async with connect(srv.url) as ws:
            await ws.send(start("slow"))
            await send_audio(ws, silence(3.0), pause=0)
            await ws.send(encode_event(EndEvent(callId="slow")))
            await read_segments(ws)
        call = srv.calls["slow"]
    assert call.audio_seconds == pytest.approx(3.0)
    assert call.dropped_audio_seconds == pytest.approx(2.0)
    summary = json.loads((tmp_path / "slow" / "call.json").read_text())
    assert summary["dropped_audio_seconds"] == pytest.approx(2.0)


async def test_engine_failure_is_contained_and_retried(tmp_path):
    engine = FakeEngine(BrokenStream)
    async with LocalTranscriber(engine=lambda: engine) as srv, connect(srv.url) as ws:
        await ws.send(start("broken"))
        await send_audio(ws, silence(1.0))
        call = srv.calls["broken"]
        # The first failure is retried at once, the second after 5 s of audio.
        assert engine.opened == 2 and call.engine_errors == 2
        await send_audio(ws, silence(3.8))
        assert engine.opened == 2
        await send_audio(ws, silence(1.6))
        await ws.send(encode_event(EndEvent(callId="broken")))
        await read_segments(ws)
        assert ws.close_code == 1000
    assert engine.opened == 3 and call.engine_errors == 3
    assert call.audio_seconds == pytest.approx(6.4) and call.ended


@pytest.mark.parametrize(
    ("call_id", "expected"),
    [("abc-123_X.y", "abc-123_X.y"), ("..", None), ("a/../../etc", None), ("", None)],
)
def test_safe_call_dir(call_id, expected):
    name = safe_call_dir(call_id)
    if expected is not None:
        assert name == expected
    assert name and "/" not in name and not name.startswith(".")
    assert safe_call_dir("a/b") != safe_call_dir("a_b")
