"""The VP's voice: synthesis engines (espeak-ng for real, Polly at the boto3 boundary), the
speaker's queue, microphone discipline and barge-in, and the energy rise detector."""

from __future__ import annotations

import asyncio
import io
import time

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from vp.voice.speaker import EnergyRise, Speaker, VoiceOutput
from vp.voice.synthesis import (
    SAMPLE_RATE,
    EspeakNgSynthesizer,
    PollySynthesizer,
    SpeechSynthesizer,
    SynthesisError,
    create_synthesizer,
    speakable,
    split_sentences,
)


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


# -- synthesis -----------------------------------------------------------------------------
async def test_espeak_ng_speaks_pcm16_mono_16k():
    pcm = await EspeakNgSynthesizer().synthesize("Hello everyone, I am the meeting assistant.")
    assert len(pcm) % 2 == 0
    seconds = len(pcm) / 2 / SAMPLE_RATE
    assert 1.0 < seconds < 6.0  # a short sentence at 165 words a minute
    assert rms(pcm) > 500  # speech, not silence


async def test_espeak_ng_reads_text_from_stdin_not_options():
    # A text that looks like options is spoken, not obeyed (it goes through stdin).
    pcm = await EspeakNgSynthesizer().synthesize("--help -w /tmp/x.wav")
    assert len(pcm) / 2 / SAMPLE_RATE > 0.5


async def test_espeak_ng_unknown_voice_is_a_synthesis_error():
    with pytest.raises(SynthesisError):
        await EspeakNgSynthesizer(binary="/bin/false").synthesize("hello")


