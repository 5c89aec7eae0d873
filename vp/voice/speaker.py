"""The speaker: plays the VP's utterances into the meeting, one at a time.

    say(text) ─► bounded queue ─► run(): unmute ─► synthesize sentence by sentence
                                          └─► output.play (WebRTC track) + on_pcm (ch1)
                                          ─► wait for it to be heard ─► mute

Never two utterances at once: one owned task plays the queue in order. Long texts are split
at sentence boundaries, so the first sound comes after the first sentence is synthesized,
and the next sentence is synthesized while this one plays. A barge-in (someone else starts
talking) cuts the sound in the page, drops what is left of the utterance (and of ch1's
queue), and mutes. A platform that refuses to unmute (the host muted everyone) skips the
utterance: the text stays in chat, and ``on_refused`` reports it once.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from vp.voice.synthesis import (
    SAMPLE_RATE,
    SpeechSynthesizer,
    SynthesisError,
    speakable,
    split_sentences,
)

log = structlog.get_logger(__name__)


class VoiceOutput(ABC):
    """Where the speaker's sound goes: the page's outgoing track and the meeting's mute."""

    @abstractmethod
    async def play(self, pcm: bytes) -> float:
        """Queue PCM16LE mono 16 kHz for sending; seconds until everything queued is played."""

    @abstractmethod
    async def stop(self) -> None:
        """Cut whatever is queued, now."""

    @abstractmethod
    async def microphone(self, on: bool) -> bool:
        """Unmute/mute through the platform's UI; False when the platform refuses."""


@dataclass(slots=True)
class Utterance:
    text: str
    kind: str  # intro, answer, exit
    queued_at: float


@dataclass
class SpeakerStats:
    utterances: int = 0
    sentences: int = 0
    spoken_s: float = 0.0
    barge_ins: int = 0
    dropped: int = 0  # queue full
    refused: int = 0  # the platform would not unmute
    failed: int = 0  # synthesis failed
    first_sound_latency_s: list[float] = field(default_factory=list)  # queued → first sound
    first_sound_at: list[float] = field(default_factory=list)  # clock() of each first sound


