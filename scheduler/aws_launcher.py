"""The AWS launcher: one Standard Step Functions execution per VP (contract 4).

``submit`` starts stepfunctions/virtual_participant.asl.json with the input
``{"vp_id", "launch_at"}`` — nothing else, never a secret: the execution history is readable
by anyone with Step Functions access. ``launch_at`` is ``join_at`` minus the pre-start
*lead* (``VP_PRESTART_LEAD_SECONDS``, default 120 s), so the Fargate task has pulled its
image, started Chromium and opened its page by ``join_at``; the task itself holds off
JOINING until ``join_at`` (scheduler/run.py). ``launch_at`` is null ("launch now") when there
is no ``join_at`` or the lead reaches into the past.

The execution's name is derived from the VP id, so a repeated submit cannot start a second
execution (Step Functions names are unique per state machine). The state machine waits,
launches and records the terminal status; the execution ARN is kept as the VP's launch handle.

``cancel`` is ``StopExecution``, which also stops the ECS task: the VP gets SIGTERM and ends
COMPLETED stopped once joined. A VP that had not joined yet is recorded CANCELLED here at once
(its task, if any, is stopped with the execution and may never get to write it).

``reap`` closes the one gap the state machine cannot: a *stopped* execution runs no more
states, so a joined VP whose task was killed before it recorded COMPLETED would stay live.
Run periodically (``scheduler.aws_lambda.reaper_handler``), it ends every non-terminal VP
whose execution is over: COMPLETED stopped / CANCELLED after a cancel, else FAILED.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from scheduler.errors import LaunchError, StaleTransition
from scheduler.launcher import LaunchContext, Launcher
from scheduler.models import VpRecord
from vp.errors import ConfigError
from vp.lifecycle import Reason, Status

log = structlog.get_logger(__name__)

# A stopped execution's VP may still be leaving its meeting (ECS gives the task its stop
# timeout after SIGTERM); the reaper leaves it this long to record its own end.
REAP_GRACE = timedelta(minutes=3)
# Task start-up on Fargate (ENI, image pull, Chromium) takes tens of seconds to minutes.
DEFAULT_PRESTART_LEAD = timedelta(seconds=120)
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)


def execution_name(vp_id: str) -> str:
    """The execution's name: unique per VP (VP ids are ``[A-Za-z0-9_.-]{1,64}``)."""
    return f"vp-{vp_id}"


def launch_at_text(when: datetime) -> str:
    """``when`` as the Wait state's timestamp: RFC 3339 UTC in whole seconds, rounded up (so
    the VP never launches before its time). Whole seconds because that is the one form every
    Step Functions implementation's ``IsTimestamp`` accepts."""
    when = when.astimezone(UTC)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def launch_time(
    join_at: datetime | None,
    lead: timedelta = DEFAULT_PRESTART_LEAD,
    *,
    now: datetime | None = None,
) -> datetime | None:
    """When to start the task for a VP joining at ``join_at``: ``lead`` earlier; None (now)
    without a ``join_at`` or when that moment has passed."""
    if join_at is None:
        return None
    launch_at = join_at - lead
    return launch_at if launch_at > (now or datetime.now(UTC)) else None


def execution_input(
    record: VpRecord, lead: timedelta = DEFAULT_PRESTART_LEAD, *, now: datetime | None = None
) -> str:
    """The state machine's whole input: the VP id and when to launch. Nothing secret."""
    when = launch_time(record.join_at, lead, now=now)
    launch_at = launch_at_text(when) if when else None
    return json.dumps({"vp_id": record.vp_id, "launch_at": launch_at})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


