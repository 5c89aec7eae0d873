"""The meeting page or Chromium dies (or hangs) mid-call: one relaunch and rejoin, else FAILED.

Real faults on real components: the renderer is crashed through DevTools (``Page.crash``),
Chromium's browser process is killed with SIGKILL, and the page's main thread is blocked by
``for (;;) {}``, in a VP joined to a real Janus room where a participant plays a known tone
signal. The lifecycle never goes back to JOINING (contract 2 has no such transition): the
rejoin happens inside JOINED, and the audio gap is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import structlog

from tests.chromium_kill import kill_chromium
from tests.faults.conftest import ch0, start_and_wait_joined, statuses, summary
from tests.recording_server import RecordingServer
from tests.support import scribe_config, wait_until
from vp import memory_guard
from vp.config import JoinConfig
from vp.lifecycle import Reason, Status
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant
from vp.proctree import tree_pss_bytes
from vp.runner import RunResult, VirtualParticipant
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode

pytestmark = pytest.mark.integration

STEREO_BYTES_PER_S = 64000


def config(
    meeting: LocalMeeting, server: RecordingServer, out: Path, **extra: object
) -> JoinConfig:
    return scribe_config(meeting.url, out, server.url, call_id="call-crash", **extra)


async def crash_renderer(vp: VirtualParticipant) -> None:
    """Crash the meeting page's renderer process (DevTools Page.crash never answers)."""
    assert vp.page is not None
    session = await vp.page.context.new_cdp_session(vp.page)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(session.send("Page.crash"), 2)


