"""The task image, built for real (podman, stand-in Debian base) and run as ECS runs it
(tests/deploy/image.py): read-only root, tmpfs at the VOLUME, the image's USER, an init as
PID 1. A VP from it joins a real Janus room and records what a participant says; the real
entrypoint `vp run` completes a VP whose record lives in DynamoDB (moto's server on loopback)
with the environment the task definition sets; the HEALTHCHECK passes while it runs; a build
whose image lacks a shared library of the node driver or the headless shell fails.

What this does not prove (README, "The task image"): the base is a stand-in for
python:3.11-slim-bookworm made from Debian's packages, there are no cgroup limits, the network
is the host's, and nothing here is Fargate.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import soundfile as sf
from cfnlint.decode import decode
from moto.server import ThreadedMotoServer

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
from tests.deploy.image import ROOT, Image, build_image, running
from tests.recording_server import RecordingServer
from vp.lifecycle import Reason, Status
from vp.localmeeting.janus import free_port
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, tone_wav
from vp.signal import DEFAULT_SYMBOLS, count_sequence
from vp.signal import decode as decode_tones

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("image")]

TOKEN = "transcriber-jwt-Zq47"
PASSCODE = "4417-secret"
MAX_IMAGE_BYTES = 1_000_000_000


@pytest.fixture(scope="session")
def image() -> Image:
    # Session-wide: xdist may interleave another module's tests into the "image" group's
    # worker, and a module fixture would then be torn down and the image rebuilt.
    return build_image()


@pytest.fixture
async def meeting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalMeeting]:
    async with LocalMeeting(tmp_path / "janus") as m:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", m.allowed_host)
        wav = tone_wav(tmp_path / "tones.wav")
        async with SimulatedParticipant(m.url, "Alice", wav):
            yield m


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's servers in one process share their backends: start from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        # In this process: the broker Lambda registered in moto_adapter.LAMBDAS serves the
        # task's invocations (moto runs Lambdas only in Docker).
        with moto_gaps_patched(FakeContainers(region=REGION)):
            yield endpoint
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        server.stop()


def _statuses(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "status.jsonl").read_text().splitlines()]


def _tones_heard(recording: Path) -> int:
    audio, rate = sf.read(str(recording), dtype="int16", always_2d=True)
    assert rate == 16000 and audio.shape[1] == 2
    return count_sequence(decode_tones(np.ascontiguousarray(audio[:, 0])), DEFAULT_SYMBOLS)


def _task_container() -> dict[str, Any]:
    template, matches = decode(str(ROOT / "deploy" / "template.yaml"))
    assert template is not None, matches
    (task,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    (container,) = task["ContainerDefinitions"]
    return dict(container)


def test_the_image_tests_share_one_worker(request: pytest.FixtureRequest) -> None:
    """xdist's loadgroup keeps this module on one worker, so the image is built once (pytest
    9.2 broke that with pytest-xdist 3.8: three workers built it at once)."""
    if request.config.getvalue("loadgroup"):
        assert request.node.nodeid.endswith("@image"), request.node.nodeid


def test_image_is_small_and_has_only_the_headless_shell(image: Image) -> None:
    assert image.size_bytes <= MAX_IMAGE_BYTES, f"{image.size_bytes / 1e9:.2f} GB"
    assert (image.root / "usr/lib/chromium/chromium-headless-shell").exists()
    assert not (image.root / "usr/lib/chromium/chromium").exists(), "the desktop build"
    assert not list((image.root / "usr/share/man").glob("*/*")), "manuals"
    site = next((image.root / "opt/venv/lib").glob("python3*/site-packages"))
    assert not (site / "pip").exists() and not (site / "setuptools").exists()
    for dev_only in ("pytest", "moto", "ruff", "mypy"):
        assert not (site / dev_only).exists(), dev_only


def test_build_fails_when_a_shared_library_is_missing(image: Image, tmp_path: Path) -> None:
    """The Dockerfile's own check, on an image that lost libatomic (as slim bases lack it)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    (check,) = [
        run for run in re.findall(r"^RUN (.*?)(?<!\\)\n", dockerfile, re.M | re.S) if "ldd" in run
    ]
    (tmp_path / "Dockerfile").write_text(
        f"FROM {image.tag}\nUSER 0\n"
        "RUN dpkg --purge --force-depends libatomic1\n"
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
        f"RUN {check}\n"
    )
    result = subprocess.run(
        ["podman", "build", "--isolation", "chroot", "--network", "host", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "libatomic.so.1 => not found" in result.stdout + result.stderr
    assert "lacks a shared library" in result.stdout + result.stderr


CHECK_FONTS = r"""
import asyncio, json, os
from vp.browser import BrowserHost

PAGE = '''<html><body>
<p id=latin style="font-family:sans-serif">Meeting notes, Zoë</p>
<p id=cjk style="font-family:sans-serif">会议记录 会議 회의</p>
<p id=emoji style="font-family:sans-serif">😀🎉</p></body></html>'''

async def main():
    out = {"uid": os.getuid()}
    try:
        open("/opt/vp-write-probe", "w")
        out["root_writable"] = True
    except OSError:
        out["root_writable"] = False
    async with BrowserHost() as host:
        ctx = await host.new_context()
        page = await ctx.new_page()
        await page.set_content(PAGE)
        cdp = await ctx.new_cdp_session(page)
        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        root = (await cdp.send("DOM.getDocument"))["root"]["nodeId"]
        fonts = {}
        for key in ("latin", "cjk", "emoji"):
            node = await cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#" + key})
            used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
            fonts[key] = [f["familyName"] for f in used["fonts"]]
        out["fonts"] = fonts
        out["browser"] = host.browser.version
        await ctx.close()
    print(json.dumps(out))

asyncio.run(main())
"""


async def test_chromium_renders_every_script_as_the_image_user_on_a_read_only_root(
    image: Image, tmp_path: Path
) -> None:
    async with running(image, ["python", "-c", CHECK_FONTS], {}, tmp_path / "vol") as box:
        rc, out, err = await box.wait(120)
    assert rc == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["uid"] == image.uid_gid[0] != 0
    assert report["root_writable"] is False
    assert report["fonts"]["latin"] == ["Liberation Sans"]
    assert report["fonts"]["cjk"] and "WenQuanYi Zen Hei" in report["fonts"]["cjk"]
    assert report["fonts"]["emoji"] == ["Noto Color Emoji"]


async def test_vp_join_from_the_image_records_the_meeting(
    image: Image, meeting: LocalMeeting, tmp_path: Path
) -> None:
    transcriber = await RecordingServer(token=TOKEN).start()
    volume = tmp_path / "vol"
    command = [
        "vp", "join", meeting.url, "--platform", "janus", "--name", "Scribe",
        "--out", "/var/lib/vp/out", "--max-duration", "12", "--json",
    ]  # fmt: skip
    env = {
        "VP_ALLOWED_HOSTS": meeting.allowed_host,
        "VP_TRANSCRIBER_URL": transcriber.url,
        "VP_TRANSCRIBER_TOKEN": TOKEN,
    }
    try:
        async with running(image, command, env, volume) as box:
            rc, out, err = await box.wait(120)
    finally:
        await transcriber.aclose()
    assert rc == 0, err[-4000:]
    statuses = _statuses(volume / "out")
    assert [s["status"] for s in statuses] == [
        "INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED",
    ]  # fmt: skip
    assert statuses[-1]["reason"] == "max-duration"
    assert _tones_heard(volume / "out" / "recording.wav") >= 1, "Alice's tones, intact"
    events = [e["callEvent"] for e in transcriber.all_events]
    assert events[0] == "START" and events[-1] == "END"
    assert TOKEN not in out + err
    # Everything the VP wrote is in the volume; the root refused writes (read-only).
    assert {p.name for p in (volume / "out").iterdir()} >= {
        "status.jsonl", "transcript.jsonl", "chat.jsonl", "recording.wav", "summary.json",
    }  # fmt: skip


async def _until_status(store: DynamoDbStore, vp_id: str, status: Status, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        record = await asyncio.to_thread(store.get, vp_id)
        if record is not None and record.status is status:
            return
        if record is not None and record.status.terminal or loop.time() > deadline:
            raise AssertionError(f"{vp_id}: {record and record.status} while waiting for {status}")
        await asyncio.sleep(0.25)


async def test_vp_run_entrypoint_completes_a_vp_through_the_broker(
    image: Image, meeting: LocalMeeting, moto_endpoint: str, tmp_path: Path
) -> None:
    create_vp_table()
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    store = DynamoDbStore(TABLE, kms_key_id=key)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    register_broker(key, artifacts=True)
    request = LaunchRequest(meeting_url=meeting.url, platform="janus", name="Scribe")
    store.create(VpRecord.new("img1", "alice", request), VpSecrets(meeting.url, PASSCODE))
    store.transition("img1", Status.INITIALIZING)  # the state machine's conditional mark
    # The workflow's ticket step, and what the ECS agent makes of the environment file.
    ticket_file = TicketIssuer(TABLE, TICKET_BUCKET_ARN).mint("img1")["ticket_file"]
    bucket_key = ticket_file.split(":::", 1)[1].split("/", 1)[1]
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=TICKET_BUCKET, Key=bucket_key)
    ticket_name, _, ticket = body["Body"].read().decode().strip().partition("=")
    transcriber = await RecordingServer(token=TOKEN).start()

    # The environment exactly as the task definition names it; values for this test.
    container = _task_container()
    values = {
        "VP_BROKER_FUNCTION": BROKER_FUNCTION,
        "VP_TRANSCRIBER_URL": transcriber.url,
        "VP_ALLOWED_HOSTS": meeting.allowed_host,
        "VP_ASSISTANT_ENGINE": "local",
        "VP_BEDROCK_MODEL_ID": "",
        "AWS_DEFAULT_REGION": REGION,
        "VP_TRANSCRIBER_TOKEN": TOKEN,  # a Secrets entry: ECS resolves it into the env
        "VP_VOICE": "off",
        "VP_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
    }
    names = [e["Name"] for e in container["Environment"]] + [
        s["Name"] for s in container.get("Secrets", [])
    ]
    # VP_VOICE_ID is set only when the stack's voice is polly (AWS::NoValue otherwise).
    assert set(names) - {"VP_VOICE_ID"} == set(values), "the test sets what the task sets"
    env = {
        **values,
        "VP_ID": "img1",  # the state machine's container override
        ticket_name: ticket,  # its environment file
        # The task role's credentials, and moto instead of AWS.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    health = list(image.healthcheck)
    assert health == [c for c in container["HealthCheck"]["Command"] if c != "CMD"]
    try:
        async with running(image, list(image.entrypoint), env, tmp_path / "vol") as box:
            await _until_status(store, "img1", Status.JOINED, 90)
            checked = await box.exec(*health)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert json.loads(checked.stdout)["healthy"] is True
            await asyncio.sleep(3)  # some of Alice's tones on the record
            box.terminate()
            rc, out, err = await box.wait(60)
    finally:
        await transcriber.aclose()
    assert rc == 0, err[-4000:]

    record = store.get("img1")
    assert record is not None
    assert (record.status, record.reason) == (Status.COMPLETED, Reason.STOPPED)
    assert [h.status for h in record.history] == [
        Status.SCHEDULED, Status.INITIALIZING, Status.JOINING, Status.JOINED,
        Status.LEAVING, Status.COMPLETED,
    ]  # fmt: skip
    (out_dir,) = (tmp_path / "vol" / "vp-out").iterdir()
    assert _tones_heard(out_dir / "recording.wav") >= 1
    # The artifacts left the task: the final recording in S3 is the one on the task's disk.
    s3 = boto3.client("s3", region_name=REGION)
    uploaded = s3.get_object(Bucket=ARTIFACT_BUCKET, Key="vps/img1/recording.wav")["Body"].read()
    assert uploaded == (out_dir / "recording.wav").read_bytes()
    logs = out + err
    assert PASSCODE not in logs and TOKEN not in logs and ticket not in logs


async def test_the_offline_transcriber_is_not_in_the_image(image: Image, tmp_path: Path) -> None:
    """pocketsphinx (vp[local]) is left out: a VP without a transcriber URL is a usage error
    naming the extra, before any browser starts. So are the dev-only parts (the replicas, the
    local meeting, the demo): `vp demo` says it is a dev-only command."""
    site = next((image.root / "opt/venv/lib").glob("python3*/site-packages"))
    assert not (site / "pocketsphinx").exists()
    assert (site / "platforms" / "zoom" / "page.js").exists() and (
        site / "vp" / "runner.py"
    ).exists()
    for dev_only in ("platforms/replicas", "vp/localmeeting", "vp/demo.py"):
        assert not (site / dev_only).exists(), dev_only
    async with running(image, ["vp", "demo"], {}, tmp_path / "demo-vol") as box:
        rc, _out, err = await box.wait(60)
    assert rc == 1 and "dev-only command" in err and "./dev demo" in err, err[-2000:]
    command = ["vp", "join", "http://127.0.0.1:9/room", "--platform", "janus"]
    env = {"VP_ALLOWED_HOSTS": "127.0.0.1:9"}
    async with running(image, command, env, tmp_path / "vol") as box:
        rc, _out, err = await box.wait(60)
    assert rc == 1, err[-2000:]
    assert "vp[local]" in err and "--transcriber-url" in err
    assert not (tmp_path / "vol" / "tmp").exists() or not any((tmp_path / "vol" / "tmp").iterdir())
