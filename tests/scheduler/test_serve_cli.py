"""`vp serve` as a user runs it: a real process, its API, a clean SIGTERM, a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.scheduler.conftest import SECRET, bearer, start_vp_serve
from vp.localmeeting.janus import free_port


async def start(db: Path, port: int) -> asyncio.subprocess.Process:
    return await start_vp_serve(db, port, "--max-concurrent", "1", stderr=asyncio.subprocess.PIPE)


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    return stderr.decode()


async def test_vp_serve_runs_stops_and_keeps_state(tmp_path: Path) -> None:
    db = tmp_path / "state" / "vps.db"
    port = free_port()
    proc = await start(db, port)
    base = f"http://127.0.0.1:{port}"
    join_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with httpx.AsyncClient(base_url=base, headers=bearer("alice")) as client:
        body = {"meeting_url": "https://zoom.us/j/123456789", "passcode": "SeCrEt-42"}
        created = await client.post("/v1/vps", json={**body, "join_at": join_at})
        assert created.status_code == 201, created.text
        vp_id = created.json()["vp_id"]
        assert (
            await client.get("/v1/vps", headers={"Authorization": "Bearer x"})
        ).status_code == 401
    logs = await stop(proc)
    assert "SeCrEt-42" not in logs and SECRET not in logs
    assert '"path": "/v1/vps"' in logs or "/v1/vps" in logs, "requests are logged (paths only)"

    proc = await start(db, port)
    async with httpx.AsyncClient(base_url=base, headers=bearer("alice")) as client:
        record = (await client.get(f"/v1/vps/{vp_id}")).json()
        assert record["status"] == "SCHEDULED", "re-armed, not lost, after a restart"
        cancelled = (await client.delete(f"/v1/vps/{vp_id}")).json()
        assert cancelled["status"] == "CANCELLED"
    await stop(proc)


async def test_vp_serve_requires_an_auth_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VP_AUTH_SECRET"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vp.cli", "serve", "--db", str(tmp_path / "x.db"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"--auth-secret" in stderr
