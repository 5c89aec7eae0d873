"""Artifacts on AWS (issue 16, part 1), on moto: the task's scoped credentials from the
broker, rolling chunks while the call runs, whole files at the end, a killed task's upload
salvaged into a valid WAV, and the owner-only listing with presigned URLs through the API
Lambda."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import numpy as np
import pytest
import soundfile as sf

from scheduler import aws_lambda
from scheduler.artifacts import (
    ArtifactUploader,
    BrokeredS3,
    S3Artifacts,
    chunk_key,
    patch_wav_header,
    session_policy,
)
from scheduler.broker import Broker, BrokerClient, BrokerRefused, TicketIssuer
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from tests.aws.conftest import REGION, TABLE, create_vp_table
from tests.aws.harness import (
    ARTIFACT_BUCKET,
    ARTIFACT_BUCKET_ARN,
    BROKER_FUNCTION,
    TICKET_BUCKET,
    TICKET_BUCKET_ARN,
    register_broker,
)
from tests.aws.test_lambda import call, event
from tests.aws.test_vp_run import moto_server  # noqa: F401 - a fixture
from vp.lifecycle import Reason, Status
from vp.recording import WavRecorder

URL = "https://zoom.us/j/555666777?pwd=ArTiFaCtPwd1"
PASSCODE = "artifact-pc-2231"
SECOND = 16000 * 4  # bytes of one second of stereo PCM16 at 16 kHz


class RecordingSts:
    """moto's STS client, remembering each AssumeRole request (moto does not evaluate
    session tags or session policies; what the broker asks for is asserted instead)."""

    def __init__(self) -> None:
        self.client = boto3.client("sts", region_name=REGION)
        self.requests: list[dict[str, Any]] = []

    def assume_role(self, **kwargs: Any) -> Any:
        self.requests.append(kwargs)
        return self.client.assume_role(**kwargs)


@pytest.fixture
def tickets(
    aws: None, table: str, kms_key: str, dynamo_store: DynamoDbStore
) -> tuple[Broker, RecordingSts, dict[str, str]]:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    broker = register_broker(kms_key, artifacts=True)
    sts = broker._sts = RecordingSts()
    issuer = TicketIssuer(TABLE, TICKET_BUCKET_ARN)
    found = {}
    for vp_id, owner in (("vpa", "alice"), ("vpb", "bob")):
        request = LaunchRequest(meeting_url=URL, passcode=PASSCODE)
        dynamo_store.create(VpRecord.new(vp_id, owner, request), VpSecrets(URL, PASSCODE))
        dynamo_store.transition(vp_id, Status.INITIALIZING)
        ticket_file = issuer.mint(vp_id)["ticket_file"]
        key = ticket_file.split(":::", 1)[1].split("/", 1)[1]
        body = boto3.client("s3", region_name=REGION).get_object(Bucket=TICKET_BUCKET, Key=key)
        found[vp_id] = body["Body"].read().decode().strip().partition("=")[2]
    return broker, sts, found


def broker_client(vp_id: str, ticket: str) -> BrokerClient:
    return BrokerClient(
        BROKER_FUNCTION, vp_id, ticket, lambda_client=boto3.client("lambda", region_name=REGION)
    )


def keys() -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=ARTIFACT_BUCKET)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def body(key: str) -> bytes:
    s3 = boto3.client("s3", region_name=REGION)
    data: bytes = s3.get_object(Bucket=ARTIFACT_BUCKET, Key=key)["Body"].read()
    return data


def tone(seconds: float, start: int = 0) -> bytes:
    """Distinct stereo samples (a ramp), so a byte out of place shows."""
    n = int(seconds * 16000)
    ramp = (np.arange(start, start + n) % 20000 - 10000).astype("<i2")
    return np.stack([ramp, -ramp], axis=1).tobytes()


def test_the_broker_grants_writes_to_the_vps_own_prefix_only(
    tickets: tuple[Broker, RecordingSts, dict[str, str]],
) -> None:
    _, sts, found = tickets
    grant = broker_client("vpa", found["vpa"]).artifact_credentials()
    assert grant["bucket"] == ARTIFACT_BUCKET and grant["prefix"] == "vps/vpa/"
    assert set(grant["credentials"]) == {
        "access_key_id",
        "secret_access_key",
        "session_token",
        "expiration",
    }
    (request,) = sts.requests
    # The writer role's policy names vps/${aws:PrincipalTag/vp_id}/*: the tag is the VP the
    # ticket belongs to, and the session policy narrows to the same prefix.
    assert request["Tags"] == [{"Key": "vp_id", "Value": "vpa"}]
    policy = json.loads(request["Policy"])
    writes = [s for s in policy["Statement"] if s["Action"][0].startswith("s3:")]
    assert [s["Resource"] for s in writes] == [f"{ARTIFACT_BUCKET_ARN}/vps/vpa/*"]
    assert policy == session_policy(ARTIFACT_BUCKET_ARN, "vpa")
    assert request["DurationSeconds"] <= 3600
    # vpa's ticket buys nothing for vpb (nor does a made-up one).
    with pytest.raises(BrokerRefused):
        broker_client("vpb", found["vpa"]).artifact_credentials()
    with pytest.raises(BrokerRefused):
        broker_client("vpa", "x" * 43).artifact_credentials()
    assert len(sts.requests) == 1


def test_uploads_while_the_call_runs_and_whole_at_the_end(
    tickets: tuple[Broker, RecordingSts, dict[str, str]], tmp_path: Path
) -> None:
    _, _, found = tickets
    s3 = BrokeredS3(broker_client("vpa", found["vpa"]).artifact_credentials)
    uploader = ArtifactUploader(tmp_path, "vpa", ARTIFACT_BUCKET, s3, interval=60)
    recorder = WavRecorder(tmp_path / "recording.wav")
    transcript = tmp_path / "transcript.jsonl"
    recorder.write(tone(1.0))
    transcript.write_text('{"text": "one"}\n{"text": "tw')  # a line in the making
    assert uploader.upload_new() == 2
    assert keys() == [
        chunk_key("vpa", "recording.wav", 0),
        chunk_key("vpa", "transcript.jsonl", 0),
    ]
    assert body(chunk_key("vpa", "transcript.jsonl", 0)) == b'{"text": "one"}\n'
    recorder.write(tone(1.0, 16000))
    with open(transcript, "a") as file:
        file.write('o"}\n')
    assert uploader.upload_new() == 2  # only what was new
    first = len(body(chunk_key("vpa", "recording.wav", 0)))
    assert chunk_key("vpa", "recording.wav", first) in keys()
    assert body(chunk_key("vpa", "transcript.jsonl", 16)) == b'{"text": "two"}\n'
    assert uploader.upload_new() == 0
    recorder.close()
    (tmp_path / "summary.json").write_text('{"final": {}}\n')
    uploader.upload_final()
    finals = [k for k in keys() if "/chunks/" not in k]
    assert finals == ["vps/vpa/recording.wav", "vps/vpa/summary.json", "vps/vpa/transcript.jsonl"]
    assert body("vps/vpa/recording.wav") == (tmp_path / "recording.wav").read_bytes()
    assert all(k.startswith("vps/vpa/") for k in keys())
    assert s3.refreshes == 1  # one grant served every round (an hour's credentials)


async def test_a_killed_task_leaves_a_readable_recording(
    tickets: tuple[Broker, RecordingSts, dict[str, str]],
    dynamo_store: DynamoDbStore,
    tmp_path: Path,
) -> None:
    """The uploader runs its rounds while audio is written; the task is then killed (no
    last round, no final objects, the WAV never closed). What was uploaded reads back as a
    valid WAV holding exactly the audio of the uploaded rounds."""
    _, _, found = tickets
    s3 = BrokeredS3(broker_client("vpa", found["vpa"]).artifact_credentials)
    uploader = ArtifactUploader(tmp_path, "vpa", ARTIFACT_BUCKET, s3, interval=0.3)
    recorder = WavRecorder(tmp_path / "recording.wav")
    running = asyncio.create_task(uploader.run())
    written = b""
    for index in range(12):  # 2.4 s of audio in 200 ms frames
        frame = tone(0.2, index * 3200)
        recorder.write(frame)
        written += frame
        await asyncio.sleep(0.1)
    running.cancel()  # as a kill: whatever round was due never happens
    await asyncio.gather(running, return_exceptions=True)
    with uploader.round_lock:  # (a round already in its thread does complete)
        uploaded = uploader.offsets["recording.wav"]
    assert uploader.chunks_uploaded >= 2 and uploaded > SECOND
    assert "vps/vpa/recording.wav" not in keys()

    # The VP ends (the reaper records it) and its owner lists the artifacts: salvaged
    # (unless larger than what one API request may assemble: then listed as chunks).
    dynamo_store.transition("vpa", Status.FAILED, Reason.INTERNAL_ERROR)
    (too_large,) = S3Artifacts(ARTIFACT_BUCKET, salvage_max=SECOND).find("vpa", ended=True)
    assert not too_large.complete and too_large.url is None and too_large.size == uploaded
    assert "vps/vpa/recording.wav" not in keys()
    (artifact,) = S3Artifacts(ARTIFACT_BUCKET).find("vpa", ended=True)
    assert artifact.name == "recording.wav" and artifact.complete and artifact.url
    data = body("vps/vpa/recording.wav")
    assert len(data) == uploaded == artifact.size
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 16000 and audio.shape[1] == 2
    header = len(data) - audio.shape[0] * 4
    assert audio.tobytes() == written[: len(data) - header]  # every uploaded sample, in order
    recorder.close()


def test_wav_header_patch_names_the_assembled_length() -> None:
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", 16000, 2, "PCM_16", format="WAV") as wav:
        wav.write(np.zeros((10, 2), dtype="int16"))
    head = buffer.getvalue()
    patched = patch_wav_header(head, len(head) + 400)
    audio, _ = sf.read(io.BytesIO(patched + b"\x01\x00" * 200), dtype="int16")
    assert audio.shape == (110, 2)
    assert patch_wav_header(b"not a wav", 100) == b"not a wav"


def test_the_api_lists_artifacts_to_their_owner_only(
    tickets: tuple[Broker, RecordingSts, dict[str, str]],
    dynamo_store: DynamoDbStore,
    kms_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, found = tickets
    # The API refuses to start without the stack's fingerprint key secret.
    fingerprint_key = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="vp-fingerprint-artifacts", SecretString="k" * 64
    )["ARN"]
    for name, value in {
        "VP_TABLE_NAME": TABLE,
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:vp",
        "VP_PASSCODE_KMS_KEY_ID": kms_key,
        "VP_FINGERPRINT_KEY_SECRET_ARN": fingerprint_key,
        "VP_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws_lambda, "_APP", None)
    s3 = BrokeredS3(broker_client("vpa", found["vpa"]).artifact_credentials)
    uploader = ArtifactUploader(tmp_path, "vpa", ARTIFACT_BUCKET, s3)
    (tmp_path / "chat.jsonl").write_text('{"sender": "Alice", "text": "hi"}\n')
    uploader.upload_new()

    # While the call runs: listed as uploaded so far, no download yet.
    status, listing = call(event("GET", "/v1/vps/vpa/artifacts"))
    assert status == 200, listing
    assert listing["artifacts"] == [
        {
            "name": "chat.jsonl",
            "size": 34,
            "content_type": "application/x-ndjson",
            "complete": False,
            "url": None,
            "updated_at": listing["artifacts"][0]["updated_at"],
        }
    ]
    uploader.upload_final()
    dynamo_store.transition("vpa", Status.FAILED, Reason.INTERNAL_ERROR)
    status, listing = call(event("GET", "/v1/vps/vpa/artifacts"))
    (chat,) = listing["artifacts"]
    assert chat["complete"] and chat["size"] == 34
    url = urlsplit(chat["url"])
    assert url.path.endswith("/vps/vpa/chat.jsonl") and ARTIFACT_BUCKET in chat["url"]
    assert parse_qs(url.query)["X-Amz-Expires"] == [str(listing["expires_in"])]
    assert PASSCODE not in json.dumps(listing) and "ArTiFaCtPwd1" not in json.dumps(listing)
    # Another owner: not found, exactly like a VP that does not exist.
    assert call(event("GET", "/v1/vps/vpa/artifacts", sub="bob"))[0] == 404
    assert call(event("GET", "/v1/vps/nope/artifacts"))[0] == 404
    assert call(event("GET", "/v1/vps/vpa/artifacts", sub=None))[0] == 401


UPLOADER_PROCESS = """
import asyncio, os, sys
from pathlib import Path
import numpy as np
from scheduler.artifacts import ArtifactUploader, BrokeredS3
from scheduler.broker import BrokerClient
from vp.recording import WavRecorder

