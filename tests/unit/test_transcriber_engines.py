"""Speech engines: the registry, PocketSphinx on real (espeak-ng) speech, AWS with a fake client."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from amazon_transcribe.exceptions import BadRequestException, ServiceUnavailableException
from amazon_transcribe.model import Alternative, Result, Transcript, TranscriptEvent

from vp.errors import ConfigError
from vp.transcriber.engines import ENGINES, EngineError, EngineResult, create_engine
from vp.transcriber.engines.aws_transcribe import AwsTranscribeEngine
from vp.transcriber.engines.base import BufferedStream, TimeMap
from vp.transcriber.engines.pocketsphinx_engine import PocketsphinxEngine

pytestmark = pytest.mark.timeout(60)

SR = 16_000


def espeak_pcm(path: Path, text: str) -> bytes:
    """Mono PCM16 at 16 kHz of ``text`` spoken by espeak-ng (linear resampling from 22.05k)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required: run scripts/install-system-packages.sh")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, timeout=30)
    data, rate = sf.read(str(path), dtype="int16")
    n = int(len(data) * SR / rate)
    pos = np.arange(n) * rate / SR
    return np.interp(pos, np.arange(len(data)), data.astype(np.float64)).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> bytes:
    pcm = espeak_pcm(
        tmp_path_factory.mktemp("speech") / "hello.wav",
        "Hello everyone, welcome to the weekly project meeting.",
    )
    silence = bytes(SR * 2)  # 1 s
    return silence + pcm + silence


async def collect(stream) -> list[EngineResult]:
    return [r async for r in stream.results()]


async def feed_all(stream, pcm: bytes, chunk: int = 6400, pause: float = 0.0) -> None:
    for i in range(0, len(pcm), chunk):
        stream.feed(pcm[i : i + chunk])
        await asyncio.sleep(pause)
    await stream.finish()


# -- registry -------------------------------------------------------------------------------


def test_registry_names_and_unknown_engine():
    assert set(ENGINES) == {"pocketsphinx", "aws-transcribe"}
    with pytest.raises(ConfigError, match="unknown transcriber engine"):
        create_engine("whisper-9000")


async def test_registry_builds_engines():
    engine = create_engine("pocketsphinx", partial_interval=None)
    assert isinstance(engine, PocketsphinxEngine)
    await engine.aclose()
    aws = create_engine("aws-transcribe", region="eu-west-1", client_factory=lambda r: None)
    assert isinstance(aws, AwsTranscribeEngine)
    assert aws.region == "eu-west-1"


def test_aws_missing_package_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_aws(name, *args, **kwargs):
        if name.startswith("amazon_transcribe"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aws)
    with pytest.raises(EngineError, match=r"vp\[transcribe\]"):
        AwsTranscribeEngine()


# -- shared buffering ------------------------------------------------------------------------


def test_timemap_maps_past_gaps():
    tm = TimeMap()
    tm.add_gap(100, 50)  # 50 samples dropped before fed sample 100
    tm.add_gap(200, 10)
    assert tm.to_stream(0) == 0
    assert tm.to_stream(99) == 99
    assert tm.to_stream(100) == 150
    assert tm.to_stream(250) == 310


class _SlowStream(BufferedStream):
    """Takes nothing until released; records what it was finally given."""

    def __init__(self) -> None:
        super().__init__(sample_rate=SR, max_buffer_seconds=1.0)
        self.release = asyncio.Event()
        self.got: list[bytes] = []

    async def _run(self) -> None:
        await self.release.wait()
        while (pcm := await self._take()) is not None:
            self.got.append(pcm)
            # Report a result at the start of what the engine was fed, in engine time.
            fed = sum(len(p) for p in self.got[:-1]) / 2 / SR
            await self._emit(EngineResult("x", self._stream_seconds(fed), 0, False, "1"))


async def test_buffer_drops_oldest_and_keeps_stream_time():
    stream = _SlowStream()
    stream.start()
    for i in range(30):  # 3 s of 100 ms chunks into a 1 s buffer
        stream.feed(np.full(1600, i, "<i2").tobytes())
    assert stream.received_seconds == pytest.approx(3.0)
    assert stream.dropped_seconds == pytest.approx(2.0)
    assert stream.buffered_seconds == pytest.approx(1.0)
    stream.release.set()
    await stream.finish()
    results = await collect(stream)
    first = np.frombuffer(stream.got[0], "<i2")
    assert first[0] == 20  # the newest second survived
    assert results[0].start == pytest.approx(2.0)  # engine time 0 is stream time 2 s
    await stream.aclose()


async def test_runner_exception_becomes_engine_error():
    class Broken(BufferedStream):
        async def _run(self) -> None:
            raise RuntimeError("boom with details")

    stream = Broken()
    stream.start()
    with pytest.raises(EngineError) as info:
        await collect(stream)
    assert "RuntimeError" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    await stream.aclose()


# -- pocketsphinx ----------------------------------------------------------------------------


@pytest.fixture
async def sphinx():
    engine = PocketsphinxEngine()
    yield engine
    await engine.aclose()


async def test_pocketsphinx_transcribes_espeak_speech(sphinx, speech):
    stream = await sphinx.open_stream()
    feeder = asyncio.create_task(feed_all(stream, speech, pause=0.001))
    results = await collect(stream)
    await feeder
    await stream.aclose()
    finals = [r for r in results if not r.is_partial]
    assert finals, results
    total = len(speech) / 2 / SR
    for r in finals:
        assert r.text.strip()
        assert 0.5 <= r.start < r.end <= total + 0.1
    # Partials precede their final and share its utterance id.
    for p in (r for r in results if r.is_partial):
        assert p.utterance_id in {f.utterance_id for f in finals}
    assert stream.dropped_seconds == 0


