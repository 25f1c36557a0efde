"""deploy-aws-rooms.yml / teardown-aws-rooms.yml end to end against the local AWS (testbed/aws.py: moto on
loopback, port 15210).

The playbooks run exactly as on AWS (only the endpoint and dummy credentials differ). The emulated account is then
read back with boto3 (table and index, cluster, task definition, repository, security group, IAM policy documents,
functions, rule, HTTP API, key parameter), a re-run and a check-mode run change nothing, and the deployed Lambda
configuration is used to run the real handlers in-process against the emulated ECS and DynamoDB: the API function's
environment as moto stores it, the key from the SSM parameter, real-shaped HTTP API (payload 2.0) and EventBridge
events. Teardown leaves nothing of any kind behind and a second teardown changes nothing. Bad input and check mode
on a new account create nothing.

What cannot run here (moto has no data plane): the functions in Lambda, the HTTP API URL, the room containers on
Fargate, EventBridge delivering ECS events. The handlers run in-process instead, and the event is sent to the
cleanup handler by the test after EventBridge's own pattern test (TestEventPattern) accepted it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import playbook
from testbed.aws import LocalAws, local_aws
from testbed.aws_rooms import PIN_TASKS

PORT = 15210  # the provision helper's ports: 15210-15219 on 127.0.0.1
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
NAME = "gf-rooms-it"
VERSION = "1.0.0"
ROOM_PORT = 12077
ROUTES = {"POST /create_server", "GET /get_servers", "POST /stop_server", "DELETE /servers/{name}", "GET /health"}


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


TABLE_ARN = arn("dynamodb", f"table/{NAME}-rooms")
CLUSTER_ARN = arn("ecs", f"cluster/{NAME}-rooms")
API_FUNCTION_ARN = arn("lambda", f"function:{NAME}-room-api")
CLEANUP_FUNCTION_ARN = arn("lambda", f"function:{NAME}-room-cleanup")
RULE_ARN = arn("events", f"rule/{NAME}-room-stopped")
KEY_PARAMETER = f"/{NAME}/rooms/api-key"


@pytest.fixture(scope="module")
def moto() -> Iterator[LocalAws]:
    with local_aws(PORT) as server:
        yield server


def client(service: str, aws: LocalAws) -> Any:
    return aws.client(service, REGION)


def extra_vars(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "godot_fleet_name": NAME,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_room_version": VERSION,
    }
    values.update(overrides)
    return values


def run(name: str, aws: LocalAws, values: dict[str, Any], *args: str, **kwargs: Any) -> playbook.Result:
    """Runs a playbook against the local AWS (AWS_ENDPOINT_URL, as a user points the AWS SDK at it)."""
    kwargs.setdefault("env", aws.environment())
    return playbook.run(name, values, *args, **kwargs)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    assert document["Version"] == "2012-10-17"
    found: list[dict[str, Any]] = document["Statement"]
    return found


def inline_policy(iam: Any, role: str) -> dict[str, Any]:
    """The role's only inline policy (named like the role); no managed policy is attached."""
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == [role]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    document: dict[str, Any] = iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
    return document


