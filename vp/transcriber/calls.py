"""The local transcriber's calls: their state, and the engines that transcribe them.

:class:`CallState` is everything the server knows about one callId (it survives reconnects).
:class:`CallTranscription` runs one engine stream per channel of a call on the call's audio
clock, turns engine results into LMA transcript segments (sent back on the call's current
connection, and handed to ``on_segment``) and writes the call's files. The WebSocket side —
handshakes, connections, reconnects, suspension — is vp.transcriber.server's.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import inspect
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import structlog
from websockets.asyncio.server import ServerConnection

from vp.transcriber.engines import Engine, EngineError
from vp.transcriber.engines.base import EngineResult, EngineStream
from vp.transcriber.protocol import CHANNELS, TranscriptSegment

log = structlog.get_logger(__name__)

SegmentCallback = Callable[[TranscriptSegment], Awaitable[None] | None]
Spawn = Callable[[Awaitable[Any], str], "asyncio.Task[Any]"]
Channel = Literal["CALLER", "AGENT"]

_MAX_EVENTS = 1000  # call events remembered per call (for tests and call.json)
_MAX_SPEAKER_CHANGES = 10_000
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def now_iso() -> str:
    """UTC now, ISO 8601 with milliseconds and Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_call_dir(call_id: str) -> str:
    """A file-system-safe directory name for a callId (no separators, no dot-dot).

    Readable ids pass through unchanged; any other id is cleaned and given a short hash
    suffix so that two different ids never share a directory.
    """
    cleaned = _SAFE_CHARS.sub("_", call_id).lstrip(".")[:100] or "call"
    if cleaned != call_id:
        digest = hashlib.sha256(call_id.encode()).hexdigest()[:10]
        cleaned = f"{cleaned}-{digest}"
    return cleaned


@dataclass(eq=False)
class ChannelStream:
    """One engine stream of a call channel, placed on the call's audio clock at ``base``."""

    name: Channel
    generation: int
    base: float  # call audio time (s) of the stream's first sample
    stream: EngineStream
    consumer: asyncio.Task[None] | None = None


@dataclass(eq=False)
class CallState:
    """Everything the server knows about one callId (also the per-call statistics)."""

    call_id: str
    agent_id: str
    sample_rate: int
    dir_name: str
    samples: int = 0  # per-channel samples received over all connections
    frames: int = 0
    connections: int = 0
    ended: bool = False  # END received
    suspended: bool = False  # engines flushed and files written; resumes on START
    started_at: str = field(default_factory=now_iso)
    ended_at: str | None = None
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_MAX_EVENTS))
    final_segments: int = 0
    partial_segments: int = 0
    unsent_segments: int = 0  # dropped from a full outbox or sent while disconnected
    engine_errors: int = 0
    dropped_seconds_closed: float = 0.0  # engine drops on streams already closed (seconds)
    initial_speaker: str = "n/a"
    speaker_times: list[float] = field(default_factory=list)
    speaker_names: list[str] = field(default_factory=list)
    connection: ServerConnection | None = field(default=None, repr=False)
    outbox: asyncio.Queue[str] | None = field(default=None, repr=False)
    channels: dict[str, ChannelStream] = field(default_factory=dict, repr=False)
    opening: set[str] = field(default_factory=set, repr=False)
    generations: int = 0
    agent_preroll: bytes = field(default=b"", repr=False)
    retry_after: dict[str, float] = field(default_factory=dict, repr=False)
    failures: dict[str, int] = field(default_factory=dict, repr=False)
    transcript: IO[str] | None = field(default=None, repr=False)
    grace_timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def audio_seconds(self) -> float:
        """Seconds of (stereo) call audio received, whatever the engines managed to decode."""
        return self.samples / self.sample_rate

    @property
    def now(self) -> float:
        return self.audio_seconds

    @property
    def dropped_audio_seconds(self) -> float:
        live = sum(ch.stream.dropped_seconds for ch in self.channels.values())
        return self.dropped_seconds_closed + live

    @property
    def connected(self) -> bool:
        return self.connection is not None

    @property
    def active_speaker(self) -> str:
        return self.speaker_names[-1] if self.speaker_names else self.initial_speaker

    def set_speaker(self, name: str) -> None:
        if name == self.active_speaker:
            return
        self.speaker_times.append(self.now)
        self.speaker_names.append(name)
        if len(self.speaker_times) > _MAX_SPEAKER_CHANGES:
            half = _MAX_SPEAKER_CHANGES // 2
            self.initial_speaker = self.speaker_names[half - 1]
            del self.speaker_times[:half]
            del self.speaker_names[:half]

    def speaker_at(self, t: float) -> str:
        i = bisect.bisect_right(self.speaker_times, t) - 1
        return self.speaker_names[i] if i >= 0 else self.initial_speaker

    def summary(self) -> dict[str, Any]:
        return {
            "callId": self.call_id,
            "agentId": self.agent_id,
            "samplingRate": self.sample_rate,
            "audio_seconds": round(self.audio_seconds, 3),
            "frames": self.frames,
            "connections": self.connections,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_received": self.ended,
            "final_segments": self.final_segments,
            "partial_segments": self.partial_segments,
            "unsent_segments": self.unsent_segments,
            "dropped_audio_seconds": round(self.dropped_audio_seconds, 3),
            "engine_errors": self.engine_errors,
            "speaker_changes": len(self.speaker_times),
        }


