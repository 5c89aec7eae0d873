"""Wake phrase and chat command parsing, including near misses that must not trigger."""

import pytest

from vp.assistant.parsing import WakePhrase, is_end_command, split_message


@pytest.mark.parametrize(
    "message",
    [
        "Scribe leave",
        "scribe LEAVE",
        "@Scribe leave",
        "@scribe end",
        "Scribe stop.",
        "Scribe exit!",
        "leave Scribe",
        "  Scribe   leave  ",
    ],
)
def test_end_commands(message):
    assert is_end_command(message, "Scribe")


@pytest.mark.parametrize(
    "message",
    [
        "please don't make Scribe leave yet",
        "Scribe leave the notes in the doc",
        "Scribe",
        "leave",
        "Scribe go",
        "Scribes leave",
        "Scribe leaves",
        "Scribe leave" + " now" * 30,
        "@Scribe, please leave",
        "Bob leave",
    ],
)
def test_not_end_commands(message):
    assert not is_end_command(message, "Scribe")


def test_end_command_multiword_name():
    assert is_end_command("@meeting assistant stop", "Meeting Assistant")
    assert not is_end_command("meeting stop", "Meeting Assistant")


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("OK Assistant, who is here?", "who is here?"),
        ("okay assistant what did Bob say", "what did Bob say"),
        ("Okay, Assistant: summarize", "summarize"),
        ("ok. assistant! action items?", "action items?"),
        ("So, OK assistant — recap please", "recap please"),
        ("O.K. Assistant help", "help"),
        ("OK Assistant", ""),
    ],
)
def test_wake_phrase_found(text, question):
    assert WakePhrase().question(text) == question


@pytest.mark.parametrize(
    "text",
    [
        "the assistant is ok",
        "OK, so the assistants are here",
        "bookassistant",
        "okassistant",
        "Assistant OK",
        "",
    ],
)
def test_wake_phrase_near_misses(text):
    assert WakePhrase().question(text) is None


def test_custom_wake_phrase():
    wake = WakePhrase(["Hey Scribe"])
    assert wake.question("hey, scribe: who is here") == "who is here"
    assert wake.question("OK Assistant who is here") is None
    with pytest.raises(ValueError):
        WakePhrase(["  ", "!!"])


def test_split_message_keeps_everything_within_limit():
    text = "First sentence here. " * 20 + "word " * 50
    parts = split_message(text, 100)
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_message("short", 100) == ["short"]
    unbroken = "x" * 250
    assert "".join(split_message(unbroken, 100)) == unbroken
