"""The audio pipeline: meeting PCM from the page + the VP's own voice → stereo frames.

Output: interleaved stereo PCM16 at 16 kHz, ch0 the meeting, ch1 the VP's own voice, in
frames of at most ``frame_ms`` (≤ 200 ms), delivered to every sink (recording, transcriber)
in real time.

Timing policy. The page's AudioContext is the clock: captured frames are forwarded as they
arrive, so latency stays one capture frame. Two bounds keep the stream real time whatever the
page does:
  * stall fill — when no capture arrives for ``stall_ms`` (page hung, capture not started),
    silence is emitted up to the wall clock, so the transcriber still gets real-time audio;
  * lead drop — when the page delivers a burst that would put the stream more than
    ``max_lead_ms`` ahead of the wall clock (e.g. frames queued while its main thread was
    blocked after we already filled silence), the oldest excess samples are dropped.
Both are counted in :class:`PipelineStats`; neither happens in a healthy call.

The voice buffer (ch1) is bounded at ``max_voice_s``; on overflow the oldest voice audio is
dropped (a late reply is worse than a clipped one) and counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vp.transcriber.protocol import MAX_FRAME_MS, SAMPLE_RATE

FrameSink = Callable[[bytes], None]


@dataclass(slots=True)
class PipelineStats:
    emitted_samples: int = 0
    frames: int = 0
    filled_samples: int = 0  # silence inserted because capture stalled
    dropped_samples: int = 0  # meeting audio dropped because it ran ahead of the wall clock
    voice_dropped_samples: int = 0
    max_frame_bytes: int = 0

    @property
    def emitted_seconds(self) -> float:
        return self.emitted_samples / SAMPLE_RATE


class AudioPipeline:
    """Turns mono meeting PCM (and queued voice PCM) into paced stereo frames."""

    def __init__(
        self,
        sinks: Sequence[FrameSink],
        *,
        frame_ms: int = 100,
        stall_ms: int = 500,
        max_lead_ms: int = 1000,
        max_voice_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 10 <= frame_ms <= MAX_FRAME_MS:
            raise ValueError(f"frame_ms must be within 10..{MAX_FRAME_MS}")
        self._sinks = list(sinks)
        self._frame_samples = SAMPLE_RATE * frame_ms // 1000
        self._stall_samples = SAMPLE_RATE * stall_ms // 1000
        self._max_lead_samples = SAMPLE_RATE * max_lead_ms // 1000
        self._max_voice_samples = int(SAMPLE_RATE * max_voice_s)
        self._clock = clock
        self._started_at: float | None = None
        self._ended = False  # flush() ended the stream
        self._voice = np.zeros(0, dtype=np.int16)
        self.stats = PipelineStats()

    @property
    def started(self) -> bool:
        return self._started_at is not None

    def start(self) -> None:
        """Start the stream clock: from now on, the output keeps pace with the wall clock."""
        if self._started_at is None:
            self._started_at = self._clock()

    def _wall_samples(self) -> int:
        if self._started_at is None:
            return 0
        return int((self._clock() - self._started_at) * SAMPLE_RATE)

    def push_meeting(self, pcm: bytes) -> None:
        """Accept mono PCM16 of the meeting (hot path: called ~10 times a second)."""
        if self._started_at is None or self._ended or not pcm:
            return
        meeting = np.frombuffer(pcm, dtype="<i2")
        lead = self.stats.emitted_samples + meeting.size - self._wall_samples()
        excess = lead - self._max_lead_samples
        if excess > 0:
            drop = min(excess, meeting.size)
            self.stats.dropped_samples += drop
            meeting = meeting[drop:]
        if meeting.size:
            self._emit(meeting)

    def push_voice(self, pcm: bytes) -> None:
        """Queue mono PCM16 of the VP's own voice for ch1."""
        voice = np.frombuffer(pcm, dtype="<i2")
        merged = np.concatenate((self._voice, voice))
        overflow = merged.size - self._max_voice_samples
        if overflow > 0:
            self.stats.voice_dropped_samples += overflow
            merged = merged[overflow:]
        self._voice = merged

    def clear_voice(self) -> int:
        """Drop the VP's queued voice (a barge-in cut it short); returns the samples dropped."""
        dropped = int(self._voice.size)
        self._voice = np.zeros(0, dtype=np.int16)
        return dropped

    def fill_stall(self) -> int:
        """Emit silence if capture has stalled; returns the samples filled. Called by run()."""
        if self._started_at is None or self._ended:
            return 0
        lag = self._wall_samples() - self.stats.emitted_samples
        if lag < self._stall_samples:
            return 0
        # Leave one frame of slack so a capture frame arriving right now is not pushed ahead.
        fill = lag - self._frame_samples
        if fill <= 0:
            return 0
        self.stats.filled_samples += fill
        self._emit(np.zeros(fill, dtype=np.int16))
        return fill

    async def run(self, interval: float = 0.1) -> None:
        """Stall watchdog; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.fill_stall()

    def flush(self) -> None:
        """Bring the stream level with the wall clock and end it (once, when the call ends).

        Nothing is emitted after this: the sinks close one after the other (the transcriber
        takes no audio once END is under way, recording.wav is closed later), so a stall fill
        in between would reach only some of them."""
        if self._started_at is None or self._ended:
            return
        self._ended = True
        lag = self._wall_samples() - self.stats.emitted_samples
        if lag > self._stall_samples:
            self.stats.filled_samples += lag
            self._emit(np.zeros(lag, dtype=np.int16))

    def _emit(self, meeting: np.ndarray) -> None:
        step = self._frame_samples
        for offset in range(0, meeting.size, step):
            chunk = meeting[offset : offset + step]
            n = chunk.size
            stereo = np.zeros(n * 2, dtype=np.int16)
            stereo[0::2] = chunk
            if self._voice.size:
                take = min(n, self._voice.size)
                stereo[1 : 2 * take : 2] = self._voice[:take]
                self._voice = self._voice[take:]
            frame = stereo.astype("<i2", copy=False).tobytes()
            self.stats.emitted_samples += n
            self.stats.frames += 1
            if len(frame) > self.stats.max_frame_bytes:
                self.stats.max_frame_bytes = len(frame)
            for sink in self._sinks:
                sink(frame)
