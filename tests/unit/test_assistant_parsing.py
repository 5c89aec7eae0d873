"""Wake phrase and chat command parsing, including near misses that must not trigger."""

from typing import Any

import numpy as np
import pytest

from vp.assistant.parsing import WakePhrase, consent_command, is_end_command, split_message
from vp.consent import Consent, RedactingDelay


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
    consent = Consent("Scribe", pre_s=0.0, post_s=1.5, clock=clock)
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


def _stereo(k: int, n: int = 1600) -> bytes:
    """Frame ``k`` of 0.1 s: ch0 and ch1 both carry ``k + 1`` (so alignment is checkable)."""
    frame = np.full((n, 2), k + 1, dtype="<i2")
    return frame.tobytes()


def test_redacting_delay_reaches_back_before_the_indicator_and_keeps_ch1_aligned():
    """Alice opted out at 1.1 s; her audio starts at 2.5 s, the indicator shows her at 3.1 s
    and moves on at 4.1 s: ch0 is silent over [2.1, 4.6) (pre 1.0, post 0.5), intact
    elsewhere; ch1 untouched; frames go out 1.0 s late from the opt-out on, SPEAKER_CHANGE
    with them."""
    clock = _Clock()
    consent = Consent("Scribe", pre_s=1.0, post_s=0.5, clock=clock)
    out: list[Any] = []
    delay = RedactingDelay([out.append])
    delay.attach(consent)
    consent.speaker("Bob")
    for k in range(60):
        clock.now = round((k + 1) * 0.1, 6)  # frame k covers [0.1 k, 0.1 k + 0.1)
        if k == 10:
            assert consent.on_chat("Alice", "/norecord")
        if k == 30:
            delay.in_order(lambda: out.append("Alice"))
            consent.speaker("Alice")
        if k == 40:
            delay.in_order(lambda: out.append("Bob"))
            consent.speaker("Bob")
        delay.push(_stereo(k))
        frames = [x for x in out if isinstance(x, bytes)]
        if k < 10:
            assert len(frames) == k + 1, "nobody opted out: no delay"
        elif k > 25:
            assert len(frames) == k + 1 - 10, "held 1.0 s behind"
    delay.flush()
    frames = [x for x in out if isinstance(x, bytes)]
    assert len(frames) == 60
    ch = np.frombuffer(b"".join(frames), dtype="<i2").reshape(-1, 2)
    expected = np.repeat(np.arange(1, 61), 1600)
    assert (ch[:, 1] == expected).all(), "ch1 (the VP's voice) untouched and in place"
    silent = (np.arange(ch.shape[0]) >= 2.1 * 16000) & (np.arange(ch.shape[0]) < 4.6 * 16000)
    assert (ch[silent, 0] == 0).all() and (ch[~silent, 0] == expected[~silent]).all()
    # SPEAKER_CHANGE went out right before the audio of its own moment.
    assert out.index("Alice") == 30 and out.index("Bob") == 41
    consent.at_end()
    assert [r.to_dict() for r in consent.redactions] == [
        {"participant": "Alice", "start_s": 2.1, "end_s": 4.6}
    ]
    summary = consent.summary(delay)
    assert summary["delay_s"] == 1.0 and summary["delay_from_s"] == 1.0
    assert summary["silenced_s"] == 2.5 and delay.forced_releases == 0


def test_redaction_never_starts_before_the_command_and_record_cuts_the_margin():
    clock = _Clock()
    consent = Consent("Scribe", pre_s=1.0, post_s=1.5, clock=clock)
    consent.speaker("Bob")
    clock.now = 5.0
    consent.on_chat("Alice", "/norecord")
    clock.now = 5.4
    consent.speaker("Alice")  # the pre-margin would reach 4.4: before her command
    clock.now = 7.0
    consent.speaker("Bob")  # margin to 8.5
    clock.now = 8.0
    consent.speaker("Alice")  # within the margin: the same stretch goes on
    clock.now = 9.0
    consent.on_chat("Alice", "/record")
    clock.now = 20.0
    consent.speaker("Bob")
    consent.speaker("Alice")
    consent.at_end()
    assert [r.to_dict() for r in consent.redactions] == [
        {"participant": "Alice", "start_s": 5.0, "end_s": 9.0}
    ]


def test_a_transcript_line_over_a_redaction_is_dropped_even_after_record():
    """The stream runs pre_s late, so a line of the redacted stretch can arrive after /record:
    it is judged by its own time, not by when it arrives."""
    clock = _Clock()
    consent = Consent("Scribe", pre_s=1.5, post_s=1.5, clock=clock)
    consent.on_chat("Alice", "/norecord")
    clock.now = 4.0
    consent.speaker("Alice")  # redacted from 2.5
    clock.now = 6.0
    consent.on_chat("Alice", "/record")  # ... to 6.0
    assert consent.redacts("Alice", 3.0, 4.0), "her redacted turn, arriving late"
    assert not consent.redacts("Alice", 7.0, 8.0), "recorded again"
    assert not consent.redacts("Alice", 0.0, 2.0), "before her redaction"
    assert not consent.redacts("Bob", 3.0, 4.0), "only her lines"
    consent.on_chat("Bob", "/norecord")
    assert consent.redacts("Bob", 0.0, 1.0), "opted out now: nothing of Bob's is kept"
