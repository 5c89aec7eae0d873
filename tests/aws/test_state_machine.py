"""stepfunctions/virtual_participant.asl.json EXECUTED under moto (Wait, Choice, DynamoDB and
ecs:runTask.sync run for real; the container is played by tests/aws/moto_adapter.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from scheduler.aws_launcher import AwsLauncher, launch_at_text
from scheduler.broker import BrokerClient, BrokerSink, ticket_hash
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.launcher import LaunchContext
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from tests.aws.conftest import REGION, raw_item
from tests.aws.harness import (
    BROKER_FUNCTION,
    CONTAINER,
    TICKET_BUCKET,
    TICKET_BUCKET_ARN,
    deploy,
    entered_states,
    history,
    register_broker,
    start,
    wait_done,
)
from tests.aws.moto_adapter import FakeContainers
from vp.lifecycle import Lifecycle, Reason, Status

PASSCODE = "pc-Zq81-secret"
URL = "https://zoom.us/j/987654321?pwd=UrLtOkEn77"


@pytest.fixture
def deployed(aws: None, table: str, kms_key: str) -> dict[str, str]:
    stack = deploy()
    register_broker(kms_key)
    return stack


def store_vp(store: DynamoDbStore, vp_id: str, join_at: datetime | None = None) -> VpRecord:
    request = LaunchRequest(meeting_url=URL, passcode=PASSCODE, name="Scribe", join_at=join_at)
    record = VpRecord.new(vp_id, "alice", request)
    store.create(record, VpSecrets(meeting_url=URL, passcode=PASSCODE))
    return record


def simulated_vp(
    store: DynamoDbStore,
    steps: list[tuple[Status, Reason | None]],
    exit_code: int,
    seen: list[dict[str, str]] | None = None,
) -> Callable[[dict[str, str]], int]:
    """What the VP container does, as far as the store sees it: `vp run`'s broker path —
    trade the launch ticket for the meeting, then its lifecycle from INITIALIZING written
    through the broker (the same BrokerSink) — then its exit code."""

    def workload(env: dict[str, str]) -> int:
        if seen is not None:
            seen.append(dict(env))
        client = BrokerClient(
            BROKER_FUNCTION,
            env["VP_ID"],
            env["VP_LAUNCH_TICKET"],
            lambda_client=boto3.client("lambda", region_name=REGION),
        )
        meeting = client.redeem()
        assert meeting.meeting_url == URL and meeting.passcode == PASSCODE
        sink = BrokerSink(client)
        life = Lifecycle(env["VP_ID"])
        for status, reason in [(Status.INITIALIZING, None), *steps]:
            sink.emit(life.advance(status, reason))
        return exit_code

    return workload


JOINED_AND_LEFT = [
    (Status.JOINING, None),
    (Status.JOINED, None),
    (Status.LEAVING, Reason.HOST_ENDED),
    (Status.COMPLETED, Reason.HOST_ENDED),
]


def statuses(store: DynamoDbStore, vp_id: str) -> list[Status]:
    record = store.get(vp_id)
    assert record is not None
    return [h.status for h in record.history]


def test_launch_now_runs_one_task_and_keeps_the_vps_own_terminal_status(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    seen: list[dict[str, str]] = []
    containers.workload = simulated_vp(dynamo_store, JOINED_AND_LEFT, 0, seen)
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    done = wait_done(execution)
    containers.join()

    assert done["status"] == "SUCCEEDED"
    assert entered_states(execution)[-1] == "VpEnded"
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.COMPLETED and record.reason is Reason.HOST_ENDED
    # INITIALIZING exactly once: written by the state machine, skipped by the VP's sink.
    assert statuses(dynamo_store, "vp1") == [
        Status.SCHEDULED,
        Status.INITIALIZING,
        Status.JOINING,
        Status.JOINED,
        Status.LEAVING,
        Status.COMPLETED,
    ]
    # The task learns its id and its one-time ticket (from the environment file), nothing else.
    assert [sorted(env) for env in seen] == [["VP_ID", "VP_LAUNCH_TICKET"]]
    assert seen[0]["VP_ID"] == "vp1"
    # Redeemed: the record keeps only the ticket's hash; the ticket file is gone.
    item = raw_item("vp1")
    assert item["ticket_hash"]["S"] == ticket_hash(seen[0]["VP_LAUNCH_TICKET"])
    assert "ticket_redeemed_at" in item
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.list_objects_v2(Bucket=TICKET_BUCKET).get("KeyCount") == 0
    assert len(containers.run_task_calls) == 1
    assert "failure_cause" not in raw_item("vp1")


def test_run_task_parameters_and_history_carry_no_secret(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    seen: list[dict[str, str]] = []
    containers.workload = simulated_vp(dynamo_store, JOINED_AND_LEFT, 0, seen)
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    wait_done(execution)
    containers.join()
    tickets = [env["VP_LAUNCH_TICKET"] for env in seen]

    (params,) = containers.run_task_calls
    assert params["cluster"] == deployed["ClusterArn"]
    assert params["taskDefinition"] == deployed["TaskDefinitionArn"]
    # No launch type: the cluster's default capacity provider (FARGATE or FARGATE_SPOT) applies.
    assert "launchType" not in params and "capacityProviderStrategy" not in params
    assert params["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": [deployed["SubnetId1"], deployed["SubnetId2"]],
            "securityGroups": [deployed["SecurityGroupId"]],
            "assignPublicIp": "DISABLED",
        }
    }
    (override,) = params["overrides"]["containerOverrides"]
    assert override["name"] == CONTAINER
    assert override["environment"] == [{"name": "VP_ID", "value": "vp1"}]
    (env_file,) = override["environmentFiles"]
    assert env_file["type"] == "s3"
    assert env_file["value"].startswith(f"{TICKET_BUCKET_ARN}/tickets/vp1/")
    assert set(override) == {"name", "environment", "environmentFiles"}
    events = history(execution)
    started = json.loads(events[0]["executionStartedEventDetails"]["input"])
    assert started == {"vp_id": "vp1", "launch_at": None}
    (ticket,) = tickets
    for text in (json.dumps(params), json.dumps(events, default=str)):
        assert PASSCODE not in text and "UrLtOkEn77" not in text and "987654321" not in text
        assert ticket not in text  # the launch ticket never enters history or overrides
    assert raw_item("vp1")["ticket_hash"]["S"] == ticket_hash(ticket)  # only its hash is kept


def test_scheduled_vp_waits_until_launch_at(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    started_at: list[float] = []
    workload = simulated_vp(dynamo_store, JOINED_AND_LEFT, 0)

    def timed(env: dict[str, str]) -> int:
        started_at.append(time.time())
        return workload(env)

    containers.workload = timed
    launch_at = datetime.now(UTC) + timedelta(seconds=2.5)
    store_vp(dynamo_store, "vp1", join_at=launch_at)
    execution = start(deployed["StateMachineArn"], "vp1", launch_at_text(launch_at))
    time.sleep(1.0)
    assert statuses(dynamo_store, "vp1") == [Status.SCHEDULED]  # still waiting
    assert containers.run_task_calls == []
    done = wait_done(execution)
    containers.join()

    assert done["status"] == "SUCCEEDED"
    assert "WaitUntilLaunch" in entered_states(execution)
    # The Wait has whole-second precision (moto truncates the remaining wait to whole
    # seconds), so the launch may come up to 1 s before the rounded-up launch_at.
    not_before = datetime.fromisoformat(launch_at_text(launch_at)) - timedelta(seconds=1)
    assert started_at and started_at[0] >= not_before.timestamp()
    record = dynamo_store.get("vp1")
    assert record is not None and record.status is Status.COMPLETED
    initializing = record.history[1]
    assert initializing.status is Status.INITIALIZING
    assert datetime.fromisoformat(initializing.ts.replace("Z", "+00:00")) >= not_before


def test_vp_cancelled_while_waiting_is_never_launched(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    launch_at = datetime.now(UTC) + timedelta(seconds=1.5)
    store_vp(dynamo_store, "vp1", join_at=launch_at)
    execution = start(deployed["StateMachineArn"], "vp1", launch_at_text(launch_at))
    # What the service does on DELETE for a SCHEDULED VP (even if StopExecution were lost).
    dynamo_store.transition("vp1", Status.CANCELLED, None, "cancelled", expected=Status.SCHEDULED)
    done = wait_done(execution)

    assert done["status"] == "SUCCEEDED"
    assert entered_states(execution)[-1] == "NotLaunched"
    assert containers.run_task_calls == [] and containers.threads == []
    assert statuses(dynamo_store, "vp1") == [Status.SCHEDULED, Status.CANCELLED]


def test_missing_vp_is_never_launched(
    deployed: dict[str, str], containers: FakeContainers, dynamo_store: DynamoDbStore
) -> None:
    execution = start(deployed["StateMachineArn"], "ghost")
    assert wait_done(execution)["status"] == "SUCCEEDED"
    assert entered_states(execution)[-1] == "NotLaunched"
    assert containers.run_task_calls == []
    assert dynamo_store.get("ghost") is None  # no item was created by the final writes


def test_run_task_failure_records_failed_launch_failed(
    aws: None, table: str, dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    deployed = deploy(
        task_definition="arn:aws:ecs:us-east-1:123456789012:task-definition/missing:1"
    )
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    done = wait_done(execution)

    assert done["status"] == "FAILED" and done["error"] == "VpFailed"
    assert containers.threads == []  # nothing ran
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.FAILED and record.reason is Reason.LAUNCH_FAILED
    assert record.detail is not None and record.detail.startswith("launch failed: ECS.")
    assert statuses(dynamo_store, "vp1") == [Status.SCHEDULED, Status.INITIALIZING, Status.FAILED]
    cause = json.loads(raw_item("vp1")["failure_cause"]["S"])
    assert cause["Error"].startswith("ECS.") and PASSCODE not in json.dumps(cause)


def test_throttled_run_task_is_retried(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    containers.workload = simulated_vp(dynamo_store, JOINED_AND_LEFT, 0)
    containers.fail_next.append(
        ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RunTask"
        )
    )
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    done = wait_done(execution)
    containers.join()

    assert done["status"] == "SUCCEEDED"
    assert len(containers.run_task_calls) == 2 and len(containers.threads) == 1
    record = dynamo_store.get("vp1")
    assert record is not None and record.status is Status.COMPLETED


@pytest.mark.parametrize("exit_code", [0, 1])
def test_task_that_never_started_the_vp_ends_launch_failed(
    deployed: dict[str, str],
    dynamo_store: DynamoDbStore,
    containers: FakeContainers,
    exit_code: int,
) -> None:
    containers.workload = lambda env: exit_code  # e.g. the image's entrypoint is broken
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    done = wait_done(execution)
    containers.join()

    assert done["status"] == "FAILED"
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.FAILED and record.reason is Reason.LAUNCH_FAILED
    assert record.detail == "the ECS task stopped before the VP started"
    cause = json.loads(raw_item("vp1")["failure_cause"]["S"])
    assert cause["Containers"][0]["ExitCode"] == exit_code  # the stopped task, for operators


def test_task_that_crashed_after_joining_ends_internal_error(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    steps: list[tuple[Status, Reason | None]] = [(Status.JOINING, None), (Status.JOINED, None)]
    containers.workload = simulated_vp(dynamo_store, steps, 137)  # killed: no final write
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    done = wait_done(execution)
    containers.join()

    assert done["status"] == "FAILED"
    assert entered_states(execution)[-3:] == [
        "RecordLaunchFailed",
        "RecordInternalError",
        "VpFailed",
    ]
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.FAILED and record.reason is Reason.INTERNAL_ERROR
    assert statuses(dynamo_store, "vp1")[-3:] == [Status.JOINING, Status.JOINED, Status.FAILED]


def test_vp_that_failed_itself_keeps_its_reason(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    steps: list[tuple[Status, Reason | None]] = [
        (Status.JOINING, None),
        (Status.FAILED, Reason.WRONG_PASSCODE),
    ]
    containers.workload = simulated_vp(dynamo_store, steps, 2)
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1")
    done = wait_done(execution)
    containers.join()

    assert done["status"] == "SUCCEEDED"
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.FAILED and record.reason is Reason.WRONG_PASSCODE
    assert statuses(dynamo_store, "vp1").count(Status.FAILED) == 1


def test_malformed_launch_at_fails_the_vp_instead_of_the_execution(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    store_vp(dynamo_store, "vp1")
    execution = start(deployed["StateMachineArn"], "vp1", "next tuesday")
    assert wait_done(execution)["status"] == "FAILED"
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.FAILED and record.reason is Reason.LAUNCH_FAILED
    assert containers.run_task_calls == []


async def test_prestart_lead_runs_the_task_lead_seconds_before_join_at(
    deployed: dict[str, str], dynamo_store: DynamoDbStore, containers: FakeContainers
) -> None:
    # The launcher as the API Lambda runs it: launch_at = join_at − lead (120 s by default).
    lead = timedelta(seconds=120)
    join_at = datetime.now(UTC) + lead + timedelta(seconds=3)
    record = store_vp(dynamo_store, "vp1", join_at=join_at)
    launcher = AwsLauncher(deployed["StateMachineArn"], prestart_lead=lead)
    await launcher.start(LaunchContext(store=dynamo_store, publish=lambda _record: None))
    ran: list[tuple[float, datetime | None]] = []

    def workload(env: dict[str, str]) -> int:
        client = BrokerClient(
            BROKER_FUNCTION,
            env["VP_ID"],
            env["VP_LAUNCH_TICKET"],
            lambda_client=boto3.client("lambda", region_name=REGION),
        )
        # The task learns join_at with its meeting: `vp run` holds JOINING until then.
        ran.append((time.time(), client.redeem().join_at))
        BrokerSink(client).emit(Lifecycle("vp1").advance(Status.INITIALIZING))
        return 1  # here `vp run` would prepare and wait ~2 min; this test stops early

    containers.workload = workload
    await launcher.submit(record)
    execution = dynamo_store.get_launch_handle("vp1")
    assert execution is not None
    sfn = boto3.client("stepfunctions", region_name=REGION)
    started = json.loads(sfn.describe_execution(executionArn=execution)["input"])
    assert started == {"vp_id": "vp1", "launch_at": launch_at_text(join_at - lead)}
    wait_done(execution)
    containers.join()

    ((ran_at, told_join_at),) = ran
    launch_at = datetime.fromisoformat(launch_at_text(join_at - lead))
    # RunTask at join_at − lead (the Wait has whole-second precision on moto), two minutes
    # before the meeting, and the task was told the real join_at.
    assert launch_at.timestamp() - 1 <= ran_at < launch_at.timestamp() + 10
    assert ran_at < (join_at - timedelta(seconds=100)).timestamp()
    assert told_join_at == join_at
