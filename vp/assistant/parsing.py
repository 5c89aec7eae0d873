"""Pure text rules: end commands and the wake phrase. No I/O, fully unit-tested.

Commands match only whole short messages (``Scribe leave``, ``@Scribe stop``), never a
substring of a longer sentence, so "please don't make Scribe leave yet" does nothing.
The wake phrase tolerates case, punctuation and "OK"/"Okay" spellings anywhere in a message
or a final transcript segment; the question is the text after it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

END_WORDS = frozenset({"leave", "end", "stop", "exit"})
MAX_COMMAND_CHARS = 60
DEFAULT_WAKE_PHRASES = ("OK Assistant", "Okay, Assistant")


def _fold(text: str) -> str:
    """Lower-case, NFKC, typographic quotes folded, runs of whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    return " ".join(text.lower().split())


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", _fold(text))


def is_end_command(message: str, vp_name: str) -> bool:
    """True for exactly ``<name> <word>`` / ``@<name> <word>`` (or ``<word> <name>``),
    word ∈ leave/end/stop/exit, case-insensitive, trailing punctuation allowed."""
    if len(message) > MAX_COMMAND_CHARS + len(vp_name):
        return False
    folded = _fold(message).strip(" .!?,;:")
    name = _fold(vp_name)
    if not name:
        return False
    for template in ("{at}{name} {word}", "{word} {at}{name}"):
        for word in END_WORDS:
            for at in ("", "@"):
                if folded == template.format(at=at, name=name, word=word):
                    return True
    return False


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = _words(phrase)
    # "ok" and "okay" are one word for wake purposes; any punctuation or spaces between.
    parts = ["(?:ok|okay|o\\.k\\.?)" if w in ("ok", "okay") else re.escape(w) for w in words]
    return re.compile(r"(?<![\w])" + r"[\s\W]+".join(parts) + r"(?![\w])", re.IGNORECASE)


class WakePhrase:
    """Finds a wake phrase in text and returns the question that follows it."""

    def __init__(self, phrases: Sequence[str] = DEFAULT_WAKE_PHRASES) -> None:
        cleaned = [p for p in phrases if _words(p)]
        if not cleaned:
            raise ValueError("at least one non-empty wake phrase is needed")
        self.phrases = tuple(cleaned)
        self._patterns = [_phrase_pattern(p) for p in cleaned]

    def question(self, text: str) -> str | None:
        """The text after the first wake phrase (stripped of leading punctuation), or None
        when there is no wake phrase. An empty string means the phrase alone was said."""
        folded = unicodedata.normalize("NFKC", text).replace("’", "'")
        best: re.Match[str] | None = None
        for pattern in self._patterns:
            match = pattern.search(folded)
            if match and (best is None or match.start() < best.start()):
                best = match
        if best is None:
            return None
        return folded[best.end() :].strip(" \t\n,.:;!-—–").strip()


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into chat messages of at most ``limit`` characters, at sentence or word
    boundaries where possible, never losing a character of content."""
    if limit < 20:
        raise ValueError("chat limit too small")
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind(". "), window.rfind("\n"), window.rfind("? "), window.rfind("! "))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit - 1
        chunks.append(text[: cut + 1].strip())
        text = text[cut + 1 :].strip()
    if text:
        chunks.append(text)
    return chunks


CONSENT_WORDS = frozenset({"norecord", "record"})


def consent_command(message: str, vp_name: str) -> str | None:
    """``"norecord"`` / ``"record"`` for exactly ``/norecord`` / ``/record`` or
    ``@<name> norecord`` / ``@<name> record`` (case-insensitive, trailing punctuation allowed);
    None for anything else (a longer sentence that mentions it does nothing)."""
    if len(message) > MAX_COMMAND_CHARS + len(vp_name):
        return None
    folded = _fold(message).strip(" .!?,;:")
    name = _fold(vp_name)
    for word in CONSENT_WORDS:
        if folded == f"/{word}" or (name and folded == f"@{name} {word}"):
            return word
    return None
