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
import contextlib
import http
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vp.transcriber.calls import (
    CallState,
    CallTranscription,
    SegmentCallback,
    now_iso,
    safe_call_dir,
)
from vp.transcriber.engines import DEFAULT_ENGINE, Engine, create_engine
from vp.transcriber.protocol import (
    LMA_PATH,
    MAX_FRAME_BYTES,
    EndEvent,
    ProtocolError,
    SpeakerChangeEvent,
    StartEvent,
    check_audio_frame,
    parse_event,
)

__all__ = ["CallState", "LocalTranscriber", "SegmentCallback", "safe_call_dir", "serve_forever"]

log = structlog.get_logger(__name__)

EngineSpec = str | Callable[[], Engine]
_OUTBOX_SIZE = 256  # segments waiting for a client that does not read

# WebSocket close codes (RFC 6455).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013


class _Reject(Exception):
    """Close the connection with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


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
        self.max_calls = max_calls
        self.reconnect_grace = reconnect_grace
        self.start_timeout = start_timeout
        self.max_finished_calls = max_finished_calls
        self.calls: OrderedDict[str, CallState] = OrderedDict()
        self.engine: Engine | None = None
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._transcription = CallTranscription(
            lambda: self.engine,
            self._spawn,
            out_dir=self.out_dir,
            on_segment=on_segment,
            agent_threshold=agent_threshold,
            speaker_latency=speaker_latency,
        )

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
                    await self._transcription.on_audio(call, message)
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

    # -- ending -------------------------------------------------------------------------------

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
            await self._transcription.flush(call)
            call.suspended = True
            call.ended_at = now_iso()
            if call.transcript is not None:
                call.transcript.close()
                call.transcript = None
            try:
                self._transcription.write_summary(call)
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
