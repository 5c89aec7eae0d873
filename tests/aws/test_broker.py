"""Per-VP least privilege and per-owner launch limits on moto (issue 13, items 8 and 9).

The broker (scheduler/broker.py) is invoked as the deployed Lambda is: through boto3's
``lambda.invoke`` on moto, run in-process (tests/aws/moto_adapter.py). The launch limits
(scheduler/dynamodb_limits.py) are DynamoDB conditional writes on moto's table.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from scheduler import aws_lambda
from scheduler.aws_launcher import DEFAULT_PRESTART_LEAD, execution_input, launch_time
from scheduler.broker import (
    REFUSED,
    Broker,
    BrokerClient,
    BrokerRefused,
    BrokerSink,
    TicketIssuer,
)
from scheduler.dynamodb_limits import ActiveLimitReached, DynamoDbLaunchLimiter
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.errors import NotFound, RateLimited
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from tests.aws.conftest import REGION, TABLE, create_hooks_table, raw_item
from tests.aws.harness import (
    BROKER_FUNCTION,
    TICKET_BUCKET,
    TICKET_BUCKET_ARN,
    deploy,
    register_broker,
)
from vp.lifecycle import Lifecycle, Reason, Status, StatusEvent

URL = "https://zoom.us/j/555666777?pwd=BrOkErPwd1"
PASSCODE = "broker-pc-9931"


def new_vp(store: DynamoDbStore, vp_id: str, owner: str = "alice") -> VpRecord:
    request = LaunchRequest(meeting_url=URL, passcode=PASSCODE)
    record = VpRecord.new(vp_id, owner, request)
    store.create(record, VpSecrets(meeting_url=URL, passcode=PASSCODE))
    return record


def s3_ticket(ticket_file: str) -> str:
    """What the ECS agent puts into the container: VP_LAUNCH_TICKET from the env file."""
    key = ticket_file.split(":::", 1)[1].split("/", 1)[1]
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=TICKET_BUCKET, Key=key)
    name, _, value = body["Body"].read().decode().strip().partition("=")
    assert name == "VP_LAUNCH_TICKET"
    return value


@pytest.fixture
def launched(
    aws: None, table: str, kms_key: str, dynamo_store: DynamoDbStore
) -> tuple[Broker, dict[str, str]]:
    """Two VPs marked INITIALIZING by the workflow, each with its minted ticket."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    broker = register_broker(kms_key, DynamoDbLaunchLimiter(TABLE))
    issuer = TicketIssuer(TABLE, TICKET_BUCKET_ARN)
    tickets = {}
    for vp_id in ("vp1", "vp2"):
        new_vp(dynamo_store, vp_id)
        dynamo_store.transition(vp_id, Status.INITIALIZING)
        tickets[vp_id] = s3_ticket(issuer.mint(vp_id)["ticket_file"])
    return broker, tickets


def client(vp_id: str, ticket: str) -> BrokerClient:
    return BrokerClient(
        BROKER_FUNCTION, vp_id, ticket, lambda_client=boto3.client("lambda", region_name=REGION)
    )


# ------------------------------------------------------------------------------ the broker


def test_a_ticket_buys_its_own_vps_meeting_once(
    launched: tuple[Broker, dict[str, str]], dynamo_store: DynamoDbStore
) -> None:
    _, tickets = launched
    meeting = client("vp1", tickets["vp1"]).redeem()
    assert meeting.meeting_url == URL and meeting.passcode == PASSCODE
    assert meeting.platform == "zoom" and meeting.status is Status.INITIALIZING
    assert PASSCODE not in repr(meeting) and "BrOkErPwd1" not in repr(meeting)
    # The record keeps the hash only; the ticket file is deleted on redemption.
    item = json.dumps(raw_item("vp1"), default=str)
    assert tickets["vp1"] not in item
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=TICKET_BUCKET)
    assert [o["Key"].split("/")[1] for o in listed.get("Contents", [])] == ["vp2"]

    with pytest.raises(BrokerRefused):  # reused
        client("vp1", tickets["vp1"]).redeem()


