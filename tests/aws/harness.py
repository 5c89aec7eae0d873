"""The state machine as deployed, on moto: network, ECS cluster and task definition, table."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from scheduler.broker import Broker, TicketIssuer
from scheduler.dynamodb_store import DynamoDbStore
from tests.aws.conftest import REGION, TABLE
from tests.aws.moto_adapter import LAMBDAS

ASL_PATH = Path(__file__).resolve().parents[2] / "stepfunctions" / "virtual_participant.asl.json"
SUBSTITUTIONS = (
    "VpTableName",
    "ClusterArn",
    "TaskDefinitionArn",
    "ContainerName",
    "SubnetId1",
    "SubnetId2",
    "SecurityGroupId",
    "TicketFunctionArn",
)
CONTAINER = "vp"
ROLE_ARN = "arn:aws:iam::123456789012:role/vp-state-machine"
TICKET_FUNCTION = "vp-ticket"
BROKER_FUNCTION = "vp-broker"
TICKET_BUCKET = "vp-test-tickets"
TICKET_BUCKET_ARN = f"arn:aws:s3:::{TICKET_BUCKET}"
ARTIFACT_BUCKET = "vp-test-artifacts"
ARTIFACT_BUCKET_ARN = f"arn:aws:s3:::{ARTIFACT_BUCKET}"
ARTIFACT_WRITER = "vp-artifact-writer"


def register_broker(kms_key: str, limiter: Any = None, *, artifacts: bool = False) -> Broker:
    """The broker Lambda (as deployed: the VP table, its key, the ticket bucket; with
    ``artifacts`` also the artifact bucket and writer role, see :func:`create_artifact_bucket`)."""
    broker = Broker(
        DynamoDbStore(TABLE, kms_key_id=kms_key),
        limiter=limiter,
        bucket=TICKET_BUCKET,
        artifact_bucket_arn=create_artifact_bucket(kms_key) if artifacts else None,
        artifact_writer_role_arn=f"arn:aws:iam::123456789012:role/{ARTIFACT_WRITER}"
        if artifacts
        else None,
    )
    LAMBDAS[BROKER_FUNCTION] = broker.handle
    return broker


def create_artifact_bucket(kms_key: str) -> str:
    """The artifact bucket (SSE-KMS with the stack's key) and the writer role the broker
    assumes, as deploy/template.yaml defines them; returns the bucket's ARN."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    s3.put_bucket_encryption(
        Bucket=ARTIFACT_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms_key,
                    }
                }
            ]
        },
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/vp-broker"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName=ARTIFACT_WRITER, AssumeRolePolicyDocument=json.dumps(trust))
    return ARTIFACT_BUCKET_ARN


def render(substitutions: dict[str, str]) -> str:
    """Apply DefinitionSubstitutions as CloudFormation does (``${Name}`` → value)."""
    text = ASL_PATH.read_text()
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used == set(SUBSTITUTIONS), used
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    return text


def deploy(*, task_definition: str | None = None) -> dict[str, str]:
    """Network, cluster, task definition and state machine; returns names and ARNs."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    sg = ec2.create_security_group(GroupName="vp", Description="vp tasks", VpcId=vpc)["GroupId"]
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(clusterName="vp")["cluster"]["clusterArn"]
    td = ecs.register_task_definition(
        family="vp",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="2048",
        memory="4096",
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": "vp:latest",
                "cpu": 2048,
                "memory": 4096,
                "essential": True,
                "command": ["vp", "run"],
                "environment": [{"name": "VP_TABLE_NAME", "value": TABLE}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    subs = {
        "VpTableName": TABLE,
        "ClusterArn": cluster,
        "TaskDefinitionArn": task_definition or td,
        "ContainerName": CONTAINER,
        "SubnetId1": subnets[0],
        "SubnetId2": subnets[1],
        "SecurityGroupId": sg,
    }
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=TICKET_BUCKET)
    issuer = TicketIssuer(TABLE, TICKET_BUCKET_ARN)
    LAMBDAS[TICKET_FUNCTION] = lambda event: issuer.mint(str(event["vp_id"]))
    subs["TicketFunctionArn"] = f"arn:aws:lambda:{REGION}:123456789012:function:{TICKET_FUNCTION}"
    # The stack's generated fingerprint key secret (FingerprintKeySecret in the template).
    sm = boto3.client("secretsmanager", region_name=REGION)
    generated = sm.get_random_password(PasswordLength=64, ExcludePunctuation=True)
    subs["FingerprintKeySecretArn"] = sm.create_secret(
        Name=f"vp-fingerprint-{uuid.uuid4().hex[:8]}", SecretString=generated["RandomPassword"]
    )["ARN"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name="vp-virtual-participant", definition=render(subs), roleArn=ROLE_ARN, type="STANDARD"
    )["stateMachineArn"]
    return {**subs, "StateMachineArn": arn}


def start(state_machine: str, vp_id: str, launch_at: str | None = None) -> str:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn: str = sfn.start_execution(
        stateMachineArn=state_machine,
        name=f"vp-{vp_id}",
        input=json.dumps({"vp_id": vp_id, "launch_at": launch_at}),
    )["executionArn"]
    return arn


def wait_done(execution: str, timeout: float = 60) -> dict[str, Any]:
    """describe_execution once the execution left RUNNING."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        assert time.monotonic() < deadline, f"execution still RUNNING after {timeout} s"
        time.sleep(0.1)


def history(execution: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    events: list[dict[str, Any]] = sfn.get_execution_history(
        executionArn=execution, maxResults=1000
    )["events"]
    return events


def entered_states(execution: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in history(execution)
        if "stateEnteredEventDetails" in e
    ]


def wait_entered(execution: str, state: str, timeout: float = 30) -> None:
    """Until the execution has entered ``state``. (moto cannot stop an execution whose
    interpreter thread is still parsing the definition; AWS has no such window.)"""
    deadline = time.monotonic() + timeout
    while state not in entered_states(execution):
        assert time.monotonic() < deadline, f"{state} not entered after {timeout} s"
        time.sleep(0.05)