out = Path(sys.argv[1])
client = BrokerClient(os.environ["VP_BROKER_FUNCTION"], "vpk", os.environ["VP_LAUNCH_TICKET"])
uploader = ArtifactUploader(
    out, "vpk", os.environ["VP_ARTIFACT_BUCKET"], BrokeredS3(client.artifact_credentials),
    interval=0.3,
)
recorder = WavRecorder(out / "recording.wav")

async def main():
    running = asyncio.create_task(uploader.run())
    n = 0
    while True:  # 200 ms frames of a ramp, until killed
        ramp = (np.arange(n * 3200, (n + 1) * 3200) % 20000 - 10000).astype("<i2")
        recorder.write(np.stack([ramp, -ramp], axis=1).tobytes())
        n += 1
        await asyncio.sleep(0.1)

asyncio.run(main())
"""


@pytest.mark.usefixtures("moto_server")
async def test_a_sigkilled_uploader_process_leaves_a_valid_wav(tmp_path: Path) -> None:
    """The uploader in its own process (as in the task), its credentials from the broker;
    SIGKILL once a few rounds are up. What S3 holds reads back as a valid WAV whose samples
    are exactly the start of what the process recorded."""
    create_vp_table()
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    store = DynamoDbStore(TABLE, kms_key_id=key)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    register_broker(key, artifacts=True)
    request = LaunchRequest(meeting_url=URL, passcode=PASSCODE)
    store.create(VpRecord.new("vpk", "alice", request), VpSecrets(URL, PASSCODE))
    store.transition("vpk", Status.INITIALIZING)
    ticket_file = TicketIssuer(TABLE, TICKET_BUCKET_ARN).mint("vpk")["ticket_file"]
    env_key = ticket_file.split(":::", 1)[1].split("/", 1)[1]
    env_file = boto3.client("s3", region_name=REGION).get_object(Bucket=TICKET_BUCKET, Key=env_key)
    ticket = env_file["Body"].read().decode().strip().partition("=")[2]
    env = {
        **os.environ,
        "VP_BROKER_FUNCTION": BROKER_FUNCTION,
        "VP_LAUNCH_TICKET": ticket,
        "VP_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UPLOADER_PROCESS, str(tmp_path), env=env
    )
    try:
        for _ in range(300):
            chunks = [k for k in keys() if "/chunks/recording.wav/" in k]
            if len(chunks) >= 3:
                break
            assert proc.returncode is None, "the uploader process died"
            await asyncio.sleep(0.1)
        assert len(chunks) >= 3
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert "vps/vpk/recording.wav" not in keys()

    store.transition("vpk", Status.FAILED, Reason.INTERNAL_ERROR)  # the reaper's doing
    (artifact,) = S3Artifacts(ARTIFACT_BUCKET).find("vpk", ended=True)
    data = body("vps/vpk/recording.wav")
    assert artifact.complete and artifact.size == len(data) > SECOND
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 16000 and audio.shape[1] == 2
    local = (tmp_path / "recording.wav").read_bytes()  # the killed process's own file
    header = len(data) - audio.shape[0] * 4
    assert local[header : len(data)] == audio.tobytes()
    assert len(local) >= len(data)  # at most the last round lost
