"""End to end through `vp serve`'s parts: a real uvicorn server, the SQLite store, the local
launcher running real `vp join` subprocesses (headless Chromium) into the Zoom replica, a real
LMA-protocol WebSocket server as the transcriber.

Schedule → launch at its time → JOINED; queueing under --max-concurrent; cancel of a queued
VP (never launched) and of a joined one (COMPLETED stopped); restart re-arm; no secrets in
argv, records or files.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario
from scheduler.local_launcher import LocalLauncher
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from scheduler.service import VpService
from scheduler.sqlite_store import SqliteStore
from tests.recording_server import RecordingServer
from tests.scheduler.conftest import RunningServer
from tests.support import STOPPED_AFTER_JOINING
from vp.lifecycle import Status

pytestmark = pytest.mark.integration
PASSCODE = "739154"
_ids = iter(range(100, 1000))


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaServer]:
    with ReplicaServer("zoom") as server:
        yield server


@pytest.fixture
async def transcriber() -> Any:
    server = await RecordingServer().start()
    yield server
    await server.aclose()


def meeting(replica: ReplicaServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new replica meeting that wants PASSCODE; its URL (without the passcode)."""
    monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
    meeting_id = f"86012345{next(_ids)}"
    replica.add_meeting(
        Scenario(
            meeting_id=meeting_id,
            passcode=PASSCODE,
            participants=[ParticipantSpec(name="Alice")],
        )
    )
    return replica.meeting_url(meeting_id)


def launcher(tmp_path: Path, transcriber: RecordingServer, **kw: Any) -> LocalLauncher:
    return LocalLauncher(
        tmp_path / "out",
        extra_args=[
            "--transcriber-url",
            transcriber.url,
            "--intro-message",
            "",
            "--exit-message",
            "",
            "--join-timeout",
            "90",
            "--max-duration",
            "300",
        ],
        stop_timeout=30,
        **kw,
    )


