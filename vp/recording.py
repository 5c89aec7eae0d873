"""recording.wav: stereo 16 kHz PCM16 (ch0 meeting, ch1 the VP's voice), crash-safe.

libsndfile is told to rewrite the WAV header after every write, so a VP killed at any
moment leaves a file whose header matches its data (readable by any WAV reader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from vp.transcriber.protocol import CHANNELS, SAMPLE_RATE

_SFC_SET_UPDATE_HEADER_AUTO = 0x1061


class WavRecorder:
    """Appends interleaved stereo PCM16 frames to a WAV file as they arrive."""

    def __init__(self, path: Path, sample_rate: int = SAMPLE_RATE) -> None:
        self.path = path
        self.frames_written = 0
        self._file: sf.SoundFile | None = sf.SoundFile(
            str(path),
            mode="w",
            samplerate=sample_rate,
            channels=CHANNELS,
            subtype="PCM_16",
            format="WAV",
        )
        sf._snd.sf_command(self._file._file, _SFC_SET_UPDATE_HEADER_AUTO, sf._ffi.NULL, 1)

    def write(self, stereo_pcm: bytes) -> None:
        if self._file is None:
            return
        samples = np.frombuffer(stereo_pcm, dtype="<i2").reshape(-1, CHANNELS)
        self._file.write(samples)
        self.frames_written += samples.shape[0]

    @property
    def seconds(self) -> float:
        return self.frames_written / SAMPLE_RATE

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
