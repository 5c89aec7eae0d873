"""Speech synthesis: text → PCM16 little-endian mono 16 kHz for the VP's outgoing voice.

Selected by name from :data:`SYNTHESIZERS` (contract 1 ``--voice``): ``espeak-ng`` (offline,
Debian's espeak-ng, the default when a voice is on) and ``polly`` (Amazon Polly
``SynthesizeSpeech`` with ``OutputFormat=pcm``, ``SampleRate=16000``). Both return the same
format, so the speaker and the audio path never care which one spoke.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from vp.aws_clients import AwsCallFailed, aws_client, call_aws
from vp.errors import VpError
from vp.signal import resample

log = structlog.get_logger(__name__)

SAMPLE_RATE = 16_000
VOICE_NAMES = ("off", "espeak-ng", "polly")


class SynthesisError(VpError):
    """The engine could not speak this text (the answer still goes to chat)."""

    retryable = True


class SpeechSynthesizer(ABC):
    """Turns text into speech. One instance per VP; ``synthesize`` may be called repeatedly."""

    name: str

    @abstractmethod
    async def synthesize(self, text: str) -> bytes:
        """PCM16LE mono at 16 kHz speaking ``text``; :class:`SynthesisError` on failure."""


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """``text`` cut at sentence ends (``.!?…`` then space), each piece at most ``max_chars``
    (a run-on sentence is cut at its last space before the limit). Empty pieces are dropped.

    Short pieces let the speaker start sooner (first sound after the first sentence is
    synthesized) and let a barge-in drop the rest cleanly."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?…])\s+", " ".join(text.split())):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence.strip():
            pieces.append(sentence.strip())
    return pieces


# Pictographs (the assistant's 🤖 prefix) and markup read aloud as noise: spoken text drops them.
_UNSPOKEN = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F*_`#]")


def speakable(text: str) -> str:
    """``text`` without what should not be read aloud (emoji, markdown marks)."""
    return " ".join(_UNSPOKEN.sub(" ", text).split())


# -- espeak-ng ---------------------------------------------------------------------------
@dataclass
class EspeakNgSynthesizer(SpeechSynthesizer):
    """Debian's espeak-ng, offline. ``en-us`` at 165 words a minute is clear in a meeting."""

    voice: str = "en-us"
    words_per_minute: int = 165
    pitch: int = 45
    timeout_s: float = 20.0
    binary: str | None = None
    name: str = "espeak-ng"

    async def synthesize(self, text: str) -> bytes:
        espeak = self.binary or shutil.which("espeak-ng")
        if espeak is None:
            raise SynthesisError("espeak-ng is not installed")
        # The text goes through stdin, never argv: no option injection, nothing in ps.
        proc = await asyncio.create_subprocess_exec(
            espeak,
            "-v",
            self.voice,
            "-s",
            str(self.words_per_minute),
            "-p",
            str(self.pitch),
            "--stdout",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(text.encode("utf-8")), self.timeout_s
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SynthesisError("espeak-ng timed out") from None
        if proc.returncode != 0:
            raise SynthesisError(f"espeak-ng exited {proc.returncode}")
        return await asyncio.to_thread(_wav_to_pcm16k, out)


def _wav_to_pcm16k(data: bytes) -> bytes:
    # espeak-ng writes a WAV whose size fields say "streaming" (0x7FFFFFFF); read frames by
    # what is actually there.
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SynthesisError("espeak-ng returned no audio") from exc
    if width != 2:
        raise SynthesisError(f"espeak-ng returned {8 * width}-bit audio")
    pcm = np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2")
    if channels > 1:
        pcm = pcm[: pcm.size // channels * channels].reshape(-1, channels)[:, 0]
    return resample(pcm, rate, SAMPLE_RATE).astype("<i2").tobytes()


# -- Amazon Polly ------------------------------------------------------------------------
@dataclass
class PollySynthesizer(SpeechSynthesizer):
    """Amazon Polly ``SynthesizeSpeech``, raw PCM at 16 kHz (no decoding needed).

    ``voice_id`` and ``engine`` (``standard``, ``neural``, ``generative``, ``long-form``)
    choose the voice; the task role needs ``polly:SynthesizeSpeech``."""

    voice_id: str = "Joanna"
    engine: str = "neural"
    region: str | None = None
    timeout_s: float = 8.0
    client_factory: Callable[[], Any] | None = None
    name: str = "polly"
    _client: Any = field(default=None, init=False, repr=False)

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = aws_client("polly", self.region, self.timeout_s, self.client_factory)
        return self._client

    def request(self, text: str) -> dict[str, Any]:
        """The SynthesizeSpeech parameters for ``text`` (public so its shape can be tested)."""
        return {
            "Text": text,
            "TextType": "text",
            "OutputFormat": "pcm",
            "SampleRate": str(SAMPLE_RATE),
            "VoiceId": self.voice_id,
            "Engine": self.engine,
        }

    def _synthesize_blocking(self, text: str) -> bytes:
        response = self._get_client().synthesize_speech(**self.request(text))
        stream = response["AudioStream"]
        try:
            return bytes(stream.read())
        finally:
            stream.close()

    async def synthesize(self, text: str) -> bytes:
        try:
            pcm = await call_aws(lambda: self._synthesize_blocking(text), self.timeout_s)
        except AwsCallFailed as failed:
            if failed.timed_out:
                raise SynthesisError("Polly timed out") from None
            log.warning("voice.polly_error", error=failed.label)
            raise SynthesisError(f"Polly failed: {failed.label}") from failed.__cause__
        return pcm[: len(pcm) // 2 * 2]


SYNTHESIZERS: dict[str, Callable[..., SpeechSynthesizer]] = {
    "espeak-ng": EspeakNgSynthesizer,
    "polly": PollySynthesizer,
}


def create_synthesizer(name: str, **options: Any) -> SpeechSynthesizer:
    """The synthesizer registered as ``name`` (``off`` is not one: no voice, no speaker)."""
    factory = SYNTHESIZERS.get(name)
    if factory is None:
        raise ValueError(f"unknown voice {name!r}; known: {', '.join(SYNTHESIZERS)}")
    return factory(**options)
