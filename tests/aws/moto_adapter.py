"""Test-side adapter for gaps in moto 5.2.5 that real AWS does not have.

Each patch restores a documented AWS behaviour; none changes what our code sends or reads.

1. **ECS request parameters** — moto's Step Functions interpreter (ported from LocalStack)
   hands boto the optimized integration's PascalCase parameters (``Cluster``) and omits
   ``count``; AWS converts them to the ECS API's camelCase. Restored: parameters converted
   with botocore's RunTask input shape (LocalStack's conversion), ``count=1``.
2. **ECS response keys** — the interpreter expects PascalCase keys (``Tasks``) in boto's
   camelCase response, as AWS's integration returns them. Restored: responses converted with
   the operation's output shape.
3. **ENIs without a DNS name** — moto ECS crashes on awsvpc tasks when the ENI has no
   ``private_dns_name`` (it sets one only in VPCs with DNS hostnames). Restored: every ENI has
   one, as in AWS.
4. **ECS errors** — moto's ECS integration reports a boto ``ClientError`` as
   ``States.Runtime``; AWS names service errors ``ECS.<code>`` (as moto already does for
   DynamoDB and SQS), which is what Retry/Catch match on. Restored.
5. **Atomic conditional writes** — moto's DynamoDB checks a ``ConditionExpression`` and then
   writes without a lock, so racing threads can both pass; DynamoDB applies each write
   atomically. Restored with one lock around moto's write operations.
6. **Default capacity provider** — a RunTask without a launch type runs on the cluster's
   default capacity provider strategy (the stack's: FARGATE or FARGATE_SPOT); moto ignores
   the strategy and launches on EC2, where no container instance exists. Restored: such a
   call launches on Fargate (the parameters our workflow sent are recorded unchanged).

And two stand-ins for what cannot run here (moto runs Lambda code in Docker, which this
machine does not have, and no container runs an ECS task):

* :data:`LAMBDAS` — the stack's Lambda functions by name, each a Python callable from event to
  result run in-process when anything (boto3 or the state machine's ``lambda:invoke``)
  invokes that name; an exception is returned as AWS does, an ``Unhandled`` function error.
* :class:`FakeContainers` plays the ECS agent. When the state machine starts a task, it builds
  the container's environment as the agent does — the overrides' ``environment`` plus every
  ``environmentFiles`` S3 object (``KEY=VALUE`` lines, read from moto's S3: the agent reads
  them with the task execution role) — and runs a Python *workload* (what the VP container
  would do) in a thread; when the workload returns its exit code, the task stops with that
  code. Until then the task stays RUNNING.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import boto3
import botocore.session
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaBackend
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (  # noqa: E501
    StateTaskServiceEcs,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

Workload = Callable[[dict[str, str]], int]
# The stack's Lambda functions, by function name (see the module docstring).
LAMBDAS: dict[str, Callable[[dict[str, Any]], Any]] = {}

_ECS_MODEL = botocore.session.get_session().get_service_model("ecs")


def _operation(action: str) -> Any:
    """``run_task`` / ``runTask`` → botocore's RunTask operation model."""
    if "_" in action:
        name = "".join(part.capitalize() for part in action.split("_"))
    else:
        name = action[0].upper() + action[1:]
    return _ECS_MODEL.operation_model(name)


def _eni_dns_name(eni: Any) -> str:
    given: str | None = eni.__dict__.get("_vp_dns_name")
    return given or "ip-{}.ec2.internal".format(eni.private_ip_address.replace(".", "-"))


def _set_eni_dns_name(eni: Any, value: str) -> None:
    eni.__dict__["_vp_dns_name"] = value


