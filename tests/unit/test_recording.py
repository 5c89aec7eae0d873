"""recording.wav stays readable whenever the VP dies, even by SIGKILL mid-call."""

from __future__ import annotations

import signal
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vp.recording import WavRecorder

WRITER = """
import sys, time
from pathlib import Path
from vp.recording import WavRecorder
recorder = WavRecorder(Path(sys.argv[1]))
for i in range(25):  # 2.5 s of 100 ms stereo frames: ch0 = i, ch1 = -i
    recorder.write((bytes([i, 0]) + (-i).to_bytes(2, "little", signed=True)) * 1600)
print("written", flush=True)
time.sleep(60)
"""


def test_a_sigkilled_writer_leaves_a_wav_whose_header_matches_its_data(tmp_path: Path) -> None:
    path = tmp_path / "recording.wav"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 16000)
        assert wav.getnframes() == 25 * 1600
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    assert rate == 16000 and data.shape == (25 * 1600, 2)
    frames = data.reshape(25, 1600, 2)
    assert np.array_equal(frames[:, 0, 0], np.arange(25))
    assert np.array_equal(frames[:, 0, 1], -np.arange(25))


def test_close_is_final_and_odd_sizes_are_refused(tmp_path: Path) -> None:
    recorder = WavRecorder(tmp_path / "r.wav")
    with pytest.raises(ValueError):
        recorder.write(b"\x00" * 6)
    recorder.write(b"\x00" * 64)
    assert recorder.seconds == pytest.approx(16 / 16000)
    recorder.close()
    recorder.write(b"\x00" * 64)  # after close: ignored, like every writer of the call
    recorder.close()
    with wave.open(str(tmp_path / "r.wav")) as wav:
        assert wav.getnframes() == 16
