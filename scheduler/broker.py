"""Per-VP least privilege on AWS: launch tickets and the broker a VP task talks to.

A VP task must be able to read and update only its own VP. ECS gives a task no per-task
identity that IAM can match against a table key, so the task role gets **no** table, key or
bucket access at all; it may only invoke the broker Lambda, and the broker decides per call.

How a task proves which VP it is — the launch ticket:

1. **Mint** (:class:`TicketIssuer`, the ``ticket_handler`` Lambda, invoked only by the state
   machine after its conditional ``SCHEDULED → INITIALIZING``): 32 random bytes, URL-safe. The
   VP's record gets ``ticket_hash`` (SHA-256 of the ticket), ``ticket_expires_at`` (epoch s)
   and ``ticket_file``; the ticket itself is written to the ticket bucket as an ECS
   environment file (``tickets/<vp_id>/<random>.env`` holding ``VP_LAUNCH_TICKET=…``). The
   Lambda returns only that object's ARN — not secret — so the **execution history holds the
   ARN, never the ticket**.
2. **Carry**: the workflow's ``RunTask`` overrides name the file in ``EnvironmentFiles``. The
   ECS agent reads it with the *task execution role* (the only role that may
   ``s3:GetObject`` there; a container never sees that role's credentials) and sets
   ``VP_LAUNCH_TICKET`` in the container. Overrides and ``DescribeTasks`` show the ARN only.
3. **Redeem once** (:class:`Broker`, ``handler``, ``{"action": "redeem", "vp_id", "ticket"}``):
   one conditional write — the hash must match *that* ``vp_id``'s record, not be expired and
   not be redeemed before — marks it redeemed; then the broker decrypts that VP's meeting URL
   and passcode (KMS, encryption context ``{"vp_id": …}``) and returns them with the public
   fields the task needs (platform, name, ``join_at``) in the invoke response, which goes to
   the task alone. The ticket file is deleted. A ticket replayed, expired, or presented for
   another ``vp_id`` is refused, the same way each time.
4. **Status updates** (``{"action": "status", "vp_id", "ticket", "status": {…}}``): the same
   ticket (hash match for that ``vp_id``, not expired) authorises status writes for that VP
   only, through :meth:`VpStore.transition` (so the lifecycle rules and conditional writes
   hold). A terminal status frees the owner's active-VP slot.
5. **Events** (``{"action": "events", "vp_id", "ticket", "kind": "transcript"|"chat"|"events",
   "start", "items": […]}``, at most :data:`MAX_EVENT_BATCH` items): the same ticket
   authorises the VP's final transcript segments and chat lines for its owner's webhooks
   (contract 5). Only the contract's fields are kept (:func:`scheduler.webhooks.line_event`);
   ``start`` numbers the batch's first item among that kind's events, so a retried batch gets
   the same ``seq`` and ``webhook-id`` (:class:`scheduler.aws_hooks.EventRouter`).

What this gives: a compromised task holds one ticket, valid for one VP; with it, it can read
that VP's meeting once (it already had it) and write that VP's statuses. It cannot read the
table, the key or the bucket, nor mint tickets (the ticket Lambda is invocable only by the
state machine's role). tests/deploy/test_template.py asserts this from the template;
tests/aws/test_broker.py shows it on moto.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from scheduler.dynamodb_store import DynamoDbStore
from scheduler.errors import ControlPlaneError, NotFound, StaleTransition
from scheduler.ratelimit import LaunchLimiter
from vp import log as vplog
from vp.errors import ConfigError
from vp.lifecycle import Reason, Status, StatusEvent
from vp.status import StatusSink

log = structlog.get_logger(__name__)

TICKET_ENV = "VP_LAUNCH_TICKET"
# A ticket authorises the task's status writes for its whole run: the workflow's RunTask
# timeout (8 h) plus the pre-start lead and start-up, with margin.
TICKET_LIFETIME_S = 9 * 3600
MAX_DETAIL = 1000
MAX_EVENT_BATCH = 50
# The VP's output files whose lines become events: transcript.jsonl, chat.jsonl, events.jsonl
# (vp.capture_degraded).
EVENT_KINDS = ("transcript", "chat", "events")
_VP_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TICKET = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)
REFUSED = {"ok": False, "error": "ticket-refused"}


def ticket_hash(ticket: str) -> str:
    """What the record keeps: SHA-256 of the ticket (256 random bits: no salt needed)."""
    return hashlib.sha256(ticket.encode()).hexdigest()


def _is_conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class BrokerRefused(ControlPlaneError):
    """The broker refused the ticket (unknown, expired, replayed, or another VP's)."""


# ---------------------------------------------------------------------------------- mint


class TicketIssuer:
    """Mints one launch ticket per execution (see the module docstring, step 1)."""

    def __init__(
        self,
        table_name: str,
        bucket_arn: str,
        *,
        dynamodb: Any = None,
        s3: Any = None,
        lifetime_s: int = TICKET_LIFETIME_S,
        clock: Any = time.time,
    ) -> None:
        if not table_name or not bucket_arn.startswith("arn:"):
            raise ConfigError("the ticket issuer needs VP_TABLE_NAME and VP_TICKET_BUCKET_ARN")
        self.table_name = table_name
        self.bucket_arn = bucket_arn
        self.bucket = bucket_arn.split(":::", 1)[1]
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._ddb = dynamodb or boto3.client("dynamodb", config=_BOTO_CONFIG)
        self._s3 = s3 or boto3.client("s3", config=_BOTO_CONFIG)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TicketIssuer:
        env = os.environ if env is None else env
        return cls(env.get("VP_TABLE_NAME", ""), env.get("VP_TICKET_BUCKET_ARN", ""))

    def mint(self, vp_id: str) -> dict[str, str]:
        """Mint a ticket for the INITIALIZING VP ``vp_id``; ``{"ticket_file": <S3 ARN>}``.
        Raises :class:`NotFound` when the VP is missing or no longer INITIALIZING."""
        if not _VP_ID.match(vp_id):
            raise NotFound("no such VP")
        ticket = secrets.token_urlsafe(32)
        key = f"tickets/{vp_id}/{secrets.token_hex(16)}.env"
        # The file first: a record pointing at a file that failed to upload would strand the
        # task; an orphan file expires with the bucket's lifecycle rule.
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=f"{TICKET_ENV}={ticket}\n".encode(),
            ContentType="text/plain",
        )
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"vp_id": {"S": vp_id}},
                UpdateExpression=(
                    "SET ticket_hash = :h, ticket_expires_at = :e, ticket_file = :f "
                    "REMOVE ticket_redeemed_at"
                ),
                ConditionExpression="attribute_exists(vp_id) AND #status = :initializing",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":h": {"S": ticket_hash(ticket)},
                    ":e": {"N": str(int(self._clock()) + self.lifetime_s)},
                    ":f": {"S": key},
                    ":initializing": {"S": Status.INITIALIZING.value},
                },
            )
        except ClientError as exc:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            if _is_conditional_failure(exc):
                raise NotFound(f"VP {vp_id} is not INITIALIZING") from None
            raise
        log.info("vp.ticket_minted", vp_id=vp_id)
        return {"ticket_file": f"{self.bucket_arn}/{key}"}