@dataclass
class FakeContainers:
    """The ECS agent stand-in; see the module docstring."""

    account_id: str = "123456789012"
    region: str = "us-east-1"
    workload: Workload = field(default=lambda env: 0)
    # What the state machine passed to ecs:RunTask, as the ECS API received it.
    run_task_calls: list[dict[str, Any]] = field(default_factory=list)
    # Errors the next RunTask calls raise (capacity, throttling, …), oldest first.
    fail_next: list[ClientError] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    exit_codes: dict[str, int] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)

    def started(self, task: dict[str, Any], params: dict[str, Any]) -> None:
        overrides = params.get("overrides", {}).get("containerOverrides", [])
        env = {item["name"]: item["value"] for o in overrides for item in o.get("environment", [])}
        for override in overrides:
            for file in override.get("environmentFiles", []):
                assert file["type"] == "s3", file
                bucket, _, key = file["value"].split(":::", 1)[1].partition("/")
                s3 = boto3.client("s3", region_name=self.region)
                text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
                for line in text.splitlines():
                    if line.strip() and not line.startswith("#"):
                        name, _, value = line.partition("=")
                        env.setdefault(name, value)  # the overrides' environment wins
        thread = threading.Thread(
            target=self._run, args=(task["TaskArn"], env), name="fake-container", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _run(self, task_arn: str, env: dict[str, str]) -> None:
        try:
            code = self.workload(env)
        except BaseException as exc:  # a broken workload is a test failure, reported later
            self.errors.append(exc)
            code = 70
        self.exit_codes[task_arn] = code
        backend = ecs_backends[self.account_id][self.region]
        for tasks in backend.tasks.values():
            task = tasks.get(task_arn)
            if task is not None:
                task.containers[0].exitCode = code
                task.stopped_reason = "Essential container in task exited"
                task.desired_status = "STOPPED"
                task.last_status = "STOPPED"

    def join(self, timeout: float = 30) -> None:
        for thread in self.threads:
            thread.join(timeout)
        if self.errors:
            raise self.errors[0]


@contextmanager
def moto_gaps_patched(containers: FakeContainers) -> Iterator[FakeContainers]:
    """Apply patches 1–6 and the container stand-in for the ``with`` block."""
    saved = {
        name: getattr(StateTaskServiceEcs, name)
        for name in (
            "_normalise_parameters",
            "_normalise_response",
            "_eval_service_task",
            "_from_error",
        )
    }
    original_eval = saved["_eval_service_task"]
    original_from_error = saved["_from_error"]

    def _normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: Any = None, **kw: Any
    ) -> None:
        op = _operation(kw.get("service_action_name") or self.resource.api_action)
        self._to_boto_request(parameters, op.input_shape)  # gap 1
        if op.name == "RunTask":
            parameters.setdefault("count", 1)

    def _normalise_response(
        self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        op = _operation(service_action_name or self.resource.api_action)
        self._from_boto_response(response, op.output_shape)  # gap 2

    def _eval_service_task(self: Any, env: Any, **kwargs: Any) -> None:
        params = kwargs["normalised_parameters"]
        containers.run_task_calls.append(copy.deepcopy(params))
        if containers.fail_next:
            raise containers.fail_next.pop(0)
        if "launchType" not in params and "capacityProviderStrategy" not in params:
            params["launchType"] = "FARGATE"  # gap 6
        original_eval(self, env=env, **kwargs)
        containers.started(env.stack[-1]["Tasks"][0], params)

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):  # gap 4
            error = f"ECS.{ex.response['Error']['Code']}"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=cast(
                    EventDetails,
                    {
                        "taskFailedEventDetails": TaskFailedEventDetails(
                            error=error,
                            cause=ex.response["Error"].get("Message", ""),
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    },
                ),
            )
        return original_from_error(self, env, ex)

    lock = threading.RLock()
    writes = ("put_item", "update_item", "delete_item", "transact_write_items")
    saved_writes = {name: getattr(DynamoDBBackend, name) for name in writes}
    # moto's request handler reads the old item (for ReturnValues) before the backend's
    # conditional write: lock the whole request, not only the write.
    # Reads too: a strongly consistent read sees whole committed writes, never half of one.
    saved_handlers = {name: getattr(DynamoHandler, name) for name in (*writes, "get_item")}

    def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:  # gap 5
                return method(*args, **kwargs)

        return call

    original_invoke = LambdaBackend.invoke

    def _invoke(
        self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response: Any
    ) -> Any:
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        function = LAMBDAS.get(name)
        if function is None:
            return original_invoke(self, function_name, qualifier, body, headers, response)
        try:
            payload = json.dumps(function(json.loads(body or "{}"))).encode()
        except Exception as exc:  # as Lambda reports an unhandled exception
            response["x-amz-function-error"] = "Unhandled"
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            payload = json.dumps(error).encode()
        response["Content-Length"] = str(len(payload))
        return payload

    had_dns = "private_dns_name" in NetworkInterface.__dict__
    patches: dict[str, Any] = {
        "_normalise_parameters": _normalise_parameters,
        "_normalise_response": _normalise_response,
        "_eval_service_task": _eval_service_task,
        "_from_error": _from_error,
    }
    for name, method in patches.items():
        setattr(StateTaskServiceEcs, name, method)
    LambdaBackend.invoke = _invoke  # type: ignore[method-assign]
    for name, method in saved_writes.items():
        setattr(DynamoDBBackend, name, _locked(method))
    for name, method in saved_handlers.items():
        setattr(DynamoHandler, name, _locked(method))
    dns_attr = "private_dns_name"
    if not had_dns:  # gap 3
        setattr(NetworkInterface, dns_attr, property(_eni_dns_name, _set_eni_dns_name))
    # Tasks stay RUNNING until their workload exits (the container stand-in stops them).
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    try:
        yield containers
    finally:
        state_manager.unset_transition("ecs::task")
        LambdaBackend.invoke = original_invoke  # type: ignore[method-assign]
        LAMBDAS.clear()
        for name, method in saved.items():
            setattr(StateTaskServiceEcs, name, method)
        for name, method in saved_writes.items():
            setattr(DynamoDBBackend, name, method)
        for name, method in saved_handlers.items():
            setattr(DynamoHandler, name, method)
        if not had_dns:
            delattr(NetworkInterface, dns_attr)
