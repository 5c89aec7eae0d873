"""The AWS launcher and `vp run`'s pieces (StoreSink, configuration from the store) on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from scheduler.aws_launcher import AwsLauncher, execution_input, launch_at_text
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.errors import StaleTransition
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from scheduler.run import EXIT_COMPLETED, EXIT_USAGE, StoreSink, build_config, main_run
from scheduler.service import Caller, VpService
from scheduler.sqlite_store import SqliteStore
from scheduler.store import VpStore
from tests.aws.conftest import REGION
from tests.aws.harness import deploy
from vp.config import JoinConfig
from vp.lifecycle import Lifecycle, Reason, Status

URL = "https://zoom.us/j/444555666?pwd=RuNpWd31"


def new_vp(store: VpStore, vp_id: str = "vp1", join_at: datetime | None = None) -> VpRecord:
    request = LaunchRequest(meeting_url=URL, passcode="pc-777", join_at=join_at)
    record = VpRecord.new(vp_id, "alice", request)
    store.create(record, VpSecrets(meeting_url=URL, passcode="pc-777"))
    return record


def test_launch_at_is_whole_seconds_rounded_up() -> None:
    assert launch_at_text(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)) == "2031-05-06T07:08:09Z"
    assert launch_at_text(datetime(2031, 5, 6, 7, 8, 9, 1, tzinfo=UTC)) == "2031-05-06T07:08:10Z"
    request = LaunchRequest(meeting_url=URL, passcode="pc-777")
    record = VpRecord.new("vp9", "alice", request)
    assert json.loads(execution_input(record)) == {"vp_id": "vp9", "launch_at": None}


async def test_submit_is_idempotent_per_vp(
    aws: None, table: str, dynamo_store: DynamoDbStore
) -> None:
    deployed = deploy()
    service = VpService(dynamo_store, AwsLauncher(deployed["StateMachineArn"]))
    await service.start()
    later = datetime.now(UTC) + timedelta(days=30)
    record = new_vp(dynamo_store, "vp1", join_at=later)
    await service.launcher.submit(record)
    first = dynamo_store.get_launch_handle("vp1")
    await service.launcher.submit(record)  # a re-arm / retry: no second execution
    assert dynamo_store.get_launch_handle("vp1") == first
    sfn = boto3.client("stepfunctions", region_name=REGION)
    listed = sfn.list_executions(stateMachineArn=deployed["StateMachineArn"])["executions"]
    assert [e["executionArn"] for e in listed] == [first]


async def test_start_execution_failure_ends_failed_launch_failed(
    aws: None, table: str, dynamo_store: DynamoDbStore
) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:gone"
    service = VpService(dynamo_store, AwsLauncher(missing))
    await service.start()
    result = await service.launch(Caller("alice"), LaunchRequest(meeting_url=URL))
    assert result.record.status is Status.FAILED
    assert result.record.reason is Reason.LAUNCH_FAILED
    assert result.record.detail is not None and "StartExecution failed" in result.record.detail


def test_store_sink_skips_what_the_state_machine_recorded(dynamo_store: DynamoDbStore) -> None:
    new_vp(dynamo_store)
    dynamo_store.transition("vp1", Status.INITIALIZING)  # the state machine's mark
    sink, life = StoreSink(dynamo_store, "vp1"), Lifecycle("vp1")
    for status in (Status.INITIALIZING, Status.JOINING, Status.JOINED):
        sink.emit(life.advance(status))
    assert sink.skipped == [Status.INITIALIZING]
    assert sink.written == [Status.JOINING, Status.JOINED]
    record = dynamo_store.get("vp1")
    assert record is not None and [h.status for h in record.history] == [
        Status.SCHEDULED,
        Status.INITIALIZING,
        Status.JOINING,
        Status.JOINED,
    ]
    # The VP's own timestamps are kept.
    assert record.history[-1].ts == life.history[-1].ts


def test_store_sink_never_overwrites_a_terminal_status(dynamo_store: DynamoDbStore) -> None:
    new_vp(dynamo_store)
    dynamo_store.transition("vp1", Status.CANCELLED)
    sink, life = StoreSink(dynamo_store, "vp1"), Lifecycle("vp1")
    sink.emit(life.advance(Status.INITIALIZING))
    sink.emit(life.advance(Status.JOINING))
    assert sink.written == []
    record = dynamo_store.get("vp1")
    assert record is not None and record.status is Status.CANCELLED


def test_store_sink_survives_a_store_outage() -> None:
    class DownStore(SqliteStore):
        def transition(self, *args: object, **kwargs: object) -> VpRecord:
            raise ConnectionError("the store is down")

    store = DownStore(":memory:")
    sink = StoreSink(store, "vp1")
    sink.emit(Lifecycle("vp1").advance(Status.INITIALIZING))  # must not raise
    assert sink.skipped == [Status.INITIALIZING]


def test_store_sink_on_sqlite_writes_initializing_from_scheduled(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "vps.db")
    new_vp(store)
    StoreSink(store, "vp1").emit(Lifecycle("vp1").advance(Status.INITIALIZING))
    record = store.get("vp1")
    assert record is not None and record.status is Status.INITIALIZING
    with pytest.raises(StaleTransition):  # and that was the one launch
        store.transition("vp1", Status.INITIALIZING, expected=Status.SCHEDULED)


def test_config_comes_from_the_store_and_env_only(dynamo_store: DynamoDbStore) -> None:
    new_vp(dynamo_store)
    env = {
        "VP_TRANSCRIBER_URL": "wss://transcriber.example/api/v1/ws",
        "VP_TRANSCRIBER_TOKEN": "tok-abc",
        "VP_MAX_DURATION": "90",
        "VP_INTRO_MESSAGE": "",
        "VP_MEETING_URL": "https://evil.example/",  # ignored: the meeting is the store's
        "VP_PASSCODE": "not-this-one",
    }
    config = build_config(dynamo_store, "vp1", env)
    assert isinstance(config, JoinConfig)
    assert config.meeting_url == URL and config.platform == "zoom"
    assert config.passcode is not None and config.passcode.get_secret_value() == "pc-777"
    assert config.transcriber_token is not None
    assert config.transcriber_token.get_secret_value() == "tok-abc"
    assert config.max_duration == 90 and config.intro_message == "" and config.vp_id == "vp1"


def test_bad_task_configuration_fails_the_vp_naming_the_field(
    dynamo_store: DynamoDbStore,
) -> None:
    new_vp(dynamo_store)
    env = {"VP_TRANSCRIBER_URL": "http://not-a-websocket/secret-path"}
    assert build_config(dynamo_store, "vp1", env) == EXIT_USAGE
    record = dynamo_store.get("vp1")
    assert record is not None
    assert record.status is Status.FAILED and record.reason is Reason.LAUNCH_FAILED
    assert record.detail == "invalid task configuration: transcriber_url"


def test_unknown_or_ended_vp_is_not_run(dynamo_store: DynamoDbStore) -> None:
    assert build_config(dynamo_store, "nope", {}) == EXIT_USAGE
    new_vp(dynamo_store)
    dynamo_store.transition("vp1", Status.CANCELLED)
    assert build_config(dynamo_store, "vp1", {}) == EXIT_COMPLETED


def test_main_run_needs_an_id_and_a_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VP_TABLE_NAME", raising=False)
    assert main_run(None) == EXIT_USAGE
    assert main_run("vp1") == EXIT_USAGE  # neither VP_TABLE_NAME nor --db
