"""The wake-phrase spotter of the offline engine: grammar building (pure) and spotting on real
espeak-ng speech through the real PocketSphinx engine."""

from __future__ import annotations

import asyncio

import pytest

from vp.assistant.parsing import DEFAULT_WAKE_PHRASES, WakePhrase
from vp.localmeeting.participant import synthesize_speech
from vp.transcriber.engines import create_engine
from vp.transcriber.engines.pocketsphinx_engine import PocketsphinxEngine
from vp.transcriber.engines.wake_spotter import build_grammar, phrase_words

SR = 16_000
KNOWN = {"okay", "ok", "assistant", "hey", "who", "is", "here", "help", "scribe"}


def test_phrase_words_normalise_ok_spellings_and_punctuation():
    assert phrase_words("OK Assistant") == ["okay", "assistant"]
    assert phrase_words("Okay, Assistant!") == ["okay", "assistant"]
    assert phrase_words("o.k. assistant") == ["okay", "assistant"]


def test_grammar_merges_spellings_and_keeps_the_first_phrase_as_written():
    grammar = build_grammar(DEFAULT_WAKE_PHRASES, ["who is here", "help"], KNOWN.__contains__)
    assert grammar is not None
    assert grammar.phrases == {("okay", "assistant"): "OK Assistant"}
    assert "(okay | ok) assistant" in grammar.jsgf
    assert "<question> = who is here | help" in grammar.jsgf


def test_grammar_drops_unpronounceable_phrases_and_questions():
    grammar = build_grammar(
        ["Hey Scribe", "Hey Zyxwv"], ["who is here", "summarize"], KNOWN.__contains__
    )
    assert grammar is not None
    assert list(grammar.phrases.values()) == ["Hey Scribe"]
    assert "summarize" not in grammar.jsgf
    assert build_grammar(["Zyxwv"], ["help"], KNOWN.__contains__) is None


def test_aws_transcribe_factory_ignores_wake_phrases():
    engine = create_engine("aws-transcribe", wake_phrases=DEFAULT_WAKE_PHRASES)
    assert engine.name == "aws-transcribe"


async def _finals(engine: PocketsphinxEngine, sentences: list[str]) -> list[str]:
    gap = bytes(SR * 2)  # 1 s of silence ends each utterance
    pcm = gap + gap.join(synthesize_speech(s, sample_rate=SR).tobytes() for s in sentences) + gap
    stream = await engine.open_stream()

    async def feed() -> None:
        for i in range(0, len(pcm), 6400):
            stream.feed(pcm[i : i + 6400])
            await asyncio.sleep(0)
        await stream.finish()

    feeder = asyncio.create_task(feed())
    results = [r async for r in stream.results()]
    await feeder
    await stream.aclose()
    return [r.text for r in results if not r.is_partial]


async def test_spoken_wake_phrase_becomes_a_question_and_other_speech_does_not():
    engine = PocketsphinxEngine(wake_phrases=DEFAULT_WAKE_PHRASES, workers=1)
    try:
        finals = await _finals(
            engine,
            [
                "Let us talk about the budget for next quarter.",
                "OK Assistant, who is here?",
                "We need to finish the report by Friday.",
            ],
        )
    finally:
        await engine.aclose()
    wake = WakePhrase(DEFAULT_WAKE_PHRASES)
    questions = [q for q in map(wake.question, finals) if q is not None]
    assert len(finals) == 3, finals
    assert questions == ["who is here"], finals


async def test_without_wake_phrases_the_engine_does_not_spot():
    engine = PocketsphinxEngine(workers=1)
    try:
        finals = await _finals(engine, ["OK Assistant, who is here?"])
    finally:
        await engine.aclose()
    # The language model alone does not hear the phrase in espeak speech (the reason for the
    # spotter); if it ever does, this test tells us the spotter may no longer be needed.
    assert finals and all(WakePhrase().question(f) is None for f in finals), finals


@pytest.mark.parametrize(
    "sentence", ["I think the system is stable now.", "Can everyone hear me okay?"]
)
async def test_near_misses_do_not_trigger(sentence):
    engine = PocketsphinxEngine(wake_phrases=DEFAULT_WAKE_PHRASES, workers=1)
    try:
        finals = await _finals(engine, [sentence])
    finally:
        await engine.aclose()
    assert all(WakePhrase().question(f) is None for f in finals), finals
