"""The speech-engine extension point of the local reference transcriber.

An :class:`Engine` is created once per server and opens one :class:`EngineStream` per call
channel. A stream is fed mono PCM16 chunks from the event loop with :meth:`EngineStream.feed`
(never blocks) and yields :class:`EngineResult` values from :meth:`EngineStream.results`.

Most engines subclass :class:`BufferedStream`, which owns the parts every engine needs:

* a bounded audio buffer between the feeder (event loop) and the decoder. **Overflow policy:**
  when more than ``max_buffer_seconds`` of audio is waiting, the *oldest* chunks are dropped
  and counted in :attr:`EngineStream.dropped_seconds`; a recogniser that falls behind skips
  audio instead of growing memory or adding unbounded latency;
* a :class:`TimeMap` so result times stay on the stream's clock even after dropped audio
  (the engine only ever sees the audio it was given);
* one owned runner task; any exception it raises is translated to :class:`EngineError`
  and re-raised to whoever iterates :meth:`results`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from vp.errors import VpError
from vp.lifecycle import Reason

__all__ = [
    "BufferedStream",
    "Engine",
    "EngineError",
    "EngineResult",
    "EngineStream",
    "TimeMap",
]

BYTES_PER_SAMPLE: Final = 2


class EngineError(VpError):
    """A speech engine failed (model load, decode, or a remote service error)."""

    reason = Reason.TRANSCRIBER_UNAVAILABLE

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class EngineResult:
    """One recognition result on a stream.

    ``start``/``end`` are seconds since the stream's first sample (including dropped audio).
    ``utterance_id`` is stable across the partials and the final of one utterance, so a
    consumer can replace a partial by its final.
    """

    text: str
    start: float
    end: float
    is_partial: bool
    utterance_id: str


class EngineStream(ABC):
    """A recognition session over one mono PCM16 channel."""

    sample_rate: int

    @abstractmethod
    def feed(self, pcm: bytes) -> None:
        """Queue mono PCM16 audio; never blocks (drops the oldest audio when over its bound)."""

    @abstractmethod
    async def finish(self) -> None:
        """No more audio: flush. :meth:`results` ends after the last final result."""

    @abstractmethod
    def results(self) -> AsyncIterator[EngineResult]:
        """Results in order; raises :class:`EngineError` if the engine fails."""

    @abstractmethod
    async def aclose(self) -> None:
        """Abort the stream and release its resources (idempotent)."""

    @property
    @abstractmethod
    def received_seconds(self) -> float:
        """Audio given to :meth:`feed` so far (the stream clock)."""

    @property
    @abstractmethod
    def dropped_seconds(self) -> float:
        """Audio dropped by the overflow policy so far."""


class Engine(ABC):
    """A speech recogniser that opens one stream per call channel."""

    name: str = "engine"

    @abstractmethod
    async def open_stream(self, *, sample_rate: int = 16_000) -> EngineStream:
        """Open (and start) a stream; raise :class:`EngineError` if that is impossible."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing
        """Release engine-wide resources (models, thread pools)."""


class TimeMap:
    """Maps time on the audio an engine was fed to time on the stream clock.

    When the overflow policy drops audio, the engine never sees it; each drop is recorded as
    a gap at the fed position where it happened. Only the last ``max_gaps`` gaps are kept —
    results always refer to recent audio.
    """

    __slots__ = ("_at", "_offset", "_max")

    def __init__(self, max_gaps: int = 1024) -> None:
        self._at: list[int] = [0]  # fed sample position where an offset starts to apply
        self._offset: list[int] = [0]  # cumulative dropped samples from that position on
        self._max = max_gaps

    def add_gap(self, fed_position: int, dropped: int) -> None:
        if dropped <= 0:
            return
        self._at.append(fed_position)
        self._offset.append(self._offset[-1] + dropped)
        if len(self._at) > self._max:
            del self._at[: -self._max]
            del self._offset[: -self._max]

    def to_stream(self, fed_samples: float) -> float:
        """Stream sample position of a fed sample position (fractional allowed)."""
        i = bisect.bisect_right(self._at, fed_samples) - 1
        return fed_samples + self._offset[max(i, 0)]


@dataclass(slots=True)
class _Chunk:
    offset: int  # stream sample position of the first sample
    pcm: bytes


class _End:
    """Marker: the results iterator is done."""


_END: Final = _End()


