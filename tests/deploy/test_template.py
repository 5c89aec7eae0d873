"""deploy/template.yaml: cfn-lint clean, and secure by default.

The template is parsed with cfn-lint's own decoder (it understands !Ref/!Sub/!GetAtt), then
its security properties are asserted one by one: IAM statements name their resources
("*" only on the documented actions AWS defines without resources), PassRole only on the two
task roles, encryption at rest with a rotating customer managed key, log retention, TTL and
point-in-time recovery, private networking without ingress or public IPs, Step Functions
logs without execution data, and the workflow taken from stepfunctions/ — its one source.
Per-VP least privilege (issue 13): the task role reaches only the broker; no table read
without a ``dynamodb:LeadingKeys`` condition and no ``kms:Decrypt`` open to any encryption
context for it. checkov runs over the template, every remaining finding justified inline.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from tests.aws.conftest import PUBLIC_PROJECTION
from tests.deploy.dockerfile import parse as parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"
ASL = ROOT / "stepfunctions" / "virtual_participant.asl.json"

# The only actions that may use Resource "*": AWS defines them without resource types.
STAR_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "polly:SynthesizeSpeech",  # no resource-level permissions; only with Voice=polly
    # CloudWatch Logs delivery for Step Functions logging (vended logs)
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# Fargate's valid CPU units → memory (MiB) pairings.
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: {1024, 2048, 3072, 4096},
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}


def _load() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert isinstance(template, dict)
    return template


TPL = _load()
RES: dict[str, Any] = TPL["Resources"]
PARAMS: dict[str, Any] = TPL["Parameters"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RES.items() if r["Type"] == kind}


def _props(name: str) -> dict[str, Any]:
    props: dict[str, Any] = RES[name]["Properties"]
    return props


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> Iterator[Any]:
    """Both sides of an Fn::If (minus AWS::NoValue), else the value itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        for side in value["Fn::If"][1:]:
            yield from _branches(side)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def _statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, statement) for every IAM policy statement in the template."""
    for name, role in _of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for raw in policy["PolicyDocument"]["Statement"]:
                for statement in _branches(raw):
                    yield name, statement
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in _of_type(kind).items():
            for raw in policy["Properties"]["PolicyDocument"]["Statement"]:
                for statement in _branches(raw):
                    yield name, statement


def _refs(value: Any) -> set[str]:
    """Logical ids and parameters a value refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(str(value["Ref"]))
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(str(target[0] if isinstance(target, list) else target.split(".")[0]))
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
        for inner in value.values():
            found |= _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _refs(inner)
    return found


def _by_action(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (role, s)
        for role, s in _statements()
        if any(str(a).startswith(prefix) for a in _listify(s["Action"]))
    ]


# ------------------------------------------------------------------------------ lint


