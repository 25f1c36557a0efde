"""The rooms-on-demand infrastructure in the local AWS, made directly with boto3 (what the aws_rooms_* roles make
with Ansible), for the room API's tests and benchmark: a VPC, a subnet and a security group, the ECS cluster and the
room's task definition, the registry table, and an AwsBackend configured for them.

moto runs no containers: a room here is a DynamoDB row plus an ECS task record that is RUNNING and has a private IP
(no public IP: moto associates none, so the backend is configured with assignPublicIp DISABLED unless a caller says
otherwise). What is real: every boto3 call, DynamoDB's conditions and transactions (atomic: the local AWS runs one
request at a time), the GSI query and its paging, ECS RunTask/DescribeTasks/StopTask and EC2
DescribeNetworkInterfaces as moto implements them. `pin_tasks()` keeps a task RUNNING until it is stopped (moto's
task state manager otherwise advances it on every DescribeTasks, STOPPED by the 4th call).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from room_api.aws import INDEX, AwsBackend, AwsConfig
from testbed.aws import CREDENTIALS, LocalAws

REGION = "eu-west-1"
TABLE = "gf-aws-rooms"
CLUSTER = "gf-aws-rooms"
FAMILY = "gf-aws-room"
CONTAINER = "room"
ROOM_PORT = 12077
BUILD_VERSION = "1.0.0"
PIN_TASKS = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}


def fresh(aws: LocalAws) -> None:
    """Forgets every resource of the local AWS and keeps each ECS task RUNNING until it is stopped."""
    aws.reset()
    aws.moto_api("state-manager/set-transition", PIN_TASKS)


def client(aws: LocalAws, service: str, *, pool: int = 60) -> Any:
    """A client as the Lambda functions configure theirs (standard retries), with a large connection pool."""
    return aws.client(service, REGION, retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=pool)


@dataclass
class AwsWorld:
    """What provision() created in moto, and the clients the backend uses."""

    endpoint: str
    config: AwsConfig
    vpc_id: str
    clients: dict[str, Any] = field(default_factory=dict)

    def backend(self, **changes: Any) -> AwsBackend:
        """An AwsBackend on this world; `changes` replace AwsConfig fields (e.g. max_rooms=3)."""
        config = self.config if not changes else AwsConfig(**{**self.config.__dict__, **changes})
        return AwsBackend(config, dynamodb=self.clients["dynamodb"], ecs=self.clients["ecs"], ec2=self.clients["ec2"])

    def environment(self, **extra: str) -> dict[str, str]:
        """The Lambda functions' environment for this world (plus endpoint, dummy credentials and region)."""
        cfg = self.config
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            **CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "ROOM_TABLE": cfg.table,
            "ROOM_CLUSTER": cfg.cluster,
            "ROOM_TASK_DEFINITION": cfg.task_definition,
            "ROOM_CONTAINER": cfg.container,
            "ROOM_SUBNETS": ",".join(cfg.subnets),
            "ROOM_SECURITY_GROUPS": ",".join(cfg.security_groups),
            "ROOM_ASSIGN_PUBLIC_IP": cfg.assign_public_ip,
            "ROOM_CAPACITY_PROVIDER": cfg.capacity_provider,
            "ROOM_PORT": str(cfg.port),
            "ROOM_BUILD_VERSION": cfg.build_version,
            "ROOM_MAX_ROOMS": str(cfg.max_rooms),
        }
        if cfg.command is not None:
            env["ROOM_COMMAND"] = json.dumps(list(cfg.command))
        env.update(extra)
        return env