class Speaker:
    """One per VP with a voice. ``say()`` queues; ``run()`` (an owned task) speaks."""

    def __init__(
        self,
        synthesizer: SpeechSynthesizer,
        output: VoiceOutput,
        *,
        on_pcm: Callable[[bytes], None] | None = None,
        on_cut: Callable[[], object] | None = None,
        on_refused: Callable[[], None] | None = None,
        max_queue: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_pcm``: each sentence's PCM as it starts playing (ch1 of the recording and the
        transcriber stream); ``on_cut``: a barge-in dropped the rest (clear ch1's queue)."""
        self._synth = synthesizer
        self._output = output
        self._on_pcm = on_pcm
        self._on_cut = on_cut
        self._on_refused = on_refused
        self._queue: asyncio.Queue[Utterance] = asyncio.Queue(max_queue)
        self._clock = clock
        self._barge = asyncio.Event()
        self._speaking = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = SpeakerStats()

    @property
    def speaking(self) -> bool:
        """True from unmute to mute of an utterance."""
        return self._speaking

    def say(self, text: str, kind: str = "answer") -> bool:
        """Queue ``text``; False (and counted) when the queue is full or nothing is speakable."""
        spoken = speakable(text)
        if not spoken:
            return False
        try:
            self._queue.put_nowait(Utterance(spoken, kind, self._clock()))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.warning("voice.queue_full", kind=kind)
            return False
        self._idle.clear()
        return True

    def barge_in(self) -> None:
        """Someone else started talking: stop now and drop the rest of this utterance."""
        if self._speaking and not self._barge.is_set():
            self._barge.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until everything queued has been spoken (the exit message); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Speak queued utterances in order, until cancelled."""
        try:
            while True:
                utterance = await self._queue.get()
                try:
                    await self._speak(utterance)
                except SynthesisError as exc:
                    self.stats.failed += 1
                    log.warning("voice.synthesis_failed", error=exc.detail, kind=utterance.kind)
                finally:
                    if self._queue.empty():
                        self._idle.set()
        finally:
            if self._speaking:
                await self._quiet()

    async def _speak(self, utterance: Utterance) -> None:
        sentences = split_sentences(utterance.text)
        if not sentences:
            return
        # Synthesize before unmuting: the microphone is open only while there is sound.
        pending: asyncio.Task[bytes] | None = asyncio.ensure_future(
            self._synth.synthesize(sentences[0])
        )
        unmuted = False
        try:
            assert pending is not None
            pcm = await pending
            if not await self._output.microphone(True):
                self.stats.refused += 1
                log.warning("voice.unmute_refused", kind=utterance.kind)
                if self._on_refused is not None:
                    self._on_refused()
                await self._output.microphone(False)
                return
            unmuted = self._speaking = True
            self._barge.clear()
            self.stats.utterances += 1
            first = True
            for index in range(len(sentences)):
                pending = None
                if index + 1 < len(sentences):
                    pending = asyncio.ensure_future(self._synth.synthesize(sentences[index + 1]))
                remaining = await self._output.play(pcm)
                if self._on_pcm is not None:
                    self._on_pcm(pcm)
                if first:
                    now = self._clock()
                    self.stats.first_sound_latency_s.append(now - utterance.queued_at)
                    self.stats.first_sound_at.append(now)
                    first = False
                self.stats.sentences += 1
                self.stats.spoken_s += len(pcm) / 2 / SAMPLE_RATE
                if await self._barged_within(remaining):
                    self.stats.barge_ins += 1
                    log.info("voice.barge_in", kind=utterance.kind)
                    await self._output.stop()
                    if self._on_cut is not None:
                        self._on_cut()
                    return
                if pending is None:
                    break
                pcm = await pending
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            if unmuted:
                await self._quiet()

    async def _barged_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._barge.wait(), max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def _quiet(self) -> None:
        self._speaking = False
        try:
            await self._output.microphone(False)
        except Exception as exc:  # the page may be gone at the end of the call
            log.warning("voice.mute_failed", error=type(exc).__name__)


class EnergyRise:
    """Barge-in by sound: ch0 (the meeting, never the VP itself) gets loud while the VP
    speaks, compared with how loud it was before. Pure: feed it frames, read the verdict.

    ``start()`` at the beginning of an utterance takes the level of the last ``baseline_s``
    as the baseline, so a meeting that was already noisy (music, a continuous talker) does
    not cut every utterance; a rise to ``ratio`` × baseline (and above ``floor``) sustained
    for ``sustain_s`` is a barge-in.

    Digital silence (all-zero frames: no meeting audio yet, e.g. Zoom before it joins computer
    audio) is not a baseline: with less than ``min_baseline_s`` of real audio before the
    utterance, the detector stays disarmed for it (the speaker change still barges in) —
    otherwise the meeting's audio arriving would cut the VP's intro."""

    def __init__(
        self,
        *,
        floor: float = 500.0,
        ratio: float = 4.0,
        sustain_s: float = 0.2,
        baseline_s: float = 1.0,
        min_baseline_s: float = 0.5,
    ) -> None:
        self._floor = floor
        self._ratio = ratio
        self._sustain = sustain_s
        self._baseline_s = baseline_s
        self._min_baseline_s = min_baseline_s
        self._history: list[tuple[float, float]] = []  # (seconds, rms) of recent frames
        self._threshold: float | None = None
        self._loud_s = 0.0

    def start(self) -> None:
        """An utterance begins: the recent level becomes the baseline."""
        total = sum(d for d, _ in self._history)
        if total < self._min_baseline_s:
            self._threshold = None  # no real audio to compare with: disarmed
            return
        level = (sum(d * r * r for d, r in self._history) / total) ** 0.5
        self._threshold = max(self._floor, self._ratio * level)
        self._loud_s = 0.0

    def stop(self) -> None:
        self._threshold = None

    def feed(self, pcm: bytes) -> bool:
        """One ch0 frame; True when it completes a barge-in."""
        samples = np.frombuffer(pcm, dtype="<i2")
        if not samples.size:
            return False
        seconds = samples.size / SAMPLE_RATE
        rms = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))
        if self._threshold is None:
            if rms == 0.0:
                return False  # digital silence: no audio path yet
            self._history.append((seconds, rms))
            while sum(d for d, _ in self._history) - self._history[0][0] >= self._baseline_s:
                self._history.pop(0)
            return False
        self._loud_s = self._loud_s + seconds if rms >= self._threshold else 0.0
        if self._loud_s >= self._sustain:
            self._threshold = None
            return True
        return False