def polly_stub(pcm: bytes, **expected: str) -> tuple[object, Stubber]:
    client = boto3.client(
        "polly", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    params = {
        "Text": "Hello there.",
        "TextType": "text",
        "OutputFormat": "pcm",
        "SampleRate": "16000",
        "VoiceId": "Joanna",
        "Engine": "neural",
        **expected,
    }
    stubber.add_response(
        "synthesize_speech",
        {"AudioStream": StreamingBody(io.BytesIO(pcm), len(pcm)), "ContentType": "audio/pcm"},
        params,
    )
    return client, stubber


async def test_polly_requests_pcm_at_16k_with_the_configured_voice_and_engine():
    pcm = (np.sin(np.arange(8000) / 5) * 8000).astype("<i2").tobytes() + b"\x01"  # odd byte
    client, stubber = polly_stub(pcm, VoiceId="Matthew", Engine="generative")
    with stubber:
        synth = create_synthesizer(
            "polly", voice_id="Matthew", engine="generative", client_factory=lambda: client
        )
        out = await synth.synthesize("Hello there.")
        stubber.assert_no_pending_responses()
    assert out == pcm[:-1]  # raw PCM, trimmed to whole samples


async def test_polly_service_error_is_a_synthesis_error():
    client = boto3.client(
        "polly", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_client_error(
        "synthesize_speech", "TextLengthExceededException", http_status_code=400
    )
    with stubber:
        synth = PollySynthesizer(client_factory=lambda: client)
        with pytest.raises(SynthesisError, match="TextLengthExceededException"):
            await synth.synthesize("Hello there.")


async def test_polly_request_is_accepted_by_moto(monkeypatch):
    from moto import mock_aws

    for var, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(var, value)
    with mock_aws():
        synth = PollySynthesizer(region="us-east-1", voice_id="Joanna")
        pcm = await synth.synthesize("Hello there.")  # moto validates format and rate
    assert len(pcm) % 2 == 0


def test_registry_knows_both_engines_and_refuses_others():
    assert isinstance(create_synthesizer("espeak-ng"), EspeakNgSynthesizer)
    assert isinstance(create_synthesizer("polly"), PollySynthesizer)
    with pytest.raises(ValueError, match="unknown voice"):
        create_synthesizer("off")


def test_split_sentences_and_speakable():
    text = "First one. Second?  Third!\nFourth " + "word " * 100
    parts = split_sentences(text, max_chars=120)
    assert parts[:3] == ["First one.", "Second?", "Third!"]
    assert all(len(p) <= 120 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert speakable("🤖 **Scribe** (assistant): hi") == "Scribe (assistant): hi"


# -- the speaker ---------------------------------------------------------------------------
class FakeSynth(SpeechSynthesizer):
    name = "fake"

    def __init__(self, seconds_per_sentence: float = 0.2, fail: set[str] | None = None) -> None:
        self.seconds = seconds_per_sentence
        self.fail = fail or set()
        self.texts: list[str] = []

    async def synthesize(self, text: str) -> bytes:
        self.texts.append(text)
        if text in self.fail:
            raise SynthesisError("no")
        return np.full(int(self.seconds * SAMPLE_RATE), 1000, "<i2").tobytes()


class FakeOutput(VoiceOutput):
    """Plays in (scaled) real time; records the order of mic and play calls."""

    def __init__(self, allow_unmute: bool = True) -> None:
        self.log: list[str] = []
        self.allow = allow_unmute
        self.until = 0.0
        self.stopped_at: float | None = None

    async def play(self, pcm: bytes) -> float:
        assert self.log and self.log[-1] in ("mic:on", "play"), "played while muted"
        now = time.monotonic()
        self.until = max(self.until, now) + len(pcm) / 2 / SAMPLE_RATE
        self.log.append("play")
        return self.until - now

    async def stop(self) -> None:
        self.stopped_at = time.monotonic()
        self.until = 0.0
        self.log.append("stop")

    async def microphone(self, on: bool) -> bool:
        if on and not self.allow:
            self.log.append("mic:refused")
            return False
        self.log.append("mic:on" if on else "mic:off")
        return True


async def until(condition, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def run_speaker(speaker: Speaker):
    task = asyncio.create_task(speaker.run())
    return task


async def stop_task(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_utterances_play_in_order_one_at_a_time_between_unmute_and_mute():
    out, synth, ch1 = FakeOutput(), FakeSynth(0.1), []
    speaker = Speaker(synth, out, on_pcm=ch1.append)
    task = await run_speaker(speaker)
    assert speaker.say("One. Two.", "intro")
    assert speaker.say("Three.", "answer")
    assert await speaker.drain(5)
    await stop_task(task)
    assert synth.texts == ["One.", "Two.", "Three."]
    assert out.log == ["mic:on", "play", "play", "mic:off", "mic:on", "play", "mic:off"]
    assert len(ch1) == 3  # every sentence went to ch1 too
    assert speaker.stats.utterances == 2 and speaker.stats.sentences == 3
    assert speaker.stats.spoken_s == pytest.approx(0.3, abs=0.01)
    assert len(speaker.stats.first_sound_latency_s) == 2


async def test_barge_in_stops_within_500_ms_and_drops_the_rest():
    out, synth = FakeOutput(), FakeSynth(2.0)
    cut = []
    speaker = Speaker(synth, out, on_cut=lambda: cut.append(1))
    task = await run_speaker(speaker)
    speaker.say("A long first sentence. A second one. A third one.")
    await until(lambda: speaker.speaking)
    await asyncio.sleep(0.3)
    barged = time.monotonic()
    speaker.barge_in()
    await until(lambda: not speaker.speaking)
    assert out.stopped_at is not None and out.stopped_at - barged < 0.5
    assert out.log[-2:] == ["stop", "mic:off"]
    assert out.log.count("play") == 1  # the rest of the utterance was dropped
    assert cut == [1] and speaker.stats.barge_ins == 1
    # The next utterance is spoken normally.
    synth.seconds = 0.05
    speaker.say("Next.")
    assert await speaker.drain(5)
    await stop_task(task)
    assert out.log[-3:] == ["mic:on", "play", "mic:off"]


async def test_refused_unmute_skips_the_utterance_and_reports_it():
    out, refused = FakeOutput(allow_unmute=False), []
    speaker = Speaker(FakeSynth(0.05), out, on_refused=lambda: refused.append(1))
    task = await run_speaker(speaker)
    speaker.say("Hello.")
    assert await speaker.drain(5)
    await stop_task(task)
    assert "play" not in out.log and refused == [1] and speaker.stats.refused == 1


async def test_failed_synthesis_skips_and_full_queue_drops():
    out = FakeOutput()
    speaker = Speaker(FakeSynth(0.05, fail={"Bad."}), out, max_queue=2)
    speaker.say("Bad.")
    speaker.say("Good.")
    assert not speaker.say("Dropped.")  # queue of 2 is full (nothing runs yet)
    assert not speaker.say("🤖")  # nothing speakable
    task = await run_speaker(speaker)
    assert await speaker.drain(5)
    await stop_task(task)
    assert speaker.stats.failed == 1 and speaker.stats.dropped == 1
    assert out.log == ["mic:on", "play", "mic:off"]


def tone(seconds: float, amplitude: float) -> bytes:
    n = int(seconds * SAMPLE_RATE)
    return (np.sin(np.arange(n) * 0.3) * amplitude).astype("<i2").tobytes()


def test_energy_rise_fires_on_a_rise_not_on_a_steady_level():
    quiet = EnergyRise()
    for _ in range(10):
        assert not quiet.feed(tone(0.1, 50))  # quiet room before the VP speaks
    quiet.start()
    assert not quiet.feed(tone(0.1, 3000))  # 100 ms: not yet sustained
    assert quiet.feed(tone(0.1, 3000))  # 200 ms loud: barge-in
    noisy = EnergyRise()
    for _ in range(10):
        noisy.feed(tone(0.1, 3000))  # someone already talking continuously
    noisy.start()
    assert not any(noisy.feed(tone(0.1, 3000)) for _ in range(20))
    assert noisy.feed(tone(0.1, 20000)) is False and noisy.feed(tone(0.1, 20000))
    idle = EnergyRise()
    assert not idle.feed(tone(0.5, 20000))  # not speaking: never fires
    fresh = EnergyRise()
    for _ in range(10):
        fresh.feed(bytes(3200))  # digital silence: the meeting's audio is not there yet
    fresh.start()
    assert not any(fresh.feed(tone(0.1, 20000)) for _ in range(10)), "disarmed"


def test_bench_spoken_question_timeline_parts():
    """bench_voice --question spoken: the question's end and the VP's first voice sample are
    read off recording.wav (ch0, ch1) and split into parts on the bench's clock."""
    from bench.bench_voice import SpokenTimeline, first_sound_after, loud_span, median_spread

    rate = 16000
    ch0 = np.zeros(rate * 4, dtype=np.int16)
    t = np.arange(rate) / rate
    ch0[rate : 2 * rate] = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    ch0[rate + 8000 : rate + 8800] = 0  # a 50 ms pause inside the speech does not end it
    assert loud_span(ch0, rate) == pytest.approx((1.0, 2.0))
    assert loud_span(np.zeros(rate, dtype=np.int16), rate) is None
    ch1 = np.zeros(rate * 4, dtype=np.int16)
    ch1[int(0.5 * rate)] = 5000  # before the question: not the answer
    ch1[int(3.25 * rate) :] = 2000
    assert first_sound_after(ch1, rate, 1.0) == pytest.approx(3.25)
    assert first_sound_after(ch1[: 3 * rate], rate, 1.0) is None

    timeline = SpokenTimeline(
        question_end_rec=2.0,
        first_voice_rec=3.25,  # 1.25 s after the question's end
        segment_final=100.5,
        answer_queued=101.0,
        first_sound=101.25,  # so the question ended at 100.0 on the bench's clock
        uplink_sound=101.4,
    )
    assert timeline.question_end == pytest.approx(100.0)
    assert timeline.parts() == {
        "question_end_to_first_voice_s": 1.25,
        "transcription_s": 0.5,
        "assistant_and_chat_post_s": 0.5,
        "synthesis_unmute_play_s": 0.25,
        "question_end_to_uplink_sound_s": 1.4,
    }
    no_uplink = SpokenTimeline(2.0, 3.25, 100.5, 101.0, 101.25)
    assert no_uplink.parts()["question_end_to_uplink_sound_s"] is None
    assert median_spread([1.3, 1.1, 1.6]) == {"median": 1.3, "min": 1.1, "max": 1.6}
    assert median_spread([]) is None