def leftovers(url: LocalAws, name: str = NAME) -> dict[str, list[str]]:
    """Everything of every kind the playbook creates for fleet `name` that still exists (empty lists: nothing)."""
    ec2, ddb, ecs, ecr = client("ec2", url), client("dynamodb", url), client("ecs", url), client("ecr", url)
    logs, iam, lam = client("logs", url), client("iam", url), client("lambda", url)
    events, apigw, ssm = client("events", url), client("apigatewayv2", url), client("ssm", url)
    tagged = [{"Name": "tag:Name", "Values": [f"{name}-rooms"]}]
    clusters = ecs.describe_clusters(clusters=[f"{name}-rooms"])["clusters"]
    return {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tagged)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tagged)["Subnets"]],
        "internet gateways": [
            g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]
        ],
        "route tables": [r["RouteTableId"] for r in ec2.describe_route_tables(Filters=tagged)["RouteTables"]],
        "security groups": [
            g["GroupId"]
            for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{name}-rooms"]}])[
                "SecurityGroups"
            ]
        ],
        "tables": [t for t in ddb.list_tables()["TableNames"] if t.startswith(name)],
        "clusters": [c["clusterArn"] for c in clusters if c["status"] == "ACTIVE"],
        "task definitions": [
            a
            for status in ("ACTIVE", "INACTIVE")
            for a in ecs.list_task_definitions(familyPrefix=f"{name}-room", status=status)["taskDefinitionArns"]
        ],
        "tasks": [
            t for c in clusters if c["status"] == "ACTIVE" for t in ecs.list_tasks(cluster=c["clusterArn"])["taskArns"]
        ],
        "repositories": [
            r["repositoryName"]
            for r in ecr.describe_repositories()["repositories"]
            if r["repositoryName"].startswith(name)
        ],
        "log groups": [
            g["logGroupName"]
            for prefix in (f"/ecs/{name}-", f"/aws/lambda/{name}-")
            for g in logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
        ],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(name)],
        "policies": [
            p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"].startswith(name)
        ],
        "functions": [
            f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(name)
        ],
        "rules": [r["Name"] for r in events.list_rules(NamePrefix=name)["Rules"]],
        "http apis": [a["Name"] for a in apigw.get_apis()["Items"] if a["Name"].startswith(name)],
        "parameters": [p["Name"] for p in ssm.describe_parameters()["Parameters"] if p["Name"].startswith(f"/{name}/")],
    }


def nothing_left(url: LocalAws, name: str = NAME) -> bool:
    found = leftovers(url, name)
    assert not any(found.values()), {kind: items for kind, items in found.items() if items}
    return True


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "credentials", "expected"),
    [
        ({}, False, "No AWS credentials: set AWS_ACCESS_KEY_ID"),
        ({"godot_fleet_aws_region": "europe"}, True, "region to deploy to, e.g. eu-west-1 (got 'europe')"),
        ({"godot_fleet_name": "Bad_Fleet"}, True, "(godot_fleet_name in the playbooks) must be lower-case"),
        ({"godot_fleet_room_port": 70000}, True, "(godot_fleet_room_port in the playbooks) must be room ports"),
        ({"aws_rooms_cluster_cpu": 300}, True, "a Fargate task size (got 300/512"),
        ({"aws_rooms_cluster_memory": 4096}, True, "a Fargate task size (got 256/4096"),
        ({"aws_rooms_cluster_memory": -512}, True, "a Fargate task size (got 256/-512"),
        ({"aws_rooms_api_max_rooms": 0}, True, "aws_rooms_api_max_rooms must be at least 1 (got '0')"),
        ({"godot_fleet_rooms_subnet_ids": ["subnet-0123456789abcdef0"]}, True, "aws_network_vpc_id (vpc-...) with"),
        ({"godot_fleet_rooms_api_key": "too-short-a-key"}, True, "(godot_fleet_rooms_api_key in the playbooks)"),
    ],
)
def test_bad_input_fails_before_any_aws_call(
    moto: LocalAws, overrides: dict[str, Any], credentials: bool, expected: str, installed_collection: Path
) -> None:
    env = moto.environment()
    if not credentials:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    result = run("deploy-aws-rooms.yml", moto, extra_vars(**overrides), env=env, installed=installed_collection)
    assert not result.ok
    assert expected in result.text, str(result)
    # the first task that calls AWS never ran
    assert "Find the availability zones" not in result.output and "Read the account" not in result.output, str(result)
    assert "too-short-a-key" not in result.output
    assert nothing_left(moto)


