"""A transcriber that stops reading (TCP backpressure): the client's memory stays bounded,
the overflow policy (drop the oldest audio) is logged and counted, and once the dead consumer
is detected the client reconnects and streams on — in order, without duplicates.

Real components: a websockets server on loopback whose first connection stops reading
(its transport paused, so the kernel buffers fill and the client's sends block).
"""

from __future__ import annotations

import asyncio
import socket
import tracemalloc

import numpy as np
import structlog
from websockets.asyncio.server import ServerConnection, serve

from vp.transcriber.client import SEND_BUFFER_BYTES, TranscriberClient

FRAME = 6400  # 100 ms of 16 kHz stereo PCM16
SERVER_RCVBUF = 32 * 1024


def numbered(i: int) -> bytes:
    return np.full(FRAME // 2, i, dtype="<i2").tobytes()


def number_of(frame: bytes) -> int:
    return int(np.frombuffer(frame, "<i2")[0])


class StallingServer:
    """The first connection reads START, then stops reading for good; later ones read."""

    def __init__(self) -> None:
        self.received: list[list[int]] = []
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()  # set by the test when it is done

    async def handler(self, ws: ServerConnection) -> None:
        mine: list[int] = []
        self.received.append(mine)
        first = len(self.received) == 1
        async for message in ws:
            if isinstance(message, bytes):
                mine.append(number_of(message))
            elif first and '"START"' in message:
                ws.transport.pause_reading()  # a consumer that stopped reading
                self.stalled.set()
                # Paused, this side never notices the client giving up: wait for the test.
                await self.release.wait()
                ws.transport.abort()
                return


async def test_stalled_consumer_bounded_memory_drop_oldest_logged_then_reconnect():
    server = StallingServer()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SERVER_RCVBUF)
    listener.bind(("127.0.0.1", 0))
    async with serve(server.handler, sock=listener, compression=None) as srv:
        try:
            client, produced, after = await stall_then_recover(
                server, srv.sockets[0].getsockname()[1]
            )
        finally:
            server.release.set()

    got = [n for conn in server.received for n in conn]
    assert got == sorted(set(got)), "in order, each frame at most once"
    assert got[-30:] == list(range(after, produced)), "audio after the reconnect all arrives"
    # What the stalled connection swallowed is bounded by the (fixed) socket buffers.
    stranded = client.stats.sent_frames - len(got)
    assert 0 <= stranded * FRAME <= 2 * SEND_BUFFER_BYTES + 4 * SERVER_RCVBUF + 2**15 + FRAME
    assert client.stats.outages >= 1


async def stall_then_recover(
    server: StallingServer, port: int
) -> tuple[TranscriberClient, int, int]:
    client = TranscriberClient(
        f"ws://127.0.0.1:{port}/api/v1/ws",
        call_id="slow",
        agent_id="Bot",
        buffer_seconds=2.0,
        backoff_initial=0.05,
        stall_timeout=2.0,
    )
    bound = 20 * FRAME  # 2 s
    produced = 0
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(server.stalled.wait(), 10)
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            # 2,000 frames (200 s of audio, 12.8 MB) as fast as the loop runs: far more than
            # the outbox, the socket buffers and the WebSocket write buffer together hold.
            for _ in range(2000):
                client.send_audio(numbered(produced))
                produced += 1
                assert client.stats.buffered_bytes <= bound + FRAME
                await asyncio.sleep(0)
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            overflow = [e for e in logs if e["event"] == "transcriber.buffer_overflow"]
            assert overflow and overflow[0]["policy"] == "drop-oldest"
            assert overflow[0]["log_level"] == "warning"
            stats = client.stats
            assert stats.dropped_frames > 1000, "the stalled consumer forced drops"
            assert stats.max_buffered_bytes <= bound + FRAME
            assert peak < 2 * 1024 * 1024, f"{peak} bytes traced while pushing 12.8 MB"
            # Every frame is accounted for: sent into the socket, dropped, or still queued.
            queued = stats.buffered_bytes // FRAME
            assert stats.sent_frames + stats.dropped_frames + queued == produced

            # The dead consumer is detected (nothing accepted for stall_timeout) and a new
            # connection opened.
            for _ in range(400):
                if len(server.received) >= 2 and client.connected:
                    break
                await asyncio.sleep(0.05)
            assert len(server.received) >= 2 and client.connected, "the client reconnected"
            after = produced
            for _ in range(30):
                client.send_audio(numbered(produced))
                produced += 1
                await asyncio.sleep(0.01)
            assert await client.end() is True
            await task
        finally:
            if not task.done():
                task.cancel()
    assert any(e["event"] == "transcriber.reconnected" for e in logs)
    return client, produced, after
