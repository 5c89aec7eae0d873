"""recording.wav: stereo 16 kHz PCM16 (ch0 meeting, ch1 the VP's voice), crash-safe.

Written with the standard library's :mod:`wave`, which rewrites the RIFF and data sizes in
the header after every ``writeframes`` (and its seeks flush Python's buffer to the kernel),
so a VP killed at any moment — even by SIGKILL — leaves a file whose header matches its
data, readable by any WAV reader.
"""

from __future__ import annotations

import wave
from pathlib import Path

from vp.transcriber.protocol import CHANNELS, SAMPLE_RATE

_SAMPLE_WIDTH = 2  # PCM16
_FRAME_BYTES = CHANNELS * _SAMPLE_WIDTH


class WavRecorder:
    """Appends interleaved stereo PCM16 frames to a WAV file as they arrive."""

    def __init__(self, path: Path, sample_rate: int = SAMPLE_RATE) -> None:
        self.path = path
        self.frames_written = 0
        self._sample_rate = sample_rate
        writer = wave.open(str(path), "wb")  # noqa: SIM115 - closed in close()
        writer.setnchannels(CHANNELS)
        writer.setsampwidth(_SAMPLE_WIDTH)
        writer.setframerate(sample_rate)
        # An empty write makes ``wave`` put the (empty) header on disk now.
        writer.writeframes(b"")
        self._file: wave.Wave_write | None = writer

    def write(self, stereo_pcm: bytes) -> None:
        """Append whole stereo frames (4 bytes each); the header is updated with them."""
        if self._file is None:
            return
        if len(stereo_pcm) % _FRAME_BYTES:
            raise ValueError("stereo PCM16 needs a multiple of 4 bytes")
        self._file.writeframes(stereo_pcm)
        self.frames_written += len(stereo_pcm) // _FRAME_BYTES

    @property
    def seconds(self) -> float:
        return self.frames_written / self._sample_rate

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
