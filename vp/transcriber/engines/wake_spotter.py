"""Wake-phrase spotting for the offline PocketSphinx engine.

PocketSphinx's open-vocabulary decoding is poor on far-field or synthetic speech, so a wake
phrase ("OK Assistant, who is here?") rarely comes out of the language model intact, and its
built-in keyphrase search hardly fires at all on such audio (both measured here). This spotter
re-decodes the *start* of every finished utterance against a tiny JSGF grammar — a wake
phrase, then optionally one of the questions the local assistant knows — and accepts the match
only when the wake words fit the audio well enough.

The fit of a word is its mean per-frame log acoustic score. PocketSphinx normalises acoustic
scores per frame against the best-scoring senone, so this is a log-likelihood ratio against an
unconstrained model: near 0 when the word matches, strongly negative when the grammar was
forced onto other speech. Every wake word must reach the threshold. The default was set on
espeak-ng voices (en-us, its f3/f4/m3 variants, en-gb): 19 of 25 true wake phrases passed
(the British voice's "okay" never did) and 1 of 45 other sentences — "okay so the assistant
is here", which does contain the words (the spotter is a keyword spotter, not a language
model); sentences without the phrase did not come within 0.4 per frame of it.

When the wake phrase is accepted, the utterance's text becomes ``"<phrase>, <question>"`` —
the question from the grammar if its words fit too, else the language model's words after the
wake phrase — so everything downstream (transcript, assistant) sees plain text.

Pure apart from the decoder it is given; runs inside the engine's worker process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Questions the local assistant answers (vp.assistant.engines.LocalEngine); the grammar only
# helps recognise them, any other question still reaches the assistant as LM text.
DEFAULT_QUESTIONS: tuple[str, ...] = (
    "who is here",
    "who is in the meeting",
    "summarize",
    "summarize the meeting",
    "recap",
    "action items",
    "what are the action items",
    "help",
)
DEFAULT_THRESHOLD = -3.5
DEFAULT_QUESTION_THRESHOLD = -4.0
SEARCH_NAME = "vp_wake"
_OK_WORDS = ("okay", "ok")
_NON_WORDS = {"<s>", "</s>", "<sil>"}


def phrase_words(phrase: str) -> list[str]:
    """Lower-case words of ``phrase``; "OK"/"O.K." become "okay"."""
    text = phrase.lower().replace("o.k.", "okay")
    words = re.findall(r"[a-z']+", text)
    return ["okay" if w == "ok" else w for w in words]


def _base(word: str) -> str:
    """A dictionary word without its pronunciation variant suffix: ``okay(2)`` → ``okay``."""
    return word.split("(", 1)[0]


@dataclass(frozen=True, slots=True)
class WakeGrammar:
    """The JSGF text and what its alternatives mean."""

    jsgf: str
    phrases: dict[tuple[str, ...], str]  # normalised wake words → the phrase as configured


def build_grammar(
    phrases: Sequence[str],
    questions: Sequence[str],
    known: Callable[[str], bool],
) -> WakeGrammar | None:
    """A grammar for ``phrases`` followed optionally by ``questions``, using only words the
    dictionary ``known``; None when no wake phrase is pronounceable."""
    alternatives: dict[tuple[str, ...], str] = {}
    for phrase in phrases:
        words = tuple(phrase_words(phrase))
        if words and all(w in _OK_WORDS or known(w) for w in words):
            alternatives.setdefault(words, phrase.strip())
    if not alternatives:
        return None

    def rule(words: Sequence[str]) -> str:
        parts = []
        for w in words:
            if w == "okay":
                spoken = [o for o in _OK_WORDS if known(o)] or ["okay"]
                parts.append("(" + " | ".join(spoken) + ")" if len(spoken) > 1 else spoken[0])
            else:
                parts.append(w)
        return " ".join(parts)

    wake = " | ".join(rule(words) for words in alternatives)
    qs = [q for q in (tuple(phrase_words(q)) for q in questions) if q and all(map(known, q))]
    body = f"public <wake> = ({wake})"
    if qs:
        body += " [<question>];\n<question> = " + " | ".join(" ".join(q) for q in qs)
    jsgf = f"#JSGF V1.0;\ngrammar vpwake;\n{body};\n"
    return WakeGrammar(jsgf, alternatives)


@dataclass(frozen=True, slots=True)
class WordScore:
    word: str
    start_frame: int
    end_frame: int
    log_ascore: float

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame + 1


def mean_score(words: Sequence[WordScore]) -> float:
    frames = sum(w.frames for w in words)
    return sum(w.log_ascore for w in words) / frames if frames else -math.inf


class WakeSpotter:
    """Spots a wake phrase at the start of an utterance with a second search on ``decoder``.

    The decoder must be idle (between utterances) when :meth:`spot` is called; its language
    model search is re-activated afterwards.
    """

    def __init__(
        self,
        decoder: Any,
        phrases: Sequence[str],
        *,
        questions: Sequence[str] = DEFAULT_QUESTIONS,
        threshold: float = DEFAULT_THRESHOLD,
        question_threshold: float = DEFAULT_QUESTION_THRESHOLD,
        max_seconds: float = 6.0,
        sample_rate: int = 16_000,
    ) -> None:
        self.decoder = decoder
        self.threshold = threshold
        self.question_threshold = question_threshold
        self.max_bytes = int(max_seconds * sample_rate) * 2
        self.grammar = build_grammar(phrases, questions, self._known)
        self._lm_search = decoder.current_search()
        if self.grammar is not None:
            decoder.add_jsgf_string(SEARCH_NAME, self.grammar.jsgf)
            # add_* activates nothing, but be explicit: the LM stays the running search.
            decoder.activate_search(self._lm_search)

    @property
    def enabled(self) -> bool:
        return self.grammar is not None

    def _known(self, word: str) -> bool:
        return self.decoder.lookup_word(word) is not None

    def spot(self, pcm: bytes, lm_words: Sequence[tuple[str, int]]) -> str | None:
        """The utterance's text if it starts with a wake phrase, else None.

        ``pcm`` is the utterance from its start; ``lm_words`` the language model's words with
        their start frames (same origin), used for the question when the grammar has none.
        """
        if self.grammar is None or not pcm:
            return None
        words = self._decode(pcm[: self.max_bytes])
        spoken = tuple("okay" if w.word == "ok" else w.word for w in words)
        longest_first = sorted(self.grammar.phrases, key=len, reverse=True)
        key = next((k for k in longest_first if spoken[: len(k)] == k), None)
        if key is None:
            return None
        wake, question = words[: len(key)], words[len(key) :]
        # Every wake word must fit on its own: a mean would let a well-heard "assistant"
        # carry a forced "okay" ("I will send the assistant a note").
        if min(w.log_ascore / w.frames for w in wake) < self.threshold:
            return None
        phrase = self.grammar.phrases[key]
        if question and mean_score(question) >= self.question_threshold:
            asked = " ".join(w.word for w in question)
        else:
            wake_end = wake[-1].end_frame
            asked = " ".join(w for w, start in lm_words if start > wake_end)
        return f"{phrase}, {asked}" if asked else phrase

    def _decode(self, pcm: bytes) -> list[WordScore]:
        d = self.decoder
        d.activate_search(SEARCH_NAME)
        try:
            d.start_utt()
            d.process_raw(pcm, False, True)
            d.end_utt()
            if d.hyp() is None:
                return []
            return [
                WordScore(
                    _base(s.word), s.start_frame, s.end_frame, math.log(max(s.ascore, 1e-300))
                )
                for s in d.seg()
                if s.word not in _NON_WORDS and not s.word.startswith("[")
            ]
        finally:
            d.activate_search(self._lm_search)
