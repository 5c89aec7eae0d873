"""A known test signal that survives Opus, WebRTC audio processing and an SFU's mixer.

Design
------
* Alphabet: 8 pure tones, ``600 + 300·k`` Hz for ``k = 0..7`` (600 … 2700 Hz), all inside the
  narrowest Opus band any meeting uses. 300 Hz spacing is 12 FFT bins at the decoder's
  40 ms window, so codec smearing and small resampling errors never confuse neighbours.
* Symbol 7 (2700 Hz) is reserved as the START MARKER; payload symbols are ``0..6``.
* One *frame* of the signal is ``[MARKER, *payload]`` followed by a short silence; each symbol
  lasts 120 ms (5 ms raised-cosine edges, no clicks). Consecutive symbols must differ (so the
  decoder can collapse runs without knowing the timing), which the marker also guarantees
  across repetitions when a file loops.
* Decoder: 16 kHz PCM, 40 ms Hann windows every 20 ms, energy near each candidate frequency;
  a frame counts as symbol *k* if that tone holds most of the frame's energy (level and gain
  don't matter, only the ratio) and clearly beats the runner-up, and the frame isn't near
  silence. Runs shorter than ``min_run`` frames are dropped (transitions, codec artefacts),
  non-tonal frames are ignored, and equal neighbours are merged.
* :func:`count_sequence` counts complete ``[MARKER, *payload]`` occurrences in the decoded
  stream: the repetition count of a looping file, or 0 if the audio was damaged.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

BASE_HZ = 600.0
STEP_HZ = 300.0
N_SYMBOLS = 8
FREQUENCIES: tuple[float, ...] = tuple(BASE_HZ + STEP_HZ * k for k in range(N_SYMBOLS))
MARKER = N_SYMBOLS - 1  # 2700 Hz: starts every repetition, never part of a payload
PAYLOAD_SYMBOLS = range(MARKER)  # 0..6

SYMBOL_SECONDS = 0.120
RAMP_SECONDS = 0.005
DEFAULT_GAP_SECONDS = 0.0  # between symbols
DEFAULT_TAIL_SECONDS = 0.240  # silence after each frame
DEFAULT_AMPLITUDE = 0.35  # of full scale (about -9 dBFS peak)

# A fixed, well-mixed payload: every symbol appears, no repeats side by side.
DEFAULT_SYMBOLS: tuple[int, ...] = (0, 3, 1, 4, 2, 5, 3, 6, 1, 5, 0, 4)

DECODE_RATE = 16000
_WINDOW = 640  # 40 ms at 16 kHz
_HOP = 320  # 20 ms
_BAND_HZ = 60.0  # energy within ±60 Hz of a candidate counts for it

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]


def validate_payload(symbols: Sequence[int]) -> None:
    if not symbols:
        raise ValueError("payload is empty")
    for i, s in enumerate(symbols):
        if s not in PAYLOAD_SYMBOLS:
            raise ValueError(f"symbol {s} at {i} is not a payload symbol (0..{MARKER - 1})")
        if i and symbols[i - 1] == s:
            raise ValueError(f"symbols {i - 1} and {i} are equal ({s}); neighbours must differ")


def frame_symbols(symbols: Sequence[int]) -> list[int]:
    """The symbols of one frame: the start marker, then the payload."""
    validate_payload(symbols)
    return [MARKER, *symbols]


def make_signal(
    symbols: Sequence[int] = DEFAULT_SYMBOLS,
    sample_rate: int = 48000,
    *,
    symbol_seconds: float = SYMBOL_SECONDS,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    tail_seconds: float = DEFAULT_TAIL_SECONDS,
    amplitude: float = DEFAULT_AMPLITUDE,
    repeat: int = 1,
) -> Int16Array:
    """One (or ``repeat``) frame(s) of the tone signal as mono int16 PCM. Deterministic."""
    if not 0 < amplitude <= 1:
        raise ValueError("amplitude must be in (0, 1]")
    n_sym = round(symbol_seconds * sample_rate)
    n_ramp = min(round(RAMP_SECONDS * sample_rate), n_sym // 2)
    envelope = np.ones(n_sym)
    if n_ramp:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_ramp) / n_ramp)
        envelope[:n_ramp] = ramp
        envelope[-n_ramp:] = ramp[::-1]
    t = np.arange(n_sym) / sample_rate
    gap = np.zeros(round(gap_seconds * sample_rate))
    parts: list[FloatArray] = []
    for i, s in enumerate(frame_symbols(symbols)):
        if i and gap.size:
            parts.append(gap)
        parts.append(np.sin(2 * np.pi * FREQUENCIES[s] * t) * envelope)
    parts.append(np.zeros(round(tail_seconds * sample_rate)))
    one = np.concatenate(parts) * amplitude
    pcm = np.tile(one, repeat) if repeat > 1 else one
    return np.round(pcm * 32767).astype(np.int16)


def signal_seconds(
    symbols: Sequence[int] = DEFAULT_SYMBOLS,
    *,
    symbol_seconds: float = SYMBOL_SECONDS,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    tail_seconds: float = DEFAULT_TAIL_SECONDS,
) -> float:
    """Duration of one frame of :func:`make_signal` (for sizing captures)."""
    n = len(frame_symbols(symbols))
    return n * symbol_seconds + (n - 1) * gap_seconds + tail_seconds


def write_wav(path: Path | str, pcm: Int16Array, sample_rate: int) -> Path:
    """Write mono 16-bit PCM as a canonical RIFF/WAVE file (what Chromium's fake capture reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return path


def read_wav(path: Path | str) -> tuple[Int16Array, int]:
    """Read a 16-bit PCM WAV; multi-channel audio is mixed down to mono."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate = wav.getframerate()
        channels = wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
    return data.astype(np.int16), rate


def resample(pcm: npt.NDArray[np.generic], src_rate: int, dst_rate: int) -> Int16Array:
    """Band-limited (FFT) resampling of mono PCM to int16; fine for test-sized audio."""
    x = np.asarray(pcm, dtype=np.float64)
    if src_rate == dst_rate or x.size == 0:
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)
    n_out = round(x.size * dst_rate / src_rate)
    spectrum = np.fft.rfft(x)
    n_bins = n_out // 2 + 1
    if n_bins <= spectrum.size:
        spectrum = spectrum[:n_bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(n_bins - spectrum.size, complex)])
    y = np.fft.irfft(spectrum, n_out) * (n_out / x.size)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def frame_labels(
    pcm_int16_16k: npt.NDArray[np.generic],
    *,
    min_purity: float = 0.45,
    min_dominance: float = 4.0,
    silence_dbfs: float = -60.0,
) -> list[int | None]:
    """Per 20 ms hop: the dominant symbol, or None (silence, speech, noise, transitions)."""
    x = np.asarray(pcm_int16_16k, dtype=np.float64).ravel() / 32768.0
    if x.size < _WINDOW:
        return []
    n_frames = 1 + (x.size - _WINDOW) // _HOP
    idx = np.arange(_WINDOW)[None, :] + _HOP * np.arange(n_frames)[:, None]
    frames = x[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    window = np.hanning(_WINDOW)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_WINDOW, 1.0 / DECODE_RATE)
    voice = (freqs >= 200) & (freqs <= 4000)
    total = power[:, voice].sum(axis=1) + 1e-20
    bands = np.stack(
        [power[:, np.abs(freqs - f) <= _BAND_HZ].sum(axis=1) for f in FREQUENCIES], axis=1
    )
    order = np.argsort(bands, axis=1)
    best = order[:, -1]
    best_power = bands[np.arange(n_frames), best]
    second_power = bands[np.arange(n_frames), order[:, -2]] + 1e-20
    # RMS of the windowed frame, as dBFS of a full-scale sine's equivalent.
    rms = np.sqrt(np.mean((frames * window) ** 2, axis=1) / np.mean(window**2)) + 1e-12
    level_db = 20 * np.log10(rms * np.sqrt(2))
    ok = (
        (best_power / total >= min_purity)
        & (best_power / second_power >= min_dominance)
        & (level_db >= silence_dbfs)
    )
    return [int(b) if good else None for b, good in zip(best, ok, strict=True)]


def collapse(labels: Sequence[int | None], min_run: int = 2) -> list[int]:
    """Run-length collapse: drop runs shorter than ``min_run`` and non-symbols, merge equals."""
    out: list[int] = []
    i = 0
    while i < len(labels):
        j = i
        while j < len(labels) and labels[j] == labels[i]:
            j += 1
        label = labels[i]
        if label is not None and j - i >= min_run and (not out or out[-1] != label):
            out.append(label)
        i = j
    return out


def decode(pcm_int16_16k: npt.NDArray[np.generic], *, min_run: int = 2) -> list[int]:
    """Decode 16 kHz mono PCM into the symbol stream (markers included as :data:`MARKER`).

    Alignment, level, leading/trailing silence, moderate noise and timing jitter don't
    matter. A 120 ms tone yields 4–5 hops of which at least 3 are clean, so ``min_run=2``
    keeps every symbol and rejects transition hops.
    """
    return collapse(frame_labels(pcm_int16_16k), min_run=min_run)


def count_sequence(decoded: Sequence[int], expected: Sequence[int]) -> int:
    """How many complete ``[MARKER, *expected]`` frames occur in ``decoded``."""
    pattern = frame_symbols(expected)
    n = len(pattern)
    return sum(1 for i in range(len(decoded) - n + 1) if list(decoded[i : i + n]) == pattern)


def find_sequence(decoded: Sequence[int], expected: Sequence[int] = DEFAULT_SYMBOLS) -> bool:
    """Whether at least one complete ``[MARKER, *expected]`` frame occurs in ``decoded``."""
    return count_sequence(decoded, expected) > 0
