"""The AWS store: one DynamoDB table, key ``vp_id``, written with boto3.

Item layout (the state machine, stepfunctions/virtual_participant.asl.json, writes the same
attribute names; see scheduler/README.md):

* public record — ``vp_id``, ``owner``, ``platform``, ``meeting_url`` (secret tokens masked),
  ``name``, ``join_at``, ``status``, ``reason``, ``detail``, ``created_at``, ``updated_at``
  (ISO-8601 strings; ``reason``/``detail``/``join_at`` may be NULL) and ``history``, a list of
  contract-2 status objects (maps ``{ts, vp_id, status, reason, detail}``), append-only.
* ``version`` (N) — bumped by every status write (here and in the state machine); the store's
  writes are conditional on it, so a transition validated against a stale read never lands.
* ``expires_at`` (N, epoch seconds) — the table's TTL attribute: ``retention`` after the VP's
  start time, renewed to ``retention`` after it ends.
* ``secrets`` (B) — the URL as requested and the passcode, as JSON encrypted with KMS
  (``EncryptionContext={"vp_id": …}``). Never read by :meth:`get`/:meth:`list` (not in their
  projection) and never part of a :class:`VpRecord`.
* ``launch_handle`` (S) — the Step Functions execution ARN.
* ``failure_cause`` (S) — written by the state machine with the error it caught (no secrets).

Idempotency keys live in the same table as items keyed ``idem#<sha256(owner, key)>`` (``#``
cannot occur in a VP id), claimed in one transaction with the record; scans skip them because
they have no ``status``.

:meth:`list` scans (with a filter on the owner) unless ``owner_index`` names a GSI with hash
key ``owner`` and range key ``created_at``; then it queries that index (and reads each record
from the table unless the index projects the whole public record).
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import ValidationError

from scheduler.errors import IdempotencyConflict, NotFound, StaleTransition
from scheduler.models import StatusObject, VpRecord, VpSecrets, utc_now
from scheduler.store import VpStore
from vp.errors import ConfigError
from vp.lifecycle import TERMINAL, Reason, Status, TransitionError, check_transition, utc_now_iso
from vp.settings import VpSettings

DEFAULT_RETENTION = timedelta(days=30)
_SETTINGS = frozenset({"table_name", "passcode_kms_key_id", "table_owner_index", "record_ttl_days"})
# Concurrent writers (the VP task, the state machine, a cancel) are few; a transition that
# loses the version race re-reads and re-validates at most this often.
MAX_WRITE_RACES = 8

_PUBLIC = (
    "vp_id",
    "owner",
    "platform",
    "meeting_url",
    "name",
    "join_at",
    "status",
    "reason",
    "detail",
    "created_at",
    "updated_at",
    "history",
    "version",
)
_NAMES = {f"#{a}": a for a in _PUBLIC}
# Always present in a record item (the others may be absent or NULL).
_REQUIRED = (
    "vp_id",
    "owner",
    "platform",
    "meeting_url",
    "name",
    "status",
    "created_at",
    "updated_at",
    "history",
)
_TRANSITION_ATTRS = ("status", "reason", "detail", "updated_at", "history", "version")
_PROJECTION = ", ".join(_NAMES)
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _ser(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = _serializer.serialize(value)
    return result


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _dt(value: datetime) -> str:
    """Full precision, so a record read back equals the one written."""
    return value.astimezone(UTC).isoformat()


def _parse_dt(value: str) -> datetime:
    # The state machine writes $$.State.EnteredTime: "…Z" on AWS, "+00:00" elsewhere.
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _status_item(obj: StatusObject) -> dict[str, Any]:
    return {
        "ts": obj.ts,
        "vp_id": obj.vp_id,
        "status": obj.status.value,
        "reason": obj.reason.value if obj.reason else None,
        "detail": obj.detail,
    }


def _is_conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _record(item: Mapping[str, Any]) -> VpRecord:
    """The public record in a table item."""
    data = _plain(item)
    return VpRecord(
        vp_id=data["vp_id"],
        owner=data["owner"],
        platform=data["platform"],
        meeting_url=data["meeting_url"],
        name=data["name"],
        join_at=_parse_dt(data["join_at"]) if data.get("join_at") else None,
        status=Status(data["status"]),
        reason=Reason(data["reason"]) if data.get("reason") else None,
        detail=data.get("detail"),
        created_at=_parse_dt(data["created_at"]),
        updated_at=_parse_dt(data["updated_at"]),
        history=[
            StatusObject(
                ts=h["ts"],
                vp_id=h["vp_id"],
                status=Status(h["status"]),
                reason=Reason(h["reason"]) if h.get("reason") else None,
                detail=h.get("detail"),
            )
            for h in data.get("history") or []
        ],
    )


class DynamoDbStore(VpStore):
    """:class:`VpStore` on a DynamoDB table; secrets encrypted with the KMS key ``kms_key_id``.

    boto3 clients are thread-safe, so one store serves every worker thread.
    """

    def __init__(
        self,
        table_name: str,
        *,
        kms_key_id: str,
        dynamodb: Any = None,
        kms: Any = None,
        owner_index: str | None = None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        if not table_name:
            raise ConfigError("the DynamoDB store needs a table name (VP_TABLE_NAME)")
        if not kms_key_id:
            raise ConfigError("the DynamoDB store needs a KMS key id (VP_PASSCODE_KMS_KEY_ID)")
        self.table_name = table_name
        self.kms_key_id = kms_key_id
        self.owner_index = owner_index
        self.retention = retention
        self._ddb = dynamodb or boto3.client("dynamodb", config=_BOTO_CONFIG)
        self._kms = kms or boto3.client("kms", config=_BOTO_CONFIG)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DynamoDbStore:
        """From ``VP_TABLE_NAME``, ``VP_PASSCODE_KMS_KEY_ID`` and, optionally,
        ``VP_TABLE_OWNER_INDEX`` and ``VP_RECORD_TTL_DAYS``."""
        try:
            settings = VpSettings.from_env(env, only=_SETTINGS)
        except ValidationError:
            raise ConfigError("VP_RECORD_TTL_DAYS must be a number of days") from None
        days = settings.record_ttl_days
        return cls(
            settings.table_name or "",
            kms_key_id=settings.passcode_kms_key_id or "",
            owner_index=settings.table_owner_index,
            retention=timedelta(days=days) if days is not None else DEFAULT_RETENTION,
        )

    # -- conversions -----------------------------------------------------------------------
    def _expires(self, start: datetime) -> int:
        return int((start + self.retention).timestamp())

    def _item(self, record: VpRecord) -> dict[str, Any]:
        start = max(record.created_at, record.join_at or record.created_at)
        plain: dict[str, Any] = {
            "vp_id": record.vp_id,
            "owner": record.owner,
            "platform": record.platform,
            "meeting_url": record.meeting_url,
            "name": record.name,
            "join_at": _dt(record.join_at) if record.join_at else None,
            "status": record.status.value,
            "reason": record.reason.value if record.reason else None,
            "detail": record.detail,
            "created_at": _dt(record.created_at),
            "updated_at": _dt(record.updated_at),
            "history": [_status_item(h) for h in record.history],
            "version": 0,
            "expires_at": self._expires(start),
        }
        return {key: _ser(value) for key, value in plain.items()}

    def _encrypt(self, vp_id: str, secrets: VpSecrets) -> bytes:
        plaintext = json.dumps({"meeting_url": secrets.meeting_url, "passcode": secrets.passcode})
        response = self._kms.encrypt(
            KeyId=self.kms_key_id,
            Plaintext=plaintext.encode(),
            EncryptionContext={"vp_id": vp_id},
        )
        blob: bytes = response["CiphertextBlob"]
        return blob

    def _decrypt(self, vp_id: str, blob: bytes) -> VpSecrets:
        response = self._kms.decrypt(
            KeyId=self.kms_key_id, CiphertextBlob=blob, EncryptionContext={"vp_id": vp_id}
        )
        data = json.loads(response["Plaintext"])
        return VpSecrets(meeting_url=data["meeting_url"], passcode=data.get("passcode"))

    @staticmethod
    def _idem_key(owner: str, key: str) -> str:
        digest = hashlib.sha256(f"{owner}\x00{key}".encode()).hexdigest()
        return f"idem#{digest}"

    # -- reads -----------------------------------------------------------------------------
    def _get_item(self, key: str, attrs: tuple[str, ...] | None = _PUBLIC) -> dict[str, Any] | None:
        """One item, read consistently; only ``attrs`` (every attribute when None)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"vp_id": {"S": key}},
            "ConsistentRead": True,
        }
        if attrs is not None:
            kwargs["ProjectionExpression"] = ", ".join(f"#{a}" for a in attrs)
            kwargs["ExpressionAttributeNames"] = {f"#{a}": a for a in attrs}
        item: dict[str, Any] | None = self._ddb.get_item(**kwargs).get("Item")
        return item

    def get(self, vp_id: str) -> VpRecord | None:
        item = self._get_item(vp_id)
        if item is None or "status" not in item:
            return None
        return _record(item)

    def _scan(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs.setdefault("TableName", self.table_name)
        while True:
            page = self._ddb.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs.setdefault("TableName", self.table_name)
        while True:
            page = self._ddb.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list(self, owner: str | None = None) -> builtins.list[VpRecord]:
        if owner is not None and self.owner_index:
            items = self._query(
                IndexName=self.owner_index,
                KeyConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
            # An index that projects the whole public record serves it directly; one that
            # projects less (keys, status) is followed by a GetItem per record. Idempotency
            # items have no created_at, so the index never holds them.
            found = []
            for item in items:
                record = (
                    _record(item)
                    if all(a in item for a in _REQUIRED)
                    else self.get(item["vp_id"]["S"])
                )
                if record is not None:
                    found.append(record)
        else:
            kwargs: dict[str, Any] = {
                "ProjectionExpression": _PROJECTION,
                "ExpressionAttributeNames": dict(_NAMES),
                "FilterExpression": "attribute_exists(#status)",
            }
            if owner is not None:
                kwargs["FilterExpression"] += " AND #owner = :owner"
                kwargs["ExpressionAttributeValues"] = {":owner": {"S": owner}}
            found = [_record(i) for i in self._scan(**kwargs)]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    def list_active(self) -> builtins.list[VpRecord]:
        values = {f":t{i}": {"S": s.value} for i, s in enumerate(sorted(TERMINAL))}
        items = self._scan(
            ProjectionExpression=_PROJECTION,
            ExpressionAttributeNames=dict(_NAMES),
            FilterExpression=f"attribute_exists(#status) AND NOT #status IN ({', '.join(values)})",
            ExpressionAttributeValues=values,
        )
        return [_record(i) for i in items]

    def get_secrets(self, vp_id: str) -> VpSecrets | None:
        item = self._get_item(vp_id, ("status", "secrets"))
        if item is None or "secrets" not in item:
            return None
        blob = _deserializer.deserialize(item["secrets"])
        return self._decrypt(vp_id, bytes(blob.value) if isinstance(blob, Binary) else blob)

    def get_launch_handle(self, vp_id: str) -> str | None:
        item = self._get_item(vp_id, ("launch_handle",))
        if item is None or "launch_handle" not in item:
            return None
        handle: str = item["launch_handle"]["S"]
        return handle

    def find_by_idempotency_key(self, owner: str, key: str) -> VpRecord | None:
        item = self._get_item(self._idem_key(owner, key), None)
        if item is None:
            return None
        return self.get(item["target"]["S"])

    # -- writes ----------------------------------------------------------------------------
    def create(
        self,
        record: VpRecord,
        secrets: VpSecrets,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> VpRecord:
        item = self._item(record)
        item["secrets"] = {"B": self._encrypt(record.vp_id, secrets)}
        put = {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(vp_id)",
        }
        if idempotency_key is None:
            try:
                self._ddb.put_item(**put)
            except ClientError as exc:
                if _is_conditional_failure(exc):
                    raise StaleTransition(f"VP {record.vp_id} exists already") from None
                raise
            return record

        idem_key = self._idem_key(record.owner, idempotency_key)
        idem = {
            "vp_id": {"S": idem_key},
            "target": {"S": record.vp_id},
            "owner": {"S": record.owner},
            "fingerprint": _ser(fingerprint),
            "expires_at": item["expires_at"],
        }
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {"Put": put},
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": idem,
                            "ConditionExpression": "attribute_not_exists(vp_id)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            claimed = self._get_item(idem_key, None)
            if claimed is not None:
                existing = self.get(claimed["target"]["S"])
                if existing is not None:
                    raise IdempotencyConflict(
                        existing, _deserializer.deserialize(claimed["fingerprint"])
                    ) from None
            raise StaleTransition(f"VP {record.vp_id} exists already") from None
        return record

    def transition(
        self,
        vp_id: str,
        status: Status,
        reason: Reason | None = None,
        detail: str | None = None,
        *,
        expected: Status | None = None,
        ts: str | None = None,
    ) -> VpRecord:
        event = StatusObject(
            ts=ts or utc_now_iso(), vp_id=vp_id, status=status, reason=reason, detail=detail
        )
        for _ in range(MAX_WRITE_RACES):
            item = self._get_item(vp_id)
            if item is None or "status" not in item:
                raise NotFound(f"no VP {vp_id}")
            current = _record(item)
            if expected is not None and current.status is not expected:
                raise StaleTransition(f"VP {vp_id} is {current.status}, not {expected}")
            try:
                check_transition(current.status, status, reason, joined=current.joined)
            except TransitionError as exc:
                raise StaleTransition(str(exc)) from None
            now = utc_now()
            sets = [
                "#status = :status",
                "#reason = :reason",
                "#detail = :detail",
                "#updated_at = :now",
                "#history = list_append(#history, :event)",
            ]
            values: dict[str, Any] = {
                ":status": {"S": status.value},
                ":reason": _ser(reason.value if reason else None),
                ":detail": _ser(detail),
                ":now": {"S": _dt(now)},
                ":event": _ser([_status_item(event)]),
                ":one": {"N": "1"},
            }
            names = {f"#{a}": a for a in _TRANSITION_ATTRS}
            if status.terminal:
                sets.append("#expires_at = :expires")
                values[":expires"] = {"N": str(self._expires(now))}
                names["#expires_at"] = "expires_at"
            version = item.get("version")
            if version is None:
                condition = "attribute_not_exists(#version)"
            else:
                condition = "#version = :version"
                values[":version"] = version
            try:
                response = self._ddb.update_item(
                    TableName=self.table_name,
                    Key={"vp_id": {"S": vp_id}},
                    UpdateExpression=f"SET {', '.join(sets)} ADD #version :one",
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if _is_conditional_failure(exc):
                    continue  # another writer won the race: re-read and re-validate
                raise
            return _record(response["Attributes"])
        raise StaleTransition(f"VP {vp_id} changed {MAX_WRITE_RACES} times under this write")

    def set_launch_handle(self, vp_id: str, handle: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"vp_id": {"S": vp_id}},
                UpdateExpression="SET launch_handle = :h",
                ConditionExpression="attribute_exists(#status)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":h": {"S": handle}},
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                raise NotFound(f"no VP {vp_id}") from None
            raise
