"""The transcriber client's outbox, without a socket: order, bound, overflow, resend."""

from __future__ import annotations

import pytest

from vp.transcriber.outbox import AudioItem, Outbox, SpeakerChangeItem

FRAME = 100  # bytes; the outbox only counts them


def frame(i: int) -> bytes:
    return bytes([i % 256]) * FRAME


def drain(outbox: Outbox) -> list[AudioItem | SpeakerChangeItem]:
    """What a connection that accepts everything sends, in order."""
    sent = []
    while (item := outbox.take()) is not None:
        outbox.sent(item)
        sent.append(item)
    return sent


def test_keeps_speaker_changes_where_they_happened_in_the_audio() -> None:
    outbox = Outbox(10 * FRAME)
    outbox.push_audio(frame(0))
    outbox.push_speaker_change("Ann")
    outbox.push_audio(frame(1))
    assert drain(outbox) == [AudioItem(frame(0)), SpeakerChangeItem("Ann"), AudioItem(frame(1))]
    c = outbox.counters
    assert (c.sent_frames, c.sent_bytes, c.buffered_bytes) == (2, 2 * FRAME, 0)
    assert outbox.head_speaker == "Ann"


def test_overflow_drops_the_oldest_audio_and_keeps_only_the_latest_speaker_change() -> None:
    outbox = Outbox(3 * FRAME, head_speaker="n/a")
    outbox.push_speaker_change("Ann")
    outbox.push_audio(frame(0))
    outbox.push_speaker_change("Bob")
    outbox.push_audio(frame(1))
    outbox.push_audio(frame(2))
    assert outbox.push_audio(frame(3)) is True  # one frame too many
    outbox.push_audio(frame(4))
    c = outbox.counters
    assert (c.dropped_frames, c.dropped_bytes) == (2, 2 * FRAME)
    assert c.buffered_bytes == c.max_buffered_bytes == 3 * FRAME  # the bound holds
    # Ann's change described dropped audio only; Bob's is ahead of what is left.
    assert list(outbox) == [
        SpeakerChangeItem("Bob"),
        AudioItem(frame(2)),
        AudioItem(frame(3)),
        AudioItem(frame(4)),
    ]


def test_a_failed_send_puts_the_item_back_at_the_head_and_an_overflow_spares_it() -> None:
    outbox = Outbox(2 * FRAME)
    outbox.push_audio(frame(0))
    outbox.push_audio(frame(1))
    in_flight = outbox.take()
    assert in_flight == AudioItem(frame(0))
    # A slow send: more audio arrives meanwhile; the item in flight still counts but is
    # never the one dropped.
    outbox.push_audio(frame(2))
    assert list(outbox) == [AudioItem(frame(2))]
    assert outbox.counters.dropped_frames == 1
    outbox.put_back(in_flight)  # the connection broke
    assert drain(outbox) == [AudioItem(frame(0)), AudioItem(frame(2))]
    assert outbox.counters.buffered_bytes == 0


def test_head_speaker_follows_what_was_sent_not_what_was_queued() -> None:
    outbox = Outbox(10 * FRAME, head_speaker="Ann")
    outbox.push_audio(frame(0))
    outbox.push_speaker_change("Bob")
    item = outbox.take()
    assert item is not None
    outbox.sent(item)
    assert outbox.head_speaker == "Ann"  # a START now still says Ann: Bob comes later
    drain(outbox)
    assert outbox.head_speaker == "Bob"


def test_rejects_a_bound_of_nothing() -> None:
    with pytest.raises(ValueError):
        Outbox(0)