def create_table(dynamodb: Any, table: str) -> None:
    """The registry table exactly as helper-common describes it (hash `name`, GSI by_created, on demand)."""
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "name", "AttributeType": "S"},
            {"AttributeName": "listing", "AttributeType": "S"},
            {"AttributeName": "created_key", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "listing", "KeyType": "HASH"},
                    {"AttributeName": "created_key", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def provision(
    aws: LocalAws, *, max_rooms: int = 50, assign_public_ip: str = "DISABLED", command: tuple[str, ...] | None = None
) -> AwsWorld:
    """Creates the network, cluster, task definition and table in the local AWS (after fresh()); the world."""
    clients = {name: client(aws, name) for name in ("dynamodb", "ecs", "ec2")}
    ec2, ecs = clients["ec2"], clients["ecs"]
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    # DNS hostnames on (as Fargate VPCs usually have): moto's RunTask fails (HTTP 500) in a VPC without them.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    sg_id = ec2.create_security_group(GroupName="gf-aws-rooms", Description="rooms", VpcId=vpc_id)["GroupId"]
    ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    ecs.register_task_definition(
        family=FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": f"localhost/godot-fleet/demo-room:{BUILD_VERSION}",
                "memory": 512,  # moto's RunTask fails (HTTP 500) without a container-level memory
                "essential": True,
                "portMappings": [{"containerPort": ROOM_PORT, "protocol": "udp"}],
            }
        ],
    )
    create_table(clients["dynamodb"], TABLE)
    config = AwsConfig(
        table=TABLE,
        cluster=CLUSTER,
        task_definition=FAMILY,
        container=CONTAINER,
        subnets=(subnet_id,),
        security_groups=(sg_id,),
        assign_public_ip=assign_public_ip,
        capacity_provider="FARGATE_SPOT",
        port=ROOM_PORT,
        build_version=BUILD_VERSION,
        max_rooms=max_rooms,
        command=command,
    )
    return AwsWorld(aws.endpoint, config, vpc_id, clients)


def task_state_change(task: dict[str, Any], last_status: str) -> dict[str, Any]:
    """The EventBridge "ECS Task State Change" event ECS sends for `task` (a DescribeTasks task), in the shape of
    the ECS developer guide's example."""
    stopped = last_status == "STOPPED"
    return {
        "version": "0",
        "id": "3317b2af-7005-947d-b652-f55e762e571a",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-11-21T10:05:00Z",
        "region": REGION,
        "resources": [task["taskArn"]],
        "detail": {
            "attachments": [
                {
                    "id": "1789bcae-ddfb-4d10-8ebe-8ac87ddba5b8",
                    "type": "eni",
                    "status": "DELETED" if stopped else "ATTACHED",
                    "details": [{"name": "subnetId", "value": "subnet-abcd1234"}],
                }
            ],
            "availabilityZone": f"{REGION}a",
            "capacityProviderName": "FARGATE_SPOT",
            "clusterArn": task["clusterArn"],
            "containers": [
                {
                    "containerArn": f"{task['clusterArn']}:container/{CONTAINER}",
                    "exitCode": 0,
                    "lastStatus": last_status,
                    "name": CONTAINER,
                    "image": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/godot-fleet/demo-room:{BUILD_VERSION}",
                    "taskArn": task["taskArn"],
                    "networkInterfaces": [{"attachmentId": "1789bcae", "privateIpv4Address": "10.77.1.9"}],
                    "cpu": "0",
                }
            ],
            "createdAt": "2026-11-21T10:00:00.000Z",
            "launchType": "FARGATE",
            "cpu": "256",
            "memory": "512",
            "desiredStatus": "STOPPED" if stopped else "RUNNING",
            "group": f"family:{FAMILY}",
            "lastStatus": last_status,
            "overrides": {"containerOverrides": [{"name": CONTAINER}]},
            "connectivity": "CONNECTED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": task.get("stoppedReason") or "Essential container in task exited",
            "startedBy": task["startedBy"],
            "taskArn": task["taskArn"],
            "taskDefinitionArn": task["taskDefinitionArn"],
            "updatedAt": "2026-11-21T10:05:00.000Z",
            "version": 4,
            "platformVersion": "1.4.0",
        },
    }
