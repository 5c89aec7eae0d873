"""`vp run` — the ECS task's entrypoint — end to end: a real `vp run` process (real headless
Chromium) reads its meeting and passcode from a DynamoDB table (moto server), joins a replica
Zoom meeting, streams to a transcriber with a bearer token, and records every status in the
table. Only VP_ID and non-secret settings are in its environment."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from tests.aws.conftest import REGION, TABLE, create_vp_table
from tests.recording_server import RecordingServer
from vp.lifecycle import Reason, Status
from vp.localmeeting.janus import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VP_BIN = str(REPO / ".venv" / "bin" / "vp")
PASSCODE = "730514"
TOKEN = "transcriber-jwt-Qx81"


@pytest.fixture
def moto_server(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto as a server on a free loopback port: the `vp run` process is another process."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def replica() -> Iterator[ReplicaServer]:
    server = ReplicaServer("zoom").start()
    try:
        yield server
    finally:
        server.stop()


async def test_vp_run_joins_and_records_every_status_in_the_table(
    moto_server: str, replica: ReplicaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
    create_vp_table()
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    store = DynamoDbStore(TABLE, kms_key_id=key)
    replica.add_meeting(
        Scenario(
            meeting_id="85012345001",
            passcode=PASSCODE,
            participants=[ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5))],
            end_after_s=4,
        )
    )
    url = replica.meeting_url("85012345001")  # the passcode is typed from the store
    request = LaunchRequest(meeting_url=url, platform="zoom", passcode=PASSCODE, name="Scribe")
    store.create(VpRecord.new("run1", "alice", request), VpSecrets(url, PASSCODE))
    store.transition("run1", Status.INITIALIZING)  # the state machine's conditional mark

    transcriber = await RecordingServer(token=TOKEN).start()
    env = {
        **os.environ,
        "VP_ID": "run1",
        "VP_TABLE_NAME": TABLE,
        "VP_PASSCODE_KMS_KEY_ID": key,
        "VP_TRANSCRIBER_URL": transcriber.url,
        "VP_TRANSCRIBER_TOKEN": TOKEN,
        "VP_OUT_DIR": str(tmp_path / "out"),
        "VP_JOIN_TIMEOUT": "40",
        "VP_MAX_DURATION": "30",
        "VP_INTRO_MESSAGE": "",
        "VP_EXIT_MESSAGE": "",
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            VP_BIN,
            "run",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 150)
    finally:
        await transcriber.aclose()
    logs = stdout.decode() + stderr.decode()
    assert proc.returncode == 0, logs[-4000:]

    record = store.get("run1")
    assert record is not None
    assert record.status is Status.COMPLETED and record.reason is Reason.HOST_ENDED
    assert [h.status for h in record.history] == [
        Status.SCHEDULED,
        Status.INITIALIZING,  # once: the VP's own INITIALIZING was recognised and skipped
        Status.JOINING,
        Status.JOINED,
        Status.LEAVING,
        Status.COMPLETED,
    ]
    assert all(h.vp_id == "run1" for h in record.history)
    # The same statuses the VP wrote to its status.jsonl, with the same timestamps.
    written = [
        json.loads(x) for x in (tmp_path / "out" / "status.jsonl").read_text().split("\n") if x
    ]
    assert [(w["status"], w["ts"]) for w in written[1:]] == [
        (h.status.value, h.ts) for h in record.history[2:]
    ]
    assert transcriber.rejected == 0
    events = [e["callEvent"] for e in transcriber.all_events]
    assert events[0] == "START" and events[-1] == "END"
    assert PASSCODE not in logs and TOKEN not in logs