async def wait_for(
    client: httpx.AsyncClient, vp_id: str, statuses: set[str], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/vps/{vp_id}")
        assert response.status_code == 200, response.text
        record = response.json()
        if record["status"] in statuses:
            return record
        await asyncio.sleep(0.2)
    raise AssertionError(f"{vp_id} never reached {statuses}: {record}")


def history(record: dict[str, Any]) -> list[str]:
    return [h["status"] for h in record["history"]]


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_launch_queue_cancel_and_stop(replica, transcriber, tmp_path, monkeypatch, serve):
    """--max-concurrent 1: the first VP joins; a second one due meanwhile waits SCHEDULED in
    the queue, is cancelled and never launches; the first is stopped → COMPLETED stopped."""
    store = SqliteStore(tmp_path / "vps.db")
    service = VpService(store, launcher(tmp_path, transcriber, max_concurrent=1))
    server: RunningServer = await serve(service, tmp_path / "out")
    url = meeting(replica, monkeypatch)
    async with server.client("alice") as alice, server.client("bob") as bob:
        created = await alice.post(
            "/v1/vps", json={"meeting_url": url, "platform": "zoom", "passcode": PASSCODE}
        )
        assert created.status_code == 201, created.text
        first = created.json()
        assert first["status"] == "SCHEDULED" and first["owner"] == "alice"
        assert PASSCODE not in created.text
        vp1 = first["vp_id"]

        queued = await alice.post(
            "/v1/vps",
            json={"meeting_url": url, "platform": "zoom", "join_at": later(1), "name": "Second"},
        )
        assert queued.status_code == 201, queued.text
        vp2 = queued.json()["vp_id"]

        joined = await wait_for(alice, vp1, {"JOINED", "FAILED", "COMPLETED", "CANCELLED"})
        assert joined["status"] == "JOINED", joined
        assert history(joined) == ["SCHEDULED", "INITIALIZING", "JOINING", "JOINED"]

        # The running child: no secret in its argv (visible to every local user in ps).
        handle = store.get_launch_handle(vp1)
        assert handle is not None and handle.startswith("pid:")
        argv = Path(f"/proc/{handle[4:]}/cmdline").read_bytes()
        assert b"join" in argv and vp1.encode() in argv
        assert PASSCODE.encode() not in argv and b"pwd" not in argv

        # vp2's time has come, but the one slot is taken: it waits, still SCHEDULED.
        await asyncio.sleep(2)
        waiting = (await alice.get(f"/v1/vps/{vp2}")).json()
        assert waiting["status"] == "SCHEDULED"

        # Another owner can neither see nor cancel them.
        assert (await bob.get(f"/v1/vps/{vp1}")).status_code == 404
        assert (await bob.delete(f"/v1/vps/{vp2}")).status_code == 404
        assert (await bob.get("/v1/vps")).json() == {"vps": []}
        listed = (await alice.get("/v1/vps")).json()["vps"]
        assert [v["vp_id"] for v in listed] == [vp2, vp1]

        cancelled = await alice.delete(f"/v1/vps/{vp2}")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "CANCELLED"
        assert history(cancelled.json()) == ["SCHEDULED", "CANCELLED"]

        stopping = await alice.delete(f"/v1/vps/{vp1}")
        assert stopping.status_code == 200
        ended = await wait_for(alice, vp1, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=60)
        assert (ended["status"], ended["reason"]) == ("COMPLETED", "stopped"), ended
        assert history(ended) == STOPPED_AFTER_JOINING
        # The slot is free again, but the cancelled VP never launches.
        await asyncio.sleep(1.5)
        assert history((await alice.get(f"/v1/vps/{vp2}")).json()) == ["SCHEDULED", "CANCELLED"]
        assert not (tmp_path / "out" / vp2).exists()

    # The VP streamed the meeting to the transcriber and ended the call.
    assert transcriber.connections and transcriber.audio_bytes
    assert transcriber.all_events[-1]["callEvent"] == "END"
    # The passcode is in no file the VP or the control plane wrote (store secrets aside).
    for path in (tmp_path / "out" / vp1).iterdir():
        if path.suffix in (".jsonl", ".log", ".json"):
            assert PASSCODE not in path.read_text(errors="replace"), path.name
    await server.stop()
    store.close()


async def test_restart_rearms_scheduled_and_reaps_stale(
    replica, transcriber, tmp_path, monkeypatch, serve
):
    """A VP scheduled before a restart launches at its time under the new server; one whose
    time passed beyond the grace while down ends FAILED launch-failed; one that was running
    when the old server died ends FAILED internal-error. Shutdown stops a running VP cleanly."""
    db = tmp_path / "vps.db"
    url = meeting(replica, monkeypatch)
    first = await serve(
        VpService(SqliteStore(db), launcher(tmp_path, transcriber)), tmp_path / "out"
    )
    join_at = datetime.now(UTC) + timedelta(seconds=8)
    async with first.client() as client:
        created = await client.post(
            "/v1/vps",
            json={
                "meeting_url": url,
                "platform": "zoom",
                "passcode": PASSCODE,
                "join_at": join_at.isoformat(),
            },
        )
        assert created.status_code == 201, created.text
    vp_id = created.json()["vp_id"]
    await first.stop()  # long before its time

    # Meanwhile (server down): two records the next start must settle.
    store = SqliteStore(db)
    stale_request = LaunchRequest(meeting_url=url, platform="zoom")
    missed = VpRecord.new("missed", "alice", stale_request)
    missed = missed.model_copy(update={"join_at": datetime.now(UTC) - timedelta(minutes=10)})
    store.create(missed, VpSecrets(meeting_url=url))
    store.create(VpRecord.new("orphan", "alice", stale_request), VpSecrets(meeting_url=url))
    for status in (Status.INITIALIZING, Status.JOINING, Status.JOINED):
        store.transition("orphan", status)
    store.close()
    assert datetime.now(UTC) < join_at

    second = await serve(
        VpService(SqliteStore(db), launcher(tmp_path, transcriber)), tmp_path / "out"
    )
    async with second.client() as client:
        missed_now = (await client.get("/v1/vps/missed")).json()
        assert (missed_now["status"], missed_now["reason"]) == ("FAILED", "launch-failed")
        assert "missed its start time" in missed_now["detail"]
        orphan = (await client.get("/v1/vps/orphan")).json()
        assert (orphan["status"], orphan["reason"]) == ("FAILED", "internal-error")
        assert (await client.get(f"/v1/vps/{vp_id}")).json()["status"] == "SCHEDULED"

        joined = await wait_for(client, vp_id, {"JOINED", "FAILED", "CANCELLED", "COMPLETED"})
        assert joined["status"] == "JOINED", joined
        launched_at = datetime.fromisoformat(joined["history"][1]["ts"].replace("Z", "+00:00"))
        assert joined["history"][1]["status"] == "INITIALIZING"
        assert launched_at >= join_at - timedelta(milliseconds=50), "not before its time"

    await second.stop()  # shutdown: the running VP leaves and records its end
    store = SqliteStore(db)
    final = store.get(vp_id)
    assert final is not None
    assert (final.status.value, final.reason) == ("COMPLETED", "stopped"), final
    assert store.list_active() == []
    store.close()
    status_lines = (tmp_path / "out" / vp_id / "status.jsonl").read_text().splitlines()
    assert json.loads(status_lines[-1])["status"] == "COMPLETED"


async def test_calendar_event_makes_a_vp_join_a_janus_room_at_its_start(
    transcriber, tmp_path, monkeypatch, serve
) -> None:
    """An iCalendar feed (served over HTTP) with a Janus room link in LOCATION: `vp serve`'s
    calendar sync schedules a VP at the event's start, and the local launcher's VP joins the
    real Janus room then — not before."""
    from scheduler.hook_store import HookStore
    from scheduler.hooks import HookService, HookSettings
    from tests.scheduler.test_hooks import Receiver, _event, _ics
    from vp.localmeeting.meeting import LocalMeeting

    feed = Receiver()
    await feed.start()
    try:
        async with LocalMeeting(tmp_path / "janus") as room:
            monkeypatch.setenv("VP_ALLOWED_HOSTS", room.allowed_host)
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
            feed.feed = _ics(_event("sync", start, "SUMMARY:Sync", f"LOCATION:{room.url}"))
            service = VpService(SqliteStore(tmp_path / "vps.db"), launcher(tmp_path, transcriber))
            settings = HookSettings(calendar_poll=0, calendar_allowed_hosts=frozenset({feed.host}))
            hooks = HookService(HookStore(tmp_path / "vps.db"), service, settings=settings)
            server: RunningServer = await serve(service, tmp_path / "out", hooks=hooks)
            async with server.client() as client:
                body = {"ics_url": f"http://{feed.host}/feed.ics", "name": "team"}
                created = await client.post("/v1/calendars", json=body)
                assert created.status_code == 201, created.text
                ((vp,),) = [created.json()["vps"]]
                record = (await client.get(f"/v1/vps/{vp['vp_id']}")).json()
                assert record["platform"] == "janus" and record["status"] == "SCHEDULED"
                assert datetime.fromisoformat(record["join_at"]) == start
                joined = await wait_for(client, vp["vp_id"], {"JOINED", "FAILED"}, timeout=150)
                assert joined["status"] == "JOINED", joined
                launched = next(h for h in joined["history"] if h["status"] == "INITIALIZING")
                assert datetime.fromisoformat(launched["ts"]) >= start, "not before the start"
                assert any("Assistant" in name for name in await room.participants())
                stopped = await client.delete(f"/v1/vps/{vp['vp_id']}")
                assert stopped.status_code == 200
                final = await wait_for(client, vp["vp_id"], {"COMPLETED", "FAILED"}, timeout=60)
                assert (final["status"], final["reason"]) == ("COMPLETED", "stopped")
    finally:
        await feed.stop()
