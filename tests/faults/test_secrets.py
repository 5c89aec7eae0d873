"""Passcodes and tokens never reach logs, status objects or output files.

``vp join`` runs as a real subprocess (DEBUG logging, --json) against the Zoom replica with a
distinctive passcode — in the invite URL's ``pwd`` and in --passcode — and a distinctive
transcriber token, which the real WebSocket server requires (so it was really used). Then
EVERY artifact is scanned: each file under --out, stdout and stderr. A second run fails on a
wrong passcode, so the failure path's texts are scanned too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario
from tests.recording_server import RecordingServer

pytestmark = pytest.mark.integration

VP_BIN = str(Path(sys.executable).with_name("vp"))
PASSCODE = "Zq8Kp41Xw"
WRONG_PASSCODE = "Wr0ngPc55"
TOKEN = "eyJtok.Q7w9ZsecretJWT.sig4Rt"
# Parameters no deny-list named: Zoom's host start token and an OAuth token in the invite.
ZAK = "ZakStart7Tok9Host"
ACCESS_TOKEN = "AccessTok3nQ8w"


@pytest.fixture(scope="module")
def zoom() -> Iterator[ReplicaServer]:
    server = ReplicaServer("zoom").start()
    yield server
    server.stop()


async def run_join(
    url: str, out: Path, env: dict[str, str], *args: str
) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        VP_BIN,
        "--log-level",
        "DEBUG",
        "join",
        url,
        "--platform",
        "zoom",
        "--name",
        "Scribe",
        "--out",
        str(out),
        "--json",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, stdout, stderr


def artifacts(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


async def test_no_secret_in_any_artifact(zoom: ReplicaServer, tmp_path: Path) -> None:
    zoom.add_meeting(
        Scenario(
            meeting_id="85012399901",
            passcode=PASSCODE,
            participants=[ParticipantSpec(name="Alice")],
        )
    )
    transcriber = await RecordingServer(token=TOKEN).start()
    env = {"VP_ALLOWED_HOSTS": zoom.allowed_host, "VP_TRANSCRIBER_TOKEN": TOKEN}
    url = zoom.meeting_url("85012399901", PASSCODE)
    assert PASSCODE in url and "?" in url
    url += f"&zak={ZAK}&access_token={ACCESS_TOKEN}"
    out = tmp_path / "ok"
    code, stdout, stderr = await run_join(
        url,
        out,
        env,
        "--passcode",
        PASSCODE,
        "--transcriber-url",
        transcriber.url,
        "--max-duration",
        "8",
        "--call-id",
        "call-secrets",
    )
    await transcriber.aclose()
    assert code == 0, stderr.decode()[-3000:]
    (conn,) = transcriber.connections
    assert conn.headers["authorization"] == f"Bearer {TOKEN}", "the token was really used"
    assert conn.frames, "audio was streamed"
    final = json.loads(stdout.decode().splitlines()[-1])  # --json: status objects only
    assert final["status"] == "COMPLETED"

    zoom.add_meeting(Scenario(meeting_id="85012399902", passcode=PASSCODE))
    bad = tmp_path / "bad"
    code_bad, stdout_bad, stderr_bad = await run_join(
        zoom.meeting_url("85012399902", WRONG_PASSCODE),
        bad,
        {"VP_ALLOWED_HOSTS": zoom.allowed_host, "VP_PASSCODE": WRONG_PASSCODE},
        "--join-timeout",
        "30",
    )
    assert code_bad == 2, stderr_bad.decode()[-3000:]
    last = [json.loads(x) for x in (bad / "status.jsonl").read_text().splitlines()][-1]
    assert (last["status"], last["reason"]) == ("FAILED", "wrong-passcode")

    scanned = {
        **{f"ok/{k}": v for k, v in artifacts(out).items()},
        **{f"bad/{k}": v for k, v in artifacts(bad).items()},
        "ok: stdout": stdout,
        "ok: stderr": stderr,
        "bad: stdout": stdout_bad,
        "bad: stderr": stderr_bad,
    }
    for name in ("status.jsonl", "summary.json", "recording.wav", "chat.jsonl"):
        assert f"ok/{name}" in scanned, f"{name} was written"
    assert b'"level": "debug"' in stderr, "DEBUG logging was on"
    # private output: folders 0700, files 0600
    for path in [out, *out.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    for name, data in scanned.items():
        for secret in (PASSCODE, WRONG_PASSCODE, TOKEN, ZAK, ACCESS_TOKEN):
            assert secret.encode() not in data, f"{secret!r} leaked into {name}"