def test_check_mode_on_a_new_account_previews_and_creates_nothing(moto: LocalAws, installed_collection: Path) -> None:
    key = "a-given-key-" + "k" * 24
    values = extra_vars(godot_fleet_name="gf-rooms-check", godot_fleet_rooms_api_key=key)
    result = run("deploy-aws-rooms.yml", moto, values, "--check", "-v", installed=installed_collection)
    assert result.ok, str(result)
    assert result.changed >= 8, str(result)  # VPC, table, repository, log groups, roles, cluster, ...: all reported
    assert key not in result.output
    assert nothing_left(moto, "gf-rooms-check")
    result = run("teardown-aws-rooms.yml", moto, values, "--check", installed=installed_collection)
    assert result.ok and result.changed == 0, result.changed_tasks() or str(result)


# --- the deployment ---------------------------------------------------------------------------------------------


def assert_network(ec2: Any) -> tuple[list[str], str]:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{NAME}-rooms"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == ["10.78.0.0/20", "10.78.16.0/20"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2 and all(s["MapPublicIpOnLaunch"] for s in subnets)
    tables = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [f"{NAME}-rooms"]}])["RouteTables"]
    assert len(tables) == 1
    assert {a["SubnetId"] for a in tables[0]["Associations"] if "SubnetId" in a} == {s["SubnetId"] for s in subnets}
    assert any(
        r.get("GatewayId", "").startswith("igw-")
        for r in tables[0]["Routes"]
        if r.get("DestinationCidrBlock") == "0.0.0.0/0"
    )

    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{NAME}-rooms"]}])
    group = groups["SecurityGroups"][0]
    assert group["VpcId"] == vpc
    # inbound: the room port over UDP from anywhere and nothing else (no SSH, no TCP); outbound: the default
    ingress = [
        (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), [r["CidrIp"] for r in p["IpRanges"]],
         p["Ipv6Ranges"], p["UserIdGroupPairs"], p["PrefixListIds"])
        for p in group["IpPermissions"]
    ]  # fmt: skip
    assert ingress == [("udp", ROOM_PORT, ROOM_PORT, ["0.0.0.0/0"], [], [], [])]
    egress = [(p["IpProtocol"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissionsEgress"]]
    assert egress == [("-1", ["0.0.0.0/0"])]
    return sorted(s["SubnetId"] for s in subnets), group["GroupId"]


def assert_registry(ddb: Any) -> None:
    table = ddb.describe_table(TableName=f"{NAME}-rooms")["Table"]
    assert table["TableArn"] == TABLE_ARN
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]) == [
        ("created_key", "S"),
        ("listing", "S"),
        ("name", "S"),
    ]
    assert [(i["IndexName"], i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"]] == [
        (
            "by_created",
            [{"AttributeName": "listing", "KeyType": "HASH"}, {"AttributeName": "created_key", "KeyType": "RANGE"}],
            {"ProjectionType": "ALL"},
        )
    ]
    assert not table.get("LocalSecondaryIndexes")


def assert_runtime(ecs: Any, ecr: Any, logs: Any, iam: Any) -> str:
    cluster = ecs.describe_clusters(clusters=[f"{NAME}-rooms"])["clusters"][0]
    assert cluster["clusterArn"] == CLUSTER_ARN and cluster["status"] == "ACTIVE"
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert cluster["defaultCapacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]

    repository = ecr.describe_repositories(repositoryNames=[f"{NAME}/room"])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycle = json.loads(ecr.get_lifecycle_policy(repositoryName=f"{NAME}/room")["lifecyclePolicyText"])
    assert lifecycle == {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Keep the newest 10 room images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
                "action": {"type": "expire"},
            }
        ]
    }

    # exactly one active revision, and it is what the API starts
    revisions = ecs.list_task_definitions(familyPrefix=f"{NAME}-room", status="ACTIVE")["taskDefinitionArns"]
    assert len(revisions) == 1
    task = ecs.describe_task_definition(taskDefinition=revisions[0])["taskDefinition"]
    assert task["family"] == f"{NAME}-room" and task["networkMode"] == "awsvpc"
    assert task["requiresCompatibilities"] == ["FARGATE"] and (task["cpu"], task["memory"]) == ("256", "512")
    assert task["runtimePlatform"] == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    assert task["taskRoleArn"] == role_arn(f"{NAME}-room-task")
    assert task["executionRoleArn"] == role_arn(f"{NAME}-room-execution")
    [container] = task["containerDefinitions"]
    assert container["name"] == "room" and container["essential"] is True
    assert container["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{NAME}/room:{VERSION}"
    assert container["portMappings"] == [{"containerPort": ROOM_PORT, "hostPort": ROOM_PORT, "protocol": "udp"}]
    assert (container["cpu"], container["memory"], container["stopTimeout"]) == (256, 512, 10)
    assert container["linuxParameters"]["initProcessEnabled"] is True  # SIGTERM reaches the engine
    assert container["readonlyRootFilesystem"] is False  # the image needs a writable HOME (see aws_rooms_cluster)
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {"awslogs-group": f"/ecs/{NAME}-rooms", "awslogs-region": REGION, "awslogs-stream-prefix": "room"},
    }
    assert "command" not in container or not container["command"]  # the image's CMD; the API may override it

    groups = {
        g["logGroupName"]: g.get("retentionInDays")
        for prefix in (f"/ecs/{NAME}-", f"/aws/lambda/{NAME}-")
        for g in logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
    }
    assert groups == {
        f"/ecs/{NAME}-rooms": 14,
        f"/aws/lambda/{NAME}-room-api": 14,
        f"/aws/lambda/{NAME}-room-cleanup": 14,
    }

    ecs_trust = {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    execution = iam.get_role(RoleName=f"{NAME}-room-execution")["Role"]
    assert statements(execution["AssumeRolePolicyDocument"]) == [ecs_trust]
    assert statements(inline_policy(iam, f"{NAME}-room-execution")) == [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Sid": "PullRoomImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [arn("ecr", f"repository/{NAME}/room")],
        },
        {
            "Sid": "WriteRoomLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [arn("logs", f"log-group:/ecs/{NAME}-rooms:*")],
        },
    ]
    task_role = iam.get_role(RoleName=f"{NAME}-room-task")["Role"]
    assert statements(task_role["AssumeRolePolicyDocument"]) == [
        {
            **ecs_trust,
            "Condition": {
                "ArnLike": {"aws:SourceArn": arn("ecs", "*")},
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
            },
        }
    ]
    # the game calls no AWS API: no permission at all
    assert iam.list_role_policies(RoleName=f"{NAME}-room-task")["PolicyNames"] == []
    assert iam.list_attached_role_policies(RoleName=f"{NAME}-room-task")["AttachedPolicies"] == []
    return str(revisions[0])


def assert_function_roles(iam: Any) -> None:
    lambda_trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    cluster_tasks = arn("ecs", f"task/{NAME}-rooms/*")
    for name in (f"{NAME}-room-api", f"{NAME}-room-cleanup"):
        assert statements(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]) == [lambda_trust]
    assert statements(inline_policy(iam, f"{NAME}-room-api")) == [
        {
            "Sid": "RoomRows",
            "Effect": "Allow",
            "Action": [
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            "Resource": [TABLE_ARN],
        },
        {
            "Sid": "ListRooms",
            "Effect": "Allow",
            "Action": ["dynamodb:Query"],
            "Resource": [f"{TABLE_ARN}/index/by_created"],
        },
        {
            "Sid": "StartRooms",
            "Effect": "Allow",
            "Action": ["ecs:RunTask"],
            "Resource": [arn("ecs", f"task-definition/{NAME}-room:*")],
            "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}},
        },
        {
            "Sid": "TagRoomsAtStart",
            "Effect": "Allow",
            "Action": ["ecs:TagResource"],
            "Resource": [cluster_tasks],
            "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
        },
        {
            "Sid": "WatchAndStopRooms",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
            "Resource": [cluster_tasks],
            "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}},
        },
        {
            "Sid": "PassRoomRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [role_arn(f"{NAME}-room-task"), role_arn(f"{NAME}-room-execution")],
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        },
        {"Sid": "RoomAddresses", "Effect": "Allow", "Action": ["ec2:DescribeNetworkInterfaces"], "Resource": "*"},
        {
            "Sid": "ReadApiKey",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": [arn("ssm", f"parameter{KEY_PARAMETER}")],
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [arn("logs", f"log-group:/aws/lambda/{NAME}-room-api:*")],
        },
    ]
    assert statements(inline_policy(iam, f"{NAME}-room-cleanup")) == [
        {
            "Sid": "RemoveRoomRows",
            "Effect": "Allow",
            "Action": ["dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"],
            "Resource": [TABLE_ARN],
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [arn("logs", f"log-group:/aws/lambda/{NAME}-room-cleanup:*")],
        },
    ]


def assert_functions(lam: Any, task_definition: str, subnets: list[str], group: str) -> None:
    api = lam.get_function_configuration(FunctionName=f"{NAME}-room-api")
    assert (api["Runtime"], api["Handler"]) == ("python3.12", "room_api.aws_lambda.api_handler")
    assert (api["Timeout"], api["MemorySize"], api["Architectures"]) == (15, 256, ["arm64"])
    assert api["Role"] == role_arn(f"{NAME}-room-api")
    assert api["Environment"]["Variables"] == {
        "ROOM_TABLE": f"{NAME}-rooms",
        "ROOM_CLUSTER": f"{NAME}-rooms",
        "ROOM_TASK_DEFINITION": task_definition,
        "ROOM_CONTAINER": "room",
        "ROOM_SUBNETS": ",".join(subnets),
        "ROOM_SECURITY_GROUPS": group,
        "ROOM_ASSIGN_PUBLIC_IP": "ENABLED",
        "ROOM_CAPACITY_PROVIDER": "FARGATE_SPOT",
        "ROOM_PORT": str(ROOM_PORT),
        "ROOM_BUILD_VERSION": VERSION,
        "ROOM_MAX_ROOMS": "10",
        "ROOM_API_KEY_PARAMETER": KEY_PARAMETER,
        "ROOM_OPEN_LISTING": "false",
    }
    cleanup = lam.get_function_configuration(FunctionName=f"{NAME}-room-cleanup")
    assert (cleanup["Runtime"], cleanup["Handler"]) == ("python3.12", "room_api.aws_lambda.cleanup_handler")
    assert (cleanup["Timeout"], cleanup["MemorySize"]) == (30, 128)
    assert cleanup["Role"] == role_arn(f"{NAME}-room-cleanup")
    assert cleanup["Environment"]["Variables"] == {"ROOM_TABLE": f"{NAME}-rooms"}
    # one reproducible package for both
    assert api["CodeSha256"] == cleanup["CodeSha256"]


def lambda_permissions(lam: Any, function: str) -> list[tuple[str, str, str]]:
    policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    return [
        (s["Principal"]["Service"], s["Action"], s["Condition"]["ArnLike"]["AWS:SourceArn"])
        for s in policy["Statement"]
    ]


def assert_wiring(lam: Any, events: Any, apigw: Any, api_url: str) -> str:
    rule = events.describe_rule(Name=f"{NAME}-room-stopped")
    assert rule["Arn"] == RULE_ARN and rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": [CLUSTER_ARN], "lastStatus": ["STOPPED"]},
    }
    targets = events.list_targets_by_rule(Rule=f"{NAME}-room-stopped")["Targets"]
    assert [(t["Id"], t["Arn"]) for t in targets] == [("room-cleanup", CLEANUP_FUNCTION_ARN)]
    assert lambda_permissions(lam, f"{NAME}-room-cleanup") == [
        ("events.amazonaws.com", "lambda:InvokeFunction", RULE_ARN)
    ]

    [api] = [a for a in apigw.get_apis()["Items"] if a["Name"] == f"{NAME}-rooms"]
    assert api["ProtocolType"] == "HTTP" and api["ApiEndpoint"] == api_url
    routes = apigw.get_routes(ApiId=api["ApiId"])["Items"]
    assert {r["RouteKey"] for r in routes} == ROUTES
    integrations = {i["IntegrationId"]: i for i in apigw.get_integrations(ApiId=api["ApiId"])["Items"]}
    for route in routes:
        integration = integrations[route["Target"].removeprefix("integrations/")]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["IntegrationUri"] == API_FUNCTION_ARN
        assert integration["PayloadFormatVersion"] == "2.0"
    [stage] = apigw.get_stages(ApiId=api["ApiId"])["Items"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    throttling = stage["DefaultRouteSettings"]
    assert (throttling["ThrottlingRateLimit"], throttling["ThrottlingBurstLimit"]) == (10, 20)
    execution_arn = arn("execute-api", api["ApiId"])
    assert lambda_permissions(lam, f"{NAME}-room-api") == [
        ("apigateway.amazonaws.com", "lambda:InvokeFunction", f"{execution_arn}/*/*")
    ]
    return str(api["ApiId"])


# --- the handlers, in-process, as deployed -------------------------------------------------------------------


def http_event(method: str, path: str, key: str | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as API Gateway sends it to the function."""
    headers = {"content-type": "application/json", "host": "abc123.execute-api.eu-west-1.amazonaws.com"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    route = "DELETE /servers/{name}" if path.startswith("/servers/") else f"{method} {path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route,
            "stage": "$default",
            "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795255200000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def task_stopped_event(task: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "ECS Task State Change" event of a stopped task (shape of the ECS developer guide)."""
    return {
        "version": "0",
        "id": "3317b2af-7005-947d-b652-f55e762e571a",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": "2026-11-21T10:05:00Z",
        "region": REGION,
        "resources": [task["taskArn"]],
        "detail": {
            "clusterArn": task["clusterArn"],
            "taskArn": task["taskArn"],
            "taskDefinitionArn": task["taskDefinitionArn"],
            "group": f"family:{NAME}-room",
            "startedBy": task["startedBy"],
            "launchType": "FARGATE",
            "capacityProviderName": "FARGATE_SPOT",
            "cpu": "256",
            "memory": "512",
            "containers": [{"name": "room", "lastStatus": "STOPPED", "exitCode": 0, "taskArn": task["taskArn"]}],
            "desiredStatus": "STOPPED",
            "lastStatus": "STOPPED",
            "stopCode": "UserInitiated",
            "stoppedReason": "stopped through the room API",
            "createdAt": "2026-11-21T10:00:00.000Z",
            "stoppedAt": "2026-11-21T10:05:00.000Z",
            "version": 5,
        },
    }


def call(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = handler(event, None)
    body: dict[str, Any] = json.loads(answer["body"])
    return int(answer["statusCode"]), body


def run_handlers_as_deployed(moto: LocalAws, key: str) -> str:
    """Runs the handlers with the deployed configuration; returns the task ARN of a room left running."""
    lam, ecs, ddb, events = (
        client("lambda", moto),
        client("ecs", moto),
        client("dynamodb", moto),
        client("events", moto),
    )
    # moto advances a task's state on every DescribeTasks: keep the rooms where RunTask put them
    moto.moto_api("state-manager/set-transition", PIN_TASKS)
    deployed = lam.get_function_configuration(FunctionName=f"{NAME}-room-api")["Environment"]["Variables"]
    cleanup_env = lam.get_function_configuration(FunctionName=f"{NAME}-room-cleanup")["Environment"]["Variables"]
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("AWS_", "ROOM_"))]:
            patch.delenv(name)
        # what the Lambda runtime provides, the endpoint of the emulated AWS, and the deployed configuration
        runtime = {k: v for k, v in moto.environment(region=REGION).items() if k.startswith("AWS_")}
        for name, value in {**runtime, **deployed, **cleanup_env}.items():
            patch.setenv(name, value)
        from room_api import aws_lambda

        aws_lambda.reset()
        try:
            status, body = call(aws_lambda.api_handler, http_event("GET", "/health", None))
            assert (status, body["backend"], body["build_version"]) == (200, "aws", VERSION)
            status, body = call(aws_lambda.api_handler, http_event("POST", "/create_server", None, {"name": "it-room"}))
            assert (status, body["error"]) == (401, "unauthorized")
            status, body = call(aws_lambda.api_handler, http_event("GET", "/get_servers", "not-the-key-" + "x" * 20))
            assert status == 401

            status, body = call(aws_lambda.api_handler, http_event("POST", "/create_server", key, {"name": "it-room"}))
            assert status == 201, body
            assert body["room"]["name"] == "it-room" and body["room"]["port"] == ROOM_PORT
            assert body["room"]["build_version"] == VERSION

            # RunTask happened with the deployed settings: the registered revision, in the cluster, on the network
            [task_arn] = ecs.list_tasks(cluster=f"{NAME}-rooms", startedBy="it-room", desiredStatus="RUNNING")[
                "taskArns"
            ]
            [task] = ecs.describe_tasks(cluster=f"{NAME}-rooms", tasks=[task_arn])["tasks"]
            assert task["taskDefinitionArn"] == deployed["ROOM_TASK_DEFINITION"]
            assert task["clusterArn"] == CLUSTER_ARN
            assert task["capacityProviderName"] == "FARGATE_SPOT"

            # a second room with a random name, stopped through DELETE /servers/{name}
            status, body = call(aws_lambda.api_handler, http_event("POST", "/create_server", key, {}))
            assert status == 201, body
            second = body["room"]["name"]
            [second_arn] = ecs.list_tasks(cluster=f"{NAME}-rooms", startedBy=second, desiredStatus="RUNNING")[
                "taskArns"
            ]
            status, body = call(aws_lambda.api_handler, http_event("GET", "/get_servers", key))
            assert status == 200 and [r["name"] for r in body["rooms"]] == ["it-room", second], body

            status, body = call(aws_lambda.api_handler, http_event("POST", "/stop_server", key, {"name": "it-room"}))
            assert (status, body["room"]["status"]) == (200, "stopping"), body
            status, body = call(aws_lambda.api_handler, http_event("DELETE", f"/servers/{second}", key))
            assert (status, body["room"]["status"]) == (200, "stopping"), body
            tasks = ecs.describe_tasks(cluster=f"{NAME}-rooms", tasks=[task_arn, second_arn])["tasks"]
            assert sorted(t["startedBy"] for t in tasks) == sorted(["it-room", second])
            assert {t["desiredStatus"] for t in tasks} == {"STOPPED"}

            # ECS reports the tasks stopped: the deployed rule matches such an event (and not a RUNNING one, nor one
            # of another cluster), and the cleanup function removes the rows
            pattern = events.describe_rule(Name=f"{NAME}-room-stopped")["EventPattern"]
            for task in tasks:
                event = task_stopped_event(task)
                assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"] is True
                running = {**event, "detail": {**event["detail"], "lastStatus": "RUNNING"}}
                other = {**event, "detail": {**event["detail"], "clusterArn": arn("ecs", "cluster/other")}}
                for foreign in (running, other):
                    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(foreign))["Result"] is False
                assert aws_lambda.cleanup_handler(event, None)["removed"] is True
                assert "Item" not in ddb.get_item(TableName=f"{NAME}-rooms", Key={"name": {"S": task["startedBy"]}})
            counter = ddb.get_item(TableName=f"{NAME}-rooms", Key={"name": {"S": "#count"}})["Item"]
            assert counter["rooms"] == {"N": "0"}
            status, body = call(aws_lambda.api_handler, http_event("GET", "/get_servers", key))
            assert (status, body["rooms"]) == (200, [])

            # a room still running when the service is torn down
            status, body = call(aws_lambda.api_handler, http_event("POST", "/create_server", key, {"name": "left-on"}))
            assert status == 201, body
            [left_on] = ecs.list_tasks(cluster=f"{NAME}-rooms", startedBy="left-on", desiredStatus="RUNNING")[
                "taskArns"
            ]
            return str(left_on)
        finally:
            aws_lambda.reset()


