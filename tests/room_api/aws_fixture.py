"""The AWS backend against moto: a moto server on loopback, the registry table, the ECS cluster and task definition
and a VPC/subnet/security group in it, and an AwsBackend configured for them.

moto runs no containers: a room here is a DynamoDB row plus an ECS task record that is RUNNING and has a private IP
(no public IP: moto associates none, so the backend is configured with assignPublicIp DISABLED unless a test says
otherwise). What is real: every boto3 call, DynamoDB's conditions and transactions, the GSI query and its paging,
ECS RunTask/DescribeTasks/StopTask and EC2 DescribeNetworkInterfaces as moto implements them.

The server is moto's own WSGI app (what `moto_server` runs) with one lock around each request: moto's models are
not thread-safe, and its TransactWriteItems in particular is not atomic under concurrent requests (it snapshots
the table, applies the items one by one and restores the snapshot on a failed condition, so interleaved requests
undo each other: 50 concurrent creates of one name left the room counter at 15-17 instead of 1 in stock
moto_server). DynamoDB executes a transaction atomically; the lock gives moto that property. Requests still
arrive concurrently (many client threads, many connections); they are executed one at a time.

moto's task state manager is pinned (`progression: manual`) so that a task stays RUNNING until it is stopped
(otherwise every DescribeTasks advances it, STOPPED by the 4th call).

Used by tests/room_api/test_aws_backend.py, the "aws" contract target of tests/room_api/test_contract.py
(`aws_contract_target`, see AwsContractTarget for what stands in for the containers there) and bench/room_api.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from room_api import aws_lambda  # noqa: E402
from room_api.aws import INDEX, AwsBackend, AwsConfig  # noqa: E402
from room_api.handlers import Api  # noqa: E402

REGION = "eu-west-1"
# Dummy credentials: moto accepts any. Long enough not to be masked by accident anywhere.
ACCESS_KEY = "gf-aws-room-api-access-key"
SECRET_KEY = "gf-aws-room-api-secret-key"
TEST_PORTS = range(15200, 15205)  # the tests' moto server (15205 is bench/room_api.py's)
TABLE = "gf-aws-rooms"
CLUSTER = "gf-aws-rooms"
FAMILY = "gf-aws-room"
CONTAINER = "room"
ROOM_PORT = 12077
BUILD_VERSION = "1.0.0"
PIN_TASKS = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}


def serve(port: int) -> None:
    """moto on 127.0.0.1:port, one request at a time (see the module docstring), until SIGTERM."""
    import signal
    import threading
    from collections.abc import Iterable

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            return list(moto_app(environ, start_response))

    server = make_server("127.0.0.1", port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no owner
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


@dataclass
class MotoServer:
    """The serialized moto server (serve()) as a child process, stopped by its own pid."""

    port: int
    process: subprocess.Popen[bytes] | None = None
    endpoint: str = ""

    def start(self, timeout: float = 30.0) -> None:
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "serve", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server on port {self.port} exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2) as answer:
                    answer.read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def reset(self) -> None:
        """Forgets every resource and pins ECS tasks to RUNNING until they are stopped."""
        _moto_api(self.endpoint, "reset")
        _moto_api(self.endpoint, "state-manager/set-transition", PIN_TASKS)


@contextmanager
def moto_server(ports: range = TEST_PORTS) -> Iterator[MotoServer]:
    """A moto server on the first free port of `ports`, stopped on exit (also on failure)."""
    port = next((p for p in ports if _port_free(p)), None)
    if port is None:
        raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} for moto_server")
    server = MotoServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(endpoint: str, service: str, *, pool: int = 60) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=pool),
    )


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
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
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
    endpoint: str, *, max_rooms: int = 50, assign_public_ip: str = "DISABLED", command: tuple[str, ...] | None = None
) -> AwsWorld:
    """Creates the network, cluster, task definition and table in moto (after a reset) and returns the world."""
    clients = {name: client(endpoint, name) for name in ("dynamodb", "ecs", "ec2")}
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
    return AwsWorld(endpoint, config, vpc_id, clients)


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


class AwsContractTarget:
    """The AWS backend as tests/room_api/test_contract.py sees it (shaped like its LocalTarget), on moto.

    moto runs no containers, so three things the real runtime does are played here, each through the same
    interfaces AWS uses:
    - "answers": there is no game to probe; a room counts as answering while ECS reports its task RUNNING (and, when
      the room has an address, that is the task ENI's address);
    - EventBridge: moto emits no task state change events; wait_gone() sends the real-shaped "ECS Task State Change"
      event of every newly STOPPED task to the cleanup function's handler (aws_lambda.handle_task_state_change);
    - the game's idle exit: wait_gone() stops (StopTask, reason "Essential container in task exited") the task of a
      room older than idle_exit_seconds, as ECS records it when the empty game exits.
    """

    kind = "aws"
    max_rooms = 3
    idle_exit_seconds = 2

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        self.key = secrets.token_urlsafe(24)
        self._build()

    def _build(self) -> None:
        self.server.reset()
        self.world = provision(self.server.endpoint, max_rooms=self.max_rooms)
        create_table(self.world.clients["dynamodb"], f"{TABLE}-failing")
        self.backend = self.world.backend()
        self.api = Api(self.backend, lambda: self.key)
        #: Same kind of backend whose rooms cannot start: its task definition does not exist.
        self.failing_backend = self.world.backend(table=f"{TABLE}-failing", task_definition="gf-aws-no-such-room")
        self.failing_api = Api(self.failing_backend, lambda: self.key)
        self._delivered: set[str] = set()

    def _tasks(self, desired: str) -> list[dict[str, Any]]:
        ecs, cluster = self.world.clients["ecs"], self.world.config.cluster
        arns = ecs.list_tasks(cluster=cluster, desiredStatus=desired)["taskArns"]
        found: list[dict[str, Any]] = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
        return found

    def answers(self, room: dict[str, Any], timeout: float = 10.0) -> bool:
        for task in self._tasks("RUNNING"):
            if task["startedBy"] == room["name"] and task["lastStatus"] == "RUNNING":
                details = {d["name"]: d["value"] for a in task["attachments"] for d in a["details"]}
                return room.get("ip") in (None, details.get("privateIPv4Address"))
        return False

    def runtime_rooms(self) -> list[str]:
        return sorted(t["startedBy"] for t in self._tasks("RUNNING") if t["lastStatus"] == "RUNNING")

    def _idle_exits(self) -> None:
        now = dt.datetime.now(dt.UTC)
        for task in self._tasks("RUNNING"):
            item = self.backend.registry.get(task["startedBy"])
            if item is None or item.get("task_arn", {}).get("S") != task["taskArn"]:
                continue
            created = dt.datetime.fromisoformat(item["created_at"]["S"].replace("Z", "+00:00"))
            if (now - created).total_seconds() >= self.idle_exit_seconds:
                self.world.clients["ecs"].stop_task(
                    cluster=self.world.config.cluster, task=task["taskArn"], reason="Essential container in task exited"
                )

    def deliver_events(self) -> None:
        """EventBridge's part: each STOPPED task's state change event to the cleanup handler, once."""
        for task in self._tasks("STOPPED"):
            if task["taskArn"] not in self._delivered:
                aws_lambda.handle_task_state_change(task_state_change(task, "STOPPED"), self.backend.reap)
                self._delivered.add(task["taskArn"])

    def wait_gone(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._idle_exits()
            self.deliver_events()
            if self.backend.get(name) is None:
                return True
            time.sleep(0.2)
        return False

    def reset(self) -> None:
        """Between tests: a fresh moto state (no rooms, no tasks)."""
        self._build()


# --- pytest fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[MotoServer]:
    """One moto server for the test session (reset by each aws_world)."""
    with moto_server() as server:
        yield server


@pytest.fixture()
def aws_world(moto_endpoint: MotoServer) -> AwsWorld:
    """A fresh moto state with the room infrastructure (max_rooms 50, private IPs)."""
    moto_endpoint.reset()
    return provision(moto_endpoint.endpoint)


@pytest.fixture()
def aws_backend(aws_world: AwsWorld) -> AwsBackend:
    return aws_world.backend()


@pytest.fixture()
def aws_backend_factory(aws_world: AwsWorld) -> Callable[..., AwsBackend]:
    """backend(max_rooms=N, ...) on the same fresh world (one per test)."""
    return aws_world.backend


@pytest.fixture(scope="session")
def aws_contract_target() -> Iterator[AwsContractTarget]:
    """The "aws" target of tests/room_api/test_contract.py (its own moto server)."""
    with moto_server() as server:
        yield AwsContractTarget(server)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve" or not sys.argv[2].isdigit():
        sys.exit("usage: aws_fixture.py serve PORT")
    serve(int(sys.argv[2]))
