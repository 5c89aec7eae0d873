"""Offline English recognition with PocketSphinx 5 (the default engine).

The PyPI wheel ships the US-English acoustic model, language model and dictionary, so nothing
is downloaded at run time. Audio is segmented by PocketSphinx's own WebRTC-style
:class:`~pocketsphinx.Endpointer`; only speech reaches the (expensive) decoder, so silence
costs almost nothing. Each utterance yields a final result; while it is in progress, partial
hypotheses are emitted every ``partial_interval`` seconds of speech.

**Why worker processes, not threads:** PocketSphinx's Cython calls hold the GIL for their
whole duration (``end_utt`` on a long utterance takes most of a second), so a decoding thread
would stall the event loop — and in-process, the VP's own audio path. Decoding therefore runs
in a small pool of worker processes (``python -m vp.transcriber.engines.pocketsphinx_engine``)
that each host several streams. The parent talks to a worker over its stdin/stdout pipes with
asyncio streams (never blocking the loop) and keeps exactly one audio batch per stream in
flight, so the only audio buffer is the stream's bounded drop-oldest buffer on the parent side.

Wire format between parent and worker (private to this module):

* parent → worker: a 9-byte header ``<B I i`` (op, stream id, payload length) + payload.
  OPEN carries JSON options; AUDIO carries PCM16; FLUSH and CLOSE carry nothing.
* worker → parent: one JSON line per request except CLOSE:
  ``{"sid": n, "ok": true, "results": [[text, start, end, is_partial, utterance], …]}``
  or ``{"sid": n, "ok": false, "error": "ExceptionName"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from vp.transcriber.engines.base import BufferedStream, Engine, EngineError, EngineResult
from vp.transcriber.engines.wake_spotter import DEFAULT_THRESHOLD, WakeSpotter

__all__ = ["PocketsphinxEngine"]

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<BIi")
_OPEN, _AUDIO, _FLUSH, _CLOSE = 1, 2, 3, 4
_NON_WORDS = {"<s>", "</s>", "<sil>"}
_MAX_LINE = 1 << 22  # a result line; a 20 s utterance is a few hundred bytes


def _import_pocketsphinx() -> Any:
    try:
        import pocketsphinx
    except ImportError as exc:  # the task image leaves it out (the [local] extra)
        raise EngineError(
            "the local reference transcriber needs pocketsphinx: install vp[local], "
            "or stream to a transcriber with --transcriber-url",
            retryable=False,
        ) from exc
    return pocketsphinx


# -- worker side (runs in the child process) ---------------------------------------------------


@dataclass(slots=True)
class _Raw:
    """A result in engine time (seconds of audio fed to this recogniser)."""

    text: str
    start: float
    end: float
    is_partial: bool
    utterance: int

    def wire(self) -> list[Any]:
        return [
            self.text,
            round(self.start, 3),
            round(self.end, 3),
            self.is_partial,
            self.utterance,
        ]


class _Recognizer:
    """Endpointer + decoder state of one stream. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        decoder: Any,
        *,
        sample_rate: int,
        partial_interval: float | None,
        max_utterance_seconds: float,
        vad_mode: int,
        wake_phrases: list[str] | None = None,
        wake_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        ps = _import_pocketsphinx()
        self.decoder = decoder
        self.ep = ps.Endpointer(sample_rate=sample_rate, vad_mode=vad_mode)
        self.sample_rate = sample_rate
        self.frame_bytes: int = self.ep.frame_bytes
        self.frate = float(decoder.config["frate"] or 100)
        self.partial_interval = partial_interval
        self.max_utterance_seconds = max_utterance_seconds
        self.pending = b""
        self.in_utt = False
        self.utt_start = 0.0
        self.utt_seconds = 0.0
        self.since_partial = 0.0
        self.last_partial = ""
        self.utterance = 0
        self.spotter: WakeSpotter | None = None
        if wake_phrases:
            spotter = WakeSpotter(
                decoder, wake_phrases, threshold=wake_threshold, sample_rate=sample_rate
            )
            self.spotter = spotter if spotter.enabled else None
        # The start of the current utterance, kept only for the spotter (bounded by it).
        self.utt_audio = bytearray()

    def process(self, pcm: bytes) -> list[_Raw]:
        out: list[_Raw] = []
        data = self.pending + pcm
        n = len(data) - len(data) % self.frame_bytes
        self.pending = data[n:]
        for i in range(0, n, self.frame_bytes):
            was_speech = self.ep.in_speech
            speech = self.ep.process(data[i : i + self.frame_bytes])
            if speech is None:
                continue
            if not was_speech or not self.in_utt:
                self._start(self.ep.speech_start)
            self._decode(speech)
            if not self.ep.in_speech:
                self._end(self.ep.speech_end, out)
            elif self.utt_seconds >= self.max_utterance_seconds:
                # Endless "speech" (music, noise): cut it so finals keep coming.
                end = self.utt_start + self.utt_seconds
                self._end(end, out)
                self._start(end)
            elif self.partial_interval is not None and self.since_partial >= self.partial_interval:
                self.since_partial = 0.0
                self._partial(out)
        return out

    def flush(self) -> list[_Raw]:
        out: list[_Raw] = []
        if self.ep.in_speech:
            # end_stream() rejects an empty buffer: pad the tail to one frame of silence.
            speech = self.ep.end_stream(self.pending.ljust(self.frame_bytes, b"\0"))
            if speech is not None:
                if not self.in_utt:
                    self._start(self.ep.speech_start)
                self._decode(speech)
        self.pending = b""
        if self.in_utt:
            self._end(self.utt_start + self.utt_seconds, out)
        return out

    def abort(self) -> None:
        if self.in_utt:
            self.decoder.end_utt()
            self.in_utt = False

    def _start(self, start: float) -> None:
        self.decoder.start_utt()
        self.in_utt = True
        self.utterance += 1
        self.utt_start = start
        self.utt_seconds = 0.0
        self.since_partial = 0.0
        self.last_partial = ""
        self.utt_audio.clear()

    def _decode(self, speech: bytes) -> None:
        self.decoder.process_raw(speech, False, False)
        if self.spotter is not None and len(self.utt_audio) < self.spotter.max_bytes:
            self.utt_audio += speech
        seconds = len(speech) / 2 / self.sample_rate
        self.utt_seconds += seconds
        self.since_partial += seconds

    def _partial(self, out: list[_Raw]) -> None:
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if text and text != self.last_partial:
            self.last_partial = text
            end = self.utt_start + self.utt_seconds
            out.append(_Raw(text, self.utt_start, end, True, self.utterance))

    def _end(self, end: float, out: list[_Raw]) -> None:
        self.decoder.end_utt()
        self.in_utt = False
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        words = [
            s for s in self.decoder.seg() if s.word not in _NON_WORDS and not s.word.startswith("[")
        ]
        if self.spotter is not None:
            # After reading the LM result: the spotter re-uses the decoder.
            lm_words = [(s.word.split("(", 1)[0], s.start_frame) for s in words]
            spotted = self.spotter.spot(bytes(self.utt_audio), lm_words)
            self.utt_audio.clear()
            if spotted is not None:
                text = spotted
        if not text:
            return  # noise or fillers only
        start = self.utt_start
        if words:
            # Word alignment is tighter than the endpointer's window.
            start = self.utt_start + words[0].start_frame / self.frate
            end = min(end, self.utt_start + (words[-1].end_frame + 1) / self.frate)
        end = max(end, start + 1.0 / self.frate)
        out.append(_Raw(text, start, end, False, self.utterance))


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        part = stream.read(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


def _worker_main(stdin: BinaryIO, stdout: BinaryIO, max_idle: int = 2) -> None:
    """Serve recognisers for many streams until stdin closes."""
    ps = _import_pocketsphinx()
    recognizers: dict[int, _Recognizer] = {}
    idle: dict[int, list[Any]] = {}  # sample rate -> loaded decoders for reuse

    def reply(sid: int, **fields: Any) -> None:
        stdout.write(json.dumps({"sid": sid, **fields}).encode() + b"\n")
        stdout.flush()

    def release(rec: _Recognizer) -> None:
        rec.abort()
        pool = idle.setdefault(rec.sample_rate, [])
        if len(pool) < max_idle:
            pool.append(rec.decoder)

    while (header := _read_exactly(stdin, _HEADER.size)) is not None:
        op, sid, length = _HEADER.unpack(header)
        payload = _read_exactly(stdin, length) if length else b""
        if payload is None:
            break
        try:
            if op == _OPEN:
                opts = json.loads(payload)
                rate = int(opts.pop("sample_rate"))
                pool = idle.get(rate)
                decoder = pool.pop() if pool else ps.Decoder(samprate=rate, loglevel="FATAL")
                recognizers[sid] = _Recognizer(decoder, sample_rate=rate, **opts)
                reply(sid, ok=True, results=[])
            elif op == _AUDIO:
                raws = recognizers[sid].process(payload)
                reply(sid, ok=True, results=[r.wire() for r in raws])
            elif op == _FLUSH:
                rec = recognizers.pop(sid)
                raws = rec.flush()
                release(rec)
                reply(sid, ok=True, results=[r.wire() for r in raws])
            elif op == _CLOSE:
                rec_or_none = recognizers.pop(sid, None)
                if rec_or_none is not None:
                    release(rec_or_none)
        except Exception as exc:  # reported to the stream, which raises EngineError
            recognizers.pop(sid, None)
            if op != _CLOSE:
                reply(sid, ok=False, error=type(exc).__name__)


# -- parent side ------------------------------------------------------------------------------


class _Worker:
    """One decoder process and the requests in flight to it (one per stream at most)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.streams = 0
        self.waiting: dict[int, asyncio.Future[list[list[Any]]]] = {}
        self.alive = True
        self.reader: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._read(), name="pocketsphinx.worker.read"
        )

    @classmethod
    async def spawn(cls) -> _Worker:
        root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vp.transcriber.engines.pocketsphinx_engine",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=_MAX_LINE,
            )
        except OSError as exc:
            raise EngineError("could not start the pocketsphinx worker") from exc
        log.debug("pocketsphinx worker started", pid=proc.pid)
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                msg = json.loads(line)
                fut = self.waiting.pop(int(msg["sid"]), None)
                if fut is None or fut.done():
                    continue
                if msg.get("ok"):
                    fut.set_result(msg["results"])
                else:
                    fut.set_exception(
                        EngineError(f"pocketsphinx failed: {msg.get('error')}", retryable=False)
                    )
        except (ValueError, KeyError, OSError, asyncio.LimitOverrunError):
            pass
        finally:
            self.alive = False
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_exception(EngineError("pocketsphinx worker exited"))
            self.waiting.clear()

    async def request(self, op: int, sid: int, payload: bytes = b"") -> list[list[Any]]:
        if not self.alive or self.proc.stdin is None:
            raise EngineError("pocketsphinx worker exited")
        fut: asyncio.Future[list[list[Any]]] | None = None
        if op != _CLOSE:
            fut = asyncio.get_running_loop().create_future()
            self.waiting[sid] = fut
        try:
            self.proc.stdin.write(_HEADER.pack(op, sid, len(payload)) + payload)
            await self.proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.waiting.pop(sid, None)
            raise EngineError("pocketsphinx worker exited") from exc
        return [] if fut is None else await fut

    async def aclose(self) -> None:
        self.alive = False
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=5.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class PocketsphinxStream(BufferedStream):
    def __init__(self, engine: PocketsphinxEngine, worker: _Worker, sid: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._engine = engine
        self._worker = worker
        self._sid = sid
        self._open = False
        self._detached = False

    def _translate(self, exc: Exception) -> EngineError:
        return EngineError(f"pocketsphinx failed: {type(exc).__name__}", retryable=False)

    async def _run(self) -> None:
        engine, worker, sid = self._engine, self._worker, self._sid
        opts = {
            "sample_rate": self.sample_rate,
            "partial_interval": engine.partial_interval,
            "max_utterance_seconds": engine.max_utterance_seconds,
            "vad_mode": engine.vad_mode,
            "wake_phrases": list(engine.wake_phrases),
            "wake_threshold": engine.wake_threshold,
        }
        self._open = True
        await worker.request(_OPEN, sid, json.dumps(opts).encode())
        # At most 2 s per request keeps results timely and worker calls short.
        max_bytes = self.sample_rate * 2 * 2
        while True:
            pcm = await self._take(max_bytes)
            if pcm is None:
                raws = await worker.request(_FLUSH, sid)
                self._open = False
            else:
                raws = await worker.request(_AUDIO, sid, pcm)
            for text, start, end, is_partial, utterance in raws:
                await self._emit(
                    EngineResult(
                        text=str(text),
                        start=self._stream_seconds(float(start)),
                        end=self._stream_seconds(float(end)),
                        is_partial=bool(is_partial),
                        utterance_id=str(utterance),
                    )
                )
            if pcm is None:
                return

    async def _release(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(EngineError):
                await self._worker.request(_CLOSE, self._sid)
        if not self._detached:
            self._detached = True
            self._engine._detach(self._worker)


class PocketsphinxEngine(Engine):
    """PocketSphinx 5 with the bundled US-English model, decoded in worker processes.

    Args:
        partial_interval: seconds of speech between partial hypotheses; None disables them.
        max_utterance_seconds: force a final after this much continuous speech.
        max_buffer_seconds: per-stream audio buffer bound (oldest audio dropped beyond it).
        vad_mode: Endpointer aggressiveness 0–3 (0 = loose).
        workers: most decoder processes (default: CPU count). A new stream goes to the least
            busy worker; a new worker is started only when every worker already has a stream.
        wake_phrases: phrases to spot at the start of utterances (see
            :mod:`~vp.transcriber.engines.wake_spotter`); empty disables spotting.
        wake_threshold: mean per-frame log acoustic score a wake phrase needs.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        *,
        partial_interval: float | None = 1.0,
        max_utterance_seconds: float = 20.0,
        max_buffer_seconds: float = 10.0,
        vad_mode: int = 0,
        workers: int | None = None,
        wake_phrases: Sequence[str] = (),
        wake_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        _import_pocketsphinx()  # fail early if the wheel is missing
        self.wake_phrases = tuple(wake_phrases)
        self.wake_threshold = wake_threshold
        self.partial_interval = partial_interval
        self.max_utterance_seconds = max_utterance_seconds
        self.max_buffer_seconds = max_buffer_seconds
        self.vad_mode = vad_mode
        self.max_workers = max(1, workers or os.cpu_count() or 2)
        self._workers: list[_Worker] = []
        self._spawning: asyncio.Lock | None = None
        self._next_sid = 0
        self._closed = False

    @property
    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.alive]

    async def open_stream(self, *, sample_rate: int = 16_000) -> PocketsphinxStream:
        if self._closed:
            raise EngineError("engine is closed", retryable=False)
        if sample_rate not in (8000, 16000):
            raise EngineError(f"unsupported sample rate {sample_rate}", retryable=False)
        worker = await self._pick_worker()
        worker.streams += 1
        self._next_sid += 1
        stream = PocketsphinxStream(
            self,
            worker,
            self._next_sid,
            sample_rate=sample_rate,
            max_buffer_seconds=self.max_buffer_seconds,
        )
        stream.start()
        return stream

    async def _pick_worker(self) -> _Worker:
        if self._spawning is None:
            self._spawning = asyncio.Lock()
        async with self._spawning:
            dead = [w for w in self._workers if not w.alive]
            for w in dead:
                self._workers.remove(w)
                await w.aclose()
            best = min(self._workers, key=lambda w: w.streams, default=None)
            if best is None or (best.streams > 0 and len(self._workers) < self.max_workers):
                best = await _Worker.spawn()
                self._workers.append(best)
            return best

    def _detach(self, worker: _Worker) -> None:
        worker.streams = max(0, worker.streams - 1)

    async def aclose(self) -> None:
        self._closed = True
        workers, self._workers = self._workers, []
        await asyncio.gather(*(w.aclose() for w in workers), return_exceptions=True)


def _main() -> None:
    # The protocol gets a private copy of stdout; fd 1 then points at stderr so nothing the C
    # library might print can corrupt the result stream.
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _worker_main(sys.stdin.buffer, proto)


if __name__ == "__main__":
    _main()
