"""The tone test signal decodes exactly through the distortions a meeting path adds."""

from __future__ import annotations

import numpy as np
import pytest

from vp.signal import (
    DEFAULT_SYMBOLS,
    FREQUENCIES,
    MARKER,
    count_sequence,
    decode,
    find_sequence,
    make_signal,
    read_wav,
    resample,
    signal_seconds,
    write_wav,
)

FRAME = [MARKER, *DEFAULT_SYMBOLS]


def test_alphabet() -> None:
    assert FREQUENCIES == (600, 900, 1200, 1500, 1800, 2100, 2400, 2700)
    assert MARKER == 7


def test_make_signal_is_deterministic_int16() -> None:
    a = make_signal(DEFAULT_SYMBOLS, 48000)
    b = make_signal(DEFAULT_SYMBOLS, 48000)
    assert a.dtype == np.int16
    assert np.array_equal(a, b)
    assert len(a) == pytest.approx(signal_seconds() * 48000, abs=2)


@pytest.mark.parametrize(
    "bad", [[], [0, 0], [7, 1], [1, 8], [-1]], ids=["empty", "repeat", "marker", "big", "neg"]
)
def test_make_signal_rejects_bad_payloads(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        make_signal(bad)


def test_clean_16k() -> None:
    assert decode(make_signal(DEFAULT_SYMBOLS, 16000)) == FRAME


def test_resampled_48k_to_16k() -> None:
    pcm = resample(make_signal(DEFAULT_SYMBOLS, 48000, repeat=3), 48000, 16000)
    decoded = decode(pcm)
    assert decoded == FRAME * 3
    assert count_sequence(decoded, DEFAULT_SYMBOLS) == 3


def test_noise_silence_and_gain() -> None:
    rng = np.random.default_rng(1234)
    for trial in range(5):
        pcm = make_signal(DEFAULT_SYMBOLS, 16000, repeat=2).astype(np.float64)
        gain = 10 ** rng.uniform(-2.0, 0.4)  # -40 dB … +8 dB (clipped peaks are fine)
        lead = np.zeros(int(rng.integers(0, 16000)))
        trail = np.zeros(int(rng.integers(0, 8000)))
        x = np.concatenate([lead, pcm * gain, trail])
        noise_rms = np.sqrt(np.mean((pcm * gain) ** 2)) / 10 ** (15 / 20)  # 15 dB SNR
        x = x + rng.normal(0, noise_rms, x.size)
        x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        decoded = decode(x)
        assert count_sequence(decoded, DEFAULT_SYMBOLS) == 2, (trial, decoded)


def test_timing_jitter() -> None:
    # Each symbol stretched or squeezed by up to ±15 ms (a crude stand-in for jitter buffers).
    rng = np.random.default_rng(7)
    parts = []
    for s in FRAME:
        dur = 0.120 + rng.uniform(-0.015, 0.015)
        n = round(dur * 16000)
        t = np.arange(n) / 16000
        parts.append(0.3 * np.sin(2 * np.pi * FREQUENCIES[s] * t))
    x = np.round(np.concatenate(parts) * 32767).astype(np.int16)
    assert decode(x) == FRAME


def test_silence_and_noise_alone_decode_to_nothing_useful() -> None:
    rng = np.random.default_rng(3)
    assert decode(np.zeros(32000, np.int16)) == []
    noise = np.round(rng.normal(0, 3000, 48000)).astype(np.int16)
    assert not find_sequence(decode(noise), DEFAULT_SYMBOLS)


def test_wrong_sequence_not_found() -> None:
    decoded = decode(make_signal(DEFAULT_SYMBOLS, 16000, repeat=2))
    assert find_sequence(decoded, DEFAULT_SYMBOLS)
    assert not find_sequence(decoded, [0, 3, 1, 4, 2, 5, 3, 6, 1, 5, 0, 3])
    assert not find_sequence(decoded, [1, 2, 3])
    truncated = decode(make_signal(DEFAULT_SYMBOLS, 16000)[:16000])
    assert not find_sequence(truncated, DEFAULT_SYMBOLS)


def test_wav_round_trip(tmp_path) -> None:
    pcm = make_signal(DEFAULT_SYMBOLS, 48000)
    path = write_wav(tmp_path / "s.wav", pcm, 48000)
    back, rate = read_wav(path)
    assert rate == 48000
    assert np.array_equal(back, pcm)
    assert decode(resample(back, rate, 16000)) == FRAME
