"""The local launcher with real subprocesses (a scripted stand-in for `vp join`, see
fake_vp.py): secrets via the environment, bounded concurrency and queueing, stop and kill,
the reaper for children that die without a final status, garbage on stdout, restart sweep."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.local_launcher import LocalLauncher
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from scheduler.service import Caller, VpService
from scheduler.sqlite_store import SqliteStore
from tests.support import STOPPED_AFTER_JOINING
from vp.lifecycle import Status

FAKE_VP = [sys.executable, str(Path(__file__).with_name("fake_vp.py"))]
ALICE = Caller("alice")
URL = "https://zoom.us/j/123456789?pwd=UrLsEcReT"


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    services: list[VpService] = []

    async def _make(mode: str = "hold", **kw: Any) -> tuple[VpService, LocalLauncher]:
        server_env = {
            **os.environ,
            # the server's own secrets: a VP child must get none of them
            "VP_AUTH_SECRET": "server-auth-secret-0123456789abcdef",
            "VP_TRANSCRIBER_JWT_SECRET": "jwt-signing-secret",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "aws-secret-key",
            "AWS_SESSION_TOKEN": "aws-session-token",
            "VP_PASSCODE": "the-server's-own",
        }
        kw.setdefault("vp_command", FAKE_VP)
        launcher = LocalLauncher(
            tmp_path / "out",
            env=server_env,
            extra_env={"FAKE_VP_MODE": mode},
            stop_timeout=5,
            **kw,
        )
        service = VpService(SqliteStore(tmp_path / "vps.db"), launcher)
        await service.start()
        services.append(service)
        return service, launcher

    yield _make
    for service in services:
        await service.aclose()


async def until(
    service: VpService, vp_id: str, ok: Callable[[VpRecord], bool], timeout: float = 30
) -> VpRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = await service.get(ALICE, vp_id)
        if ok(record):
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)


async def launch(service: VpService, passcode: str | None = None, name: str | None = None) -> str:
    request = LaunchRequest(meeting_url=URL, passcode=passcode, name=name)
    return (await service.launch(ALICE, request)).record.vp_id


def statuses(record: VpRecord) -> list[str]:
    return [h.status.value for h in record.history]


async def test_secrets_travel_in_the_environment_not_argv(make, tmp_path) -> None:
    service, _ = await make("hold")
    vp_id = await launch(service, passcode="9876-pass", name="--help")
    await until(service, vp_id, lambda r: r.status is Status.JOINED)
    seen = json.loads((tmp_path / "out" / vp_id / "fake.json").read_text())
    assert seen["env"]["VP_PASSCODE"] == "9876-pass"
    assert seen["env"]["VP_MEETING_URL"] == URL
    # an allow-listed environment: none of the server's secrets
    for name in ("VP_AUTH_SECRET", "VP_TRANSCRIBER_JWT_SECRET", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):  # fmt: skip
        assert name not in seen["names"], name
    assert "PATH" in seen["names"] and "FAKE_VP_MODE" in seen["names"]
    # private output: the VP's folder 0700, what it writes 0600
    folder = tmp_path / "out" / vp_id
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "fake.json").stat().st_mode & 0o777 == 0o600
    assert (folder / "vp.log").stat().st_mode & 0o777 == 0o600
    argv = " ".join(seen["argv"])
    assert "9876-pass" not in argv and "UrLsEcReT" not in argv
    assert f"--vp-id={vp_id}" in seen["argv"] and "--platform=zoom" in seen["argv"]
    assert "--json" in seen["argv"] and "--name=--help" in seen["argv"]
    record = await service.cancel(ALICE, vp_id)
    record = await until(service, vp_id, lambda r: r.terminal)
    assert (record.status, record.reason) == (Status.COMPLETED, "stopped")
    assert statuses(record) == STOPPED_AFTER_JOINING


async def test_bounded_concurrency_queues_and_shutdown_stops(make) -> None:
    service, launcher = await make("hold", max_concurrent=2)
    ids = [await launch(service) for _ in range(4)]
    for vp_id in ids[:2]:
        await until(service, vp_id, lambda r: r.status is Status.JOINED)
    await asyncio.sleep(0.5)
    assert launcher.running == 2
    waiting = [await service.get(ALICE, vp_id) for vp_id in ids[2:]]
    assert [r.status for r in waiting] == [Status.SCHEDULED, Status.SCHEDULED]

    await service.cancel(ALICE, ids[0])  # frees a slot: the first queued VP starts
    await until(service, ids[0], lambda r: r.status is Status.COMPLETED)
    await until(service, ids[2], lambda r: r.status is Status.JOINED)
    assert (await service.get(ALICE, ids[3])).status is Status.SCHEDULED

    await service.aclose()  # shutdown: running VPs leave; the queued one stays SCHEDULED
    final = {vp_id: service.store.get(vp_id) for vp_id in ids}
    assert [final[i].status for i in ids] == [  # type: ignore[union-attr]
        Status.COMPLETED,
        Status.COMPLETED,
        Status.COMPLETED,
        Status.SCHEDULED,
    ]
    assert launcher.running == 0


async def test_child_dying_without_final_status_is_reaped(make) -> None:
    service, _ = await make("crash")
    vp_id = await launch(service)
    record = await until(service, vp_id, lambda r: r.terminal)
    assert (record.status, record.reason) == (Status.FAILED, "internal-error")
    assert record.detail == "vp exited with code 3 without a final status"
    assert statuses(record)[-2:] == ["JOINED", "FAILED"]


async def test_killed_child_is_reaped(make, tmp_path) -> None:
    service, _ = await make("hold")
    vp_id = await launch(service)
    await until(service, vp_id, lambda r: r.status is Status.JOINED)
    handle = service.store.get_launch_handle(vp_id)
    assert handle is not None
    os.kill(int(handle.removeprefix("pid:")), signal.SIGKILL)
    record = await until(service, vp_id, lambda r: r.terminal)
    assert (record.status, record.reason) == (Status.FAILED, "internal-error")
    assert record.detail == "vp was killed by SIGKILL"


async def test_stop_escalates_to_kill_and_ends_cancelled_before_join(make) -> None:
    service, launcher = await make("stubborn")
    launcher.stop_timeout = 1.0
    vp_id = await launch(service)
    await until(service, vp_id, lambda r: r.status is Status.JOINING)
    started = time.monotonic()
    await service.cancel(ALICE, vp_id)
    record = await until(service, vp_id, lambda r: r.terminal, timeout=15)
    assert time.monotonic() - started < 10
    assert record.status is Status.CANCELLED and record.reason is None  # never JOINED
    assert record.detail is not None and "stopped" in record.detail


async def test_garbage_output_is_ignored_and_illegal_status_refused(make) -> None:
    service, _ = await make("noise")
    vp_id = await launch(service)
    record = await until(service, vp_id, lambda r: r.terminal)
    # JOINING from another vp_id, the garbage and the illegal COMPLETED left no trace.
    assert statuses(record) == ["SCHEDULED", "INITIALIZING", "JOINING", "FAILED"]
    assert (record.status, record.reason) == (Status.FAILED, "internal-error")


async def test_unstartable_command_fails_launch(make) -> None:
    service, _ = await make("hold", vp_command=["/nonexistent/vp"])
    vp_id = await launch(service)
    record = await until(service, vp_id, lambda r: r.terminal)
    assert (record.status, record.reason) == (Status.FAILED, "launch-failed")
    assert record.detail is not None and record.detail.startswith("cannot start vp")


async def test_sweep_fails_live_records_nobody_runs(make) -> None:
    service, launcher = await make("hold")
    request = LaunchRequest(meeting_url=URL)
    lost = VpRecord.new("lost1", "alice", request)
    service.store.create(lost, VpSecrets(URL))
    for status in (Status.INITIALIZING, Status.JOINING):
        service.store.transition("lost1", status)
    await launcher.sweep()
    record = service.store.get("lost1")
    assert record is not None and (record.status, record.reason) == (
        Status.FAILED,
        "internal-error",
    )
    assert record.detail == "the control plane lost this VP while it was JOINING"


async def test_restart_launches_at_once_within_grace(make, tmp_path) -> None:
    """A VP due 2 minutes ago (the server was down) is within the 5-minute grace: it launches
    as soon as the launcher starts."""
    store = SqliteStore(tmp_path / "vps.db")
    late = VpRecord.new("late1", "alice", LaunchRequest(meeting_url=URL))
    late = late.model_copy(update={"join_at": datetime.now(UTC) - timedelta(minutes=2)})
    store.create(late, VpSecrets(URL))
    store.close()
    service, _ = await make("hold")  # same database: start() re-arms it
    record = await until(service, "late1", lambda r: r.status is Status.JOINED, timeout=15)
    assert statuses(record) == ["SCHEDULED", "INITIALIZING", "JOINING", "JOINED"]