def test_a_ticket_is_refused_for_another_vp(launched: tuple[Broker, dict[str, str]]) -> None:
    broker, tickets = launched
    # vp1's ticket for vp2 (a compromised task of vp1 going after vp2's passcode) ...
    with pytest.raises(BrokerRefused):
        client("vp2", tickets["vp1"]).redeem()
    # ... refused exactly like an unknown ticket or VP (no oracle), and vp2 is unharmed.
    assert broker.handle({"action": "redeem", "vp_id": "vp2", "ticket": "x" * 43}) == REFUSED
    assert broker.handle({"action": "redeem", "vp_id": "nope", "ticket": tickets["vp1"]}) == REFUSED
    assert broker.handle({"action": "redeem", "vp_id": "../vp2", "ticket": 5}) == REFUSED
    assert client("vp2", tickets["vp2"]).redeem().passcode == PASSCODE


def test_statuses_are_accepted_for_the_tickets_vp_only(
    launched: tuple[Broker, dict[str, str]], dynamo_store: DynamoDbStore
) -> None:
    _, tickets = launched
    own = BrokerSink(client("vp1", tickets["vp1"]))
    life = Lifecycle("vp1")
    for status in (Status.INITIALIZING, Status.JOINING, Status.JOINED):
        own.emit(life.advance(status))
    assert own.skipped == [Status.INITIALIZING]  # the workflow's mark: already recorded
    assert own.written == [Status.JOINING, Status.JOINED]

    # vp1's ticket cannot write vp2's status (e.g. fail it, or mark it COMPLETED).
    other = client("vp2", tickets["vp1"])
    for status in (Status.JOINING, Status.FAILED):
        reason = Reason.INTERNAL_ERROR if status is Status.FAILED else None
        event = StatusEvent("2031-01-01T00:00:00.000Z", "vp2", status, reason)
        assert other.record_status(event) == REFUSED
    vp2 = dynamo_store.get("vp2")
    assert vp2 is not None and vp2.status is Status.INITIALIZING

    # The lifecycle rules still hold through the broker: no going back, no unknown reason.
    back = StatusEvent("2031-01-01T00:00:00.000Z", "vp1", Status.INITIALIZING)
    assert client("vp1", tickets["vp1"]).record_status(back) == {
        "ok": False,
        "error": "stale",
        "stored": "JOINED",
    }
    refused = client("vp1", tickets["vp1"])._invoke(
        {"action": "status", "status": {"status": "COMPLETED", "reason": "no-such-reason"}}
    )
    assert refused == {"ok": False, "error": "invalid-status"}


def test_a_vp_cancelled_before_redemption_gets_no_secret(
    launched: tuple[Broker, dict[str, str]], dynamo_store: DynamoDbStore
) -> None:
    _, tickets = launched
    dynamo_store.transition("vp1", Status.CANCELLED, None, "cancelled while starting")
    meeting = client("vp1", tickets["vp1"]).redeem()
    assert meeting.status is Status.CANCELLED  # `vp run` ends at once
    assert meeting.passcode is None and "BrOkErPwd1" not in meeting.meeting_url


def test_an_expired_ticket_is_refused(
    aws: None, table: str, kms_key: str, dynamo_store: DynamoDbStore
) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    new_vp(dynamo_store, "vp1")
    dynamo_store.transition("vp1", Status.INITIALIZING)
    issued_at = datetime.now(UTC).timestamp() - 10 * 3600  # minted ten hours ago
    issuer = TicketIssuer(TABLE, TICKET_BUCKET_ARN, clock=lambda: issued_at)
    ticket = s3_ticket(issuer.mint("vp1")["ticket_file"])
    broker = register_broker(kms_key)
    assert broker.redeem("vp1", ticket) == REFUSED
    assert broker.record_status("vp1", ticket, {"status": "JOINING"}) == REFUSED


