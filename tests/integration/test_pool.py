"""Pool mode: several VPs in one process and one Chromium, in a real Janus room.

A simulated participant plays the tone signal; two pooled VPs must each stream it intact to
their own transcriber connection, and one VP ending (stopped) or its page crashing must not
disturb the other.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.chromium_kill import kill_chromium
from tests.recording_server import Connection, RecordingServer
from tests.support import wait_until
from vp.config import JoinConfig
from vp.errors import ConfigError
from vp.lifecycle import Reason, Status
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, tone_wav
from vp.pool import VpPool
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def meeting(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalMeeting]:
    tmp = tmp_path_factory.mktemp("pool")
    async with LocalMeeting(tmp / "janus") as m:
        wav = tone_wav(tmp / "tones.wav")
        async with SimulatedParticipant(m.url, "Alice", wav):
            yield m


@pytest.fixture
def allowed(meeting: LocalMeeting, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VP_ALLOWED_HOSTS", meeting.allowed_host)


def config(meeting: LocalMeeting, server: RecordingServer, out: Path, vp_id: str) -> JoinConfig:
    return JoinConfig(
        meeting_url=meeting.url,
        name=f"Scribe{vp_id}",
        vp_id=vp_id,
        out_dir=out / vp_id,
        transcriber_url=server.url,
        call_id=f"call-{vp_id}",
        max_duration=14,
    )


def by_call(server: RecordingServer) -> dict[str, Connection]:
    return {c.events[0]["callId"]: c for c in server.connections}


def ch0(frames: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(frames), dtype="<i2").reshape(-1, 2)[:, 0].copy()


def statuses(out: Path) -> list[dict[str, object]]:
    lines = (out / "status.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def heard_in_calls(server: RecordingServer, vp_ids: str, after: float = 0.0) -> bool:
    """Alice's whole tone sequence decodes in each VP's stream (from frames after ``after``)."""
    calls = {c.events[0]["callId"]: c for c in server.connections if c.events}
    for vp_id in vp_ids:
        conn = calls.get(f"call-{vp_id}")
        if conn is None:
            return False
        frames = [f for f, t in zip(conn.frames, conn.frame_times, strict=False) if t > after]
        if count_sequence(decode(ch0(frames)), DEFAULT_SYMBOLS) < 1:
            return False
    return True


async def wait_joined(pool: VpPool, timeout: float = 60) -> None:
    await asyncio.wait_for(
        asyncio.gather(*(vp.joined_event.wait() for vp in pool.vps.values())), timeout
    )


async def test_two_vps_share_one_chromium_and_one_stopping_leaves_the_other_running(
    meeting: LocalMeeting, allowed: None, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    async with VpPool() as pool:
        a = await pool.add(config(meeting, server, tmp_path, "a"))
        b = await pool.add(config(meeting, server, tmp_path, "b"))
        with pytest.raises(ConfigError):
            await pool.add(config(meeting, server, tmp_path, "a"))  # one id, one VP
        await wait_joined(pool)
        # One Chromium, one isolated context (its own renderer) per VP.
        assert pool.host is not None
        assert len(pool.host.browser.contexts) == 2
        assert set(await meeting.participants()) >= {"Alice", "Scribea", "Scribeb"}

        await asyncio.sleep(5)
        pool.stop("a")
        await asyncio.wait_for(pool.wait_for("a"), 20)
        a_ended = time.monotonic()
        results = await asyncio.wait_for(pool.wait(), 40)
    await server.aclose()

    assert results["a"].final.status is Status.COMPLETED
    assert results["a"].final.reason is Reason.STOPPED
    assert results["b"].final.status is Status.COMPLETED
    assert results["b"].final.reason is Reason.MAX_DURATION
    assert a.out_dir != b.out_dir
    for vp_id in ("a", "b"):
        history = statuses(tmp_path / vp_id)
        assert {s["vp_id"] for s in history} == {vp_id}  # each VP writes only its own
        assert [s["status"] for s in history][-2:] == ["LEAVING", "COMPLETED"]

    calls = by_call(server)
    assert set(calls) == {"call-a", "call-b"}
    for conn in calls.values():
        assert conn.order[0] == "START" and conn.order[-1] == "END"
        assert count_sequence(decode(ch0(conn.frames)), DEFAULT_SYMBOLS) >= 1
    b_conn = calls["call-b"]
    # b kept streaming in real time after a had left: nothing lost around a's exit.
    after = [t for t in b_conn.frame_times if t > a_ended]
    assert len(after) >= 30, "b streamed on after a stopped"
    audio_s = len(b"".join(b_conn.frames)) / 64000
    wall = b_conn.frame_times[-1] - b_conn.frame_times[0]
    assert audio_s == pytest.approx(wall, rel=0.05, abs=0.3)
    assert count_sequence(decode(ch0(b_conn.frames)), DEFAULT_SYMBOLS) >= 2
    summary_b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary_b["capture"]["state"] == "active"
    # A frame or two can go when the suite's three workers starve the event loop that acks
    # them (the page drops its oldest queued frame); a's exit breaking b's capture would lose
    # everything after it, which the frame count and the real-time rate above rule out.
    assert summary_b["capture"]["dropped_in_page"] <= 3, summary_b["capture"]


async def test_a_crashed_page_disturbs_only_its_own_vp(
    meeting: LocalMeeting, allowed: None, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    async with VpPool() as pool:
        await pool.add(config(meeting, server, tmp_path, "c"))
        await pool.add(config(meeting, server, tmp_path, "d"))
        await wait_joined(pool)
        await asyncio.sleep(2)
        assert pool.host is not None
        browser = pool.host.browser
        pages = [p for ctx in browser.contexts for p in ctx.pages]
        names = [
            await p.evaluate("document.querySelector('#participant')?.textContent") for p in pages
        ]
        (victim,) = [p for p, name in zip(pages, names, strict=True) if "Scribec" in (name or "")]
        cdp = await victim.context.new_cdp_session(victim)
        with pytest.raises(Exception):  # noqa: B017 - the session dies with the renderer
            await cdp.send("Page.crash")
        crashed = time.monotonic()
        results = await asyncio.wait_for(pool.wait(), 60)
        # The renderer crashed, not Chromium: the pool's browser is the one it started with.
        assert pool.host.browser is browser and browser.is_connected()
    await server.aclose()

    # c: its page crashed; it rejoined in the shared Chromium (runner's recovery) and the
    # gap is reported. d: untouched — no rejoin, no gap, real-time audio throughout.
    summary = {i: json.loads((tmp_path / i / "summary.json").read_text()) for i in "cd"}
    assert results["c"].final.reason is Reason.MAX_DURATION
    assert len(summary["c"]["browser"]["rejoins"]) == 1
    assert summary["c"]["browser"]["audio_gap_s"] > 0
    assert results["d"].final.status is Status.COMPLETED
    assert results["d"].final.reason is Reason.MAX_DURATION
    assert summary["d"]["browser"]["rejoins"] == []
    assert summary["d"]["browser"]["audio_gap_s"] == 0
    assert summary["d"]["capture"]["dropped_in_page"] == 0
    d_conn = by_call(server)["call-d"]
    assert d_conn.order[-1] == "END"
    assert len([t for t in d_conn.frame_times if t > crashed + 1]) >= 30
    audio_s = len(b"".join(d_conn.frames)) / 64000
    assert audio_s == pytest.approx(
        d_conn.frame_times[-1] - d_conn.frame_times[0], rel=0.05, abs=0.3
    )
    assert count_sequence(decode(ch0(d_conn.frames)), DEFAULT_SYMBOLS) >= 2


async def test_the_shared_chromium_killed_every_vp_rejoins_in_one_new_one(
    meeting: LocalMeeting, allowed: None, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    async with VpPool() as pool:
        for vp_id in "ef":
            base = config(meeting, server, tmp_path, vp_id)
            await pool.add(base.model_copy(update={"max_duration": 120, "rejoin_timeout": 45}))
        await wait_joined(pool)
        await wait_until(lambda: heard_in_calls(server, "ef"), 30, "Alice heard", interval=0.5)
        old = pool.host
        assert old is not None
        await kill_chromium(old)
        killed = time.monotonic()
        # Both rejoined in the new Chromium and hear Alice again: the call goes on, then ends.
        await wait_until(
            lambda: heard_in_calls(server, "ef", after=killed + 1), 75, "Alice again", interval=0.5
        )
        for vp_id in "ef":
            pool.stop(vp_id)
        results = await asyncio.wait_for(pool.wait(), 60)
        new = pool.host
        assert new is not None and new is not old and new.connected, "one fresh Chromium"
        assert all(vp.browser_host is new for vp in pool.vps.values())
    await server.aclose()

    for vp_id in "ef":
        final = results[vp_id].final
        assert (final.status, final.reason) == (Status.COMPLETED, Reason.STOPPED), vp_id
        history = [s["status"] for s in statuses(tmp_path / vp_id)]
        assert history == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED"], history
        stats = json.loads((tmp_path / vp_id / "summary.json").read_text())
        (rejoin,) = stats["browser"]["rejoins"]
        assert rejoin["cause"] == "Chromium exited"
        assert 0 < stats["browser"]["audio_gap_s"] < 45
        conn = by_call(server)[f"call-{vp_id}"]
        assert conn.order[-1] == "END"
        after = [f for f, t in zip(conn.frames, conn.frame_times, strict=True) if t > killed + 1]
        # Alice is heard again after the rejoin.
        assert count_sequence(decode(ch0(after)), DEFAULT_SYMBOLS) >= 1, vp_id
