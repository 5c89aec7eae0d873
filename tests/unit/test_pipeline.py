"""The audio pipeline's framing, interleaving and real-time policies, on a fake clock."""

import numpy as np

from vp.pipeline import AudioPipeline
from vp.transcriber.protocol import MAX_FRAME_BYTES


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(clock, **kw):
    frames: list[bytes] = []
    pipe = AudioPipeline([frames.append], clock=clock, **kw)
    return pipe, frames


def tone(n: int, value: int = 1000) -> bytes:
    return np.full(n, value, dtype="<i2").tobytes()


def test_interleaves_meeting_on_ch0_and_voice_on_ch1():
    clock = Clock()
    pipe, frames = make(clock)
    pipe.start()
    pipe.push_voice(np.arange(1, 801, dtype="<i2").tobytes())
    clock.t += 0.1
    pipe.push_meeting(tone(1600, 7))
    stereo = np.frombuffer(frames[0], dtype="<i2").reshape(-1, 2)
    assert (stereo[:, 0] == 7).all()
    assert (stereo[:800, 1] == np.arange(1, 801)).all()
    assert (stereo[800:, 1] == 0).all()


def test_frames_never_exceed_200ms():
    clock = Clock()
    pipe, frames = make(clock, frame_ms=200)
    pipe.start()
    clock.t += 1.0
    pipe.push_meeting(tone(16000))
    assert sum(len(f) for f in frames) == 16000 * 4
    assert max(len(f) for f in frames) <= MAX_FRAME_BYTES


def test_nothing_before_start():
    pipe, frames = make(Clock())
    pipe.push_meeting(tone(1600))
    assert frames == []


def test_stall_is_filled_with_silence_up_to_the_wall_clock():
    clock = Clock()
    pipe, frames = make(clock)
    pipe.start()
    clock.t += 0.3
    assert pipe.fill_stall() == 0  # below the 500 ms stall bound: wait for the page
    clock.t += 0.7
    filled = pipe.fill_stall()
    assert filled == 16000 - 1600  # up to one frame behind the wall clock
    assert pipe.stats.filled_samples == filled
    assert sum(len(f) for f in frames) // 4 == filled


def test_burst_ahead_of_wall_clock_drops_oldest():
    clock = Clock()
    pipe, frames = make(clock, max_lead_ms=1000)
    pipe.start()
    clock.t += 1.0
    ramp = np.arange(48000, dtype=np.int32).astype("<i2")  # 3 s in 1 s of wall time
    pipe.push_meeting(ramp.tobytes())
    assert pipe.stats.emitted_samples == 32000  # wall 1 s + 1 s lead
    assert pipe.stats.dropped_samples == 16000
    first = np.frombuffer(frames[0], dtype="<i2").reshape(-1, 2)[0, 0]
    assert first == ramp[16000]  # the oldest excess went


def test_voice_buffer_is_bounded():
    pipe, _ = make(Clock(), max_voice_s=1.0)
    pipe.push_voice(tone(24000))
    assert pipe.stats.voice_dropped_samples == 8000


def test_real_time_over_many_frames():
    clock = Clock()
    pipe, frames = make(clock)
    pipe.start()
    for _ in range(100):
        clock.t += 0.1
        pipe.push_meeting(tone(1600))
        pipe.fill_stall()
    assert pipe.stats.emitted_samples == 160000
    assert pipe.stats.filled_samples == 0 and pipe.stats.dropped_samples == 0


def test_nothing_is_emitted_after_the_final_flush():
    """The sinks close one after the other (the transcriber's END, then recording.wav): a
    stall fill or a late capture frame after flush() would reach only some of them."""
    clock = Clock()
    pipe, frames = make(clock)
    pipe.start()
    clock.t += 2.0
    pipe.flush()
    emitted = pipe.stats.emitted_samples
    assert emitted == 2 * 16000 and len(frames) == 20
    clock.t += 2.0  # the transcriber's END takes a while on a loaded machine
    assert pipe.fill_stall() == 0
    pipe.push_meeting(tone(1600))
    pipe.flush()
    assert pipe.stats.emitted_samples == emitted and len(frames) == 20
