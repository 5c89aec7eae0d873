"""Amazon Transcribe streaming engine (needs the ``vp[aws]`` extra).

One Transcribe streaming session per call channel: PCM16 at the stream's sample rate is sent
as audio events of at most 200 ms, and every ``TranscriptEvent`` result becomes an
:class:`~vp.transcriber.engines.base.EngineResult` (``result_id`` links partials to their
final). Region comes from ``region=`` or ``AWS_REGION``/``AWS_DEFAULT_REGION``; language from
``language_code=`` or ``VP_TRANSCRIBE_LANGUAGE`` (default ``en-US``). Credentials follow the
normal AWS chain inside ``amazon-transcribe``.

The engine touches only a small surface of the SDK, so tests inject a fake client::

    client.start_stream_transcription(language_code=, media_sample_rate_hz=, media_encoding=)
        -> stream with .input_stream.send_audio_event(audio_chunk=) / .input_stream.end_stream()
           and .output_stream (async iterable of amazon_transcribe.model.TranscriptEvent)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import structlog

from vp.settings import VpSettings
from vp.transcriber.engines.base import BufferedStream, Engine, EngineError, EngineResult

__all__ = ["AwsTranscribeEngine", "ClientFactory"]

log = structlog.get_logger(__name__)

ClientFactory = Callable[[str], Any]
"""Builds a TranscribeStreamingClient-like object for a region."""

# Transcribe's own limit is 32 KB per audio event; it recommends 50–200 ms chunks.
_MAX_CHUNK_SECONDS = 0.2
# Service errors a fresh stream may get past.
_RETRYABLE = {
    "InternalFailureException",
    "LimitExceededException",
    "ServiceUnavailableException",
    "HTTPException",
}


def _import_transcribe() -> Any:
    try:
        import amazon_transcribe.client
        import amazon_transcribe.model
    except ImportError as exc:
        raise EngineError(
            "the aws-transcribe engine needs the amazon-transcribe package: "
            "pip install 'vp[transcribe]'",
            retryable=False,
        ) from exc
    return amazon_transcribe


def _default_client(region: str) -> Any:
    at = _import_transcribe()
    return at.client.TranscribeStreamingClient(region=region)


class AwsTranscribeStream(BufferedStream):
    def __init__(self, engine: AwsTranscribeEngine, *, sample_rate: int) -> None:
        super().__init__(sample_rate=sample_rate, max_buffer_seconds=engine.max_buffer_seconds)
        self._engine = engine

    def _translate(self, exc: Exception) -> EngineError:
        name = type(exc).__name__
        # Only the class name: service messages can echo request details.
        return EngineError(f"Amazon Transcribe failed: {name}", retryable=name in _RETRYABLE)

    async def _run(self) -> None:
        engine = self._engine
        client = engine._client_factory(engine.region)
        stream = await client.start_stream_transcription(
            language_code=engine.language_code,
            media_sample_rate_hz=self.sample_rate,
            media_encoding="pcm",
        )
        loop = asyncio.get_running_loop()
        sender = loop.create_task(self._send(stream.input_stream), name="aws-transcribe.send")
        receiver = loop.create_task(
            self._receive(stream.output_stream), name="aws-transcribe.receive"
        )
        try:
            # The output ends after end_stream() (or when the service ends the session); a
            # failing sender must not leave the receiver waiting forever, and vice versa.
            pending: set[asyncio.Task[None]] = {sender, receiver}
            while receiver in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # re-raise its failure
        finally:
            for task in (sender, receiver):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _send(self, input_stream: Any) -> None:
        max_bytes = int(self.sample_rate * _MAX_CHUNK_SECONDS) * 2
        while (pcm := await self._take(max_bytes)) is not None:
            # _take returns whole chunks; split any that are still too big.
            for i in range(0, len(pcm), max_bytes):
                await input_stream.send_audio_event(audio_chunk=pcm[i : i + max_bytes])
        await input_stream.end_stream()

    async def _receive(self, output_stream: Any) -> None:
        at = _import_transcribe()
        async for event in output_stream:
            if not isinstance(event, at.model.TranscriptEvent):
                continue
            for result in event.transcript.results or ():
                if not result.alternatives:
                    continue
                text = (result.alternatives[0].transcript or "").strip()
                if not text:
                    continue
                start = float(result.start_time or 0.0)
                end = float(result.end_time or start)
                await self._emit(
                    EngineResult(
                        text=text,
                        start=self._stream_seconds(start),
                        end=self._stream_seconds(end),
                        is_partial=bool(result.is_partial),
                        utterance_id=str(result.result_id or f"{start:.3f}"),
                    )
                )


class AwsTranscribeEngine(Engine):
    """Amazon Transcribe streaming.

    Args:
        region: AWS region (default ``AWS_REGION``/``AWS_DEFAULT_REGION``, else us-east-1).
        language_code: e.g. ``en-US`` (default ``VP_TRANSCRIBE_LANGUAGE`` or ``en-US``).
        client_factory: ``region -> client``; tests inject a fake here.
        max_buffer_seconds: per-stream audio buffer bound (oldest audio dropped beyond it).
    """

    name = "aws-transcribe"

    def __init__(
        self,
        *,
        region: str | None = None,
        language_code: str | None = None,
        client_factory: ClientFactory | None = None,
        max_buffer_seconds: float = 10.0,
    ) -> None:
        if client_factory is None:
            _import_transcribe()  # fail at construction, with the extra's name
            client_factory = _default_client
        self._client_factory = client_factory
        self.region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        self.language_code = (
            language_code
            or VpSettings.from_env(only=frozenset({"transcribe_language"})).transcribe_language
            or "en-US"
        )
        self.max_buffer_seconds = max_buffer_seconds

    async def open_stream(self, *, sample_rate: int = 16_000) -> AwsTranscribeStream:
        if sample_rate not in (8000, 16000):
            raise EngineError(f"unsupported sample rate {sample_rate}", retryable=False)
        stream = AwsTranscribeStream(self, sample_rate=sample_rate)
        stream.start()
        log.debug("aws transcribe stream opened", region=self.region)
        return stream
