"""Wake phrase and chat command parsing, including near misses that must not trigger."""

import pytest

from vp.assistant.parsing import WakePhrase, consent_command, is_end_command, split_message
from vp.consent import Consent


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


# -- consent (issue 17 part 1) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "command"),
    [
        ("/norecord", "norecord"),
        ("/NoRecord!", "norecord"),
        ("@Scribe norecord", "norecord"),
        ("/record", "record"),
        ("@scribe record.", "record"),
        ("please /norecord me later", None),
        ("Scribe norecord", None),
        ("@Other norecord", None),
        ("/norecording", None),
    ],
)
def test_consent_commands(message, command):
    assert consent_command(message, "Scribe") == command


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_consent_silences_an_opted_out_speaker_with_a_margin_and_record_undoes_it():
    clock = _Clock()
    consent = Consent("Scribe", margin_s=1.5, clock=clock)
    consent.speaker("Alice")
    assert not consent.silencing()
    clock.now = 2.0
    assert consent.on_chat("Alice", "/norecord") == (
        "Alice: you will not be recorded from now on (send /record to undo)."
    )
    assert consent.silencing(), "speaking now: silenced at once"
    clock.now = 4.0
    consent.speaker("Bob")
    assert consent.silencing(), "the margin after the indicator left"
    clock.now = 5.6
    assert not consent.silencing()
    clock.now = 8.0
    consent.speaker("Alice")
    assert consent.silencing()
    clock.now = 9.0
    assert consent.on_chat("Alice", "@Scribe record") == "Alice: you are recorded again."
    assert not consent.silencing()
    consent.at_end()
    assert [r.to_dict() for r in consent.redactions] == [
        {"participant": "Alice", "start_s": 2.0, "end_s": 5.5},
        {"participant": "Alice", "start_s": 8.0, "end_s": 9.0},
    ]


def test_only_the_participant_themselves_can_opt_out_and_the_vp_never():
    clock = _Clock()
    consent = Consent("Scribe", clock=clock)
    assert consent.on_chat("Scribe", "/norecord") is None, "the VP's own message"
    assert consent.on_chat("Bob", "/record") is None, "nothing to undo"
    consent.on_chat("Bob", "/norecord")
    assert consent.opted_out == {"Bob"}
    consent.speaker("Alice")
    assert not consent.silencing(), "Bob's command covers Bob only"
    assert consent.on_chat("Bob", "/norecord") is None, "already out: no second confirmation"
    assert consent.on_chat("Alice", "/record") is None, "Alice cannot opt Bob back in"
    assert consent.opted_out == {"Bob"}
    consent.at_end()
    assert consent.redactions == []
