"""`vp run` — the ECS task's entrypoint — end to end: a real `vp run` process (real headless
Chromium) trades its launch ticket with the broker Lambda (run in-process behind a moto
server, as tests/aws/moto_adapter.py does for Lambda) for its meeting and passcode, prepares
ahead of ``join_at`` (the AWS pre-start lead) but enters JOINING only at ``join_at``, joins a
replica Zoom meeting, streams to a transcriber with a bearer token, and records every status
through the broker. Its environment has VP_ID, the broker's name, the ticket and non-secret
settings: no table, no key."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario
from scheduler.broker import TicketIssuer
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from tests.aws.conftest import REGION, TABLE, create_vp_table
from tests.aws.harness import (
    ARTIFACT_BUCKET,
    BROKER_FUNCTION,
    TICKET_BUCKET,
    TICKET_BUCKET_ARN,
    register_broker,
)
from tests.aws.moto_adapter import FakeContainers, moto_gaps_patched
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
    """moto as a server on a free loopback port (the `vp run` process is another process),
    in this process, so the broker Lambda registered in LAMBDAS serves its invocations."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        with moto_gaps_patched(FakeContainers(region=REGION)):
            yield endpoint
    finally:
        # moto's backends are this process's: the next server must not find this one's table.
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", b""), timeout=10
        )
        server.stop()


@pytest.fixture
def replica() -> Iterator[ReplicaServer]:
    server = ReplicaServer("zoom").start()
    try:
        yield server
    finally:
        server.stop()


async def test_vp_run_joins_at_join_at_through_the_broker(
    moto_server: str, replica: ReplicaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
    create_vp_table()
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    store = DynamoDbStore(TABLE, kms_key_id=key)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    broker = register_broker(key, artifacts=True)
    replica.add_meeting(
        Scenario(
            meeting_id="85012345001",
            passcode=PASSCODE,
            participants=[ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5))],
            end_after_s=4,
        )
    )
    url = replica.meeting_url("85012345001")  # the passcode is typed from the store
    # Started ahead of its meeting, as the pre-start lead does on AWS.
    join_at = datetime.now(UTC) + timedelta(seconds=12)
    request = LaunchRequest(
        meeting_url=url, platform="zoom", passcode=PASSCODE, name="Scribe", join_at=join_at
    )
    store.create(VpRecord.new("run1", "alice", request), VpSecrets(url, PASSCODE))
    store.transition("run1", Status.INITIALIZING)  # the state machine's conditional mark
    # The workflow's ticket step, and what the ECS agent does with the environment file.
    ticket_file = TicketIssuer(TABLE, TICKET_BUCKET_ARN).mint("run1")["ticket_file"]
    bucket_key = ticket_file.split(":::", 1)[1].split("/", 1)[1]
    env_file = boto3.client("s3", region_name=REGION).get_object(
        Bucket=TICKET_BUCKET, Key=bucket_key
    )
    name, _, ticket = env_file["Body"].read().decode().strip().partition("=")
    assert name == "VP_LAUNCH_TICKET"

    transcriber = await RecordingServer(token=TOKEN).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VP_TABLE")},
        "VP_ID": "run1",
        "VP_BROKER_FUNCTION": BROKER_FUNCTION,
        "VP_LAUNCH_TICKET": ticket,
        "VP_TRANSCRIBER_URL": transcriber.url,
        "VP_TRANSCRIBER_TOKEN": TOKEN,
        "VP_OUT_DIR": str(tmp_path / "out"),
        "VP_JOIN_TIMEOUT": "40",
        "VP_MAX_DURATION": "30",
        "VP_INTRO_MESSAGE": "",
        "VP_EXIT_MESSAGE": "",
        # Artifacts to S3 while the call runs (every 2 s here, every minute by default).
        "VP_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
        "VP_ARTIFACT_UPLOAD_INTERVAL": "2",
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
    # Prepared early, joined on time: INITIALIZING well before join_at, JOINING not before.
    ts = {w["status"]: datetime.fromisoformat(w["ts"].replace("Z", "+00:00")) for w in written}
    assert ts["INITIALIZING"] < join_at - timedelta(seconds=5)
    assert join_at <= ts["JOINING"] < join_at + timedelta(seconds=5)
    # The ticket was traded once: a replay (a compromised task's second try) is refused.
    assert broker.redeem("run1", ticket) == {"ok": False, "error": "ticket-refused"}
    assert transcriber.rejected == 0
    events = [e["callEvent"] for e in transcriber.all_events]
    assert events[0] == "START" and events[-1] == "END"
    assert PASSCODE not in logs and TOKEN not in logs and ticket not in logs
    # Its artifacts landed under its own prefix: chunks while the call ran, then each file
    # whole, byte for byte what it wrote.
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=ARTIFACT_BUCKET)["Contents"]
    keys = {o["Key"] for o in listed}
    assert all(k.startswith("vps/run1/") for k in keys)
    assert any(k.startswith("vps/run1/chunks/recording.wav/") for k in keys)
    for name in ("recording.wav", "status.jsonl", "summary.json", "speakers.jsonl"):
        uploaded = s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"vps/run1/{name}")["Body"].read()
        assert uploaded == (tmp_path / "out" / name).read_bytes(), name


async def test_a_vp_stopped_while_holding_for_join_at_never_joins(
    replica: ReplicaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hold is interruptible: a cancel (SIGTERM → stop) during the pre-start wait ends the
    VP CANCELLED without JOINING, its browser closed and files flushed."""
    from vp.config import JoinConfig
    from vp.runner import VirtualParticipant

    monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
    replica.add_meeting(Scenario(meeting_id="85012345002", passcode=PASSCODE))
    config = JoinConfig(
        meeting_url=replica.meeting_url("85012345002"),
        platform="zoom",
        passcode=PASSCODE,
        out_dir=tmp_path / "out",
        intro_message="",
        exit_message="",
    )
    vp = VirtualParticipant(config, join_not_before=datetime.now(UTC) + timedelta(minutes=5))
    running = asyncio.create_task(vp.run())
    for _ in range(600):  # prepared: Chromium up, the page open (about a second)
        if vp.page is not None:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert vp.browser_host is not None and vp.browser_host.connected
    vp.stop()
    result = await asyncio.wait_for(running, 30)
    statuses = [
        json.loads(line)["status"]
        for line in (tmp_path / "out" / "status.jsonl").read_text().splitlines()
    ]
    assert statuses == ["INITIALIZING", "CANCELLED"]
    assert result.exit_code == 0
    assert not vp.browser_host.connected  # Chromium closed