def test_tickets_are_minted_only_for_a_vp_the_workflow_just_launched(
    aws: None, table: str, dynamo_store: DynamoDbStore
) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=TICKET_BUCKET)
    issuer = TicketIssuer(TABLE, TICKET_BUCKET_ARN)
    new_vp(dynamo_store, "vp1")  # SCHEDULED: not launched yet
    with pytest.raises(NotFound):
        issuer.mint("vp1")
    with pytest.raises(NotFound):
        issuer.mint("ghost")
    dynamo_store.transition("vp1", Status.CANCELLED)
    with pytest.raises(NotFound):
        issuer.mint("vp1")
    assert "ticket_hash" not in raw_item("vp1")
    # No ticket file is left behind by a refused mint.
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=TICKET_BUCKET)
    assert listed.get("KeyCount") == 0


def test_a_new_execution_replaces_the_ticket(
    launched: tuple[Broker, dict[str, str]], dynamo_store: DynamoDbStore
) -> None:
    _, tickets = launched
    issuer = TicketIssuer(TABLE, TICKET_BUCKET_ARN)
    newer = s3_ticket(issuer.mint("vp1")["ticket_file"])
    with pytest.raises(BrokerRefused):
        client("vp1", tickets["vp1"]).redeem()  # the old one is void
    assert client("vp1", newer).redeem().passcode == PASSCODE


# ------------------------------------------------------------------------------ launch limits


def limiter(**kwargs: Any) -> DynamoDbLaunchLimiter:
    return DynamoDbLaunchLimiter(TABLE, **kwargs)


def test_launch_rate_per_owner_window(aws: None, table: str) -> None:
    now = [1_000_000.0]
    limits = limiter(launches=3, window=60, max_active=100, clock=lambda: now[0])
    for i in range(3):
        limits.acquire("alice", f"a{i}")
    with pytest.raises(RateLimited) as refused:
        limits.acquire("alice", "a3")
    assert 1 <= refused.value.retry_after <= 60
    assert "a3" not in limits.active("alice")  # a refused launch holds no slot
    limits.acquire("bob", "b0")  # another owner has their own budget
    now[0] += 60  # the next window
    limits.acquire("alice", "a3")
    # The counters expire with the table's TTL shortly after their window.
    ddb = boto3.client("dynamodb", region_name=REGION)
    items = ddb.scan(TableName=TABLE, FilterExpression="begins_with(vp_id, :r)",
                     ExpressionAttributeValues={":r": {"S": "rate#"}})["Items"]  # fmt: skip
    assert items and all(int(i["expires_at"]["N"]) <= now[0] + 120 for i in items)


def test_active_cap_per_owner_heals_from_ended_vps(
    aws: None, table: str, kms_key: str, dynamo_store: DynamoDbStore
) -> None:
    limits = limiter(launches=100, max_active=2)
    for vp_id in ("v1", "v2"):
        new_vp(dynamo_store, vp_id)
        limits.acquire("alice", vp_id)
    with pytest.raises(ActiveLimitReached) as refused:
        limits.acquire("alice", "v3")
    assert isinstance(refused.value, RateLimited) and "at most 2" in str(refused.value)
    # v1 ends where the limiter does not hear of it (the workflow's own FAILED write): the
    # next launch at the cap finds that out and takes its slot.
    dynamo_store.transition("v1", Status.FAILED, Reason.LAUNCH_FAILED, "test")
    limits.acquire("alice", "v3")
    assert limits.active("alice") == {"v2", "v3"}