class BufferedStream(EngineStream):
    """Shared plumbing: bounded drop-oldest audio buffer, time map, runner task, results.

    Subclasses implement :meth:`_run`, which pulls audio with :meth:`_take` (``None`` means
    the stream was finished) and publishes results with :meth:`_emit`. ``_run`` runs on the
    event loop; CPU-heavy work inside it must go to a worker thread.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        max_buffer_seconds: float = 10.0,
        max_pending_results: int = 256,
    ) -> None:
        if max_buffer_seconds <= 0:
            raise ValueError("max_buffer_seconds must be positive")
        self.sample_rate = sample_rate
        self._max_bytes = int(max_buffer_seconds * sample_rate) * BYTES_PER_SAMPLE
        self._chunks: deque[_Chunk] = deque()
        self._buffered = 0
        self._received = 0  # samples given to feed()
        self._dropped = 0  # samples dropped by the overflow policy
        self._fed = 0  # samples handed to the engine
        self._next_offset = 0  # stream position expected at the head of the next chunk
        self._leftover = b""  # odd byte kept between feeds
        self._timemap = TimeMap()
        self._audio = asyncio.Event()
        self._finished = False
        self._closed = False
        self._results: asyncio.Queue[EngineResult | _End | EngineError] = asyncio.Queue(
            maxsize=max_pending_results
        )
        self.partials_dropped = 0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the runner task (called by the engine's ``open_stream``)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"{type(self).__name__}.run"
            )

    async def _supervise(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except EngineError as exc:
            await self._results.put(exc)
        except Exception as exc:  # translated at the boundary
            err = self._translate(exc)
            err.__cause__ = exc
            await self._results.put(err)
        await self._results.put(_END)

    def _translate(self, exc: Exception) -> EngineError:
        """Turn an engine-specific exception into an EngineError (override per engine)."""
        return EngineError(f"{type(self).__name__} failed: {type(exc).__name__}")

    @abstractmethod
    async def _run(self) -> None:
        """Decode until :meth:`_take` returns ``None``, emitting results."""

    async def finish(self) -> None:
        self._finished = True
        self._audio.set()

    async def aclose(self) -> None:
        self._closed = True
        self._finished = True
        self._audio.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5.0)
            # Wake any reader of results(): the runner never got to say it ended.
            with contextlib.suppress(asyncio.QueueFull):
                self._results.put_nowait(_END)
        await self._release()

    async def _release(self) -> None:  # noqa: B027 - optional hook
        """Free engine resources after the runner stopped (override as needed)."""

    # -- feeder side -------------------------------------------------------------------------

    def feed(self, pcm: bytes) -> None:
        if self._finished:
            return  # audio after finish() or aclose() is meaningless; ignore it
        if self._leftover:
            pcm = self._leftover + pcm
            self._leftover = b""
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm, self._leftover = pcm[:-1], pcm[-1:]
        if not pcm:
            return
        self._chunks.append(_Chunk(self._received, pcm))
        self._received += len(pcm) // BYTES_PER_SAMPLE
        self._buffered += len(pcm)
        # Overflow policy: drop the oldest audio, keep the newest.
        while self._buffered > self._max_bytes and len(self._chunks) > 1:
            old = self._chunks.popleft()
            self._buffered -= len(old.pcm)
            self._dropped += len(old.pcm) // BYTES_PER_SAMPLE
        self._audio.set()

    @property
    def received_seconds(self) -> float:
        return self._received / self.sample_rate

    @property
    def dropped_seconds(self) -> float:
        return self._dropped / self.sample_rate

    @property
    def buffered_seconds(self) -> float:
        return self._buffered / BYTES_PER_SAMPLE / self.sample_rate

    # -- engine side -------------------------------------------------------------------------

    async def _take(self, max_bytes: int = 1 << 20) -> bytes | None:
        """Wait for audio; return up to ``max_bytes`` (at least one chunk), None at the end."""
        while not self._chunks:
            if self._finished:
                return None
            self._audio.clear()
            await self._audio.wait()
        parts: list[bytes] = []
        size = 0
        while self._chunks and (not parts or size + len(self._chunks[0].pcm) <= max_bytes):
            chunk = self._chunks.popleft()
            self._buffered -= len(chunk.pcm)
            if chunk.offset != self._next_offset:
                self._timemap.add_gap(
                    self._fed + size // BYTES_PER_SAMPLE, chunk.offset - self._next_offset
                )
            self._next_offset = chunk.offset + len(chunk.pcm) // BYTES_PER_SAMPLE
            parts.append(chunk.pcm)
            size += len(chunk.pcm)
        self._fed += size // BYTES_PER_SAMPLE
        return b"".join(parts)

    def _stream_seconds(self, fed_seconds: float) -> float:
        """Convert engine time (seconds of audio it was fed) to stream time."""
        return self._timemap.to_stream(fed_seconds * self.sample_rate) / self.sample_rate

    async def _emit(self, result: EngineResult) -> None:
        """Publish a result. Partials are dropped when the consumer lags; finals wait."""
        if result.is_partial:
            try:
                self._results.put_nowait(result)
            except asyncio.QueueFull:
                self.partials_dropped += 1
        else:
            await self._results.put(result)

    async def results(self) -> AsyncIterator[EngineResult]:
        while True:
            item = await self._results.get()
            if isinstance(item, _End):
                return
            if isinstance(item, EngineError):
                raise item
            yield item
