"""Webhooks of contract 5 on AWS, with AWS's own delivery machinery (no loop in a Lambda):

    VP table stream (NEW_AND_OLD_IMAGES) → ``stream_handler`` (events Lambda): the history
    entries a write appended become ``vp.status`` events with the VP's next ``seq`` numbers →
    one SQS message per event and matching webhook → ``delivery_handler`` (delivery Lambda,
    SQS event source with ReportBatchItemFailures): sign (``standardwebhooks``), re-check the
    URL after DNS resolution, POST; a failure makes the message visible again after the
    backoff (1 s, 2 s, 4 s … ≤ an hour: ChangeMessageVisibility) until the retry window is
    over (then it is logged failed and dropped); the queue's redrive policy moves a message
    that keeps failing to the dead-letter queue.

Exactly-once ``seq``: the events item of a VP (``pk = vp#<vp_id>``, ``sk = events``) holds
``seq`` and, per producer cursor, the list of ``seq`` s given to its entries so far; an
entry's ``seq`` and ``webhook-id`` (a hash of VP, cursor and index) are therefore the same
when a stream batch is retried, and the item is updated conditionally (optimistic
concurrency), so two writers never give out one number twice and leave no gap.

Table ``VP_HOOKS_TABLE_NAME`` (``pk``/``sk``, TTL ``expires_at``):
``webhook#<id>``/``meta`` and ``owner#<owner>``/``webhook#<id>`` (the webhook, its secret KMS-
encrypted with context ``{"webhook_id": id}``), ``vp#<id>``/``events`` (seq cursors),
``webhook#<id>``/``delivery#<time>#<event>#<attempt>`` (the deliveries log, kept
:data:`LOG_DAYS` days).

Environment: ``VP_HOOKS_TABLE_NAME``, ``VP_PASSCODE_KMS_KEY_ID`` (the data key),
``VP_WEBHOOK_QUEUE_URL`` (events and delivery Lambdas), ``VP_WEBHOOK_RETRY_HOURS`` (24),
``VP_WEBHOOK_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import structlog
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from scheduler.hook_store import CalendarRow, CalendarVp, DeliveryRow, NewEvent, WebhookRow
from scheduler.netguard import WEBHOOK_HOSTS_ENV, UrlRefused, allowed_hosts, pinned_target
from scheduler.webhooks import (
    DELIVERY_TIMEOUT,
    EventType,
    backoff,
    delivery_error,
    signed_headers,
)
from vp import log as vplog

log = structlog.get_logger(__name__)
LOG_DAYS = 7
MAX_CAS_TRIES = 8
_PRODUCER_ITEMS = ("idem#", "rate#", "active#")
_deserialize = TypeDeserializer().deserialize


def _plain(image: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserialize(v) for k, v in image.items()}


def event_id(vp_id: str, cursor: str, index: int) -> str:
    """The ``webhook-id`` of entry ``index`` of ``cursor``: the same on every retry."""
    digest = hashlib.sha256(f"{vp_id}|{cursor}|{index}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


class DynamoDbWebhookStore:
    """Webhooks, seq cursors and the deliveries log in the hooks table (see the module
    docstring). Implements :class:`scheduler.hook_store.WebhookStore` for the API."""

    def __init__(self, table: str, kms_key_id: str, *, ddb: Any = None, kms: Any = None) -> None:
        self.table = table
        self.kms_key_id = kms_key_id
        self._ddb = ddb or boto3.client("dynamodb")
        self._kms = kms or boto3.client("kms")

    @classmethod
    def from_env(cls) -> DynamoDbWebhookStore:
        return cls(os.environ["VP_HOOKS_TABLE_NAME"], os.environ["VP_PASSCODE_KMS_KEY_ID"])

    # -- webhooks ---------------------------------------------------------------------------
    def create_webhook(self, row: WebhookRow) -> None:
        ciphertext = self._kms.encrypt(
            KeyId=self.kms_key_id,
            Plaintext=row.secret.encode(),
            EncryptionContext={"webhook_id": row.webhook_id},
        )["CiphertextBlob"]
        attrs = {
            "webhook_id": {"S": row.webhook_id},
            "owner": {"S": row.owner},
            "url": {"S": row.url},
            "events": {"L": [{"S": e} for e in row.events]},
            "secret": {"B": ciphertext},
            "created_at": {"S": row.created_at},
        }
        self._ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": {**attrs, **key},
                         "ConditionExpression": "attribute_not_exists(pk)"}}
                for key in (
                    {"pk": {"S": f"webhook#{row.webhook_id}"}, "sk": {"S": "meta"}},
                    {"pk": {"S": f"owner#{row.owner}"}, "sk": {"S": f"webhook#{row.webhook_id}"}},
                )
            ]
        )  # fmt: skip

    def _row(self, item: Mapping[str, Any], with_secret: bool) -> WebhookRow:
        secret = ""
        if with_secret:
            secret = self._kms.decrypt(
                CiphertextBlob=item["secret"]["B"],
                EncryptionContext={"webhook_id": item["webhook_id"]["S"]},
            )["Plaintext"].decode()
        return WebhookRow(
            webhook_id=item["webhook_id"]["S"],
            owner=item["owner"]["S"],
            url=item["url"]["S"],
            events=tuple(e["S"] for e in item["events"]["L"]),
            secret=secret,
            created_at=item["created_at"]["S"],
        )

    def get_webhook(self, webhook_id: str, *, with_secret: bool = False) -> WebhookRow | None:
        item = self._ddb.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"webhook#{webhook_id}"}, "sk": {"S": "meta"}},
            ConsistentRead=True,
        ).get("Item")
        return self._row(item, with_secret) if item else None

    def list_webhooks(self, owner: str | None = None) -> list[WebhookRow]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        if owner is not None:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :sk)"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": f"owner#{owner}"},
                                                   ":sk": {"S": "webhook#"}}  # fmt: skip
            call = self._ddb.query
        else:
            kwargs["FilterExpression"] = "sk = :meta AND begins_with(pk, :pk)"
            kwargs["ExpressionAttributeValues"] = {":meta": {"S": "meta"},
                                                   ":pk": {"S": "webhook#"}}  # fmt: skip
            call = self._ddb.scan
        while True:
            page = call(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        rows = [self._row(item, False) for item in items]
        return sorted(rows, key=lambda r: r.created_at)

    def delete_webhook(self, webhook_id: str) -> None:
        row = self.get_webhook(webhook_id)
        if row is None:
            return
        for key in (
            {"pk": {"S": f"webhook#{webhook_id}"}, "sk": {"S": "meta"}},
            {"pk": {"S": f"owner#{row.owner}"}, "sk": {"S": f"webhook#{webhook_id}"}},
        ):
            self._ddb.delete_item(TableName=self.table, Key=key)
        # Messages still queued for it find no webhook and are dropped; the log expires.

    # -- the deliveries log -------------------------------------------------------------------
    def record_attempt(
        self,
        webhook_id: str,
        msg_id: str,
        event_type: str,
        attempt: int,
        *,
        status_code: int | None,
        error: str | None,
        state: str,
    ) -> None:
        now = datetime.now(UTC)
        item: dict[str, Any] = {
            "pk": {"S": f"webhook#{webhook_id}"},
            "sk": {"S": f"delivery#{now.isoformat()}#{msg_id}#{attempt:04d}"},
            "msg_id": {"S": msg_id},
            "type": {"S": event_type},
            "attempt": {"N": str(attempt)},
            "state": {"S": state},
            "ts": {"S": now.isoformat(timespec="milliseconds").replace("+00:00", "Z")},
            "expires_at": {"N": str(int(now.timestamp()) + LOG_DAYS * 86400)},
        }
        item["status_code"] = {"N": str(status_code)} if status_code is not None else {"NULL": True}
        item["error"] = {"S": error} if error is not None else {"NULL": True}
        self._ddb.put_item(TableName=self.table, Item=item)

    def _log(self, webhook_id: str, limit: int) -> list[dict[str, Any]]:
        page = self._ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": f"webhook#{webhook_id}"},
                                       ":sk": {"S": "delivery#"}},
            ScanIndexForward=False,
            Limit=limit,
        )  # fmt: skip
        return [_plain(item) for item in page.get("Items", [])]

    def deliveries(self, webhook_id: str, limit: int = 200) -> list[DeliveryRow]:
        return [
            DeliveryRow(
                webhook_id=webhook_id,
                msg_id=str(i["msg_id"]),
                type=str(i["type"]),
                attempt=int(i["attempt"]),
                status_code=None if i.get("status_code") is None else int(i["status_code"]),
                error=i.get("error"),
                ts=str(i["ts"]),
            )
            for i in self._log(webhook_id, limit)
        ]

    def outbox_states(self, webhook_id: str) -> dict[str, int]:
        """Per event, the state its latest logged attempt left it in (recent log only)."""
        latest: dict[str, str] = {}
        for item in self._log(webhook_id, 1000):  # newest first
            latest.setdefault(str(item["msg_id"]), str(item["state"]))
        counts: dict[str, int] = {}
        for state in latest.values():
            counts[state] = counts.get(state, 0) + 1
        return counts

    # -- seq --------------------------------------------------------------------------------
    def assign_seq(self, vp_id: str, cursor: str, start: int, count: int) -> list[int]:
        """The ``seq`` numbers of entries ``start`` … ``start + count - 1`` of ``cursor``:
        those given before when already assigned (a retried batch), new ones otherwise."""
        key = {"pk": {"S": f"vp#{vp_id}"}, "sk": {"S": "events"}}
        field = f"seqs_{cursor}"
        for _ in range(MAX_CAS_TRIES):
            item = self._ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
                "Item", {}
            )
            seq = int(item["seq"]["N"]) if "seq" in item else 0
            given = [int(v["N"]) for v in item.get(field, {}).get("L", [])]
            if start + count <= len(given):
                return given[start : start + count]
            new = list(range(seq + 1, seq + 1 + start + count - len(given)))
            if "seq" in item:
                condition = "seq = :seq AND size(#f) = :len" if given else (
                    "seq = :seq AND attribute_not_exists(#f)")  # fmt: skip
            else:
                condition = "attribute_not_exists(pk)"
            values: dict[str, Any] = {
                ":new": {"L": [{"N": str(n)} for n in new]},
                ":top": {"N": str(new[-1])},
                ":empty": {"L": []},
            }
            if "seq" in item:
                values[":seq"] = {"N": str(seq)}
                if given:
                    values[":len"] = {"N": str(len(given))}
            try:
                self._ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=(
                        "SET seq = :top, #f = list_append(if_not_exists(#f, :empty), :new)"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#f": field},
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # another writer moved it: read again
                raise
            return (given + new)[start : start + count]
        raise RuntimeError("seq assignment kept conflicting")


class EventRouter:
    """Turns VP table stream records into queued deliveries (the events Lambda)."""

    def __init__(self, store: DynamoDbWebhookStore, queue_url: str, *, sqs: Any = None) -> None:
        self.store = store
        self.queue_url = queue_url
        self._sqs = sqs or boto3.client("sqs")

    def route(self, records: list[Mapping[str, Any]]) -> int:
        """Queue the events of ``records``; returns how many messages were sent. Raises on
        a failure, so the stream retries the batch (seq and ids are then the same)."""
        sent = 0
        for record in records:
            if record.get("eventName") not in ("INSERT", "MODIFY"):
                continue
            change = record.get("dynamodb") or {}
            new = _plain(change.get("NewImage") or {})
            vp_id = str(new.get("vp_id", ""))
            if not vp_id or vp_id.startswith(_PRODUCER_ITEMS) or "history" not in new:
                continue
            old = _plain(change.get("OldImage") or {})
            start = len(old.get("history") or [])
            entries = list(new["history"])[start:]
            if not entries:
                continue
            events = [
                NewEvent(
                    EventType.STATUS.value,
                    str(e.get("ts")),
                    {
                        "ts": e.get("ts"),
                        "vp_id": vp_id,
                        "status": e.get("status"),
                        "reason": e.get("reason"),
                        "detail": e.get("detail"),
                    },
                )  # fmt: skip
                for e in entries
            ]
            sent += self.emit(vp_id, str(new.get("owner", "")), "status", start, events)
        return sent

    def emit(self, vp_id: str, owner: str, cursor: str, start: int, events: list[NewEvent]) -> int:
        """Give ``events`` (entries ``start`` … of ``cursor``) their seq and queue one message
        per event and matching webhook of ``owner``."""
        seqs = self.store.assign_seq(vp_id, cursor, start, len(events))
        hooks = self.store.list_webhooks(owner)
        messages: list[dict[str, Any]] = []
        for index, (event, seq) in enumerate(zip(events, seqs, strict=True)):
            body = {"type": event.type, "timestamp": event.timestamp,
                    "data": {**event.data, "vp_id": vp_id, "seq": seq}}  # fmt: skip
            msg_id = event_id(vp_id, cursor, start + index)
            for hook in hooks:
                if hook.wants(event.type):
                    messages.append({
                        "webhook_id": hook.webhook_id, "msg_id": msg_id, "type": event.type,
                        "body": json.dumps(body, separators=(",", ":")),
                        "created_at": time.time(),
                    })  # fmt: skip
        for first in range(0, len(messages), 10):
            batch = messages[first : first + 10]
            result = self._sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(batch)],
            )
            if result.get("Failed"):
                raise RuntimeError(f"{len(result['Failed'])} messages not queued")
        return len(messages)


class Delivery:
    """Delivers one SQS message (the delivery Lambda); see the module docstring."""

    def __init__(
        self,
        store: DynamoDbWebhookStore,
        queue_url: str,
        *,
        retry_seconds: float,
        exempt_hosts: frozenset[str],
        sqs: Any = None,
    ) -> None:
        self.store = store
        self.queue_url = queue_url
        self.retry_seconds = retry_seconds
        self.exempt_hosts = exempt_hosts
        self._sqs = sqs or boto3.client("sqs")
        self._http = httpx.Client(
            timeout=DELIVERY_TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),  # targets are pinned
        )

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event.get("Records", []):
            attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
            if not self.deliver(json.loads(record["body"]), attempt):
                # Visible again after the backoff; the queue redelivers it (same body, id).
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=int(min(backoff(attempt), 43_000)),
                )
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def deliver(self, message: Mapping[str, Any], attempt: int) -> bool:
        """One attempt; True when the message is done (delivered, expired or orphaned)."""
        hook = self.store.get_webhook(str(message["webhook_id"]), with_secret=True)
        if hook is None:
            return True  # the webhook was deleted
        status_code: int | None = None
        error: str | None = None
        body = str(message["body"])
        try:
            target = asyncio.run(pinned_target(hook.url, self.exempt_hosts))
            now = datetime.now(UTC)
            headers = signed_headers(hook.secret, str(message["msg_id"]), body, now)
            status_code = self._http.post(
                target.url,
                content=body.encode(),
                headers={**headers, **target.headers},
                extensions=target.extensions,
            ).status_code
        except (UrlRefused, httpx.HTTPError) as exc:
            error = delivery_error(exc)
        ok = status_code is not None and 200 <= status_code < 300
        expired = time.time() + backoff(attempt) - float(message["created_at"]) > self.retry_seconds
        state = "delivered" if ok else ("failed" if expired else "pending")
        self.store.record_attempt(
            hook.webhook_id, str(message["msg_id"]), str(message["type"]), attempt,
            status_code=status_code, error=error, state=state,
        )  # fmt: skip
        log.info("webhook.attempt", webhook_id=hook.webhook_id, event_id=message["msg_id"],
                 attempt=attempt, status_code=status_code, error=error, state=state)  # fmt: skip
        return ok or expired


_ROUTER: EventRouter | None = None
_DELIVERY: Delivery | None = None


def stream_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The events Lambda (``scheduler.aws_hooks.stream_handler``): VP table stream batches."""
    global _ROUTER
    if _ROUTER is None:
        vplog.configure(os.environ.get("VP_LOG_LEVEL", "INFO"))
        _ROUTER = EventRouter(DynamoDbWebhookStore.from_env(), os.environ["VP_WEBHOOK_QUEUE_URL"])
    return {"queued": _ROUTER.route(list(event.get("Records", [])))}