def test_active_cap_holds_under_concurrent_launches(
    aws: None, table: str, dynamo_store: DynamoDbStore
) -> None:
    limits = limiter(launches=1000, max_active=3)
    for i in range(12):
        new_vp(dynamo_store, f"c{i}")  # all SCHEDULED: healing can free none of them
    admitted: list[str] = []
    refused: list[str] = []

    def launch(vp_id: str) -> None:
        try:
            limits.acquire("alice", vp_id)
            admitted.append(vp_id)
        except ActiveLimitReached:
            refused.append(vp_id)

    threads = [threading.Thread(target=launch, args=(f"c{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(admitted) == 3 and len(refused) == 9
    assert limits.active("alice") == set(admitted)


def test_the_lambda_api_refuses_launches_over_the_owners_limits(
    aws: None,
    table: str,
    kms_key: str,
    dynamo_store: DynamoDbStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployed = deploy()
    for name, value in {
        "VP_TABLE_NAME": TABLE,
        "STATE_MACHINE_ARN": deployed["StateMachineArn"],
        "VP_PASSCODE_KMS_KEY_ID": kms_key,
        "VP_OWNER_LAUNCHES": "100",
        "VP_OWNER_MAX_ACTIVE": "2",
        "VP_FINGERPRINT_KEY_SECRET_ARN": deployed["FingerprintKeySecretArn"],
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws_lambda, "_APP", None)
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()

    def post(sub: str) -> tuple[int, dict[str, Any]]:
        claims = {"sub": sub, "token_use": "access", "client_id": "c1"}
        event = {
            "version": "2.0",
            "rawPath": "/v1/vps",
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "http": {"method": "POST", "path": "/v1/vps", "sourceIp": "198.51.100.7"},
                "stage": "$default",
                "authorizer": {"jwt": {"claims": claims}},
            },
            "body": json.dumps({"meeting_url": URL, "join_at": later}),
            "isBase64Encoded": False,
        }
        response = aws_lambda.handler(event, None)
        return response["statusCode"], json.loads(response["body"])

    assert post("alice")[0] == 201 and post("alice")[0] == 201
    status, body = post("alice")
    assert status == 429 and "active" in json.dumps(body)
    assert post("bob")[0] == 201  # other owners are not affected
    # Cancelling one of alice's frees its slot at once.
    vp_id = dynamo_store.list("alice")[0].vp_id
    cancel = {
        "version": "2.0",
        "rawPath": f"/v1/vps/{vp_id}",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": {"method": "DELETE", "path": f"/v1/vps/{vp_id}", "sourceIp": "198.51.100.7"},
            "stage": "$default",
            "authorizer": {"jwt": {"claims": {"sub": "alice", "token_use": "access"}}},
        },
        "isBase64Encoded": False,
    }
    assert aws_lambda.handler(cancel, None)["statusCode"] == 200
    assert post("alice")[0] == 201
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for execution in sfn.list_executions(stateMachineArn=deployed["StateMachineArn"])["executions"]:
        if execution["status"] == "RUNNING":
            try:
                sfn.stop_execution(executionArn=execution["executionArn"])
            except Exception:  # moto: an interpreter that has not parsed yet cannot stop
                pass


# ------------------------------------------------------------------------------ pre-start lead


def test_launch_time_is_join_at_minus_the_lead_or_now() -> None:
    now = datetime(2031, 5, 6, 7, 0, 0, tzinfo=UTC)
    join_at = now + timedelta(minutes=30)
    assert timedelta(seconds=120) == DEFAULT_PRESTART_LEAD
    assert launch_time(join_at, now=now) == join_at - timedelta(seconds=120)
    assert launch_time(join_at, timedelta(seconds=300), now=now) == join_at - timedelta(minutes=5)
    assert launch_time(None, now=now) is None  # "now"
    assert launch_time(now + timedelta(seconds=60), now=now) is None  # the lead is past: now
    request = LaunchRequest(meeting_url=URL, join_at=datetime.now(UTC) + timedelta(hours=1))
    record = VpRecord.new("vp9", "alice", request)
    started = json.loads(execution_input(record, timedelta(seconds=90)))
    launch_at = datetime.fromisoformat(started["launch_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=89) <= record.join_at - launch_at <= timedelta(seconds=90)  # type: ignore[operator]


def test_transcript_and_chat_events_go_through_the_broker_for_the_tickets_vp_only(
    launched: tuple[Broker, dict[str, str]], tmp_path: Path
) -> None:
    """The task forwards its final transcript segments and chat lines through the broker
    (bounded batches, contract fields only) into the webhook queue; another VP's ticket is
    refused; a retried batch keeps its seq and webhook-id."""
    from scheduler.aws_hooks import DynamoDbWebhookStore, EventRouter
    from scheduler.hook_store import WebhookRow
    from scheduler.run import EventForwarder

    broker, tickets = launched
    create_hooks_table()
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="vp-webhooks")["QueueUrl"]
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    hooks = DynamoDbWebhookStore("vp-hooks", key)
    hooks.create_webhook(
        WebhookRow(
            "wh_0123456789abcdef", "alice", "https://hooks.example.com/x", (), "whsec_x", "t"
        )
    )
    assert client("vp1", tickets["vp1"]).send_events("chat", 0, [{"text": "x"}]) == {
        "ok": False,
        "error": "no-webhooks",
    }
    broker.router = EventRouter(hooks, queue)

    out = tmp_path / "vp1"
    out.mkdir()
    segments = [
        {"ts": 1.0, "segment_id": f"s{i}", "channel": "CALLER", "speaker": "Ann",
         "start": float(i), "end": i + 0.5, "text": f"line {i}"}
        for i in range(60)
    ]  # fmt: skip
    (out / "transcript.jsonl").write_text("".join(json.dumps(s) + "\n" for s in segments))
    (out / "chat.jsonl").write_text(
        json.dumps({"ts": 2.0, "sender": "Bob", "text": "hi", "direction": "in"}) + "\n"
    )
    (out / "events.jsonl").write_text(
        json.dumps({"type": "vp.capture_degraded", "start_s": 31.5, "cause": "silent"}) + "\n"
    )
    forwarder = EventForwarder(client("vp1", tickets["vp1"]), out)
    assert forwarder.forward_once() == 62  # transcript (50 + 10), the chat, capture degraded
    assert forwarder.forward_once() == 0  # nothing new
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        messages += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    bodies = [json.loads(m["body"]) for m in messages]
    assert sorted(b["data"]["seq"] for b in bodies) == list(range(1, 63))
    assert {b["type"] for b in bodies} == {"vp.transcript", "vp.chat", "vp.capture_degraded"}
    degraded = next(b["data"] for b in bodies if b["type"] == "vp.capture_degraded")
    assert (degraded["start_s"], degraded["cause"]) == (31.5, "silent")
    first = next(b for b in bodies if b["data"].get("text") == "line 0")["data"]
    assert first == {"speaker": "Ann", "text": "line 0", "start_s": 0.0, "end_s": 0.5,
                     "vp_id": "vp1", "seq": first["seq"]}  # fmt: skip

    # A retried batch (the task did not see the reply): same seq, same webhook-id.
    again = client("vp1", tickets["vp1"]).send_events("chat", 0, [{"sender": "Bob", "text": "hi"}])
    assert again == {"ok": True, "queued": 1}
    (retry,) = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue)["Messages"]]
    chat = next(m for m in messages if m["type"] == "vp.chat")
    assert retry["msg_id"] == chat["msg_id"]
    assert json.loads(retry["body"])["data"]["seq"] == json.loads(chat["body"])["data"]["seq"]

    # vp1's ticket cannot send vp2's events; batches are bounded and validated.
    assert client("vp2", tickets["vp1"]).send_events("chat", 0, [{"text": "x"}]) == REFUSED
    own = client("vp1", tickets["vp1"])
    assert own.send_events("chat", 5, [{"text": "x"}] * 51)["error"] == "invalid-events"
    assert own.send_events("status", 0, [{"text": "x"}])["error"] == "invalid-events"
    bogus = own.send_events("events", 0, [{"type": "vp.status", "status": "COMPLETED"}])
    assert bogus["error"] == "invalid-events", "only capture events come from the task"
    assert own.send_events("chat", -1, [{"text": "x"}])["error"] == "invalid-events"