class AwsLauncher(Launcher):
    """Launches VPs through the state machine ``state_machine_arn``."""

    name = "aws"

    def __init__(
        self,
        state_machine_arn: str,
        *,
        sfn: Any = None,
        prestart_lead: timedelta = DEFAULT_PRESTART_LEAD,
    ) -> None:
        if not state_machine_arn:
            raise ConfigError("the AWS launcher needs STATE_MACHINE_ARN")
        if prestart_lead < timedelta(0):
            raise ConfigError("VP_PRESTART_LEAD_SECONDS must not be negative")
        self.state_machine_arn = state_machine_arn
        self.prestart_lead = prestart_lead
        self._sfn = sfn or boto3.client("stepfunctions", config=_BOTO_CONFIG)
        self._context: LaunchContext | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AwsLauncher:
        env = os.environ if env is None else env
        lead = env.get("VP_PRESTART_LEAD_SECONDS")
        try:
            prestart_lead = timedelta(seconds=float(lead)) if lead else DEFAULT_PRESTART_LEAD
        except ValueError:
            raise ConfigError("VP_PRESTART_LEAD_SECONDS must be a number of seconds") from None
        return cls(env.get("STATE_MACHINE_ARN", ""), prestart_lead=prestart_lead)

    @property
    def context(self) -> LaunchContext:
        if self._context is None:
            raise RuntimeError("AwsLauncher.start() was not called")
        return self._context

    async def start(self, context: LaunchContext) -> None:
        # The waits live in Step Functions: nothing to re-arm here.
        self._context = context

    def _existing_arn(self, name: str) -> str:
        # arn:aws:states:REGION:ACCOUNT:stateMachine:SM → …:execution:SM:NAME
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    async def submit(self, record: VpRecord) -> None:
        name = execution_name(record.vp_id)
        try:
            response = await asyncio.to_thread(
                self._sfn.start_execution,
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=execution_input(record, self.prestart_lead),
            )
            arn = str(response["executionArn"])
        except ClientError as exc:
            if _error_code(exc) != "ExecutionAlreadyExists":
                raise LaunchError(f"StartExecution failed: {_error_code(exc)}") from None
            arn = self._existing_arn(name)  # submitted before: the same execution
        await asyncio.to_thread(self.context.store.set_launch_handle, record.vp_id, arn)
        log.info("vp.execution_started", vp_id=record.vp_id, execution=name)

    async def cancel(self, record: VpRecord) -> None:
        store = self.context.store
        handle = await asyncio.to_thread(store.get_launch_handle, record.vp_id)
        if handle:
            try:
                await asyncio.to_thread(
                    self._sfn.stop_execution,
                    executionArn=handle,
                    error="VpCancelled",
                    cause="the VP was cancelled by its owner or an admin",
                )
            except ClientError as exc:
                # Already ended (or never existed): nothing left to stop.
                if _error_code(exc) not in ("ExecutionDoesNotExist", "ValidationException"):
                    raise LaunchError(f"StopExecution failed: {_error_code(exc)}") from None
        current = await asyncio.to_thread(store.get, record.vp_id)
        if current is None or current.terminal or current.joined:
            return  # a joined VP records COMPLETED stopped itself on SIGTERM
        try:
            updated = await asyncio.to_thread(
                store.transition,
                record.vp_id,
                Status.CANCELLED,
                None,
                "cancelled before joining",
                expected=current.status,
            )
        except StaleTransition:
            return  # it moved on meanwhile (joined, or ended): its own status stands
        self.context.publish(updated)

    async def reap(self, *, now: datetime | None = None) -> list[VpRecord]:
        """End every non-terminal VP whose execution ended more than :data:`REAP_GRACE`
        ago; return the records changed. Conditional writes: a VP that records its own
        end meanwhile keeps it."""
        store = self.context.store
        now = now or datetime.now(UTC)
        reaped: list[VpRecord] = []
        for record in await asyncio.to_thread(store.list_active):
            handle = await asyncio.to_thread(store.get_launch_handle, record.vp_id)
            if not handle:
                continue  # not submitted yet (the service is between create and submit)
            try:
                described = await asyncio.to_thread(
                    self._sfn.describe_execution, executionArn=handle
                )
            except ClientError as exc:
                if _error_code(exc) != "ExecutionDoesNotExist":
                    raise
                described = {"status": "MISSING", "stopDate": record.updated_at}
            ended_at = described.get("stopDate")
            if described["status"] == "RUNNING" or ended_at is None:
                continue
            if now - ended_at.astimezone(UTC) < REAP_GRACE:
                continue
            current = await asyncio.to_thread(store.get, record.vp_id)
            if current is None or current.terminal:
                continue
            outcome = str(described["status"])
            if outcome == "ABORTED":  # cancelled: StopExecution
                status, reason = (
                    (Status.COMPLETED, Reason.STOPPED)
                    if current.joined
                    else (Status.CANCELLED, None)
                )
                detail = "stopped; the VP did not record its end"
            else:
                launched = current.status not in (Status.SCHEDULED, Status.INITIALIZING)
                status = Status.FAILED
                reason = Reason.INTERNAL_ERROR if launched else Reason.LAUNCH_FAILED
                detail = f"its workflow ended {outcome} without a terminal status"
            try:
                updated = await asyncio.to_thread(
                    store.transition,
                    record.vp_id,
                    status,
                    reason,
                    detail,
                    expected=current.status,
                )
            except StaleTransition:
                continue
            log.warning("vp.reaped", vp_id=record.vp_id, status=status.value, execution=outcome)
            self.context.publish(updated)
            reaped.append(updated)
        return reaped
