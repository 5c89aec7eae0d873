"""AWS tests run against moto (AWS is unreachable here): DynamoDB, KMS, Step Functions, ECS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scheduler.dynamodb_store import DynamoDbStore
from tests.aws.moto_adapter import FakeContainers, moto_gaps_patched

REGION = "us-east-1"
TABLE = "vp-test-table"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def containers(aws_env: None) -> Iterator[FakeContainers]:
    """moto for every service, Step Functions executing state machines, moto's gaps patched
    (tests/aws/moto_adapter.py); the value plays the ECS agent."""
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_gaps_patched(FakeContainers(region=REGION)) as fake,
    ):
        yield fake


@pytest.fixture
def aws(containers: FakeContainers) -> None:
    """moto, as :func:`containers` sets it up."""


# A GSI projection that serves whole public records (no GetItem per record), never secrets.
PUBLIC_PROJECTION = [
    "platform", "meeting_url", "name", "join_at", "status", "reason", "detail",
    "updated_at", "history", "version",
]  # fmt: skip


def create_vp_table(
    name: str = TABLE,
    *,
    owner_index: str | None = None,
    projected: list[str] | None = None,
) -> None:
    """The VP table as deploy/template.yaml defines it: key vp_id, TTL on expires_at, and
    (``owner_index``) the GSI on owner/created_at projecting only the status."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    kwargs: dict[str, Any] = {}
    attributes = [{"AttributeName": "vp_id", "AttributeType": "S"}]
    if owner_index:
        attributes += [
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ]
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": owner_index,
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": projected or ["status"],
                },
            }
        ]
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "vp_id", "KeyType": "HASH"}],
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        **kwargs,
    )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def create_hooks_table(name: str = "vp-hooks") -> None:
    """The webhook table as deploy/template.yaml defines it: key pk (HASH) + sk (RANGE)."""
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip


@pytest.fixture
def kms_key(aws: None) -> str:
    key: str = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    return key


@pytest.fixture
def table(aws: None) -> str:
    create_vp_table()
    return TABLE


@pytest.fixture
def dynamo_store(table: str, kms_key: str) -> DynamoDbStore:
    return DynamoDbStore(table, kms_key_id=kms_key)


def raw_item(vp_id: str, table: str = TABLE) -> dict[str, Any]:
    """The item exactly as DynamoDB holds it (every attribute)."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    item: dict[str, Any] = ddb.get_item(TableName=table, Key={"vp_id": {"S": vp_id}})["Item"]
    return item