def heard(audio: bytes) -> bool:
    """Alice's whole tone sequence decodes from this stretch of the stream."""
    return count_sequence(decode(ch0(audio[: len(audio) // 4 * 4])), DEFAULT_SYMBOLS) >= 1


def decoded_after(audio: bytes, seconds_from_end: float) -> int:
    tail = audio[-int(seconds_from_end * STEREO_BYTES_PER_S) // 4 * 4 :]
    return count_sequence(decode(ch0(tail)), DEFAULT_SYMBOLS)


async def rejoined_then_stopped(
    vp: VirtualParticipant, task: asyncio.Task[RunResult], server: RecordingServer
) -> RunResult:
    """Wait for the rejoin and for Alice to be heard after it, then ask the VP to leave."""
    await wait_until(lambda: bool(vp.rejoins), 60, "the rejoin")
    sent_at_rejoin = len(server.audio_bytes)
    await wait_until(
        lambda: heard(server.audio_bytes[sent_at_rejoin:]), 30, "Alice again", interval=0.5
    )
    vp.stop()
    result = await asyncio.wait_for(task, 60)
    await server.aclose()
    return result


async def test_renderer_crash_rejoins_once_then_second_crash_fails(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(config(meeting, server, out, max_duration=90, rejoin_timeout=45))
    with structlog.testing.capture_logs() as logs:
        task = await start_and_wait_joined(vp)
        await wait_until(lambda: heard(server.audio_bytes), 30, "Alice", interval=0.5)
        first_page = vp.page
        await crash_renderer(vp)
        await wait_until(lambda: bool(vp.rejoins), 60, "the rejoin")
        assert vp.page is not first_page and not task.done()
        assert vp.lifecycle.status is Status.JOINED
        # Audio flows again after the rejoin: Alice's tone sequence decodes from it.
        sent_at_rejoin = len(server.audio_bytes)
        await wait_until(
            lambda: heard(server.audio_bytes[sent_at_rejoin:]), 20, "Alice again", interval=0.5
        )
        await crash_renderer(vp)  # the second crash: no second rejoin
        result = await asyncio.wait_for(task, 30)
    await server.aclose()

    assert (result.final.status, result.final.reason) == (Status.FAILED, Reason.BROWSER_CRASHED)
    assert "again after a rejoin" in (result.final.detail or "")
    history = [s["status"] for s in statuses(out)]
    assert history == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "FAILED"], history
    assert sum(1 for e in logs if e["event"] == "vp.rejoined") == 1
    stats = summary(out)
    (rejoin,) = stats["browser"]["rejoins"]
    assert "crashed" in rejoin["cause"]
    assert 0 < stats["browser"]["audio_gap_s"] < 60
    assert server.all_events[-1]["callEvent"] == "END", "END sent even after the crash"
    recorded, _ = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert recorded.tobytes() == server.audio_bytes, "the gap is silence in both, nothing lost"


async def test_chromium_killed_relaunches_and_rejoins(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(config(meeting, server, out, max_duration=120, rejoin_timeout=45))
    task = await start_and_wait_joined(vp)
    await wait_until(lambda: heard(server.audio_bytes), 30, "Alice", interval=0.5)
    host = vp.browser_host
    assert host is not None
    await kill_chromium(host)
    result = await rejoined_then_stopped(vp, task, server)

    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.STOPPED)
    assert vp.browser_host is not host, "a new Chromium"
    history = [s["status"] for s in statuses(out)]
    assert history == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED"], history
    stats = summary(out)
    (rejoin,) = stats["browser"]["rejoins"]
    assert rejoin["cause"] == "Chromium exited"
    gap = stats["browser"]["audio_gap_s"]
    assert 0 < gap < 45
    reported = re.search(r"audio gap ([0-9.]+) s", result.final.detail or "")
    assert reported and abs(float(reported.group(1)) - gap) <= 0.1, result.final.detail
    # The stream stayed real time through the gap (silence filled), and Alice is heard again.
    assert stats["pipeline"]["filled_seconds"] > 0
    assert decoded_after(server.audio_bytes, 5) >= 1
    assert server.all_events[-1]["callEvent"] == "END"


async def test_hung_page_is_detected_by_the_watchdog_and_rejoined(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(
        config(meeting, server, out, max_duration=120, hang_timeout=4, rejoin_timeout=45)
    )
    task = await start_and_wait_joined(vp)
    await wait_until(lambda: heard(server.audio_bytes), 30, "Alice", interval=0.5)
    assert vp.page is not None
    hung_page = vp.page
    # The page's main thread never yields again: every evaluate on it would wait forever.
    await hung_page.evaluate("() => { setTimeout(() => { for (;;) {} }, 0); }")
    await wait_until(lambda: vp.page is not hung_page, 40, "the watchdog to replace the page")
    result = await rejoined_then_stopped(vp, task, server)

    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.STOPPED)
    (rejoin,) = summary(out)["browser"]["rejoins"]
    assert "hung" in rejoin["cause"]
    assert summary(out)["browser"]["audio_gap_s"] >= 4, "at least the watchdog's timeout"
    assert decoded_after(server.audio_bytes, 5) >= 1, "Alice is heard again"


async def test_rejoin_that_fails_ends_failed_browser_crashed(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(config(meeting, server, out, max_duration=90, rejoin_timeout=30))
    task = await start_and_wait_joined(vp)
    await asyncio.sleep(2)
    await crash_renderer(vp)
    await meeting.end_meeting()  # meanwhile the room is gone: the rejoin cannot succeed
    result = await asyncio.wait_for(task, 60)
    await server.aclose()
    assert (result.final.status, result.final.reason) == (Status.FAILED, Reason.BROWSER_CRASHED)
    assert "the rejoin failed" in (result.final.detail or ""), result.final.detail
    assert server.all_events[-1]["callEvent"] == "END"
    recorded, _ = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert recorded.shape[0] > 16000 and np.array_equal(
        recorded.reshape(-1), np.frombuffer(server.audio_bytes, "<i2")
    )


async def test_memory_guard_reports_then_reloads_the_page_once_and_the_call_goes_on(
    meeting: LocalMeeting,
    alice: SimulatedParticipant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real limit, real memory: the meeting page allocates (and touches) 64 MiB at a time
    until the guard, measuring this process's tree (the VP's Chromium and driver, plus the
    room's Janus and Alice here), reports above 85 % and then reloads the page above 95 %."""
    monkeypatch.setattr(memory_guard, "CHECK_EVERY", 0.25)
    limit = tree_pss_bytes(os.getpid()) + (1200 << 20)  # this tree before the VP, + 1.2 GiB
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(config(meeting, server, out, rejoin_timeout=45, memory_limit=limit))
    with structlog.testing.capture_logs() as logs:
        task = await start_and_wait_joined(vp)
        await wait_until(lambda: vp.memory is not None, 10, "the guard (it starts once JOINED)")
        guard = vp.memory
        assert guard is not None and guard.limit.source == "--memory-limit"
        first_page = vp.page
        for _ in range(80):
            if guard.state.reloads:
                break
            with contextlib.suppress(Exception):  # the page may be going away
                assert first_page is not None
                await first_page.evaluate(HOG_64_MIB)
            await asyncio.sleep(0.5)
        await wait_until(lambda: bool(vp.rejoins), 60, "the reload")
        assert vp.page is not first_page and vp.lifecycle.status is Status.JOINED
        # The reload freed the hog: the tree is back under the report threshold.
        await wait_until(lambda: (guard.limit.usage() or limit) < 0.85 * limit, 30, "memory freed")
        sent_at_rejoin = len(server.audio_bytes)
        await asyncio.sleep(6)
        assert decoded_after(server.audio_bytes[sent_at_rejoin:], 6) >= 1, "Alice heard again"
        vp.stop()
        result = await asyncio.wait_for(task, 30)
    await server.aclose()

    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.STOPPED)
    assert "memory peaked at" in (result.final.detail or ""), result.final.detail
    history = [s["status"] for s in statuses(out)]
    assert history == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED"], history
    stats = summary(out)
    memory = stats["memory"]
    assert memory["limit_bytes"] == limit and memory["reloads"] == 1
    assert memory["peak_bytes"] >= 0.95 * limit
    report, *rest = memory["warnings"]
    assert 85 <= report["percent"] < 95, "reported before it reloaded"
    assert rest and rest[-1]["percent"] >= 95
    (rejoin,) = stats["browser"]["rejoins"]
    assert rejoin["cause"].startswith("memory at ")
    actions = [e["action"] for e in logs if e["event"] == "vp.memory_high"]
    assert actions[0] == "report" and actions.count("reload") == 1, actions
    assert server.all_events[-1]["callEvent"] == "END"


HOG_64_MIB = "() => { (window.__hog ||= []).push(new Uint8Array(64 << 20).fill(7)); }"