def delivery_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The delivery Lambda (``scheduler.aws_hooks.delivery_handler``): SQS batches, partial
    batch responses (``ReportBatchItemFailures``)."""
    global _DELIVERY
    if _DELIVERY is None:
        vplog.configure(os.environ.get("VP_LOG_LEVEL", "INFO"))
        _DELIVERY = Delivery(
            DynamoDbWebhookStore.from_env(),
            os.environ["VP_WEBHOOK_QUEUE_URL"],
            retry_seconds=float(os.environ.get("VP_WEBHOOK_RETRY_HOURS", "24")) * 3600,
            exempt_hosts=allowed_hosts(WEBHOOK_HOSTS_ENV),
        )
    return _DELIVERY.handle(event)


class DynamoDbCalendarStore(DynamoDbWebhookStore):
    """Calendars on AWS, in the hooks table: ``calendar#<id>``/``meta`` (the calendar and
    its last sync), ``owner#<owner>``/``calendar#<id>`` (the owner's index),
    ``calendar#<id>``/``vp#<occurrence>`` (the VPs it scheduled). Implements the calendar
    half of :class:`scheduler.hook_store.HookStore` for :class:`scheduler.hooks.HookService`.
    """

    _FIELDS = ("calendar_id", "owner", "ics_url", "name", "created_at", "last_attempt",
               "last_success", "last_error")  # fmt: skip

    @staticmethod
    def _value(value: str | None) -> dict[str, Any]:
        return {"NULL": True} if value is None else {"S": value}

    def create_calendar(self, row: CalendarRow) -> None:
        attrs = {name: self._value(getattr(row, name)) for name in self._FIELDS}
        self._ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": {**attrs, **key},
                         "ConditionExpression": "attribute_not_exists(pk)"}}
                for key in (
                    {"pk": {"S": f"calendar#{row.calendar_id}"}, "sk": {"S": "meta"}},
                    {"pk": {"S": f"owner#{row.owner}"}, "sk": {"S": f"calendar#{row.calendar_id}"}},
                )
            ]
        )  # fmt: skip

    def _calendar(self, item: Mapping[str, Any]) -> CalendarRow:
        plain = _plain(item)
        values: list[Any] = [plain.get(name) for name in self._FIELDS]
        return CalendarRow(*values)

    def get_calendar(self, calendar_id: str) -> CalendarRow | None:
        item = self._ddb.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"calendar#{calendar_id}"}, "sk": {"S": "meta"}},
            ConsistentRead=True,
        ).get("Item")
        return self._calendar(item) if item else None

    def _items(self, call: Any, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = call(TableName=self.table, **kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list_calendars(self, owner: str | None = None) -> list[CalendarRow]:
        if owner is None:
            items = self._items(
                self._ddb.scan,
                FilterExpression="sk = :meta AND begins_with(pk, :pk)",
                ExpressionAttributeValues={":meta": {"S": "meta"}, ":pk": {"S": "calendar#"}},
            )
            rows = [self._calendar(i) for i in items]
        else:
            pointers = self._items(
                self._ddb.query,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
                ExpressionAttributeValues={":pk": {"S": f"owner#{owner}"},
                                           ":sk": {"S": "calendar#"}},
            )  # fmt: skip
            found = (self.get_calendar(p["calendar_id"]["S"]) for p in pointers)
            rows = [row for row in found if row is not None]
        return sorted(rows, key=lambda r: r.created_at)

    def delete_calendar(self, calendar_id: str) -> None:
        row = self.get_calendar(calendar_id)
        keys = [{"pk": {"S": f"calendar#{calendar_id}"}, "sk": {"S": "meta"}}]
        if row is not None:
            keys.append({"pk": {"S": f"owner#{row.owner}"}, "sk": {"S": f"calendar#{calendar_id}"}})
        keys += [
            {"pk": {"S": f"calendar#{calendar_id}"}, "sk": {"S": f"vp#{vp.occurrence}"}}
            for vp in self.calendar_vps(calendar_id)
        ]
        for key in keys:
            self._ddb.delete_item(TableName=self.table, Key=key)

    def set_calendar_result(
        self, calendar_id: str, *, attempt: str, success: str | None, error: str | None
    ) -> None:
        values: dict[str, Any] = {":a": {"S": attempt}}
        if success is not None:
            update = "SET last_attempt = :a, last_success = :s, last_error = :n"
            values |= {":s": {"S": success}, ":n": {"NULL": True}}
        else:
            update = "SET last_attempt = :a, last_error = :e"
            values[":e"] = {"S": error or ""}
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"calendar#{calendar_id}"}, "sk": {"S": "meta"}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",  # deleted meanwhile: nothing
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def calendar_vps(self, calendar_id: str) -> list[CalendarVp]:
        items = self._items(
            self._ddb.query,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": f"calendar#{calendar_id}"},
                                       ":sk": {"S": "vp#"}},
        )  # fmt: skip
        vps = [
            CalendarVp(str(p["occurrence"]), str(p["vp_id"]), str(p["start"]), str(p["link_hash"]))
            for p in map(_plain, items)
        ]
        return sorted(vps, key=lambda v: v.start)

    def set_calendar_vp(self, calendar_id: str, vp: CalendarVp) -> None:
        self._ddb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"calendar#{calendar_id}"},
                "sk": {"S": f"vp#{vp.occurrence}"},
                "occurrence": {"S": vp.occurrence},
                "vp_id": {"S": vp.vp_id},
                "start": {"S": vp.start},
                "link_hash": {"S": vp.link_hash},
            },
        )

    def drop_calendar_vp(self, calendar_id: str, occurrence: str) -> None:
        self._ddb.delete_item(
            TableName=self.table,
            Key={"pk": {"S": f"calendar#{calendar_id}"}, "sk": {"S": f"vp#{occurrence}"}},
        )


def calendar_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The calendar Lambda (``scheduler.aws_hooks.calendar_handler``), invoked by an
    EventBridge Scheduler schedule every ``CalendarPollMinutes``: one sync of every calendar
    (a broken feed is recorded on its calendar). Same environment as the API Lambda."""
    from scheduler import aws_lambda

    app = aws_lambda.calendar_app()
    hooks = app.hooks
    assert hooks is not None
    app.run(hooks.sync_all())
    return {"calendars": len(app.run(asyncio.to_thread(hooks.calendar_store().list_calendars)))}