class CallTranscription:
    """The engine side of the server's calls (one instance serves every call).

    ``engine()`` returns the server's engine (None until it started); ``spawn`` starts a task
    the server owns.
    """

    def __init__(
        self,
        engine: Callable[[], Engine | None],
        spawn: Spawn,
        *,
        out_dir: Path | None,
        on_segment: SegmentCallback | None,
        agent_threshold: int,
        speaker_latency: float,
    ) -> None:
        self._engine = engine
        self._spawn = spawn
        self.out_dir = out_dir
        self._on_segment = on_segment
        self.agent_threshold = agent_threshold
        self.speaker_latency = speaker_latency

    async def on_audio(self, call: CallState, data: bytes) -> None:
        """One stereo frame: feed ch0 to CALLER, ch1 to AGENT (opened when the VP speaks)."""
        pcm = np.frombuffer(data, dtype="<i2").reshape(-1, CHANNELS)
        start = call.now
        call.samples += pcm.shape[0]
        call.frames += 1
        caller = await self._channel(call, "CALLER", start)
        if caller is not None:
            caller.stream.feed(pcm[:, 0].tobytes())
        mic = pcm[:, 1].tobytes()
        agent = call.channels.get("AGENT")
        if agent is None:
            peak = pcm[:, 1]
            if int(peak.max()) < self.agent_threshold and int(peak.min()) > -self.agent_threshold:
                call.agent_preroll = mic  # the VP is silent: no AGENT stream yet (saves CPU)
                return
            # Start the stream one frame early so the VAD sees the onset of the voice.
            preroll, call.agent_preroll = call.agent_preroll, b""
            agent = await self._channel(call, "AGENT", start - len(preroll) / 2 / call.sample_rate)
            if agent is not None and preroll:
                agent.stream.feed(preroll)
        if agent is not None:
            agent.stream.feed(mic)

    async def _channel(self, call: CallState, name: Channel, now: float) -> ChannelStream | None:
        existing = call.channels.get(name)
        if existing is not None:
            return existing
        engine = self._engine()
        if engine is None or name in call.opening or call.retry_after.get(name, 0.0) > now:
            return None
        call.opening.add(name)
        try:
            stream = await engine.open_stream(sample_rate=call.sample_rate)
        except EngineError as exc:
            self._engine_failed(call, name, now, exc, lived=0.0)
            return None
        finally:
            call.opening.discard(name)
        call.generations += 1
        ch = ChannelStream(name, call.generations, now, stream)
        ch.consumer = self._spawn(
            self._consume(call, ch), f"transcriber.{name.lower()}.{call.dir_name}"
        )
        call.channels[name] = ch
        return ch

    def _engine_failed(
        self, call: CallState, name: str, now: float, exc: EngineError, *, lived: float
    ) -> None:
        """Schedule a new stream: at once after one failure, then backing off in audio time.

        A stream that ran for 10 s of audio resets the count (LMA's rule for Transcribe
        reconnects). Remote streams also die of idleness while the client is away (Transcribe
        after 15 s), which is why the first retry is immediate. A permanent error starts at
        the backoff.
        """
        call.engine_errors += 1
        count = 1 if lived >= 10.0 else call.failures.get(name, 0) + 1
        if not exc.retryable:
            count = max(count, 2)
        call.failures[name] = count
        delay = 0.0 if count == 1 else min(300.0, 5.0 * 2 ** (count - 2))
        call.retry_after[name] = now + delay
        log.warning(
            "engine stream failed",
            call_id=call.call_id,
            channel=name,
            error=type(exc).__name__,
            retryable=exc.retryable,
        )

    async def _consume(self, call: CallState, ch: ChannelStream) -> None:
        try:
            async for result in ch.stream.results():
                await self._publish(call, ch, result)
        except EngineError as exc:
            self._engine_failed(call, ch.name, call.now, exc, lived=call.now - ch.base)
        finally:
            if call.channels.get(ch.name) is ch:
                del call.channels[ch.name]
                call.dropped_seconds_closed += ch.stream.dropped_seconds
                self._spawn(ch.stream.aclose(), "transcriber.stream-close")

    async def _publish(self, call: CallState, ch: ChannelStream, result: EngineResult) -> None:
        start = ch.base + result.start
        end = max(ch.base + result.end, start)
        if ch.name == "AGENT":
            speaker = call.agent_id
        else:
            speaker = call.speaker_at(min(start + self.speaker_latency, end))
        segment = TranscriptSegment(
            call_id=call.call_id,
            channel=ch.name,
            segment_id=f"{ch.name}-{ch.generation}-{result.utterance_id}",
            start_time=start,
            end_time=end,
            transcript=result.text,
            is_partial=result.is_partial,
            speaker=speaker,
        )
        if segment.is_partial:
            call.partial_segments += 1
        else:
            call.final_segments += 1
            self._write_final(call, segment)
        if call.outbox is not None:
            try:
                call.outbox.put_nowait(json.dumps(segment.to_wire()))
            except asyncio.QueueFull:
                call.unsent_segments += 1
        else:
            call.unsent_segments += 1
        if self._on_segment is not None:
            try:
                res = self._on_segment(segment)
                if inspect.isawaitable(res):
                    await res
            except Exception as exc:
                log.warning("on_segment callback failed", error=type(exc).__name__)

    # -- files ----------------------------------------------------------------------------
    def _call_dir(self, call: CallState) -> Path | None:
        if self.out_dir is None:
            return None
        path = self.out_dir / call.dir_name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _write_final(self, call: CallState, segment: TranscriptSegment) -> None:
        if call.transcript is None:
            path = self._call_dir(call)
            if path is None:
                return
            call.transcript = open(path / "transcript.jsonl", "a", encoding="utf-8")
        line = {
            "ts": now_iso(),
            "speaker": segment.speaker,
            "channel": segment.channel,
            "start": round(segment.start_time, 3),
            "end": round(segment.end_time, 3),
            "text": segment.transcript,
            "segment_id": segment.segment_id,
        }
        call.transcript.write(json.dumps(line, ensure_ascii=False) + "\n")
        call.transcript.flush()

    def write_summary(self, call: CallState) -> None:
        """``call.json``: the call's statistics (written atomically)."""
        path = self._call_dir(call)
        if path is None:
            return
        tmp = path / "call.json.tmp"
        tmp.write_text(json.dumps(call.summary(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path / "call.json")

    async def flush(self, call: CallState, timeout: float = 30.0) -> None:
        """Finish every engine stream of ``call`` and wait for its last segments."""
        channels = list(call.channels.values())
        for ch in channels:
            await ch.stream.finish()
        consumers = [ch.consumer for ch in channels if ch.consumer is not None]
        if consumers:
            _, pending = await asyncio.wait(consumers, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("engine flush timed out", call_id=call.call_id, streams=len(pending))
                await asyncio.wait(pending, timeout=5.0)
