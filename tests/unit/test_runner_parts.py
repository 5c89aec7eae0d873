"""The runner's pure parts: audio health (with an injected clock) and the call's end."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from vp.audio_health import AudioHealth
from vp.call_end import CallEnd, Conclusion
from vp.lifecycle import Reason
from vp.tasks import TaskOwner


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_gap_runs_from_the_last_frame_to_the_next() -> None:
    clock = Clock()
    audio = AudioHealth(clock)
    audio.on_frame()
    clock.now += 1.0
    audio.interrupted()  # the page crashed 1 s after the last frame
    clock.now += 2.0
    audio.interrupted()  # a second notice does not move the start
    clock.now += 1.5
    audio.on_frame()
    assert audio.gaps == [pytest.approx(4.5)]
    assert audio.gap_seconds == pytest.approx(4.5)


def test_each_bad_state_is_warned_once_per_episode_and_all_are_summarised() -> None:
    audio = AudioHealth(Clock())
    with capture_logs() as logs:
        for state in ("no-source", "no-source", "silent", "active", "silent", "silent"):
            audio.check(state)
    said = [(entry["log_level"], entry["state"]) for entry in logs]
    assert said == [
        ("warning", "no-source"),
        ("warning", "silent"),
        ("info", "active"),
        ("warning", "silent"),  # a new episode after sound came back
    ]
    assert audio.warnings == {"no-source", "silent"}


def test_the_end_closes_an_open_gap_and_never_passes_no_source_for_silence() -> None:
    clock = Clock()
    audio = AudioHealth(clock)
    audio.interrupted()  # before any frame: the gap starts now
    clock.now += 3.0
    audio.at_end("no-source")
    assert audio.gaps == [pytest.approx(3.0)]
    assert audio.warnings == {"no-source"}
    audio.at_end("silent")  # silence at the end is not a capture fault
    assert audio.warnings == {"no-source"}


async def test_the_first_conclusion_wins_even_before_the_call_runs() -> None:
    end = CallEnd(TaskOwner())
    end.conclude(Reason.STOPPED, "stop requested")
    end.conclude(Reason.ALONE)
    assert not end.armed and not end.done
    end.arm()
    end.conclude(Reason.MAX_DURATION)
    assert end.done and await end.wait() == Conclusion(Reason.STOPPED, "stop requested")


async def test_race_returns_the_work_or_none_when_the_call_must_end() -> None:
    owner = TaskOwner()
    end = CallEnd(owner)
    end.arm()
    assert await end.race(asyncio.sleep(0, result="joined"), "quick") == "joined"

    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    racing = asyncio.create_task(end.race(slow(), "slow"))
    await started.wait()
    end.conclude(Reason.END_COMMAND)
    assert await asyncio.wait_for(racing, 5) is None
    await owner.aclose()