# -------------------------------------------------------------------------------- broker


class Broker:
    """Trades a VP's ticket for its meeting once, and records its statuses (steps 3–4)."""

    def __init__(
        self,
        store: DynamoDbStore,
        *,
        limiter: LaunchLimiter | None = None,
        s3: Any = None,
        bucket: str | None = None,
        artifact_bucket_arn: str | None = None,
        artifact_writer_role_arn: str | None = None,
        sts: Any = None,
        clock: Any = time.time,
        router: Any = None,
    ) -> None:
        """``router`` (:class:`scheduler.aws_hooks.EventRouter`) takes the task's transcript
        and chat events to the webhook queue; without it they are refused."""
        self.store = store
        self.limiter = limiter
        self.router = router
        self.bucket = bucket
        self.artifact_bucket_arn = artifact_bucket_arn
        self.artifact_writer_role_arn = artifact_writer_role_arn
        self._sts = sts
        self._clock = clock
        self._ddb: Any = store._ddb  # the store's client: same table, same retries
        self._s3 = s3 if s3 is not None or not bucket else boto3.client("s3", config=_BOTO_CONFIG)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Broker:
        from scheduler.dynamodb_limits import DynamoDbLaunchLimiter

        env = os.environ if env is None else env
        bucket_arn = env.get("VP_TICKET_BUCKET_ARN", "")
        router = None
        if env.get("VP_HOOKS_TABLE_NAME") and env.get("VP_WEBHOOK_QUEUE_URL"):
            from scheduler.aws_hooks import DynamoDbWebhookStore, EventRouter

            hooks = DynamoDbWebhookStore(
                env["VP_HOOKS_TABLE_NAME"], env.get("VP_PASSCODE_KMS_KEY_ID", "")
            )
            router = EventRouter(hooks, env["VP_WEBHOOK_QUEUE_URL"])
        return cls(
            DynamoDbStore.from_env(env),
            limiter=DynamoDbLaunchLimiter.from_env(env),
            bucket=bucket_arn.split(":::", 1)[1] if ":::" in bucket_arn else None,
            router=router,
            artifact_bucket_arn=env.get("VP_ARTIFACT_BUCKET_ARN") or None,
            artifact_writer_role_arn=env.get("VP_ARTIFACT_WRITER_ROLE_ARN") or None,
        )

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One invocation. Every refusal of a ticket looks the same (no oracle)."""
        vp_id, ticket = event.get("vp_id"), event.get("ticket")
        if not isinstance(vp_id, str) or not _VP_ID.match(vp_id):
            return REFUSED
        if not isinstance(ticket, str) or not _TICKET.match(ticket):
            return REFUSED
        action = event.get("action")
        if action == "redeem":
            return self.redeem(vp_id, ticket)
        if action == "status":
            status = event.get("status")
            return self.record_status(vp_id, ticket, status if isinstance(status, dict) else {})
        if action == "events":
            return self.record_events(
                vp_id, ticket, event.get("kind"), event.get("start"), event.get("items")
            )
        if action == "artifact_credentials":
            return self.artifact_credentials(vp_id, ticket)
        return {"ok": False, "error": "unknown-action"}

    def artifact_credentials(self, vp_id: str, ticket: str) -> dict[str, Any]:
        """Temporary credentials that can write only ``vps/<vp_id>/*`` of the artifact
        bucket, for a valid ticket of *this* VP (see :mod:`scheduler.artifacts`): the
        artifact-writer role assumed with the session tag ``vp_id`` (its policy names
        ``vps/${aws:PrincipalTag/vp_id}/*``) and a session policy naming the same prefix."""
        if not self.artifact_bucket_arn or not self.artifact_writer_role_arn:
            return {"ok": False, "error": "no-artifact-bucket"}
        if not self._ticket_valid(vp_id, ticket):
            log.warning("vp.ticket_refused", vp_id=vp_id, action="artifact_credentials")
            return REFUSED
        from scheduler.artifacts import prefix, session_policy

        if self._sts is None:
            self._sts = boto3.client("sts", config=_BOTO_CONFIG)
        response = self._sts.assume_role(
            RoleArn=self.artifact_writer_role_arn,
            RoleSessionName=f"vp-{vp_id}"[:64],
            DurationSeconds=3600,  # the maximum for a role assumed by a role
            Tags=[{"Key": "vp_id", "Value": vp_id}],
            Policy=json.dumps(session_policy(self.artifact_bucket_arn, vp_id)),
        )
        creds = response["Credentials"]
        expiration = creds["Expiration"]
        log.info("vp.artifact_credentials_issued", vp_id=vp_id)
        return {
            "ok": True,
            "bucket": self.artifact_bucket_arn.split(":::", 1)[1],
            "prefix": prefix(vp_id),
            "credentials": {
                "access_key_id": creds["AccessKeyId"],
                "secret_access_key": creds["SecretAccessKey"],
                "session_token": creds["SessionToken"],
                "expiration": expiration.isoformat()
                if hasattr(expiration, "isoformat")
                else str(expiration),
            },
        }

    def redeem(self, vp_id: str, ticket: str) -> dict[str, Any]:
        """The VP's meeting for a valid, unredeemed ticket of *this* VP; else refused."""
        now = int(self._clock())
        try:
            response = self._ddb.update_item(
                TableName=self.store.table_name,
                Key={"vp_id": {"S": vp_id}},
                UpdateExpression="SET ticket_redeemed_at = :now",
                ConditionExpression=(
                    "ticket_hash = :h AND ticket_expires_at > :now "
                    "AND attribute_not_exists(ticket_redeemed_at)"
                ),
                ExpressionAttributeValues={
                    ":h": {"S": ticket_hash(ticket)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                log.warning("vp.ticket_refused", vp_id=vp_id, action="redeem")
                return REFUSED
            raise
        ticket_file = response.get("Attributes", {}).get("ticket_file", {}).get("S")
        if ticket_file and self.bucket and self._s3 is not None:
            try:  # one use: the file has served its purpose
                self._s3.delete_object(Bucket=self.bucket, Key=ticket_file)
            except ClientError as exc:
                log.warning("vp.ticket_file_not_deleted", error=type(exc).__name__)
        record = self.store.get(vp_id)
        if record is None:
            return REFUSED
        reply: dict[str, Any] = {
            "ok": True,
            "vp_id": vp_id,
            "status": record.status.value,
            "platform": record.platform,
            "name": record.name,
            "join_at": record.join_at.isoformat() if record.join_at else None,
            "meeting_url": record.meeting_url,  # the public (redacted) URL ...
            "passcode": None,
        }
        if record.terminal:  # cancelled meanwhile: the task ends, it needs no secret
            log.info("vp.ticket_redeemed_after_end", vp_id=vp_id, status=record.status.value)
            return reply
        found = self.store.get_secrets(vp_id)
        if found is None:
            return REFUSED
        log.info("vp.ticket_redeemed", vp_id=vp_id)
        return {**reply, "meeting_url": found.meeting_url, "passcode": found.passcode}

    def _ticket_valid(self, vp_id: str, ticket: str) -> bool:
        item = self._ddb.get_item(
            TableName=self.store.table_name,
            Key={"vp_id": {"S": vp_id}},
            ProjectionExpression="ticket_hash, ticket_expires_at",
            ConsistentRead=True,
        ).get("Item")
        if not item or "ticket_hash" not in item:
            return False
        stored = str(item["ticket_hash"].get("S", ""))
        expires = int(item.get("ticket_expires_at", {}).get("N", "0"))
        return hmac.compare_digest(stored, ticket_hash(ticket)) and expires > self._clock()

    def record_status(self, vp_id: str, ticket: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Write one status object of *this* VP, as :meth:`VpStore.transition` allows."""
        if not self._ticket_valid(vp_id, ticket):
            log.warning("vp.ticket_refused", vp_id=vp_id, action="status")
            return REFUSED
        try:
            new = Status(str(status.get("status")))
            reason = Reason(status["reason"]) if status.get("reason") else None
            detail = status.get("detail")
            ts = status.get("ts")
            if detail is not None and (not isinstance(detail, str) or len(detail) > MAX_DETAIL):
                raise ValueError("detail")
            if ts is not None:
                datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        except (ValueError, TypeError):
            return {"ok": False, "error": "invalid-status"}
        try:
            record = self.store.transition(vp_id, new, reason, detail, ts=ts)
        except (StaleTransition, NotFound):
            current = self.store.get(vp_id)
            return {
                "ok": False,
                "error": "stale",
                "stored": current.status.value if current else None,
            }
        if record.terminal and self.limiter is not None:
            try:
                self.limiter.release(record.owner, vp_id)
            except Exception as exc:  # the limiter heals itself at the cap; never fail here
                log.warning("vp.active_slot_not_released", error=type(exc).__name__)
        return {"ok": True, "stored": record.status.value}

    def record_events(
        self, vp_id: str, ticket: str, kind: Any, start: Any, items: Any
    ) -> dict[str, Any]:
        """Queue *this* VP's transcript or chat events for its owner's webhooks (step 5)."""
        from scheduler.webhooks import line_event

        if not self._ticket_valid(vp_id, ticket):
            log.warning("vp.ticket_refused", vp_id=vp_id, action="events")
            return REFUSED
        if self.router is None:
            return {"ok": False, "error": "no-webhooks"}
        valid = (
            kind in EVENT_KINDS
            and isinstance(start, int)
            and not isinstance(start, bool)
            and 0 <= start < 10_000_000
            and isinstance(items, list)
            and 0 < len(items) <= MAX_EVENT_BATCH
            and all(isinstance(item, dict) for item in items)
        )
        events = [line_event(str(kind), item) for item in items] if valid else []
        if not valid or any(e is None for e in events):
            return {"ok": False, "error": "invalid-events"}
        record = self.store.get(vp_id)
        if record is None:
            return REFUSED
        queued = self.router.emit(vp_id, record.owner, str(kind), start, events)
        return {"ok": True, "queued": queued}


# -------------------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class BrokeredMeeting:
    """What a task learns by redeeming its ticket."""

    vp_id: str
    status: Status
    platform: str
    name: str
    join_at: datetime | None
    meeting_url: str
    passcode: str | None

    def __repr__(self) -> str:  # never print the URL's tokens or the passcode
        return f"BrokeredMeeting(vp_id={self.vp_id!r}, status={self.status.value})"


class BrokerClient:
    """The task side: invokes the broker Lambda ``function`` with its ticket."""

    def __init__(self, function: str, vp_id: str, ticket: str, *, lambda_client: Any = None):
        if not function:
            raise ConfigError("the broker client needs VP_BROKER_FUNCTION")
        self.function = function
        self.vp_id = vp_id
        self._ticket = ticket
        self._lambda = lambda_client or boto3.client("lambda", config=_BOTO_CONFIG)

    def _invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = {"vp_id": self.vp_id, "ticket": self._ticket, **payload}
        response = self._lambda.invoke(FunctionName=self.function, Payload=json.dumps(body))
        data = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError") or not isinstance(data, dict):
            raise ControlPlaneError(f"the broker failed: {response.get('FunctionError')}")
        return data

    def redeem(self) -> BrokeredMeeting:
        """The VP's meeting; :class:`BrokerRefused` for a refused ticket."""
        data = self._invoke({"action": "redeem"})
        if not data.get("ok"):
            raise BrokerRefused(str(data.get("error")))
        join_at = data.get("join_at")
        return BrokeredMeeting(
            vp_id=self.vp_id,
            status=Status(data["status"]),
            platform=str(data["platform"]),
            name=str(data["name"]),
            join_at=datetime.fromisoformat(join_at) if join_at else None,
            meeting_url=str(data["meeting_url"]),
            passcode=data.get("passcode"),
        )

    def artifact_credentials(self) -> dict[str, Any]:
        """``{"bucket", "prefix", "credentials"}`` for this VP's artifact uploads;
        :class:`BrokerRefused` when refused (or the stack keeps no artifacts)."""
        data = self._invoke({"action": "artifact_credentials"})
        if not data.get("ok"):
            raise BrokerRefused(str(data.get("error")))
        return data

    def record_status(self, event: StatusEvent) -> dict[str, Any]:
        return self._invoke(
            {
                "action": "status",
                "status": {
                    "ts": event.ts,
                    "status": event.status.value,
                    "reason": event.reason.value if event.reason else None,
                    "detail": event.detail,
                },
            }
        )

    def send_events(self, kind: str, start: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Transcript or chat events of this VP (step 5): ``items`` are the contract's fields
        of lines ``start`` … of that kind."""
        return self._invoke({"action": "events", "kind": kind, "start": start, "items": items})


class BrokerSink(StatusSink):
    """Like :class:`scheduler.run.StoreSink`, through the broker: every status of the VP is
    written in order; one the store already holds (INITIALIZING, marked by the workflow) or
    refuses is skipped; a broker error is logged and never crashes the VP."""

    def __init__(self, client: BrokerClient) -> None:
        self._client = client
        self.written: list[Status] = []
        self.skipped: list[Status] = []

    def emit(self, event: StatusEvent) -> None:
        try:
            reply = self._client.record_status(event)
        except Exception as exc:
            self.skipped.append(event.status)
            log.error(
                "vp.status_broker_failed", status=event.status.value, error=type(exc).__name__
            )
            return
        if reply.get("ok"):
            self.written.append(event.status)
            return
        self.skipped.append(event.status)
        if reply.get("stored") == event.status.value:
            log.info("vp.status_already_recorded", status=event.status.value)
        else:
            log.warning(
                "vp.status_refused_by_broker",
                status=event.status.value,
                error=reply.get("error"),
                stored=reply.get("stored"),
            )


# ------------------------------------------------------------------------------- Lambdas

_BROKER: Broker | None = None
_ISSUER: TicketIssuer | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The broker Lambda (``scheduler.broker.handler``), invoked by VP tasks only."""
    global _BROKER
    if _BROKER is None:
        vplog.configure(os.environ.get("VP_LOG_LEVEL", "INFO"))
        _BROKER = Broker.from_env()
    return _BROKER.handle(event)


def ticket_handler(event: Mapping[str, Any], context: Any) -> dict[str, str]:
    """The ticket Lambda (``scheduler.broker.ticket_handler``), invoked by the workflow
    only, with ``{"vp_id"}``; returns ``{"ticket_file"}`` (an S3 ARN, not a secret)."""
    global _ISSUER
    if _ISSUER is None:
        vplog.configure(os.environ.get("VP_LOG_LEVEL", "INFO"))
        _ISSUER = TicketIssuer.from_env()
    return _ISSUER.mint(str(event.get("vp_id", "")))
