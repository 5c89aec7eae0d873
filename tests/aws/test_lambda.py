"""The Lambda handler end to end over moto: API Gateway HTTP API (payload 2.0) events in,
DynamoDB + KMS + Step Functions (executing) + ECS behind."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from scheduler import aws_lambda
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.run import StoreSink
from tests.aws.conftest import REGION, TABLE, create_hooks_table
from tests.aws.harness import deploy, wait_done, wait_entered
from tests.aws.moto_adapter import FakeContainers
from tests.support import STOPPED_AFTER_JOINING
from vp.lifecycle import Lifecycle, Reason, Status

PASSCODE = "lambda-pc-5531"
URL = "https://zoom.us/j/111222333?pwd=LaMbDaPwd9"


@pytest.fixture
def lambda_env(
    aws: None, table: str, kms_key: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    deployed = deploy()
    monkeypatch.setenv("VP_TABLE_NAME", TABLE)
    monkeypatch.setenv("STATE_MACHINE_ARN", deployed["StateMachineArn"])
    monkeypatch.setenv("VP_PASSCODE_KMS_KEY_ID", kms_key)
    monkeypatch.setenv("VP_FINGERPRINT_KEY_SECRET_ARN", deployed["FingerprintKeySecretArn"])
    monkeypatch.setattr(aws_lambda, "_APP", None)  # a fresh "container" per test
    monkeypatch.setattr(aws_lambda, "_REAPER_APP", None)
    yield deployed
    # Stop executions still waiting (scheduled an hour ahead), so no interpreter thread
    # outlives the test.
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for running in executions(deployed["StateMachineArn"]):
        if running["status"] == "RUNNING":
            try:
                sfn.stop_execution(executionArn=running["executionArn"])
            except Exception:  # moto: an interpreter that has not parsed yet cannot stop
                pass


def event(
    method: str,
    path: str,
    body: Any = None,
    *,
    sub: str | None = "alice",
    groups: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event as the Cognito JWT authorizer passes it."""
    claims: dict[str, Any] = {}
    if sub is not None:
        claims = {"sub": sub, "token_use": "access", "client_id": "c1"}
        if groups is not None:
            claims["cognito:groups"] = groups
    request_context: dict[str, Any] = {
        "http": {"method": method, "path": path, "sourceIp": "198.51.100.7"},
        "stage": "$default",
        "routeKey": f"{method} {path}",
    }
    if claims:
        request_context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": request_context,
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def call(ev: dict[str, Any]) -> tuple[int, Any]:
    response = aws_lambda.handler(ev, None)
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"])


