"""The local reference transcriber: an LMA-protocol (contract 3) WebSocket server.

A client connects to ``ws://host:port/api/v1/ws``, sends START, then stereo PCM16 frames
(ch0 the meeting, ch1 the VP's own voice), SPEAKER_CHANGE events and finally END. The server
runs one speech-engine stream per channel and sends LMA-shaped ADD_TRANSCRIPT_SEGMENT frames
back on the call's current connection; with ``out_dir`` it also writes
``<out_dir>/<callId>/transcript.jsonl`` (finals) and ``call.json`` (a summary).

Call state is keyed by callId and survives reconnects: a client that drops and re-sends START
with the same callId continues on the same audio clock and transcript. A call whose client
stays away longer than ``reconnect_grace`` is suspended (engines flushed, files written); a
later START resumes it. END is final: a START for an ended call is refused.

Bounds: websockets' ``max_size`` and :func:`check_audio_frame` per frame; ``max_calls`` live
calls; per-stream engine buffers that drop the *oldest* audio when the engine lags (counted in
``dropped_audio_seconds``; ``audio_seconds`` still counts everything received); a per-connection
outbox that drops segments when the client does not read (finals are still written to files).

Logs carry ids and counts only — never transcript text, speaker names or tokens.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import http
import inspect
import json
import re
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal
from urllib.parse import parse_qs, urlsplit

import jwt
import numpy as np
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vp.transcriber.engines import DEFAULT_ENGINE, Engine, EngineError, create_engine
from vp.transcriber.engines.base import EngineResult, EngineStream
from vp.transcriber.protocol import (
    CHANNELS,
    LMA_PATH,
    MAX_FRAME_BYTES,
    EndEvent,
    ProtocolError,
    SpeakerChangeEvent,
    StartEvent,
    TranscriptSegment,
    check_audio_frame,
    parse_event,
)

__all__ = ["CallState", "LocalTranscriber", "SegmentCallback", "safe_call_dir", "serve_forever"]

log = structlog.get_logger(__name__)

SegmentCallback = Callable[[TranscriptSegment], Awaitable[None] | None]
EngineSpec = str | Callable[[], Engine]
Channel = Literal["CALLER", "AGENT"]

# WebSocket close codes (RFC 6455).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013

_MAX_EVENTS = 1000  # call events remembered per call (for tests and call.json)
_MAX_SPEAKER_CHANGES = 10_000
_OUTBOX_SIZE = 256
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def _now() -> str:
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


class _Reject(Exception):
    """Close the connection with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class _ChannelStream:
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
    started_at: str = field(default_factory=_now)
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
    channels: dict[str, _ChannelStream] = field(default_factory=dict, repr=False)
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


