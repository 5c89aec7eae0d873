"""The transcriber client against a real WebSocket server on loopback."""

import asyncio
import json
import socket

import numpy as np
import pytest

from tests.recording_server import RecordingServer
from vp.errors import TranscriberUnavailable
from vp.transcriber.client import TranscriberClient
from vp.transcriber.outbox import SpeakerChangeItem

FRAME = 6400  # 100 ms stereo


def numbered_frame(i: int) -> bytes:
    return np.full(FRAME // 2, i, dtype="<i2").tobytes()


async def run_client(client: TranscriberClient) -> asyncio.Task:
    return asyncio.create_task(client.run())


async def test_start_audio_speaker_end_in_order_with_token():
    server = await RecordingServer(token="tok-123").start()
    client = TranscriberClient(server.url, call_id="call-1", agent_id="Bot", token="tok-123")
    task = await run_client(client)
    for i in range(5):
        client.send_audio(numbered_frame(i))
    client.speaker_change("Alice")
    for i in range(5, 10):
        client.send_audio(numbered_frame(i))
    await asyncio.sleep(0.2)
    assert await client.end() is True
    await task
    await server.aclose()
    (conn,) = server.connections
    assert conn.headers["authorization"] == "Bearer tok-123"
    assert conn.order[0] == "START" and conn.order[-1] == "END"
    assert conn.order.index("SPEAKER_CHANGE") == 6  # after START and five frames
    start = conn.events[0]
    assert start["callId"] == "call-1" and start["agentId"] == "Bot"
    assert start["samplingRate"] == 16000
    assert [np.frombuffer(f, "<i2")[0] for f in conn.frames] == list(range(10))
    assert conn.events[1] == {
        "callEvent": "SPEAKER_CHANGE",
        "callId": "call-1",
        "agentId": "Bot",
        "activeSpeaker": "Alice",
    }


async def test_reconnect_resends_start_and_loses_nothing():
    server = await RecordingServer(drop_after_frames=20).start()
    client = TranscriberClient(server.url, call_id="call-2", agent_id="Bot", backoff_initial=0.05)
    task = await run_client(client)
    client.speaker_change("Bob")
    for i in range(60):  # 6 s of audio produced at 20x real time, across the drop
        client.send_audio(numbered_frame(i))
        await asyncio.sleep(0.005)
    await client.end()
    await task
    await server.aclose()
    assert len(server.connections) == 2
    starts = [e for e in server.all_events if e["callEvent"] == "START"]
    assert [s["callId"] for s in starts] == ["call-2", "call-2"]
    assert starts[1]["activeSpeaker"] == "Bob"  # the speaker at the resumption point
    received = [int(np.frombuffer(f, "<i2")[0]) for f in server.all_frames]
    assert received == list(range(60)), "every frame exactly once, in order"
    assert server.all_events[-1]["callEvent"] == "END"
    assert client.stats.dropped_frames == 0


async def test_outage_longer_than_buffer_drops_oldest_and_reports_it():
    client = TranscriberClient(
        "ws://127.0.0.1:9/api/v1/ws", call_id="c", agent_id="Bot", buffer_seconds=1.0
    )
    client.speaker_change("Ann")
    for i in range(30):  # 3 s into a 1 s buffer
        client.send_audio(numbered_frame(i))
    assert client.stats.dropped_frames == 20
    assert client.stats.dropped_seconds == pytest.approx(2.0)
    # the speaker change survives, ahead of the audio that is left
    assert next(iter(client._outbox)) == SpeakerChangeItem("Ann")
    assert client.stats.buffered_bytes == 10 * FRAME


async def test_unreachable_transcriber_fails_within_bound():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens
    client = TranscriberClient(
        f"ws://127.0.0.1:{port}/api/v1/ws",
        call_id="c",
        agent_id="Bot",
        unavailable_after=0.5,
        backoff_initial=0.05,
    )
    with pytest.raises(TranscriberUnavailable, match="unreachable"):
        await asyncio.wait_for(client.run(), 5)


async def test_bad_token_is_permanent():
    server = await RecordingServer(token="right").start()
    client = TranscriberClient(server.url, call_id="c", agent_id="Bot", token="wrong")
    with pytest.raises(TranscriberUnavailable, match="401"):
        await asyncio.wait_for(client.run(), 5)
    await server.aclose()
    assert server.rejected == 1


async def test_segments_from_back_channel_reach_the_callback():
    from websockets.asyncio.server import serve

    async def handler(ws):
        async for message in ws:
            if isinstance(message, str) and json.loads(message)["callEvent"] == "START":
                seg = {
                    "EventType": "ADD_TRANSCRIPT_SEGMENT",
                    "CallId": "c9",
                    "Channel": "CALLER",
                    "SegmentId": "s1",
                    "StartTime": 0.0,
                    "EndTime": 1.0,
                    "Transcript": "hi there",
                    "IsPartial": False,
                    "Speaker": "Ann",
                }
                await ws.send(json.dumps(seg))

    got = []
    async with serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = TranscriberClient(
            f"ws://127.0.0.1:{port}/", call_id="c9", agent_id="Bot", on_segment=got.append
        )
        task = asyncio.create_task(client.run())
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.02)
        await client.end()
        await task
    assert got and got[0].transcript == "hi there" and got[0].speaker == "Ann"
