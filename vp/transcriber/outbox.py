"""The transcriber client's outbox: ordered, bounded, and free of I/O (sans-I/O).

Everything the VP sends after START — audio frames and speaker changes — waits here in the
order it happened, so a SPEAKER_CHANGE stays where it was in the audio. The connection side
takes the head item, sends it, and reports back: :meth:`Outbox.sent` when the socket took it,
:meth:`Outbox.put_back` when the send failed (the item is sent again after a reconnect).

Bound and overflow policy: at most ``max_audio_bytes`` of audio waits (counting the item in
flight). Beyond that the OLDEST audio is dropped — recent audio is worth more to a live
transcript — and counted; speaker changes are never dropped for audio's sake, but only the
latest one ahead of the kept audio still describes it, so older ones go with the audio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioItem:
    """One frame of stereo PCM16 (binary frame of contract 3)."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class SpeakerChangeItem:
    """The driver saw a new active speaker (a SPEAKER_CHANGE of contract 3)."""

    name: str


OutboxItem = AudioItem | SpeakerChangeItem


@dataclass(slots=True)
class OutboxCounters:
    """What went through the outbox, in bytes and frames of audio."""

    sent_frames: int = 0
    sent_bytes: int = 0
    dropped_frames: int = 0
    dropped_bytes: int = 0
    buffered_bytes: int = 0  # waiting or in flight
    max_buffered_bytes: int = 0


class Outbox:
    """The ordered queue between the producer (pipeline, driver) and the connection.

    ``head_speaker`` is the active speaker at the point the stream has reached — what START
    says after a reconnect. ``counters`` may be shared with the owner's stats object.
    """

    def __init__(
        self,
        max_audio_bytes: int,
        *,
        head_speaker: str = "n/a",
        counters: OutboxCounters | None = None,
    ) -> None:
        if max_audio_bytes <= 0:
            raise ValueError("max_audio_bytes must be positive")
        self.max_audio_bytes = max_audio_bytes
        self.head_speaker = head_speaker
        self.counters = counters if counters is not None else OutboxCounters()
        self._items: deque[OutboxItem] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[OutboxItem]:
        return iter(self._items)

    # -- producer side -------------------------------------------------------------------
    def push_audio(self, pcm: bytes) -> bool:
        """Queue one audio frame; True when the bound forced older audio out."""
        c = self.counters
        self._items.append(AudioItem(pcm))
        c.buffered_bytes += len(pcm)
        overflowed = c.buffered_bytes > self.max_audio_bytes
        if overflowed:
            self._drop_oldest_audio()
        c.max_buffered_bytes = max(c.max_buffered_bytes, c.buffered_bytes)
        return overflowed

    def push_speaker_change(self, name: str) -> None:
        self._items.append(SpeakerChangeItem(name))

    def _drop_oldest_audio(self) -> None:
        c = self.counters
        latest_change: SpeakerChangeItem | None = None
        while c.buffered_bytes > self.max_audio_bytes and self._items:
            item = self._items.popleft()
            if isinstance(item, SpeakerChangeItem):
                latest_change = item
                continue
            c.buffered_bytes -= len(item.pcm)
            c.dropped_bytes += len(item.pcm)
            c.dropped_frames += 1
        # Only the latest speaker change still describes audio that is left.
        if latest_change is not None:
            self._items.appendleft(latest_change)

    # -- connection side -----------------------------------------------------------------
    def take(self) -> OutboxItem | None:
        """The head item, out of the queue while it is sent (so an overflow drop never takes
        the item in flight); its audio still counts as buffered until :meth:`sent`."""
        return self._items.popleft() if self._items else None

    def put_back(self, item: OutboxItem) -> None:
        """The send of ``item`` failed: it is the head again."""
        self._items.appendleft(item)

    def sent(self, item: OutboxItem) -> None:
        """The socket accepted ``item``."""
        if isinstance(item, AudioItem):
            c = self.counters
            c.buffered_bytes -= len(item.pcm)
            c.sent_bytes += len(item.pcm)
            c.sent_frames += 1
        else:
            self.head_speaker = item.name