class LocalTranscriber:
    """The contract-3 WebSocket transcriber, for tests, demos and offline use.

    Args:
        host, port: where to listen (port 0 picks a free port; see :attr:`url`).
        engine: a registered engine name (see ``vp.transcriber.engines.ENGINES``) or a
            zero-argument factory returning an :class:`Engine`.
        out_dir: where ``<callId>/transcript.jsonl`` and ``call.json`` go (None: no files).
        jwt_secret: require an HS256 JWT (``Authorization: Bearer`` header, or the
            ``authorization``/``token`` query parameter); HTTP 401 otherwise.
        on_segment: called with every segment (partials and finals), sync or async.
        max_calls: live calls (connected or within the reconnect grace); more get 1013.
        reconnect_grace: seconds a disconnected call keeps its engines before suspension.
        start_timeout: seconds a new connection has to send START.
        agent_threshold: peak |sample| on ch1 that counts as the VP speaking (opens AGENT).
        speaker_latency: a speaker change reported up to this many seconds after an
            utterance starts still names it (DOM speaker indicators lag the audio).
        max_finished_calls: suspended/ended calls kept in :attr:`calls` for inspection.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: EngineSpec = DEFAULT_ENGINE,
        out_dir: Path | None = None,
        jwt_secret: str | None = None,
        on_segment: SegmentCallback | None = None,
        max_calls: int = 16,
        reconnect_grace: float = 300.0,
        start_timeout: float = 30.0,
        agent_threshold: int = 100,
        speaker_latency: float = 0.5,
        max_finished_calls: int = 1000,
    ) -> None:
        self.host = host
        self.port = port
        self._engine_spec = engine
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self._jwt_secret = jwt_secret
        self._on_segment = on_segment
        self.max_calls = max_calls
        self.reconnect_grace = reconnect_grace
        self.start_timeout = start_timeout
        self.agent_threshold = agent_threshold
        self.speaker_latency = speaker_latency
        self.max_finished_calls = max_finished_calls
        self.calls: OrderedDict[str, CallState] = OrderedDict()
        self.engine: Engine | None = None
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            return
        spec = self._engine_spec
        self.engine = create_engine(spec) if isinstance(spec, str) else spec()
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=max(MAX_FRAME_BYTES * 4, 1 << 16),
            max_queue=16,
            compression=None,  # PCM does not compress; deflate would only cost CPU
        )
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])
        log.info("transcriber listening", url=self.url, engine=self.engine.name)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{LMA_PATH}"

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        for call in list(self.calls.values()):
            if not call.suspended:
                await self._suspend(call)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        if self.engine is not None:
            await self.engine.aclose()
        log.info("transcriber closed", calls=len(self.calls))

    async def __aenter__(self) -> LocalTranscriber:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- handshake ----------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path == "/health/check":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if parts.path != LMA_PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        if self._jwt_secret is None:
            return None
        token = _bearer(request.headers.get("Authorization"))
        if token is None:
            query = parse_qs(parts.query)
            token = _bearer(next(iter(query.get("authorization", [])), None))
            token = token or next(iter(query.get("token", [])), None)
        if not token:
            log.info("handshake rejected", why="no token")
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        try:
            jwt.decode(token, self._jwt_secret, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            log.info("handshake rejected", why=type(exc).__name__)
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    # -- connections --------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        call: CallState | None = None
        sender: asyncio.Task[None] | None = None
        try:
            try:
                first = await asyncio.wait_for(ws.recv(), timeout=self.start_timeout)
            except TimeoutError:
                raise _Reject(CLOSE_POLICY_VIOLATION, "START expected") from None
            if not isinstance(first, str):
                raise _Reject(CLOSE_POLICY_VIOLATION, "first frame must be a START text frame")
            event = _parse(first)
            if not isinstance(event, StartEvent):
                raise _Reject(CLOSE_POLICY_VIOLATION, "first frame must be START")
            call = await self._attach(event, ws)
            outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=_OUTBOX_SIZE)
            call.outbox = outbox
            sender = self._spawn(_send_loop(ws, outbox), f"transcriber.send.{call.dir_name}")
            async for message in ws:
                if call.connection is not ws:
                    break  # superseded by a newer connection of the same call
                if isinstance(message, bytes):
                    try:
                        check_audio_frame(message)
                    except ProtocolError as exc:
                        too_big = len(message) > MAX_FRAME_BYTES
                        code = CLOSE_TOO_BIG if too_big else CLOSE_POLICY_VIOLATION
                        raise _Reject(code, str(exc)) from None
                    await self._on_audio(call, message)
                    continue
                event = _parse(message)
                if event.callId != call.call_id:
                    raise _Reject(CLOSE_POLICY_VIOLATION, "callId does not match START")
                call.events.append(event.model_dump())
                if isinstance(event, SpeakerChangeEvent):
                    call.set_speaker(event.activeSpeaker)
                elif isinstance(event, StartEvent):
                    call.set_speaker(event.activeSpeaker)  # a repeated START: nothing new
                elif isinstance(event, EndEvent):
                    await self._end(call)
                    await _drain(outbox, timeout=5.0)
                    await ws.close(CLOSE_NORMAL, "END")
                    break
        except _Reject as rej:
            log.info(
                "connection rejected",
                call_id=call.call_id if call else None,
                code=rej.code,
                why=rej.reason,
            )
            await ws.close(rej.code, rej.reason[:120])
        except ConnectionClosed:
            pass
        finally:
            if sender is not None:
                sender.cancel()
            if call is not None and call.connection is ws:
                call.connection = None
                call.outbox = None
                if not call.ended and not call.suspended and not self._closing:
                    loop = asyncio.get_running_loop()
                    call.grace_timer = loop.call_later(
                        self.reconnect_grace, self._grace_expired, call
                    )
                log.info(
                    "call disconnected",
                    call_id=call.call_id,
                    audio_seconds=round(call.audio_seconds, 2),
                    ended=call.ended,
                )

    async def _attach(self, start: StartEvent, ws: ServerConnection) -> CallState:
        call = self.calls.get(start.callId)
        if call is not None and call.ended:
            raise _Reject(CLOSE_POLICY_VIOLATION, "call already ended")
        if call is None or call.suspended:
            live = sum(1 for c in self.calls.values() if not c.suspended and not c.ended)
            if live >= self.max_calls:
                raise _Reject(CLOSE_TRY_AGAIN_LATER, "too many calls")
        if call is not None:
            # Wait out a suspension in progress (grace expiry) before resuming the call.
            async with call.lock:
                pass
            if call.ended:
                raise _Reject(CLOSE_POLICY_VIOLATION, "call already ended")
        if call is None:
            call = CallState(
                call_id=start.callId,
                agent_id=start.agentId,
                sample_rate=start.samplingRate,
                dir_name=safe_call_dir(start.callId),
                initial_speaker=start.activeSpeaker,
            )
            self.calls[start.callId] = call
            self._prune()
            log.info("call started", call_id=call.call_id, sample_rate=call.sample_rate)
        else:
            if start.samplingRate != call.sample_rate:
                raise _Reject(CLOSE_POLICY_VIOLATION, "samplingRate changed on reconnect")
            call.set_speaker(start.activeSpeaker)
            call.suspended = False
            log.info(
                "call resumed",
                call_id=call.call_id,
                audio_seconds=round(call.audio_seconds, 2),
                connections=call.connections + 1,
            )
        if call.grace_timer is not None:
            call.grace_timer.cancel()
            call.grace_timer = None
        old = call.connection
        call.connection = ws
        call.connections += 1
        call.events.append(start.model_dump())
        if old is not None and old is not ws:
            # The client reconnected before we noticed the old socket die.
            self._spawn(old.close(CLOSE_NORMAL, "superseded"), "transcriber.close-old")
        return call

    def _prune(self) -> None:
        finished = [k for k, c in self.calls.items() if c.suspended or c.ended]
        for key in finished[: max(0, len(finished) - self.max_finished_calls)]:
            del self.calls[key]

    def _grace_expired(self, call: CallState) -> None:
        call.grace_timer = None
        if call.connection is None and not call.ended and not call.suspended:
            self._spawn(self._suspend(call), f"transcriber.suspend.{call.dir_name}")

    # -- audio --------------------------------------------------------------------------------

    async def _on_audio(self, call: CallState, data: bytes) -> None:
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

    async def _channel(self, call: CallState, name: Channel, now: float) -> _ChannelStream | None:
        existing = call.channels.get(name)
        if existing is not None:
            return existing
        if self.engine is None or name in call.opening or call.retry_after.get(name, 0.0) > now:
            return None
        call.opening.add(name)
        try:
            stream = await self.engine.open_stream(sample_rate=call.sample_rate)
        except EngineError as exc:
            self._engine_failed(call, name, now, exc, lived=0.0)
            return None
        finally:
            call.opening.discard(name)
        call.generations += 1
        ch = _ChannelStream(name, call.generations, now, stream)
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

    async def _consume(self, call: CallState, ch: _ChannelStream) -> None:
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

    async def _publish(self, call: CallState, ch: _ChannelStream, result: EngineResult) -> None:
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

    # -- files --------------------------------------------------------------------------------

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
            "ts": _now(),
            "speaker": segment.speaker,
            "channel": segment.channel,
            "start": round(segment.start_time, 3),
            "end": round(segment.end_time, 3),
            "text": segment.transcript,
            "segment_id": segment.segment_id,
        }
        call.transcript.write(json.dumps(line, ensure_ascii=False) + "\n")
        call.transcript.flush()

    def _write_summary(self, call: CallState) -> None:
        path = self._call_dir(call)
        if path is None:
            return
        tmp = path / "call.json.tmp"
        tmp.write_text(json.dumps(call.summary(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path / "call.json")

    # -- ending -------------------------------------------------------------------------------

    async def _flush_engines(self, call: CallState, timeout: float = 30.0) -> None:
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

    async def _end(self, call: CallState) -> None:
        call.ended = True
        await self._suspend(call)
        log.info(
            "call ended",
            call_id=call.call_id,
            audio_seconds=round(call.audio_seconds, 2),
            frames=call.frames,
            finals=call.final_segments,
        )

    async def _suspend(self, call: CallState) -> None:
        """Flush engines and write files; the call keeps its clock and can resume."""
        async with call.lock:
            if call.grace_timer is not None:
                call.grace_timer.cancel()
                call.grace_timer = None
            await self._flush_engines(call)
            call.suspended = True
            call.ended_at = _now()
            if call.transcript is not None:
                call.transcript.close()
                call.transcript = None
            try:
                self._write_summary(call)
            except OSError as exc:
                log.error("call.json not written", call_id=call.call_id, error=str(exc))
            self._prune()


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _parse(text: str) -> StartEvent | SpeakerChangeEvent | EndEvent:
    try:
        return parse_event(text)
    except ProtocolError as exc:
        raise _Reject(CLOSE_POLICY_VIOLATION, str(exc)) from None


async def _send_loop(ws: ServerConnection, outbox: asyncio.Queue[str]) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            text = await outbox.get()
            try:
                await ws.send(text)
            finally:
                outbox.task_done()


async def _drain(outbox: asyncio.Queue[str], timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(outbox.join(), timeout)


async def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8080,
    engine: EngineSpec = DEFAULT_ENGINE,
    out_dir: Path | None = None,
    jwt_secret: str | None = None,
) -> None:
    """Run a LocalTranscriber until cancelled (the ``vp transcriber`` command)."""
    async with LocalTranscriber(
        host=host, port=port, engine=engine, out_dir=out_dir, jwt_secret=jwt_secret
    ):
        await asyncio.Event().wait()
