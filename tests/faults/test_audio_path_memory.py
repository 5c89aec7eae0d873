"""The Python side of the audio path keeps no per-frame state.

30 minutes of capture frames (18,000 of 100 ms) go through the real path short of Chromium:
a WebSocket client speaking capture.js's binary format → :class:`FrameServer` →
:class:`AudioCapture` → :class:`AudioPipeline` → the WAV recorder and the
:class:`TranscriberClient` → a real WebSocket transcriber. After a warm-up, the memory Python
has allocated must stay flat. The clock is simulated so the run takes seconds; the
whole-process 30-minute figure (Chromium included) is ``bench/bench_vp.py --duration 1800``.
"""

from __future__ import annotations

import asyncio
import gc
import struct
import tracemalloc
import wave
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from vp.capture import AudioCapture, FrameServer
from vp.pipeline import AudioPipeline
from vp.recording import WavRecorder
from vp.transcriber.client import TranscriberClient

# capture.js sendWs: seq, pageTsMs, sources, 0, peak, rms, dropped
HEADER = struct.Struct("<IdHHffI")
FRAME_S = 0.1
WARMUP_FRAMES = 2_000
FRAMES = 18_000  # 30 minutes
PCM = (np.sin(np.arange(1600) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_thirty_minutes_of_frames_leave_python_memory_flat(tmp_path: Path) -> None:
    received = {"bytes": 0, "end": 0}

    async def transcriber(ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                received["bytes"] += len(message)
            elif '"END"' in message:
                received["end"] += 1

    clock = Clock()
    async with serve(transcriber, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = TranscriberClient(f"ws://127.0.0.1:{port}", call_id="mem", agent_id="vp")
        recorder = WavRecorder(tmp_path / "recording.wav")
        pipeline = AudioPipeline([recorder.write, client.send_audio], clock=clock)
        capture = AudioCapture(lambda frame: pipeline.push_meeting(frame.pcm), clock=clock)
        frames = FrameServer()
        await frames.start()
        # What AudioCapture.install registers for a context of a Chromium with a FrameServer.
        page_url = frames.register(capture._on_ws_frame)
        client_task = asyncio.create_task(client.run())
        capture.start()
        pipeline.start()
        try:
            async with connect(f"{page_url}/page1", compression=None) as page:

                async def send(first: int, count: int) -> None:
                    for seq in range(first, first + count):
                        clock.now += FRAME_S
                        await page.send(HEADER.pack(seq, seq * 100.0, 1, 0, 0.25, 0.17, 0) + PCM)
                        assert int(await page.recv()) == seq  # the page's acknowledgement

                await send(1, WARMUP_FRAMES)
                gc.collect()
                tracemalloc.start()
                try:
                    base = tracemalloc.get_traced_memory()[0]
                    await send(1 + WARMUP_FRAMES, FRAMES - WARMUP_FRAMES)
                    gc.collect()
                    grown = tracemalloc.get_traced_memory()[0] - base
                finally:
                    tracemalloc.stop()
            assert await client.end(timeout=10)
        finally:
            await client_task
            recorder.close()
            await frames.aclose()

    # 16,000 frames carried 102 MB of stereo PCM; a few bytes of state per frame would show.
    assert grown < 256 * 1024, f"{grown} bytes still allocated after 16,000 frames"
    assert capture.health().frames_received == FRAMES
    assert pipeline.stats.emitted_samples == FRAMES * 1600
    assert pipeline.stats.dropped_samples == pipeline.stats.filled_samples == 0
    assert client.stats.dropped_frames == 0
    assert received == {"bytes": FRAMES * 6400, "end": 1}, "every frame reached the transcriber"
    with wave.open(str(tmp_path / "recording.wav")) as wav:
        assert wav.getnframes() == FRAMES * 1600
