"""The runner's pure parts: audio health (with an injected clock) and the call's end."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from vp.audio_health import CAUSE_SILENT, AudioHealth, SilenceAction, SilenceMonitor
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


# -- capture health: SilenceMonitor (contract 1) ---------------------------------------------
def _run(monitor: SilenceMonitor, clock: Clock, until: float, sound_at: list[float]) -> list:
    """Poll every second up to ``until``, with sound heard at the ``sound_at`` times."""
    actions = []
    while clock.now < until:
        clock.now += 1.0
        heard = [t for t in sound_at if t <= clock.now]
        since = clock.now - max(heard) if heard else None
        action = monitor.poll(since)
        if action is not None:
            actions.append((clock.now, action))
    return actions


def test_speech_shown_over_silent_capture_raises_within_the_threshold_then_reattach_rejoin() -> (
    None
):
    clock = Clock()
    clock.now = 0.0
    monitor = SilenceMonitor(10.0, clock)
    clock.now = 3.0
    monitor.speaker_shown()
    clock.now = 6.0
    monitor.speaker_shown()  # later speakers do not move the start of the condition
    actions = _run(monitor, clock, 30.0, sound_at=[])
    assert actions == [(13.0, SilenceAction.RAISE), (23.0, SilenceAction.REJOIN)]
    assert monitor.degraded_now
    clock.now = 40.0
    monitor.at_end()
    assert [d.to_dict() for d in monitor.degraded] == [
        {"start_s": 13.0, "end_s": 40.0, "cause": CAUSE_SILENT}
    ]


def test_sound_coming_back_closes_the_interval_and_no_second_rejoin_is_asked() -> None:
    clock = Clock()
    clock.now = 0.0
    monitor = SilenceMonitor(10.0, clock)
    clock.now = 3.0
    monitor.speaker_shown()
    actions = _run(monitor, clock, 16.0, sound_at=[])
    assert actions == [(13.0, SilenceAction.RAISE)]
    actions = _run(monitor, clock, 20.0, sound_at=[17.5])
    assert actions == [(18.0, SilenceAction.RECOVERED)]
    assert monitor.degraded[0].to_dict() == {"start_s": 13.0, "end_s": 17.5, "cause": CAUSE_SILENT}
    # A second episode: the rejoin (not used yet) is asked for; a third gets none.
    clock.now = 25.0
    monitor.speaker_shown()
    actions = _run(monitor, clock, 60.0, sound_at=[17.5])
    assert actions == [(35.0, SilenceAction.RAISE), (45.0, SilenceAction.REJOIN)]
    actions = _run(monitor, clock, 70.0, sound_at=[17.5, 61.0])
    assert actions == [(61.0, SilenceAction.RECOVERED)]
    clock.now = 75.0
    monitor.speaker_shown()
    actions = _run(monitor, clock, 120.0, sound_at=[61.0])
    assert actions == [(85.0, SilenceAction.RAISE)]
    assert len(monitor.degraded) == 3


def test_no_alarm_for_ordinary_silence_speech_heard_or_an_indicator_catching_up() -> None:
    clock = Clock()
    clock.now = 0.0
    monitor = SilenceMonitor(10.0, clock)
    # Ordinary silence: nobody newly shown speaking (the last speaker merely stays shown).
    assert _run(monitor, clock, 60.0, sound_at=[]) == []
    # Speech shown and heard: the sound keeps coming.
    for t in range(61, 120, 3):
        clock.now = float(t) - 0.5
        monitor.speaker_shown()
        assert _run(monitor, clock, float(t) + 2, sound_at=[float(t) + 1]) == []
    # The indicator lags the audio: a short remark, then silence, the speaker shown after it.
    clock.now = 130.0
    monitor.poll(0.0)  # sound right now
    clock.now = 131.0
    monitor.speaker_shown()
    assert _run(monitor, clock, 200.0, sound_at=[130.0]) == []
    assert monitor.degraded == []


def test_the_degraded_event_line_is_what_the_webhook_plumbing_reads(tmp_path) -> None:
    """events.jsonl as the VP writes it becomes a vp.capture_degraded webhook event."""
    import json

    from scheduler.webhooks import line_event
    from vp.artifacts import CallArtifacts

    artifacts = CallArtifacts(tmp_path)
    artifacts.open()
    artifacts.event("vp.capture_degraded", start_s=12.5, cause=CAUSE_SILENT)
    artifacts.close()
    (line,) = (tmp_path / "events.jsonl").read_text().splitlines()
    event = line_event("events", json.loads(line))
    assert event is not None and event.type == "vp.capture_degraded"
    assert event.data == {"start_s": 12.5, "cause": CAUSE_SILENT}