def test_deploy_rerun_check_handlers_and_teardown(moto: LocalAws) -> None:
    values = extra_vars()
    result = run("deploy-aws-rooms.yml", moto, values)
    assert result.ok, str(result)
    assert result.stats["localhost"]["changed"] > 0
    outputs = [result.output]
    urls = [line.split("=", 1)[1].strip() for line in result.text.splitlines() if "ROOM_API_URL=" in line]
    assert len(urls) == 1 and urls[0].startswith("https://") and urls[0].endswith(".amazonaws.com"), str(result)
    assert f"the SSM SecureString parameter {KEY_PARAMETER}" in result.text

    ssm = client("ssm", moto)
    parameter = ssm.get_parameter(Name=KEY_PARAMETER, WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString"
    key = parameter["Value"]
    assert len(key) == 43 and key.isalnum()

    subnets, group = assert_network(client("ec2", moto))
    assert_registry(client("dynamodb", moto))
    task_definition = assert_runtime(
        client("ecs", moto), client("ecr", moto), client("logs", moto), client("iam", moto)
    )
    assert_function_roles(client("iam", moto))
    assert_functions(client("lambda", moto), task_definition, subnets, group)
    assert_wiring(client("lambda", moto), client("events", moto), client("apigatewayv2", moto), urls[0])

    for args in ((), ("--check", "--diff")):
        again = run("deploy-aws-rooms.yml", moto, values, *args)
        outputs.append(again.output)
        assert again.ok and again.changed == 0, again.changed_tasks() or str(again)
    # the generated key was kept, and never printed
    assert ssm.get_parameter(Name=KEY_PARAMETER, WithDecryption=True)["Parameter"]["Value"] == key
    assert not [o for o in outputs if key in o]

    left_on = run_handlers_as_deployed(moto, key)

    result = run("teardown-aws-rooms.yml", moto, values)
    assert result.ok and result.changed > 0, str(result)
    assert nothing_left(moto)
    [task] = client("ecs", moto).describe_tasks(cluster=CLUSTER_ARN, tasks=[left_on])["tasks"]
    assert (task["lastStatus"], task["stoppedReason"]) == ("STOPPED", "godot-fleet teardown")
    result = run("teardown-aws-rooms.yml", moto, values)
    assert result.ok and result.changed == 0, result.changed_tasks() or str(result)


def test_the_room_api_uses_the_table_aws_rooms_registry_table_names(moto: LocalAws) -> None:
    """Renaming the registry table (aws_rooms_registry_table) renames it for the room API too: its ROOM_TABLE and its
    policy follow the registry role's setting, not a name derived from the fleet."""
    name, table = "gf-rooms-table", "gf-rooms-table-renamed"
    values = extra_vars(godot_fleet_name=name, aws_rooms_registry_table=table)
    result = run("deploy-aws-rooms.yml", moto, values)
    assert result.ok, str(result)
    assert client("dynamodb", moto).describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    lam = client("lambda", moto)
    for function in (f"{name}-room-api", f"{name}-room-cleanup"):
        assert lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]["ROOM_TABLE"] == table
    resources = [r for s in statements(inline_policy(client("iam", moto), f"{name}-room-api")) for r in s["Resource"]]
    assert arn("dynamodb", f"table/{table}") in resources and arn("dynamodb", f"table/{name}-rooms") not in resources
    result = run("teardown-aws-rooms.yml", moto, values)
    assert result.ok, str(result)
    assert nothing_left(moto, name)