def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run(
        [str(cfn_lint), "--regions", "us-east-1", "eu-west-1", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_cfn_lint_is_clean() -> None:
    result = _cfn_lint(TEMPLATE)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    # Exactly one check is switched off, for the local paths `aws cloudformation package`
    # replaces (the next test lints the packaged form without it).
    assert TPL["Metadata"]["cfn-lint"]["config"] == {"ignore_checks": ["W3002"]}


def test_the_packaged_template_is_cfn_lint_clean_too(tmp_path: Path) -> None:
    # What `aws cloudformation package` produces: local paths become S3 locations.
    packaged = copy.deepcopy(TPL)
    del packaged["Metadata"]["cfn-lint"]
    sm = packaged["Resources"]["StateMachine"]["Properties"]
    assert (TEMPLATE.parent / sm["DefinitionS3Location"]).resolve() == ASL
    sm["DefinitionS3Location"] = {"Bucket": "artifacts-bucket", "Key": "0123abcd"}
    functions = [n for n, r in RES.items() if r["Type"] == "AWS::Lambda::Function"]
    assert set(functions) == {
        "ApiFunction",
        "ReaperFunction",
        "TicketFunction",
        "BrokerFunction",
        "WebhookEventsFunction",
        "WebhookDeliveryFunction",
        "CalendarFunction",
    }
    for name in functions:
        fn = packaged["Resources"][name]["Properties"]
        assert (TEMPLATE.parent / fn["Code"]).resolve() == ROOT / "build" / "lambda"
        fn["Code"] = {"S3Bucket": "artifacts-bucket", "S3Key": "4567ef01"}
    out = tmp_path / "packaged.json"
    out.write_text(json.dumps(packaged, indent=1))
    result = _cfn_lint(out)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path) -> None:
    broken = copy.deepcopy(TPL)
    broken["Resources"]["VpTable"]["Properties"]["BillingMode"] = "FREE"
    broken["Resources"]["TaskDefinition"]["Properties"]["NetworkMode"] = "bridgey"
    out = tmp_path / "broken.json"
    out.write_text(json.dumps(broken))
    result = _cfn_lint(out)
    assert result.returncode != 0
    assert "'FREE'" in result.stdout and "'bridgey'" in result.stdout


# ------------------------------------------------------------------------------ IAM


def test_every_statement_names_its_resources() -> None:
    statements = list(_statements())
    assert len(statements) > 10
    for role, s in statements:
        assert s["Effect"] == "Allow", (role, s)
        assert "NotAction" not in s and "NotResource" not in s and "NotPrincipal" not in s
        actions = [str(a) for a in _listify(s["Action"])]
        for action in actions:
            assert "*" not in action or action.endswith("*") and ":" in action, action
            assert not action.endswith(":*"), f"{role}: wildcard action {action}"
        for resource in _listify(s["Resource"]):
            if resource == "*":
                assert set(actions) <= STAR_ACTIONS, f"{role}: {actions} on '*'"
                continue
            assert isinstance(resource, dict), f"{role}: literal resource {resource!r}"
            stack_refs = _refs(resource) - {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
            # Either this stack's resource or parameter, or one fixed, fully named ARN (the
            # rule AWS manages for runTask.sync).
            assert stack_refs or "*" not in json.dumps(resource), f"{role}: {resource}"
            if "Fn::Sub" in resource and resource["Fn::Sub"].startswith("${"):
                # a stack resource's ARN plus a fixed suffix (a table's named index, the
                # objects under a bucket's named prefix)
                # (or, for the artifact writer, under the prefix its session tag names)
                assert re.fullmatch(
                    r"\$\{\w+\.Arn\}/[\w/.-]+(\$\{!aws:PrincipalTag/vp_id\}/)?\*?",
                    resource["Fn::Sub"],
                )
            elif "Fn::Sub" in resource:
                arn = resource["Fn::Sub"]
                fields = arn.split(":", 5)
                assert fields[0] == "arn" and len(fields) == 6, arn
                assert "*" not in ":".join(fields[:5]), f"{role}: wildcard in {arn}"
                # A wildcard only after a named segment: a family's revisions, a cluster's
                # tasks, a state machine's executions, a table's index.
                named = fields[5].split("*", 1)[0]
                assert re.search(r"[/:][^/:*]+[/:]$", named) or "*" not in fields[5], arn


def test_star_resources_are_exactly_the_documented_actions() -> None:
    on_star = {
        a for _, s in _statements() if "*" in _listify(s["Resource"]) for a in _listify(s["Action"])
    }
    assert on_star == STAR_ACTIONS


def test_data_actions_name_this_stacks_resources() -> None:
    expectations = {
        "dynamodb:": {"VpTable", "HooksTable"},
        "states:": {"StateMachine"},
        "secretsmanager:": {"TranscriberTokenSecretArn", "FingerprintKeySecret"},
        "ecs:RunTask": {"AWS::StackName"},  # the task definition family, see below
        "ecs:StopTask": {"Cluster"},
        "ecs:DescribeTasks": {"Cluster"},
        "logs:PutLogEvents": {
            "TaskLogGroup",
            "ApiFunctionLogGroup",
            "ReaperFunctionLogGroup",
            "TicketFunctionLogGroup",
            "BrokerFunctionLogGroup",
            "WebhookEventsFunctionLogGroup",
            "WebhookDeliveryFunctionLogGroup",
            "CalendarFunctionLogGroup",
        },
        "kms:": {"DataKey", "TranscriberTokenSecretKmsKeyArn"},
        "s3:": {"TicketBucket", "ArtifactBucket"},
        "sts:": {"ArtifactWriterRole"},
        "lambda:": {"TicketFunction", "BrokerFunction", "CalendarFunction"},
        "events:": {"AWS::Partition"},
    }
    for prefix, allowed in expectations.items():
        statements = _by_action(prefix)
        assert statements, prefix
        for role, s in statements:
            named = _refs(s["Resource"])
            assert named and named <= allowed | {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
            assert named & allowed, (role, prefix, named)


def test_run_task_is_limited_to_the_vp_family_in_the_vp_cluster() -> None:
    ((_, s),) = _by_action("ecs:RunTask")
    family = _props("TaskDefinition")["Family"]["Fn::Sub"]
    assert s["Resource"]["Fn::Sub"].endswith(f":task-definition/{family}:*")
    assert s["Condition"]["ArnEquals"]["ecs:cluster"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    ((_, events),) = _by_action("events:")
    assert sorted(events["Action"]) == [
        "events:DescribeRule",
        "events:PutRule",
        "events:PutTargets",
    ]
    assert events["Resource"]["Fn::Sub"].endswith(":rule/StepFunctionsGetEventsForECSTaskRule")


def test_pass_role_is_limited_to_the_two_task_roles() -> None:
    statements = _by_action("iam:")
    assert len(statements) == 1
    role, s = statements[0]
    assert role == "StateMachineRole" and _listify(s["Action"]) == ["iam:PassRole"]
    assert _refs(s["Resource"]) == {"TaskRole", "TaskExecutionRole"}
    assert s["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    td = _props("TaskDefinition")
    assert _refs(td["TaskRoleArn"]) == {"TaskRole"}
    assert _refs(td["ExecutionRoleArn"]) == {"TaskExecutionRole"}


def test_passcodes_need_their_encryption_context() -> None:
    # Direct KMS use (not via DynamoDB or S3) requires the vp_id context the store encrypts
    # with: the API may only encrypt, the broker only decrypt; the task has no key access.
    direct = {
        role: _listify(s["Action"])
        for role, s in _by_action("kms:")
        if "kms:ViaService" not in json.dumps(s.get("Condition", {}))
    }
    assert direct == {
        "ApiFunctionRole": ["kms:Encrypt"],
        "BrokerFunctionRole": ["kms:Decrypt"],
        "WebhookDeliveryFunctionRole": ["kms:Decrypt"],  # webhook secrets (contract 5)
        "CalendarFunctionRole": ["kms:Encrypt"],  # it launches VPs as the API does
    }
    for role, s in _by_action("kms:"):
        if role in direct and "kms:ViaService" not in json.dumps(s.get("Condition", {})):
            assert s["Condition"] in (
                {"StringLike": {"kms:EncryptionContext:vp_id": "?*"}},
                {"StringLike": {"kms:EncryptionContext:webhook_id": "wh_*"}},
            ), role
    store = (ROOT / "scheduler" / "dynamodb_store.py").read_text()
    assert 'EncryptionContext={"vp_id": vp_id}' in store


def test_the_key_policy_delegates_to_iam_and_lets_logs_use_only_this_stacks_groups() -> None:
    key = _props("DataKey")
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    principals = [s["Principal"] for s in statements]
    root = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
    assert principals[0] == {"AWS": {"Fn::Sub": root}}
    logs = statements[1]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    arns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    names = [_props(g)["LogGroupName"]["Fn::Sub"] for g in _of_type("AWS::Logs::LogGroup")]
    for name in names:
        assert any(
            re.fullmatch(re.escape(a["Fn::Sub"].split(":log-group:")[1]).replace(r"\*", ".*"), name)
            for a in arns
        ), name
    assert len(statements) == 2


# ------------------------------------------------------------------------------ data


def test_table_is_on_demand_encrypted_with_ttl_and_pitr() -> None:
    table = _props("VpTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "vp_id", "KeyType": "HASH"}]
    assert {"AttributeName": "vp_id", "AttributeType": "S"} in table["AttributeDefinitions"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    sse = table["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert _refs(sse["KMSMasterKeyId"]) == {"DataKey"}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert RES["VpTable"]["DeletionPolicy"] == "Retain"
    assert RES["DataKey"]["DeletionPolicy"] == "Retain"  # a retained table needs its key
    (index,) = table["GlobalSecondaryIndexes"]
    # The whole public record (GET /v1/vps reads the index alone), never the secrets.
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(index["Projection"]["NonKeyAttributes"]) == sorted(PUBLIC_PROJECTION)
    assert "secrets" not in index["Projection"]["NonKeyAttributes"]


def test_owner_index_matches_the_store() -> None:
    (index,) = _props("VpTable")["GlobalSecondaryIndexes"]
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["owner", "created_at"]
    env = _props("ApiFunction")["Environment"]["Variables"]
    assert env["VP_TABLE_OWNER_INDEX"] == index["IndexName"]
    on_vps = [s for _, s in _by_action("dynamodb:Query") if "VpTable" in json.dumps(s)]
    ((query),) = on_vps
    assert query["Resource"]["Fn::Sub"] == "${VpTable.Arn}/index/" + index["IndexName"]


def test_every_log_group_is_encrypted_and_retained() -> None:
    groups = _of_type("AWS::Logs::LogGroup")
    assert set(groups) == {
        "TaskLogGroup",
        "ApiFunctionLogGroup",
        "ReaperFunctionLogGroup",
        "ApiAccessLogGroup",
        "StateMachineLogGroup",
        "TicketFunctionLogGroup",
        "BrokerFunctionLogGroup",
        "WebhookEventsFunctionLogGroup",
        "WebhookDeliveryFunctionLogGroup",
        "CalendarFunctionLogGroup",
    }
    for name in groups:
        props = _props(name)
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert _refs(props["KmsKeyId"]) == {"DataKey"}, name
    assert PARAMS["LogRetentionDays"]["Default"] in PARAMS["LogRetentionDays"]["AllowedValues"]
    # Every log destination in the stack is one of these groups.
    td = _props("TaskDefinition")["ContainerDefinitions"][0]["LogConfiguration"]
    assert td["Options"]["awslogs-group"] == {"Ref": "TaskLogGroup"}
    assert _props("ApiFunction")["LoggingConfig"]["LogGroup"] == {"Ref": "ApiFunctionLogGroup"}
    reaper = _props("ReaperFunction")["LoggingConfig"]["LogGroup"]
    assert reaper == {"Ref": "ReaperFunctionLogGroup"}
    stage = _props("ApiStage")["AccessLogSettings"]
    assert _refs(stage["DestinationArn"]) == {"ApiAccessLogGroup"}
    for secretish in ("$context.authorizer.claims.token", "header", "querystring", "body"):
        assert secretish not in stage["Format"].lower()


def test_record_retention_reaches_the_store_in_both_writers() -> None:
    # The API creates records; the broker writes the task's statuses (the task itself has no
    # table access).
    broker_env = _props("BrokerFunction")["Environment"]["Variables"]
    api_env = _props("ApiFunction")["Environment"]["Variables"]
    for env in (broker_env, api_env):
        assert env["VP_RECORD_TTL_DAYS"] == {"Ref": "RecordRetentionDays"}
    assert "VP_RECORD_TTL_DAYS" in (ROOT / "scheduler" / "dynamodb_store.py").read_text()


# ------------------------------------------------------------------------------ network


def test_no_ingress_and_https_only_egress_by_default() -> None:
    assert not _of_type("AWS::EC2::SecurityGroupIngress")
    (sg,) = _of_type("AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in sg["Properties"]
    assert sg["Properties"]["SecurityGroupEgress"] == [
        {
            "Description": sg["Properties"]["SecurityGroupEgress"][0]["Description"],
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "CidrIp": "0.0.0.0/0",
        }
    ]
    for name, extra in _of_type("AWS::EC2::SecurityGroupEgress").items():
        assert extra.get("Condition") == "AllowUdpEgress", name
        assert extra["Properties"]["IpProtocol"] == "udp"
    assert PARAMS["WebRtcUdpEgress"]["Default"] == "false"


def test_tasks_run_in_private_subnets_without_public_ips() -> None:
    asl = ASL.read_text()
    assert '"AssignPublicIp": "DISABLED"' in asl and "ENABLED" not in asl
    subs = _props("StateMachine")["DefinitionSubstitutions"]
    assert subs["SubnetId1"] == {"Ref": "PrivateSubnet1"}
    assert subs["SubnetId2"] == {"Ref": "PrivateSubnet2"}
    assert _refs(subs["SecurityGroupId"]) == {"TaskSecurityGroup"}
    assert _props("TaskDefinition")["NetworkMode"] == "awsvpc"
    for subnet in ("PrivateSubnet1", "PrivateSubnet2"):
        assert PARAMS[subnet]["Type"] == "AWS::EC2::Subnet::Id"


def test_the_transcriber_is_reached_over_tls() -> None:
    pattern = re.compile(PARAMS["TranscriberUrl"]["AllowedPattern"])
    assert pattern.fullmatch("wss://lma.example.com/api/v1/ws")
    assert not pattern.fullmatch("ws://lma.example.com/api/v1/ws")
    assert not pattern.fullmatch("https://lma.example.com/")


# ------------------------------------------------------------------------------ workflow


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))


def test_the_workflow_comes_from_stepfunctions_only() -> None:
    sm = _props("StateMachine")
    assert not {"Definition", "DefinitionString", "DefinitionBody"} & set(sm)
    assert (TEMPLATE.parent / sm["DefinitionS3Location"]).resolve() == ASL
    assert sm["StateMachineType"] == "STANDARD"
    json.loads(ASL.read_text())  # valid JSON, as package uploads it verbatim
    # No copy of the definition hides in deploy/.
    for path in TEMPLATE.parent.rglob("*"):
        if path.is_file():
            assert '"StartAt"' not in path.read_text(errors="replace"), path


def test_substitutions_match_the_definitions_placeholders_exactly() -> None:
    subs = _props("StateMachine")["DefinitionSubstitutions"]
    assert set(subs) == _placeholders(ASL.read_text())
    assert set(subs) == {
        "VpTableName",
        "ClusterArn",
        "TaskDefinitionArn",
        "ContainerName",
        "SubnetId1",
        "SubnetId2",
        "SecurityGroupId",
        "TicketFunctionArn",
    }
    assert subs["VpTableName"] == {"Ref": "VpTable"}
    assert subs["TicketFunctionArn"] == {"Fn::GetAtt": ["TicketFunction", "Arn"]}
    assert subs["ClusterArn"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    assert subs["TaskDefinitionArn"] == {"Ref": "TaskDefinition"}
    containers = _props("TaskDefinition")["ContainerDefinitions"]
    assert subs["ContainerName"] == containers[0]["Name"]


def test_substitution_check_would_catch_drift() -> None:
    drifted = ASL.read_text().replace("${ContainerName}", "${ContainerNam}")
    assert _placeholders(drifted) != set(_props("StateMachine")["DefinitionSubstitutions"])


def test_workflow_logs_errors_without_execution_data() -> None:
    logging = _props("StateMachine")["LoggingConfiguration"]
    assert logging["Level"] in ("ERROR", "ALL")
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    assert _refs(destination) == {"StateMachineLogGroup"}


# ------------------------------------------------------------------------------ ECS


def test_cluster_offers_fargate_and_fargate_spot() -> None:
    (cluster,) = _of_type("AWS::ECS::Cluster").values()
    assert sorted(cluster["Properties"]["CapacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    strategy = cluster["Properties"]["DefaultCapacityProviderStrategy"]
    assert strategy == [{"CapacityProvider": {"Ref": "CapacityProvider"}, "Weight": 1}]


def test_task_size_defaults_to_a_valid_small_fargate_size() -> None:
    cpu, memory = int(PARAMS["TaskCpu"]["Default"]), int(PARAMS["TaskMemory"]["Default"])
    assert memory in FARGATE_SIZES[cpu]
    assert (cpu, memory) == (256, 512)  # the smallest: bench/ shows one VP fits with headroom
    assert {int(v) for v in PARAMS["TaskCpu"]["AllowedValues"]} <= set(FARGATE_SIZES)
    td = _props("TaskDefinition")
    assert td["Cpu"] == {"Ref": "TaskCpu"} and td["Memory"] == {"Ref": "TaskMemory"}
    assert td["RequiresCompatibilities"] == ["FARGATE"]


def test_container_matches_the_image() -> None:
    (container,) = _props("TaskDefinition")["ContainerDefinitions"]
    _, stages = parse_dockerfile()
    final = stages[-1]
    assert container["User"] == final.all("USER")[-1].args
    assert container["ReadonlyRootFilesystem"] is True
    (volume,) = final.all("VOLUME")[0].exec_form() or []
    (mount,) = container["MountPoints"]
    assert mount["ContainerPath"] == volume and mount["ReadOnly"] is False
    assert {"Name": mount["SourceVolume"]} in _props("TaskDefinition")["Volumes"]
    health = final.all("HEALTHCHECK")[0].args.split("CMD", 1)[1].strip()
    assert container["HealthCheck"]["Command"] == ["CMD", *json.loads(health)]
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert "Command" not in container and "EntryPoint" not in container  # the image's vp run


def test_container_gets_configuration_by_environment_and_secrets_by_reference() -> None:
    (container,) = _props("TaskDefinition")["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert secrets == {"VP_TRANSCRIBER_TOKEN": {"Ref": "TranscriberTokenSecretArn"}}
    assert env["VP_BROKER_FUNCTION"] == {"Ref": "BrokerFunction"}
    assert env["VP_TRANSCRIBER_URL"] == {"Ref": "TranscriberUrl"}
    # No store configuration: the task reaches its VP only through the broker.
    assert not {"VP_TABLE_NAME", "VP_PASSCODE_KMS_KEY_ID", "VP_DB"} & set(env)
    for name in env:
        assert not re.search(r"TOKEN|PASSCODE$|PASSWORD|SECRET", name), name
    # `vp run` reads exactly these (and VP_ID, which the workflow's override carries).
    run_source = (ROOT / "scheduler" / "run.py").read_text()
    for name in ("VP_TRANSCRIBER_URL", "VP_TRANSCRIBER_TOKEN", "VP_ID", "VP_BROKER_FUNCTION"):
        assert name in run_source + (ROOT / "vp" / "cli.py").read_text(), name
    assert (
        env["VP_ALLOWED_HOSTS"]
        == _props("ApiFunction")["Environment"]["Variables"]["VP_ALLOWED_HOSTS"]
    )  # the API validates meeting hosts against the same list the task browses with
    assert "VP_ID" in ASL.read_text()


# ------------------------------------------------------------------------------ API


def test_every_route_requires_the_cognito_jwt() -> None:
    routes = _of_type("AWS::ApiGatewayV2::Route")
    keys = {r["Properties"]["RouteKey"] for r in routes.values()}
    assert keys == {
        "POST /v1/vps",
        "GET /v1/vps",
        "GET /v1/vps/{vp_id}",
        "DELETE /v1/vps/{vp_id}",
        "POST /v1/webhooks",
        "GET /v1/webhooks",
        "GET /v1/webhooks/{webhook_id}/deliveries",
        "DELETE /v1/webhooks/{webhook_id}",
        "POST /v1/calendars",
        "GET /v1/calendars",
        "DELETE /v1/calendars/{calendar_id}",
        "GET /v1/vps/{vp_id}/artifacts",
    }
    for route in routes.values():
        assert route["Properties"]["AuthorizationType"] == "JWT"
        assert route["Properties"]["AuthorizerId"] == {"Ref": "ApiAuthorizer"}
    auth = _props("ApiAuthorizer")
    assert auth["AuthorizerType"] == "JWT"
    assert auth["JwtConfiguration"]["Issuer"] == {
        "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${CognitoUserPoolId}"
    }
    assert auth["JwtConfiguration"]["Audience"] == [{"Ref": "CognitoAppClientId"}]
    assert _props("HttpApi")["ProtocolType"] == "HTTP"
    permission = _props("ApiInvokePermission")
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "HttpApi" in _refs(permission["SourceArn"])


def test_lambda_runs_the_control_plane_handler() -> None:
    fn = _props("ApiFunction")
    module, _, attr = fn["Handler"].rpartition(".")
    assert (ROOT / Path(*module.split("."))).with_suffix(".py").exists(), module
    assert fn["Runtime"] == "python3.11"
    assert fn["Timeout"] < 30  # API Gateway's integration limit
    env = fn["Environment"]["Variables"]
    assert env["VP_TABLE_NAME"] == {"Ref": "VpTable"}
    assert env["STATE_MACHINE_ARN"] == {"Ref": "StateMachine"}
    assert _refs(env["VP_PASSCODE_KMS_KEY_ID"]) == {"DataKey"}
    source = "".join(p.read_text() for d in ("scheduler", "vp") for p in (ROOT / d).glob("*.py"))
    for name in env:
        assert re.search(rf"[\"']{name}[\"']", source), f"{name} is configured but never read"
    assert attr == "handler"


def test_outputs() -> None:
    outputs = TPL["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "StateMachine"}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_parameter_is_described_and_used(name: str) -> None:
    assert PARAMS[name].get("Description"), name
    used = _refs(RES) | _refs(TPL.get("Conditions", {}))
    assert name in used, f"parameter {name} is never used"


def test_the_reaper_runs_on_a_schedule_with_a_narrow_role() -> None:
    fn = _props("ReaperFunction")
    assert fn["Handler"] == "scheduler.aws_lambda.reaper_handler"
    rule = _props("ReaperSchedule")
    assert rule["ScheduleExpression"].startswith("rate(") and rule["State"] == "ENABLED"
    assert _refs(rule["Targets"][0]["Arn"]) == {"ReaperFunction"}
    actions = {
        a
        for statement in _props("ReaperFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
        for a in _listify(statement["Action"])
    }
    # It reads executions and ends records; it can neither start nor stop anything.
    assert "states:DescribeExecution" in actions and "dynamodb:UpdateItem" in actions
    assert not actions & {"states:StartExecution", "states:StopExecution", "dynamodb:PutItem"}
    assert not any(a.startswith(("ecs:", "iam:")) for a in actions)


# ------------------------------------------------------------------ per-VP least privilege

# DynamoDB actions that read items (a compromised task must not read other VPs).
TABLE_READS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "dynamodb:GetRecords",
    "dynamodb:UpdateItem",  # with ReturnValues it reads the item
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:*",
}


def _task_role_violations(template: dict[str, Any]) -> list[str]:
    """What in ``template`` lets the VP task role read beyond its own VP: a table read
    without a ``dynamodb:LeadingKeys`` condition, or ``kms:Decrypt`` not pinned to one exact
    encryption context."""
    found = []
    role = template["Resources"]["TaskRole"]["Properties"]
    for policy in role.get("Policies", []):
        for raw in policy["PolicyDocument"]["Statement"]:
            for s in _branches(raw):
                actions = {str(a) for a in _listify(s["Action"])}
                condition = s.get("Condition", {})
                if actions & TABLE_READS or any(a in ("dynamodb:*", "*") for a in actions):
                    keys = condition.get("ForAllValues:StringEquals", {})
                    if "dynamodb:LeadingKeys" not in keys:
                        found.append(f"table read without LeadingKeys: {sorted(actions)}")
                if actions & {"kms:Decrypt", "kms:*", "*"}:
                    exact = condition.get("StringEquals", {})
                    pinned = [
                        k
                        for k, v in exact.items()
                        if k.startswith("kms:EncryptionContext:") and "*" not in json.dumps(v)
                    ]
                    if not pinned or set(condition) != {"StringEquals"}:
                        found.append(f"kms:Decrypt open to any encryption context: {condition}")
    return found


def test_no_table_read_without_leading_keys_and_no_open_decrypt_for_the_task() -> None:
    assert _task_role_violations(TPL) == []
    # The check is real: the old task role (GetItem on the table, Decrypt for any vp_id
    # context) is caught on both counts.
    old = copy.deepcopy(TPL)
    old["Resources"]["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"] += [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Resource": {"Fn::GetAtt": ["VpTable", "Arn"]},
        },
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": {"Fn::GetAtt": ["DataKey", "Arn"]},
            "Condition": {"StringLike": {"kms:EncryptionContext:vp_id": "?*"}},
        },
    ]
    violations = _task_role_violations(old)
    assert len(violations) == 2, violations


def test_the_task_role_reaches_only_the_broker() -> None:
    statements = [s for role, s in _statements() if role == "TaskRole"]
    actions = {str(a) for s in statements for a in _listify(s["Action"])}
    assert actions == {"lambda:InvokeFunction", "bedrock:InvokeModel", "polly:SynthesizeSpeech"}
    # Polly only when the stack's voice is polly (UsePolly), like Bedrock (UseBedrock).
    (policy,) = _props("TaskRole")["Policies"]
    conditions = {
        st["Fn::If"][0]: st["Fn::If"][1]["Action"]
        for st in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in st
    }
    assert conditions == {"UseBedrock": "bedrock:InvokeModel", "UsePolly": "polly:SynthesizeSpeech"}
    assert TPL["Conditions"]["UsePolly"] == {"Fn::Equals": [{"Ref": "Voice"}, "polly"]}
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert invoke["Resource"] == {"Fn::GetAtt": ["BrokerFunction", "Arn"]}
    # Who may invoke what: the task only the broker, the workflow only the ticket minter.
    invokers = {(role, next(iter(_refs(s["Resource"])))) for role, s in _by_action("lambda:")}
    assert invokers == {
        ("TaskRole", "BrokerFunction"),
        ("StateMachineRole", "TicketFunction"),
        ("CalendarSchedulerRole", "CalendarFunction"),  # the calendar poll (contract 5)
    }
    assert not _of_type("AWS::Lambda::Permission").keys() - {
        "ReaperInvokePermission",
        "ApiInvokePermission",
    }  # no resource policy opens either function to anyone else


def test_launch_tickets_reach_the_task_only_through_the_ecs_agent() -> None:
    on_tickets = [(r, s) for r, s in _statements() if "TicketBucket" in _refs(s["Resource"])]
    readers = {role for role, s in on_tickets if "s3:GetObject" in _listify(s["Action"])}
    assert readers == {"TaskExecutionRole"}  # the agent's role; the container never has it
    writers = {role for role, s in on_tickets if "s3:PutObject" in _listify(s["Action"])}
    assert writers == {"TicketFunctionRole"}
    bucket = _props("TicketBucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert "VersioningConfiguration" not in bucket  # a deleted ticket must be gone
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "tickets/" and rule["ExpirationInDays"] == 1
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert _refs(sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == {"DataKey"}
    (policy,) = _props("TicketBucketPolicy")["PolicyDocument"]["Statement"]
    assert policy["Effect"] == "Deny" and policy["Condition"]["Bool"] == {
        "aws:SecureTransport": "false"
    }
    asl = json.loads(ASL.read_text())
    ticket_state = asl["States"]["IssueLaunchTicket"]
    assert ticket_state["Parameters"]["FunctionName"] == "${TicketFunctionArn}"
    # Only the file's ARN leaves the Lambda into the execution history.
    assert ticket_state["ResultSelector"] == {"file.$": "$.Payload.ticket_file"}
    override = asl["States"]["RunTask"]["Parameters"]["Overrides"]["ContainerOverrides"][0]
    assert override["EnvironmentFiles"] == [{"Type": "s3", "Value.$": "$.ticket.file"}]
    assert _props("TicketFunction")["Handler"] == "scheduler.broker.ticket_handler"
    assert _props("BrokerFunction")["Handler"] == "scheduler.broker.handler"


# ------------------------------------------------------------------------------ abuse limits


def test_launches_are_throttled_per_route_and_the_api_lambda_has_reserved_concurrency() -> None:
    stage = _props("ApiStage")
    posts = [
        r["Properties"]["RouteKey"]
        for r in _of_type("AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["RouteKey"].startswith("POST")
    ]
    assert sorted(posts) == ["POST /v1/calendars", "POST /v1/vps", "POST /v1/webhooks"]
    for launch in posts:
        assert stage["RouteSettings"][launch] == {
            "ThrottlingRateLimit": {"Ref": "LaunchThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "LaunchThrottlingBurstLimit"},
        }
    assert RES["ApiStage"]["DependsOn"] == [
        "RouteCreate",
        "RouteCreateWebhook",
        "RouteCreateCalendar",
    ]
    assert (
        PARAMS["LaunchThrottlingRateLimit"]["Default"] < PARAMS["ApiThrottlingRateLimit"]["Default"]
    )
    api = _props("ApiFunction")
    assert api["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    env = api["Environment"]["Variables"]
    assert env["VP_OWNER_LAUNCHES"] == {"Ref": "OwnerLaunchesPerHour"}
    assert env["VP_OWNER_LAUNCH_WINDOW"] == "3600"
    assert env["VP_OWNER_MAX_ACTIVE"] == {"Ref": "OwnerMaxActiveVps"}
    assert env["VP_PRESTART_LEAD_SECONDS"] == {"Ref": "PrestartLeadSeconds"}
    assert PARAMS["PrestartLeadSeconds"]["Default"] == 120
    for name in RES:
        if RES[name]["Type"] == "AWS::Lambda::Function":
            assert "ReservedConcurrentExecutions" in _props(name), name


# ------------------------------------------------------------------------------ checkov


def _checkov() -> Path:
    """checkov lives in its own venv (.venv-checkov, made by scripts/bootstrap.sh): it pins
    boto3 and packaging to versions the project's own dependencies have outgrown."""
    for candidate in (
        ROOT / ".venv-checkov" / "bin" / "checkov",
        Path(sys.executable).parent / "checkov",
    ):
        if candidate.exists():
            return candidate
    raise AssertionError("checkov is not installed: run scripts/bootstrap.sh")


def test_checkov_finds_nothing_unjustified() -> None:
    result = subprocess.run(
        [
            str(_checkov()),
            "--file",
            str(TEMPLATE),
            "--framework",
            "cloudformation",
            "--skip-download",  # offline: the bundled checks only
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and result.returncode == 0, failed
    # Every skip carries its reason, and every skip is used (none is stale).
    skips = [
        (name, skip)
        for name, resource in RES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
        assert len(skip.get("comment", "").split()) >= 8, f"{name}: {skip['id']} needs a reason"
    skipped = {
        (c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]
    }
    assert skipped == {(skip["id"], name) for name, skip in skips}
    assert report["summary"]["passed"] > 90


# ------------------------------------------------------------------------------ artifacts


def test_the_artifact_bucket_is_encrypted_private_tls_only_and_retained_as_configured() -> None:
    bucket = _props("ArtifactBucket")
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert _refs(sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == {"DataKey"}
    assert sse["BucketKeyEnabled"] is False  # the object ARN is the KMS context checked
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "vps/" and rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == {"Ref": "ArtifactRetentionDays"}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    (policy,) = _props("ArtifactBucketPolicy")["PolicyDocument"]["Statement"]
    assert policy["Effect"] == "Deny" and policy["Action"] == "s3:*"
    assert policy["Condition"]["Bool"] == {"aws:SecureTransport": "false"}
    assert {json.dumps(r) for r in policy["Resource"]} == {
        json.dumps({"Fn::GetAtt": ["ArtifactBucket", "Arn"]}),
        json.dumps({"Fn::Sub": "${ArtifactBucket.Arn}/*"}),
    }
    (container,) = _props("TaskDefinition")["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["VP_ARTIFACT_BUCKET"] == {"Ref": "ArtifactBucket"}
    assert _props("ApiFunction")["Environment"]["Variables"]["VP_ARTIFACT_BUCKET"] == {
        "Ref": "ArtifactBucket"
    }


def test_a_task_can_write_artifacts_only_under_its_own_vps_prefix() -> None:
    """The task role has no S3 access; the only way to write artifacts is the writer role,
    which only the broker can assume (with a vp_id session tag, set from the ticket it
    checked: tests/aws/test_artifacts.py) and which reaches vps/<that tag>/ only."""
    task = [s for role, s in _statements() if role == "TaskRole"]
    assert not [s for s in task if any(str(a).startswith("s3:") for a in _listify(s["Action"]))]
    on_artifacts = [
        (role, s) for role, s in _statements() if "ArtifactBucket" in _refs(s["Resource"])
    ]
    writers = {role for role, s in on_artifacts if "s3:PutObject" in _listify(s["Action"])}
    assert writers == {"ArtifactWriterRole", "ApiFunctionRole"}  # the API: salvage only
    (write,) = [s for role, s in on_artifacts if role == "ArtifactWriterRole"]
    assert write["Resource"] == {
        "Fn::Sub": "${ArtifactBucket.Arn}/vps/${!aws:PrincipalTag/vp_id}/*"
    }
    writer_kms = [s for role, s in _statements() if role == "ArtifactWriterRole" and s is not write]
    (kms,) = writer_kms
    assert kms["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:s3:arn": {
            "Fn::Sub": "${ArtifactBucket.Arn}/vps/${!aws:PrincipalTag/vp_id}/*"
        }
    }
    writer = _props("ArtifactWriterRole")
    assert writer["MaxSessionDuration"] == 3600
    (trust,) = writer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": ["BrokerFunctionRole", "Arn"]}}
    assert trust["Condition"] == {"StringLike": {"aws:RequestTag/vp_id": "?*"}}
    assumers = _by_action("sts:")
    assert [role for role, _ in assumers] == ["BrokerAssumesArtifactWriter"]
    assert _props("BrokerAssumesArtifactWriter")["Roles"] == [{"Ref": "BrokerFunctionRole"}]
    broker_env = _props("BrokerFunction")["Environment"]["Variables"]
    assert broker_env["VP_ARTIFACT_WRITER_ROLE_ARN"] == {
        "Fn::GetAtt": ["ArtifactWriterRole", "Arn"]
    }
    # The API reads (presigns) and lists under vps/ only.
    (listing,) = [s for role, s in on_artifacts if "s3:ListBucket" in _listify(s["Action"])]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "vps/*"}}