def executions(state_machine: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    found: list[dict[str, Any]] = sfn.list_executions(stateMachineArn=state_machine)["executions"]
    return found


def vp_workload(store: DynamoDbStore, release: threading.Event | None = None) -> Any:
    def workload(env: dict[str, str]) -> int:
        sink, life = StoreSink(store, env["VP_ID"]), Lifecycle(env["VP_ID"])
        for status in (Status.INITIALIZING, Status.JOINING, Status.JOINED):
            sink.emit(life.advance(status))
        if release is not None:
            release.wait(30)
        sink.emit(life.advance(Status.LEAVING, Reason.STOPPED))
        sink.emit(life.advance(Status.COMPLETED, Reason.STOPPED))
        return 0

    return workload


def wait_status(store: DynamoDbStore, vp_id: str, status: Status, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        record = store.get(vp_id)
        if record is not None and record.status is status:
            return
        assert time.monotonic() < deadline, f"{vp_id} is {record and record.status}"
        time.sleep(0.1)


def test_launch_starts_one_execution_with_only_the_vp_id(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    containers.workload = vp_workload(dynamo_store)
    body = {"meeting_url": URL, "passcode": PASSCODE, "name": "Scribe"}
    status, created = call(event("POST", "/v1/vps", body))
    assert status == 201 and created["status"] == "SCHEDULED" and created["owner"] == "alice"
    vp_id = created["vp_id"]
    assert PASSCODE not in json.dumps(created) and "LaMbDaPwd9" not in json.dumps(created)

    (execution,) = executions(lambda_env["StateMachineArn"])
    assert execution["name"] == f"vp-{vp_id}"
    sfn = boto3.client("stepfunctions", region_name=REGION)
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"vp_id": vp_id, "launch_at": None}
    assert dynamo_store.get_launch_handle(vp_id) == execution["executionArn"]

    assert wait_done(execution["executionArn"])["status"] == "SUCCEEDED"
    containers.join()
    status, got = call(event("GET", f"/v1/vps/{vp_id}"))
    assert status == 200 and got["status"] == "COMPLETED" and got["reason"] == "stopped"
    assert [h["status"] for h in got["history"]] == STOPPED_AFTER_JOINING
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    assert PASSCODE not in json.dumps(history, default=str)
    assert "LaMbDaPwd9" not in json.dumps(history, default=str)


def test_callers_see_only_their_own_vps(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _, mine = call(event("POST", "/v1/vps", {"meeting_url": URL, "join_at": later}))
    _, theirs = call(event("POST", "/v1/vps", {"meeting_url": URL, "join_at": later}, sub="bob"))

    status, listed = call(event("GET", "/v1/vps"))
    assert status == 200 and [v["vp_id"] for v in listed["vps"]] == [mine["vp_id"]]
    status, body = call(event("GET", f"/v1/vps/{theirs['vp_id']}"))
    assert status == 404 and body["error"] == "not-found"
    status, body = call(event("DELETE", f"/v1/vps/{theirs['vp_id']}"))
    assert status == 404
    theirs_now = dynamo_store.get(theirs["vp_id"])
    assert theirs_now is not None and theirs_now.status is Status.SCHEDULED  # untouched

    status, listed = call(event("GET", "/v1/vps", sub="carol", groups="[admin]"))
    assert status == 200 and {v["vp_id"] for v in listed["vps"]} == {
        mine["vp_id"],
        theirs["vp_id"],
    }


def test_delete_scheduled_vp_cancels_and_stops_the_execution(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    # Launched the default pre-start lead (120 s) before join_at: 3 s from now.
    soon = (datetime.now(UTC) + timedelta(seconds=123)).isoformat()
    _, created = call(event("POST", "/v1/vps", {"meeting_url": URL, "join_at": soon}))
    vp_id = created["vp_id"]
    (execution,) = executions(lambda_env["StateMachineArn"])
    wait_entered(execution["executionArn"], "WaitUntilLaunch")
    status, cancelled = call(event("DELETE", f"/v1/vps/{vp_id}"))
    assert status == 200 and cancelled["status"] == "CANCELLED"

    assert wait_done(execution["executionArn"])["status"] == "ABORTED"  # StopExecution
    time.sleep(3.5)  # past launch_at: nothing launches
    assert containers.run_task_calls == []
    record = dynamo_store.get(vp_id)
    assert record is not None and [h.status for h in record.history] == [
        Status.SCHEDULED,
        Status.CANCELLED,
    ]


def test_delete_running_vp_stops_its_execution(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    release = threading.Event()
    containers.workload = vp_workload(dynamo_store, release)
    _, created = call(event("POST", "/v1/vps", {"meeting_url": URL}))
    vp_id = created["vp_id"]
    wait_status(dynamo_store, vp_id, Status.JOINED)

    status, body = call(event("DELETE", f"/v1/vps/{vp_id}"))
    assert status == 200 and body["status"] == "JOINED"  # it leaves by itself (SIGTERM)
    (execution,) = executions(lambda_env["StateMachineArn"])
    assert wait_done(execution["executionArn"])["status"] == "ABORTED"
    release.set()  # the task got SIGTERM (StopExecution stops it): the VP leaves
    containers.join()
    record = dynamo_store.get(vp_id)
    assert record is not None
    assert record.status is Status.COMPLETED and record.reason is Reason.STOPPED


def test_invalid_requests_launch_nothing(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore
) -> None:
    status, body = call(event("POST", "/v1/vps", {"meeting_url": "http://169.254.169.254/"}))
    assert status == 422 and body["error"] == "invalid-request"
    assert [f["field"] for f in body["fields"]] == ["meeting_url"]
    status, body = call(event("POST", "/v1/vps", {"meeting_url": URL, "colour": "red"}))
    assert status == 422 and body["fields"][0]["field"] == "colour"
    status, body = call(event("POST", "/v1/vps", {"meeting_url": URL}, sub=None))
    assert status == 401 and body["error"] == "unauthorized"
    status, body = call(event("GET", "/v1/stream-token"))
    assert status == 404 and body["error"] == "not-found"
    assert executions(lambda_env["StateMachineArn"]) == []
    assert dynamo_store.list() == []


def test_delete_vp_still_launching_records_cancelled(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    release = threading.Event()

    def slow_start(env: dict[str, str]) -> int:  # the task is still provisioning
        release.wait(30)
        vp_workload(dynamo_store)(env)  # then the VP tries to start: the store refuses
        return 0

    containers.workload = slow_start
    _, created = call(event("POST", "/v1/vps", {"meeting_url": URL}))
    vp_id = created["vp_id"]
    (execution,) = executions(lambda_env["StateMachineArn"])
    wait_entered(execution["executionArn"], "RunTask")
    wait_status(dynamo_store, vp_id, Status.INITIALIZING)

    status, body = call(event("DELETE", f"/v1/vps/{vp_id}"))
    assert status == 200 and body["status"] == "CANCELLED"
    assert wait_done(execution["executionArn"])["status"] == "ABORTED"
    release.set()
    containers.join()
    record = dynamo_store.get(vp_id)
    assert record is not None and [h.status for h in record.history] == [
        Status.SCHEDULED,
        Status.INITIALIZING,
        Status.CANCELLED,
    ]


ERROR_CASES: list[tuple[str, str, str | None, str]] = [
    ("POST", "/v1/vps", json.dumps({"meeting_url": "http://169.254.169.254/"}), "ssrf"),
    ("POST", "/v1/vps", json.dumps({"meeting_url": URL, "colour": "red"}), "extra field"),
    ("POST", "/v1/vps", json.dumps({"meeting_url": URL, "join_at": "2001-01-01T00:00Z"}), "past"),
    ("POST", "/v1/vps", json.dumps({"meeting_url": URL, "platform": "skype"}), "platform"),
    ("POST", "/v1/vps", "{not json", "malformed"),
    ("POST", "/v1/vps", "[1, 2]", "not an object"),
    ("GET", "/v1/vps/nope", None, "missing VP"),
    ("DELETE", "/v1/vps/nope", None, "cancel missing VP"),
    ("PUT", "/v1/vps", "{}", "method"),
]


def test_errors_match_the_local_api(lambda_env: dict[str, str]) -> None:
    """Same status code and error body from the Lambda as from `vp serve` for each case."""
    import asyncio

    import httpx

    from scheduler.api import create_app
    from scheduler.auth import Authenticator, mint_token
    from scheduler.service import VpService
    from scheduler.sqlite_store import SqliteStore
    from tests.scheduler.fakes import RecordingLauncher

    secret = "equivalence-secret-0123456789-abcdef"
    service = VpService(SqliteStore(":memory:"), RecordingLauncher())
    app = create_app(service, Authenticator(secret), manage_service=False)

    async def local(method: str, path: str, body: str | None, headers: dict[str, str]) -> Any:
        await service.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            response = await client.request(method, path, content=body, headers=headers)
        return response.status_code, response.json()

    auth = {"Authorization": f"Bearer {mint_token(secret, 'alice')}"}
    json_type = {"content-type": "application/json"}
    for method, path, body, case in ERROR_CASES:
        expected = asyncio.run(local(method, path, body, {**auth, **json_type}))
        ev = event(method, path)
        ev["body"] = body
        assert call(ev) == expected, case
        assert expected[0] >= 400, case

    # Unsupported media type and a missing token: same status and error code.
    expected = asyncio.run(local("POST", "/v1/vps", "{}", {**auth, "content-type": "text/plain"}))
    got = call(event("POST", "/v1/vps", {}, headers={"content-type": "text/plain"}))
    assert got == expected and got[0] == 415
    status, body = asyncio.run(local("GET", "/v1/vps", None, {}))
    got_status, got_body = call(event("GET", "/v1/vps", sub=None))
    assert (got_status, got_body["error"]) == (status, body["error"]) == (401, "unauthorized")
    assert executions(lambda_env["StateMachineArn"]) == []


def test_reaper_ends_a_cancelled_vp_whose_task_died_silently(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    import asyncio

    release = threading.Event()

    def killed(env: dict[str, str]) -> int:
        sink, life = StoreSink(dynamo_store, env["VP_ID"]), Lifecycle(env["VP_ID"])
        for status in (Status.INITIALIZING, Status.JOINING, Status.JOINED):
            sink.emit(life.advance(status))
        release.wait(30)
        return 137  # SIGKILLed before it could record LEAVING/COMPLETED

    containers.workload = killed
    _, created = call(event("POST", "/v1/vps", {"meeting_url": URL}))
    vp_id = created["vp_id"]
    wait_status(dynamo_store, vp_id, Status.JOINED)
    call(event("DELETE", f"/v1/vps/{vp_id}"))
    (execution,) = executions(lambda_env["StateMachineArn"])
    assert wait_done(execution["executionArn"])["status"] == "ABORTED"
    release.set()
    containers.join()

    # Within the grace period the VP may still be leaving: the scheduled reaper waits.
    assert aws_lambda.reaper_handler({}, None) == {"reaped": []}
    record = dynamo_store.get(vp_id)
    assert record is not None and record.status is Status.JOINED
    app = aws_lambda._app()
    launcher = app.service.launcher
    assert isinstance(launcher, aws_lambda.AwsLauncher)
    later = datetime.now(UTC) + timedelta(minutes=4)
    reaped = asyncio.run(launcher.reap(now=later))
    assert [(r.vp_id, r.status, r.reason) for r in reaped] == [
        (vp_id, Status.COMPLETED, Reason.STOPPED)
    ]
    assert asyncio.run(launcher.reap(now=later)) == []  # once


def test_reaper_fails_a_vp_whose_execution_ended_without_it(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore
) -> None:
    import asyncio

    from tests.aws.harness import start

    ended = start(lambda_env["StateMachineArn"], "ghost")  # a finished execution
    assert wait_done(ended)["status"] == "SUCCEEDED"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _, created = call(event("POST", "/v1/vps", {"meeting_url": URL, "join_at": later}))
    vp_id = created["vp_id"]
    dynamo_store.transition(vp_id, Status.INITIALIZING)
    dynamo_store.set_launch_handle(vp_id, ended)  # its workflow is over, the VP is not

    app = aws_lambda._app()
    launcher = app.service.launcher
    assert isinstance(launcher, aws_lambda.AwsLauncher)
    reaped = asyncio.run(launcher.reap(now=datetime.now(UTC) + timedelta(minutes=4)))
    assert [(r.vp_id, r.status, r.reason) for r in reaped] == [
        (vp_id, Status.FAILED, Reason.LAUNCH_FAILED)
    ]
    status, body = call(event("GET", f"/v1/vps/{vp_id}"))
    assert body["status"] == "FAILED" and "SUCCEEDED" in body["detail"]


def test_mangum_adapter_named_stage_base64_and_security_headers(
    lambda_env: dict[str, str],
) -> None:
    import base64

    ev = event("POST", "/prod/v1/vps")
    ev["requestContext"]["stage"] = "prod"
    ev["body"] = base64.b64encode(json.dumps({"meeting_url": URL}).encode()).decode()
    ev["isBase64Encoded"] = True
    response = aws_lambda.handler(ev, None)
    assert response["statusCode"] == 201, response
    assert json.loads(response["body"])["owner"] == "alice"
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    status, body = call(event("GET", "/openapi.json"))  # only the contract's routes
    assert status == 404 and body["error"] == "not-found"


def test_api_refuses_to_start_without_a_real_fingerprint_key(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idempotency fingerprint key is the stack's generated secret, read once per cold
    start; without it (unset, unreadable, too short) the API does not start — no fallback
    key derived from public names."""
    key = aws_lambda.fingerprint_key_from_env()
    secret = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId=lambda_env["FingerprintKeySecretArn"]
    )["SecretString"]
    assert key == secret.encode() and len(key) >= 32

    monkeypatch.delenv("VP_FINGERPRINT_KEY_SECRET_ARN")
    with pytest.raises(aws_lambda.MissingFingerprintKey, match="not set"):
        aws_lambda.handler(event("GET", "/v1/vps"), None)
    assert aws_lambda._APP is None  # nothing half-built is kept: the next cold start retries

    missing = lambda_env["FingerprintKeySecretArn"].replace("vp-fingerprint", "vp-absent")
    monkeypatch.setenv("VP_FINGERPRINT_KEY_SECRET_ARN", missing)
    with pytest.raises(aws_lambda.MissingFingerprintKey, match="cannot read"):
        aws_lambda.handler(event("GET", "/v1/vps"), None)

    short = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="vp-short-key", SecretString="too-short"
    )["ARN"]
    monkeypatch.setenv("VP_FINGERPRINT_KEY_SECRET_ARN", short)
    with pytest.raises(aws_lambda.MissingFingerprintKey, match="at least 32"):
        aws_lambda.handler(event("GET", "/v1/vps"), None)

    # With the secret, launches work and a replay is recognised.
    monkeypatch.setenv("VP_FINGERPRINT_KEY_SECRET_ARN", lambda_env["FingerprintKeySecretArn"])
    body = {"meeting_url": URL, "join_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    first = call(event("POST", "/v1/vps", body, headers={"idempotency-key": "k-1"}))
    again = call(event("POST", "/v1/vps", body, headers={"idempotency-key": "k-1"}))
    assert first[0] == again[0] == 201 and first[1]["vp_id"] == again[1]["vp_id"]
    # The reaper never launches: it needs no key (its role cannot read the secret).
    monkeypatch.delenv("VP_FINGERPRINT_KEY_SECRET_ARN")
    assert "reaped" in aws_lambda.reaper_handler({}, None)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: records every POST; answers 500 while ``fail`` > 0."""

    received: list[tuple[dict[str, str], bytes]] = []
    fail = 0

    def do_POST(self) -> None:  # noqa: N802 - the handler's contract
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((dict(self.headers.items()), body))
        failing = type(self).fail > 0
        type(self).fail -= 1 if failing else 0
        self.send_response(500 if failing else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    feed = b""
    feed_status = 200

    def do_GET(self) -> None:  # noqa: N802 - the handler's contract
        cls = type(self)
        self.send_response(cls.feed_status)
        self.send_header("content-type", "text/calendar")
        self.send_header("content-length", str(len(cls.feed)))
        self.end_headers()
        self.wfile.write(cls.feed)

    def log_message(self, *_args: Any) -> None:
        pass


def _stream_records(table: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=table)["Table"][
        "LatestStreamArn"
    ]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return records


def _sqs_event(queue_url: str) -> dict[str, Any]:
    """Messages received as the Lambda event source mapping would pass them."""
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
    ).get("Messages", [])
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
            }
            for m in messages
        ]
    }


def test_webhooks_on_aws_stream_queue_and_delivery_lambda(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registration through the API Lambda; the VP table's stream → the events Lambda → SQS
    (redrive to a DLQ) → the delivery Lambda, which signs, posts and leaves a failed message
    to the queue's retry with the same webhook-id; seq exactly once across a retried batch."""
    from scheduler import aws_hooks

    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.update_table(
        TableName=TABLE,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    create_hooks_table()
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="vp-webhooks-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName="vp-webhooks",
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "50"}),
        },
    )["QueueUrl"]
    _Receiver.received, _Receiver.fail = [], 1
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{receiver.server_address[1]}"
    for name, value in {
        "VP_HOOKS_TABLE_NAME": "vp-hooks",
        "VP_WEBHOOK_QUEUE_URL": queue,
        "VP_WEBHOOK_ALLOWED_HOSTS": host,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws_hooks, "_ROUTER", None)
    monkeypatch.setattr(aws_hooks, "_DELIVERY", None)
    try:
        status, hook = call(event("POST", "/v1/webhooks", {"url": f"http://{host}/hook"}))
        assert status == 201 and hook["secret"].startswith("whsec_"), hook
        refused = call(event("POST", "/v1/webhooks", {"url": "https://169.254.169.254/x"}))
        assert refused[0] == 422
        status, listed = call(event("GET", "/v1/webhooks"))
        assert status == 200 and [w["webhook_id"] for w in listed["webhooks"]] == [
            hook["webhook_id"]
        ]
        assert hook["secret"] not in json.dumps(listed)
        raw = ddb.scan(TableName="vp-hooks")["Items"]
        assert hook["secret"].encode() not in json.dumps(raw, default=repr).encode()
        deliveries = f"/v1/webhooks/{hook['webhook_id']}/deliveries"
        assert call(event("GET", deliveries, sub="bob"))[0] == 404
        assert call(event("GET", "/v1/webhooks", sub="bob"))[1] == {"webhooks": []}

        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        body = {"meeting_url": URL, "passcode": PASSCODE, "join_at": later}
        status, vp = call(event("POST", "/v1/vps", body))
        assert status == 201
        (execution,) = executions(lambda_env["StateMachineArn"])
        wait_entered(execution["executionArn"], "WaitUntilLaunch")
        assert call(event("DELETE", f"/v1/vps/{vp['vp_id']}"))[1]["status"] == "CANCELLED"

        records = _stream_records(TABLE)
        assert aws_hooks.stream_handler({"Records": records}, None)["queued"] == 2
        # A retried stream batch queues the same events again: same seq, same webhook-id.
        assert aws_hooks.stream_handler({"Records": records}, None)["queued"] == 2

        first = aws_hooks.delivery_handler(_sqs_event(queue), None)
        assert len(first["batchItemFailures"]) == 1, "the 500 is left to the queue's retry"
        time.sleep(2.5)  # the backoff: visible again after a second or two
        second = aws_hooks.delivery_handler(_sqs_event(queue), None)
        assert second == {"batchItemFailures": []}
        status, log = call(event("GET", deliveries))
    finally:
        receiver.shutdown()
    assert status == 200
    verifier = Webhook(hook["secret"])
    bodies = [verifier.verify(raw_body, headers) for headers, raw_body in _Receiver.received]
    ids = [headers["webhook-id"] for headers, _ in _Receiver.received]
    assert len(_Receiver.received) == 5  # 2 events x 2 queued copies + 1 retry
    assert len(set(ids)) == 2, "one id per event, across queue copies and retries"
    by_id = dict(zip(ids, bodies, strict=True))
    events = sorted(by_id.values(), key=lambda b: b["data"]["seq"])
    assert [(e["data"]["seq"], e["data"]["status"]) for e in events] == [
        (1, "SCHEDULED"),
        (2, "CANCELLED"),
    ]
    assert all(e["type"] == "vp.status" and e["data"]["vp_id"] == vp["vp_id"] for e in events)
    everything = b"".join(b for _, b in _Receiver.received).decode()
    assert PASSCODE not in everything and "LaMbDaPwd9" not in everything
    assert [d["status_code"] for d in log["deliveries"]].count(500) == 1
    assert log["delivered"] == 2 and log["failed"] == 0
    assert (
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


def test_calendars_on_aws_schedule_move_and_cancel_vps(
    lambda_env: dict[str, str], dynamo_store: DynamoDbStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A calendar added through the API Lambda (synced at once: a VP and its execution);
    the scheduled calendar Lambda moves and cancels VPs as the feed changes and records a
    broken feed on the calendar."""
    from scheduler import aws_hooks
    from tests.scheduler.test_hooks import _event, _ics

    create_hooks_table()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("VP_HOOKS_TABLE_NAME", "vp-hooks")
    monkeypatch.setenv("VP_CALENDAR_ALLOWED_HOSTS", host)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    zoom = "LOCATION:https://zoom.us/j/5551234567"
    _Receiver.feed, _Receiver.feed_status = _ics(_event("standup", start, zoom)), 200
    machine = lambda_env["StateMachineArn"]
    try:
        status, calendar = call(event("POST", "/v1/calendars", {"ics_url": f"http://{host}/c.ics"}))
        assert status == 201, calendar
        ((first,),) = [[v["vp_id"] for v in calendar["vps"]]]
        record = dynamo_store.get(first)
        assert record is not None and record.join_at == start and record.owner == "alice"
        assert call(event("GET", "/v1/calendars", sub="bob"))[1] == {"calendars": []}
        (execution,) = executions(machine)
        wait_entered(execution["executionArn"], "WaitUntilLaunch")

        moved = start + timedelta(hours=1)
        _Receiver.feed = _ics(_event("standup", moved, zoom))
        assert aws_hooks.calendar_handler({}, None) == {"calendars": 1}
        old = dynamo_store.get(first)
        assert old is not None and old.status is Status.CANCELLED
        listed = call(event("GET", "/v1/calendars"))[1]["calendars"][0]
        ((second,),) = [[v["vp_id"] for v in listed["vps"]]]
        new = dynamo_store.get(second)
        assert new is not None and new.join_at == moved and new.status is Status.SCHEDULED
        running = [e for e in executions(machine) if e["status"] == "RUNNING"]
        (execution,) = running
        wait_entered(execution["executionArn"], "WaitUntilLaunch")

        _Receiver.feed_status = 500
        aws_hooks.calendar_handler({}, None)
        broken = call(event("GET", "/v1/calendars"))[1]["calendars"][0]
        assert broken["last_error"] == "HTTP 500" and broken["last_success"]
        assert [v["vp_id"] for v in broken["vps"]] == [second]

        deleted = aws_lambda.handler(
            event("DELETE", f"/v1/calendars/{calendar['calendar_id']}"), None
        )
        assert deleted["statusCode"] == 204
        gone = dynamo_store.get(second)
        assert gone is not None and gone.status is Status.CANCELLED
        assert call(event("GET", "/v1/calendars"))[1] == {"calendars": []}
    finally:
        server.shutdown()
