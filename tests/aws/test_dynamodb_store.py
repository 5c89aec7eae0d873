"""The DynamoDB store under moto: the shared store contract, TTL, and encrypted secrets."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from scheduler.dynamodb_store import DynamoDbStore
from scheduler.models import VpRecord
from scheduler.store import VpStore
from tests.aws.conftest import PUBLIC_PROJECTION, REGION, TABLE, create_vp_table, raw_item
from tests.scheduler.store_contract import StoreContract, make_record
from vp.errors import ConfigError
from vp.lifecycle import Reason, Status


class TestDynamoDbStore(StoreContract):
    @pytest.fixture
    def store(self, dynamo_store: DynamoDbStore) -> VpStore:
        return dynamo_store


class TestDynamoDbStoreWithOwnerIndex(StoreContract):
    """The same contract when list() queries a GSI on owner instead of scanning."""

    @pytest.fixture
    def store(self, aws: None, kms_key: str) -> VpStore:
        create_vp_table("vp-indexed", owner_index="by-owner")
        return DynamoDbStore("vp-indexed", kms_key_id=kms_key, owner_index="by-owner")


class TestDynamoDbStoreWithFullIndex(StoreContract):
    """…and with an index that projects every public attribute (records read from it)."""

    @pytest.fixture
    def store(self, aws: None, kms_key: str) -> VpStore:
        create_vp_table("vp-full", owner_index="by-owner", projected=PUBLIC_PROJECTION)
        return DynamoDbStore("vp-full", kms_key_id=kms_key, owner_index="by-owner")


def test_full_index_serves_list_without_secrets(aws: None, kms_key: str) -> None:
    create_vp_table("vp-full", owner_index="by-owner", projected=PUBLIC_PROJECTION)
    store = DynamoDbStore("vp-full", kms_key_id=kms_key, owner_index="by-owner")
    record, secrets = make_record("vp1")
    store.create(record, secrets)
    calls: list[str] = []
    real_get = store.get

    def counting_get(vp_id: str) -> VpRecord | None:
        calls.append(vp_id)
        return real_get(vp_id)

    store.get = counting_get  # type: ignore[method-assign]
    assert store.list("alice") == [record]
    assert calls == []  # served from the index alone


def test_ttl_attribute_is_set_and_renewed_when_the_vp_ends(dynamo_store: DynamoDbStore) -> None:
    ttl = boto3.client("dynamodb", region_name=REGION).describe_time_to_live(TableName=TABLE)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"

    created = datetime.now(UTC)
    record, secrets = make_record("vp1", created=created)
    dynamo_store.create(record, secrets)
    expires = int(raw_item("vp1")["expires_at"]["N"])
    assert expires == int((created + timedelta(days=30)).timestamp())

    dynamo_store.transition("vp1", Status.INITIALIZING)
    assert int(raw_item("vp1")["expires_at"]["N"]) == expires  # not renewed while live
    before = time.time()
    dynamo_store.transition("vp1", Status.FAILED, Reason.LAUNCH_FAILED, "no capacity")
    renewed = int(raw_item("vp1")["expires_at"]["N"])
    assert before + 30 * 86400 - 2 <= renewed <= time.time() + 30 * 86400 + 1


def test_ttl_counts_from_join_at_for_a_scheduled_vp(table: str, kms_key: str) -> None:
    store = DynamoDbStore(table, kms_key_id=kms_key, retention=timedelta(days=2))
    from scheduler.models import LaunchRequest, VpRecord, VpSecrets

    join_at = datetime.now(UTC) + timedelta(days=10)
    request = LaunchRequest(meeting_url="https://zoom.us/j/123456789", join_at=join_at)
    store.create(VpRecord.new("vp1", "alice", request), VpSecrets(request.meeting_url))
    assert int(raw_item("vp1")["expires_at"]["N"]) == int((join_at + timedelta(days=2)).timestamp())


def test_secrets_are_kms_encrypted_and_never_returned(dynamo_store: DynamoDbStore) -> None:
    record, secrets = make_record("vp1")
    dynamo_store.create(record, secrets)
    dynamo_store.transition("vp1", Status.INITIALIZING)

    item = raw_item("vp1")
    text = repr(item)
    assert "pass-9876" not in text and "SeCrEtPwD42" not in text
    blob = item["secrets"]["B"]
    assert isinstance(blob, bytes) and b"pass-9876" not in blob and b"SeCrEtPwD42" not in blob
    kms = boto3.client("kms", region_name=REGION)
    with pytest.raises(ClientError):  # bound to its VP: another VP's context cannot open it
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"vp_id": "vp2"})
    opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"vp_id": "vp1"})
    assert b"pass-9876" in opened["Plaintext"]

    for got in (dynamo_store.get("vp1"), *dynamo_store.list("alice"), *dynamo_store.list_active()):
        assert got is not None
        dumped = got.model_dump_json()
        assert "pass-9876" not in dumped and "SeCrEtPwD42" not in dumped
    assert dynamo_store.get_secrets("vp1") == secrets


def test_from_env_requires_table_and_key(aws: None, kms_key: str) -> None:
    with pytest.raises(ConfigError, match="VP_TABLE_NAME"):
        DynamoDbStore.from_env({"VP_PASSCODE_KMS_KEY_ID": kms_key})
    with pytest.raises(ConfigError, match="VP_PASSCODE_KMS_KEY_ID"):
        DynamoDbStore.from_env({"VP_TABLE_NAME": TABLE})
    store = DynamoDbStore.from_env(
        {"VP_TABLE_NAME": TABLE, "VP_PASSCODE_KMS_KEY_ID": kms_key, "VP_RECORD_TTL_DAYS": "7"}
    )
    assert store.retention == timedelta(days=7) and store.owner_index is None


def test_idempotency_items_are_not_records(dynamo_store: DynamoDbStore) -> None:
    record, secrets = make_record("vp1")
    dynamo_store.create(record, secrets, idempotency_key="key-1", fingerprint="f")
    assert [r.vp_id for r in dynamo_store.list()] == ["vp1"]
    assert [r.vp_id for r in dynamo_store.list_active()] == ["vp1"]
    scan = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    keys = sorted(i["vp_id"]["S"] for i in scan)
    assert keys[1] == "vp1" and keys[0].startswith("idem#") and "key-1" not in repr(scan)