async def test_pocketsphinx_silence_yields_nothing(sphinx):
    stream = await sphinx.open_stream()
    feeder = asyncio.create_task(feed_all(stream, bytes(SR * 2 * 5), pause=0.001))
    results = await collect(stream)
    await feeder
    await stream.aclose()
    assert results == []


async def test_pocketsphinx_decodes_in_a_worker_process_and_survives_its_death(sphinx):
    """Decoding holds the GIL, so it runs in a worker process; a dead worker is replaced."""
    stream = await sphinx.open_stream()
    stream.feed(bytes(SR))
    for _ in range(100):
        if sphinx.worker_pids:
            break
        await asyncio.sleep(0.05)
    (pid,) = sphinx.worker_pids
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(EngineError) as info:
        await asyncio.wait_for(collect(stream), timeout=20)
    assert info.value.retryable
    await stream.aclose()
    again = await sphinx.open_stream()
    await feed_all(again, bytes(SR))
    assert await asyncio.wait_for(collect(again), timeout=20) == []
    await again.aclose()
    assert sphinx.worker_pids and pid not in sphinx.worker_pids


async def test_pocketsphinx_rejects_odd_sample_rate(sphinx):
    with pytest.raises(EngineError):
        await sphinx.open_stream(sample_rate=44_100)


# -- aws transcribe (fake client at the SDK boundary) ----------------------------------------


def transcript_event(*results: Result) -> TranscriptEvent:
    return TranscriptEvent(transcript=Transcript(results=list(results)))


def result(rid: str, text: str, start: float, end: float, partial: bool) -> Result:
    return Result(
        result_id=rid,
        start_time=start,
        end_time=end,
        is_partial=partial,
        alternatives=[Alternative(transcript=text, items=[], entities=[])],
        channel_id="ch_0",
    )


class FakeInput:
    def __init__(self, output: FakeOutput) -> None:
        self.chunks: list[bytes] = []
        self.ended = False
        self._output = output

    async def send_audio_event(self, audio_chunk: bytes) -> None:
        self.chunks.append(audio_chunk)

    async def end_stream(self) -> None:
        self.ended = True
        self._output.close()


class FakeOutput:
    """Yields the scripted events, then (optionally) raises, then ends at end_stream()."""

    def __init__(self, events: list[TranscriptEvent], error: Exception | None) -> None:
        self._events = events
        self._error = error
        self._closed = asyncio.Event()

    def close(self) -> None:
        self._closed.set()

    async def __aiter__(self):
        for event in self._events:
            yield event
        if self._error is not None:
            raise self._error
        await self._closed.wait()


class FakeStreamHandle:
    def __init__(self, events, error) -> None:
        self.output_stream = FakeOutput(events, error)
        self.input_stream = FakeInput(self.output_stream)


class FakeTranscribeClient:
    def __init__(self, events=(), error: Exception | None = None) -> None:
        self.requests: list[dict] = []
        self.regions: list[str] = []
        self.handles: list[FakeStreamHandle] = []
        self._events = list(events)
        self._error = error

    def factory(self, region: str) -> FakeTranscribeClient:
        self.regions.append(region)
        return self

    async def start_stream_transcription(self, **kwargs) -> FakeStreamHandle:
        self.requests.append(kwargs)
        handle = FakeStreamHandle(self._events, self._error)
        self.handles.append(handle)
        return handle


async def test_aws_request_shape_audio_and_results(monkeypatch):
    monkeypatch.setenv("VP_TRANSCRIBE_LANGUAGE", "en-GB")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    fake = FakeTranscribeClient(
        events=[
            transcript_event(result("r1", "hello", 0.5, 0.9, True)),
            transcript_event(result("r1", "hello there", 0.5, 1.4, False)),
            transcript_event(result("r2", "", 2.0, 2.1, True)),  # empty: skipped
        ]
    )
    engine = AwsTranscribeEngine(client_factory=fake.factory)
    stream = await engine.open_stream(sample_rate=16_000)
    audio = np.arange(16_000, dtype="<i2").tobytes()  # 1 s
    feeder = asyncio.create_task(feed_all(stream, audio, chunk=3200))
    results = await collect(stream)
    await feeder
    await stream.aclose()
    await engine.aclose()

    assert fake.regions == ["eu-central-1"]
    assert fake.requests == [
        {"language_code": "en-GB", "media_sample_rate_hz": 16_000, "media_encoding": "pcm"}
    ]
    handle = fake.handles[0]
    assert b"".join(handle.input_stream.chunks) == audio
    assert max(len(c) for c in handle.input_stream.chunks) <= 6400  # ≤ 200 ms per event
    assert handle.input_stream.ended
    assert results == [
        EngineResult("hello", 0.5, 0.9, True, "r1"),
        EngineResult("hello there", 0.5, 1.4, False, "r1"),
    ]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [(BadRequestException("bad"), False), (ServiceUnavailableException("later"), True)],
)
async def test_aws_stream_error_becomes_engine_error(error, retryable):
    fake = FakeTranscribeClient(
        events=[transcript_event(result("r1", "hi", 0.1, 0.3, False))], error=error
    )
    engine = AwsTranscribeEngine(client_factory=fake.factory, region="us-east-1")
    stream = await engine.open_stream()
    stream.feed(bytes(3200))
    got: list[EngineResult] = []
    with pytest.raises(EngineError) as info:
        async for r in stream.results():
            got.append(r)
    await stream.aclose()
    assert [r.text for r in got] == ["hi"]
    assert info.value.retryable is retryable
    assert type(error).__name__ in str(info.value)
    assert info.value.__cause__ is error
