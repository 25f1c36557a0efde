"""AWS backend tests against moto (the local AWS of testbed.aws; fixtures in tests/room_api/aws_fixture.py):
DynamoDB transactions under concurrency, RunTask failures, reaping, paging, no Scan, and the Lambda entry points
with real payload-2.0 / EventBridge events.

moto runs no containers: a room is a DynamoDB row and an ECS task record (RUNNING, private IP). Mocked: only the
TransactionConflict cancellation (DynamoDB returns it when two transactions touch one item at the same moment;
moto executes requests one at a time and never does), injected in one test around the real moto client. One other
test wraps the real ECS client only to order two real requests (a stop that overtakes RunTask).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from room_api import aws_lambda
from room_api.aws import COUNTER_KEY, AwsBackend, AwsConfig, ConfigError, decode_page_token, encode_page_token
from room_api.model import BadRequest, CapacityReached, NameTaken, NotFound, StartFailed
from testbed.aws import LocalAws
from testbed.aws_rooms import AwsWorld, client, fresh, provision, task_state_change
from tests.room_api import aws_fixture

# The fixtures of aws_fixture (moto server per session, a fresh world per test).
moto_endpoint = aws_fixture.moto_endpoint
aws_world = aws_fixture.aws_world
aws_backend = aws_fixture.aws_backend

API_KEY = "gf-aws-test-api-key-0123456789abcdef"
KEY_PARAMETER = "/gf-aws/room-api/key"

# --- helpers -------------------------------------------------------------------------------------------------


def counter(world: AwsWorld) -> int:
    item = world.clients["dynamodb"].get_item(
        TableName=world.config.table, Key={"name": {"S": COUNTER_KEY}}, ConsistentRead=True
    )
    return int(item["Item"]["rooms"]["N"]) if "Item" in item else 0


def row(world: AwsWorld, name: str) -> dict[str, Any] | None:
    item = world.clients["dynamodb"].get_item(TableName=world.config.table, Key={"name": {"S": name}})
    found: dict[str, Any] | None = item.get("Item")
    return found


def all_rows(world: AwsWorld) -> list[dict[str, Any]]:
    """Every room row, read through the index (pages of 100)."""
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        answer = world.clients["dynamodb"].query(
            TableName=world.config.table,
            IndexName="by_created",
            KeyConditionExpression="listing = :room",
            ExpressionAttributeValues={":room": {"S": "room"}},
            **kwargs,
        )
        rows += answer["Items"]
        if "LastEvaluatedKey" not in answer:
            return rows
        kwargs = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}


def tasks(world: AwsWorld, desired: str = "RUNNING") -> list[dict[str, Any]]:
    ecs = world.clients["ecs"]
    arns = ecs.list_tasks(cluster=world.config.cluster, desiredStatus=desired)["taskArns"]
    return ecs.describe_tasks(cluster=world.config.cluster, tasks=arns)["tasks"] if arns else []


def record_calls(world: AwsWorld) -> Counter[str]:
    """Counts every API call of the world's clients as "service.Operation"."""
    calls: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    for service, c in world.clients.items():
        c.meta.events.register(f"before-call.{service}", hook)
    return calls


def in_threads(count: int, work: Callable[[int], object]) -> list[str]:
    """Runs work(i) in `count` threads released together; the outcome of each: "ok" or the exception's name."""
    barrier = threading.Barrier(count)
    outcomes = [""] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
            outcomes[i] = "ok"
        except Exception as exc:
            outcomes[i] = type(exc).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


# --- create / registry ---------------------------------------------------------------------------------------


def test_create_writes_row_counter_and_task(aws_world: AwsWorld) -> None:
    backend = aws_world.backend(command=("--max-players=8", "--empty-server-timeout=5"))
    room = backend.create("alpha-1")
    assert (room.name, room.status, room.ip, room.port, room.build_version) == (
        "alpha-1",
        "starting",
        None,
        12077,
        "1.0.0",
    )
    item = row(aws_world, "alpha-1")
    assert item is not None
    assert item["listing"] == {"S": "room"}
    assert item["created_key"] == {"S": f"{room.created_at}#alpha-1"}
    assert counter(aws_world) == 1
    [task] = tasks(aws_world)
    assert item["task_arn"] == {"S": task["taskArn"]}
    assert task["startedBy"] == "alpha-1"
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    assert task["overrides"]["containerOverrides"] == [
        {"name": "room", "command": ["--max-players=8", "--empty-server-timeout=5"]}
    ]
    eni = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert eni["subnetId"] == aws_world.config.subnets[0]
    # The first read finds the task RUNNING with its (private: assignPublicIp DISABLED) address and records it.
    got = backend.get("alpha-1")
    assert got is not None and got.status == "running" and got.ip == eni["privateIPv4Address"]
    assert row(aws_world, "alpha-1")["status"] == {"S": "running"}  # type: ignore[index]


def test_concurrent_creates_of_one_name_make_one_room(aws_world: AwsWorld) -> None:
    backend = aws_world.backend()
    outcomes = in_threads(20, lambda _: backend.create("same-name"))
    assert Counter(outcomes) == {"ok": 1, "NameTaken": 19}
    assert [r["name"]["S"] for r in all_rows(aws_world)] == ["same-name"]
    assert counter(aws_world) == 1
    assert len(tasks(aws_world)) == 1  # the losers never called RunTask


def test_concurrent_creates_stop_at_capacity(aws_world: AwsWorld) -> None:
    backend = aws_world.backend(max_rooms=5)
    outcomes = in_threads(20, lambda i: backend.create(f"room-c{i:02d}"))
    assert Counter(outcomes) == {"ok": 5, "CapacityReached": 15}
    assert len(all_rows(aws_world)) == 5
    assert counter(aws_world) == 5
    assert len(tasks(aws_world)) == 5
    with pytest.raises(CapacityReached) as caught:
        backend.create("one-more")
    assert caught.value.code == "capacity"
    # A reaped room frees its slot.
    name = all_rows(aws_world)[0]["name"]["S"]
    assert backend.reap(name, row(aws_world, name)["task_arn"]["S"])  # type: ignore[index]
    assert backend.create("one-more").name == "one-more"
    assert counter(aws_world) == 5


def test_name_taken_while_a_room_exists(aws_backend: AwsBackend) -> None:
    aws_backend.create("taken")
    with pytest.raises(NameTaken) as caught:
        aws_backend.create("taken")
    assert caught.value.code == "name_taken"


def test_run_task_failure_leaves_no_row(aws_world: AwsWorld) -> None:
    good = aws_world.backend()
    good.create("before")
    broken = aws_world.backend(task_definition="gf-aws-no-such-family")
    with pytest.raises(StartFailed) as caught:
        broken.create("doomed")
    assert caught.value.code == "start_failed"
    assert "gf-aws-no-such-family" not in caught.value.message  # no internals in the answer
    assert row(aws_world, "doomed") is None
    assert counter(aws_world) == 1
    assert [t["startedBy"] for t in tasks(aws_world)] == ["before"]
    assert good.create("doomed").name == "doomed"  # the name is free again


def test_transaction_conflicts_are_retried(aws_world: AwsWorld) -> None:
    """DynamoDB cancels a transaction with TransactionConflict when another one touches the same item at that
    moment (here: the counter). moto never does, so the first two attempts are answered that way by a wrapper."""
    real = aws_world.clients["dynamodb"]

    class Conflicting:
        def __init__(self) -> None:
            self.conflicts = 2

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            if self.conflicts:
                self.conflicts -= 1
                error = {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                }
                raise ClientError(error, "TransactWriteItems")
            return real.transact_write_items(**kwargs)

    backend = AwsBackend(
        aws_world.config, dynamodb=Conflicting(), ecs=aws_world.clients["ecs"], ec2=aws_world.clients["ec2"]
    )
    assert backend.create("after-conflict").status == "starting"
    assert counter(aws_world) == 1


def test_stop_during_run_task_stops_the_new_task(aws_world: AwsWorld) -> None:
    """A stop that arrives while RunTask is in flight (row without a task yet) is honoured once the task exists."""
    real_ecs = aws_world.clients["ecs"]
    holder: dict[str, AwsBackend] = {}

    class SlowEcs:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_ecs, name)

        def run_task(self, **kwargs: Any) -> Any:
            stopped = holder["backend"].stop(kwargs["startedBy"])  # the stop request overtakes RunTask
            assert stopped.status == "stopping"
            return real_ecs.run_task(**kwargs)

    backend = AwsBackend(
        aws_world.config, dynamodb=aws_world.clients["dynamodb"], ecs=SlowEcs(), ec2=aws_world.clients["ec2"]
    )
    holder["backend"] = backend
    room = backend.create("overtaken")
    assert room.status == "stopping"
    assert tasks(aws_world) == []
    [stopped] = tasks(aws_world, "STOPPED")
    assert stopped["startedBy"] == "overtaken"


# --- stop / reap ---------------------------------------------------------------------------------------------


def test_stop_then_reap(aws_world: AwsWorld) -> None:
    backend = aws_world.backend()
    backend.create("short-lived")
    arn = row(aws_world, "short-lived")["task_arn"]["S"]  # type: ignore[index]
    room = backend.stop("short-lived")
    assert room.status == "stopping"
    [task] = tasks(aws_world, "STOPPED")
    assert task["taskArn"] == arn and task["stoppedReason"] == "stopped through the room API"
    assert backend.get("short-lived").status == "stopping"  # type: ignore[union-attr]
    with pytest.raises(NameTaken):  # the row stays until the runtime reports the task stopped
        backend.create("short-lived")
    assert backend.reap("short-lived", arn) is True
    assert backend.get("short-lived") is None
    assert counter(aws_world) == 0
    assert backend.reap("short-lived", arn) is False  # already gone
    with pytest.raises(NotFound):
        backend.stop("short-lived")


def test_reap_with_another_task_arn_removes_nothing(aws_world: AwsWorld) -> None:
    backend = aws_world.backend()
    backend.create("reused")
    old_arn = row(aws_world, "reused")["task_arn"]["S"]  # type: ignore[index]
    assert backend.reap("reused", old_arn.replace(old_arn[-6:], "ffffff")) is False
    assert backend.reap("reused", old_arn)
    backend.create("reused")  # a newer room of the same name
    new_arn = row(aws_world, "reused")["task_arn"]["S"]  # type: ignore[index]
    assert new_arn != old_arn
    assert backend.reap("reused", old_arn) is False  # the late cleanup of the old task
    assert row(aws_world, "reused") is not None and counter(aws_world) == 1
    assert backend.reap("never-existed", old_arn) is False
    assert counter(aws_world) == 1


def test_a_starting_room_whose_task_died_is_reaped_on_read(aws_world: AwsWorld) -> None:
    """The task stopped before it ever ran (and the cleanup event was lost): reading the room removes it."""
    backend = aws_world.backend()
    backend.create("crashed")
    arn = row(aws_world, "crashed")["task_arn"]["S"]  # type: ignore[index]
    aws_world.clients["ecs"].stop_task(cluster=aws_world.config.cluster, task=arn, reason="CannotPullContainerError")
    assert backend.get("crashed") is None
    assert row(aws_world, "crashed") is None and counter(aws_world) == 0


# --- reads ---------------------------------------------------------------------------------------------------


def test_pages_walk_every_room_once_in_creation_order(aws_world: AwsWorld) -> None:
    clock = iter(f"2026-11-21T10:00:{s:02d}Z" for s in range(60))
    backend = AwsBackend(
        aws_world.config,
        dynamodb=aws_world.clients["dynamodb"],
        ecs=aws_world.clients["ecs"],
        ec2=aws_world.clients["ec2"],
        clock=lambda: next(clock),
    )
    names = [f"page-{i:02d}" for i in range(10)][::-1]  # creation order differs from name order
    for name in names:
        backend.create(name)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = backend.list(3, token)
        pages += 1
        seen += [r.name for r in page.rooms]
        token = page.next_page_token
        if token is None:
            break
    assert seen == names and pages == 4  # 3+3+3+1, no trailing empty page
    assert all(r.status == "running" for r in backend.list(100, None).rooms)
    exact = backend.list(5, None)
    assert exact.next_page_token is not None and backend.list(5, exact.next_page_token).next_page_token is None


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "!!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"name": {"S": "x"}}').decode(),
        encode_page_token({"name": {"S": "abc"}, "listing": {"S": "room"}, "created_key": {"S": "2026#other"}}),
        encode_page_token({"name": {"S": "abc"}, "listing": {"S": "nope"}, "created_key": {"S": "2026#abc"}}),
        encode_page_token({"name": {"N": "1"}, "listing": {"S": "room"}, "created_key": {"S": "2026#abc"}}),
        "A" * 2000,
    ],
)
def test_bad_page_tokens_are_refused(aws_backend: AwsBackend, token: str) -> None:
    with pytest.raises(BadRequest) as caught:
        aws_backend.list(10, token)
    assert caught.value.code == "bad_page_token"


def test_page_token_round_trip() -> None:
    key = {"name": {"S": "abc"}, "listing": {"S": "room"}, "created_key": {"S": "2026-11-21T10:00:00Z#abc"}}
    token = encode_page_token(key)
    assert "=" not in token and decode_page_token(token) == key


def test_one_describe_tasks_per_page_and_no_scan(aws_world: AwsWorld) -> None:
    backend = aws_world.backend()
    calls = record_calls(aws_world)
    for i in range(6):
        backend.create(f"batch-{i}")
    with pytest.raises(NameTaken):
        backend.create("batch-0")
    calls.clear()
    page = backend.list(50, None)
    assert [r.status for r in page.rooms] == ["running"] * 6
    assert calls["ecs.DescribeTasks"] == 1 and calls["dynamodb.Query"] == 1
    calls.clear()
    backend.list(50, None)  # nothing starting any more: DynamoDB only
    assert set(calls) == {"dynamodb.Query"}
    backend.get("batch-1")
    backend.get("missing")
    backend.stop("batch-2")
    backend.reap("batch-2", row(aws_world, "batch-2")["task_arn"]["S"])  # type: ignore[index]
    backend.list(2, backend.list(2, None).next_page_token)
    with pytest.raises(StartFailed):
        aws_world.backend(task_definition="gf-aws-nothing").create("fails")
    dynamodb_ops = {op for op in calls if op.startswith("dynamodb.")}
    assert "dynamodb.Scan" not in dynamodb_ops
    assert dynamodb_ops <= {
        "dynamodb.GetItem",
        "dynamodb.Query",
        "dynamodb.UpdateItem",
        "dynamodb.TransactWriteItems",
    }


def test_public_ip_comes_from_the_eni_association(moto_endpoint: LocalAws) -> None:
    fresh(moto_endpoint)
    world = provision(moto_endpoint, assign_public_ip="ENABLED")
    backend = world.backend()
    backend.create("public-1")
    # moto gives the task's ENI no public IP: the room stays starting (no address to hand out yet) ...
    room = backend.get("public-1")
    assert room is not None and room.status == "starting" and room.ip is None
    # ... until the ENI has one (here an Elastic IP associated with it).
    [task] = tasks(world)
    eni = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}["networkInterfaceId"]
    ec2 = world.clients["ec2"]
    allocation = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)
    room = backend.get("public-1")
    assert room is not None and room.status == "running" and room.ip == allocation["PublicIp"]


# --- configuration -------------------------------------------------------------------------------------------


def test_config_from_env_names_the_missing_variable(aws_world: AwsWorld) -> None:
    env = aws_world.environment(ROOM_COMMAND='["--max-players=4"]')
    config = AwsConfig.from_env(env)
    assert config.subnets == aws_world.config.subnets and config.command == ("--max-players=4",)
    assert config.port == 12077 and config.max_rooms == 50
    for name in ("ROOM_TABLE", "ROOM_SUBNETS", "ROOM_MAX_ROOMS"):
        with pytest.raises(ConfigError, match=name):
            AwsConfig.from_env({k: v for k, v in env.items() if k != name})
    for name, value in (
        ("ROOM_MAX_ROOMS", "many"),
        ("ROOM_PORT", "70000"),
        ("ROOM_ASSIGN_PUBLIC_IP", "maybe"),
        ("ROOM_COMMAND", '"--x"'),
        ("ROOM_SUBNETS", " , "),
    ):
        with pytest.raises(ConfigError, match=name):
            AwsConfig.from_env({**env, name: value})


# --- Lambda entry points -------------------------------------------------------------------------------------


@pytest.fixture()
def ssm(moto_endpoint: LocalAws) -> Any:
    """An SSM client of the local AWS, in the world's region."""
    return client(moto_endpoint, "ssm")


@pytest.fixture()
def lambda_env(aws_world: AwsWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    """The API function's environment (the world's resources, the key in SSM) and a fresh container."""
    ssm.put_parameter(Name=KEY_PARAMETER, Value=API_KEY, Type="SecureString")
    for key in [k for k in list(os.environ) if k.startswith(("AWS_", "ROOM_"))]:
        monkeypatch.delenv(key)
    for key, value in aws_world.environment(ROOM_API_KEY_PARAMETER=KEY_PARAMETER).items():
        monkeypatch.setenv(key, value)
    aws_lambda.reset()
    yield aws_world
    aws_lambda.reset()


def http_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    base64_body: bool = False,
    query: dict[str, str] | None = None,
    key: str | None = API_KEY,
    stage: str = "$default",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event as API Gateway sends it."""
    headers = {
        "accept": "*/*",
        "content-length": str(len(body or "")),
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "curl/8.5.0",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers["content-type"] = "application/json"
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": stage,
            "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795255200000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    return event


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = aws_lambda.api_handler(event, None)
    assert set(answer) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert answer["headers"]["content-type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"])


def test_api_handler_with_payload_v2_events(lambda_env: AwsWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, body = call(http_event("GET", "/health", key=None))
    assert (status, body) == (200, {"status": "ok", "backend": "aws", "build_version": "1.0.0"})

    status, body = call(http_event("POST", "/create_server", body='{"name": "lambda-1"}', base64_body=True))
    assert status == 201 and body["room"]["name"] == "lambda-1" and body["room"]["status"] == "starting"
    status, body = call(http_event("POST", "/create_server", body="{}", stage="prod"))  # stage prefix stripped
    assert status == 201 and body["room"]["name"].startswith("room-")

    status, body = call(http_event("POST", "/create_server", body='{"name": "lambda-2"}', key=None))
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = call(http_event("POST", "/create_server", body='{"name": "lambda-2"}', key="wrong-key"))
    assert status == 401
    status, body = call(http_event("POST", "/create_server", body="bm90IGpzb24=!", base64_body=False))
    assert (status, body["error"]) == (400, "bad_json")
    bad64 = http_event("POST", "/create_server", body="{}", base64_body=True)
    bad64["body"] = "%%%not-base64%%%"
    status, body = call(bad64)
    assert (status, body["error"]) == (400, "bad_json")
    assert row(lambda_env, "lambda-2") is None

    status, body = call(http_event("GET", "/get_servers", query={"name": "lambda-1"}))
    assert status == 200 and [r["status"] for r in body["rooms"]] == ["running"]
    status, body = call(http_event("GET", "/get_servers", query={"limit": "1"}))
    assert status == 200 and len(body["rooms"]) == 1 and body["next_page_token"]
    status, body = call(http_event("GET", "/get_servers", query={"page_token": body["next_page_token"]}))
    assert status == 200 and len(body["rooms"]) == 1 and body["next_page_token"] is None
    status, body = call(http_event("GET", "/get_servers", query={"page_token": "bogus"}))
    assert (status, body["error"]) == (400, "bad_page_token")
    status, body = call(http_event("GET", "/get_servers", key=None))
    assert status == 401  # ROOM_OPEN_LISTING unset: listing needs the key

    status, body = call(http_event("DELETE", "/servers/lambda-1"))
    assert status == 200 and body["room"]["status"] == "stopping"
    status, body = call(http_event("POST", "/stop_server", body='{"name": "lambda-1"}'))
    assert status == 200
    status, body = call(http_event("POST", "/stop_server", body='{"name": "nobody"}'))
    assert (status, body["error"]) == (404, "not_found")

    assert API_KEY not in caplog.text and "wrong-key" not in caplog.text


def test_api_key_is_read_once_and_follows_rotation(lambda_env: AwsWorld, ssm: Any) -> None:
    api = aws_lambda.get_api()
    key = api.key
    assert isinstance(key, aws_lambda.CachedParameter) and KEY_PARAMETER in repr(key) and API_KEY not in repr(key)
    now = [1000.0]
    cached = aws_lambda.CachedParameter(ssm, KEY_PARAMETER, ttl=300, clock=lambda: now[0])
    reads = Counter[str]()
    ssm.meta.events.register("before-call.ssm.GetParameter", lambda **_: reads.update(["GetParameter"]))
    assert cached() == API_KEY and cached() == API_KEY and reads["GetParameter"] == 1
    ssm.put_parameter(Name=KEY_PARAMETER, Value="gf-aws-rotated-key-0123456789", Type="SecureString", Overwrite=True)
    now[0] += 299
    assert cached() == API_KEY  # still cached
    now[0] += 2
    assert cached() == "gf-aws-rotated-key-0123456789" and reads["GetParameter"] == 2
    ssm.delete_parameter(Name=KEY_PARAMETER)
    now[0] += 301
    assert cached() == "gf-aws-rotated-key-0123456789"  # SSM failing: the last key keeps working


def test_api_handler_without_the_key_parameter_fails_closed(lambda_env: AwsWorld, ssm: Any) -> None:
    ssm.delete_parameter(Name=KEY_PARAMETER)
    status, body = call(http_event("POST", "/create_server", body='{"name": "no-key"}'))
    assert (status, body["error"]) == (500, "internal")
    assert row(lambda_env, "no-key") is None
    status, _ = call(http_event("GET", "/health", key=None))
    assert status == 200


def test_api_handler_reports_a_missing_variable(lambda_env: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOM_CLUSTER")
    status, body = call(http_event("GET", "/health", key=None))
    assert (status, body["error"]) == (500, "internal")


def test_cleanup_handler_reaps_stopped_room_tasks(
    lambda_env: AwsWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for key in [k for k in os.environ if k.startswith("ROOM_") and k != "ROOM_TABLE"]:
        monkeypatch.delenv(key)  # the cleanup function gets ROOM_TABLE only
    backend = lambda_env.backend()
    backend.create("cleanup-1")
    [task] = tasks(lambda_env)
    caplog.set_level(logging.INFO, logger="room_api")

    assert aws_lambda.cleanup_handler(task_state_change(task, "RUNNING"), None)["removed"] is False
    other = {**task, "startedBy": "ecs-svc/9223370545345641169"}
    assert aws_lambda.cleanup_handler(task_state_change(other, "STOPPED"), None)["removed"] is False
    foreign = {**task, "taskArn": task["taskArn"][:-4] + "beef"}
    assert aws_lambda.cleanup_handler(task_state_change(foreign, "STOPPED"), None)["removed"] is False
    assert row(lambda_env, "cleanup-1") is not None and counter(lambda_env) == 1

    backend.stop("cleanup-1")
    assert aws_lambda.cleanup_handler(task_state_change(task, "STOPPED"), None) == {
        "removed": True,
        "room": "cleanup-1",
    }
    assert row(lambda_env, "cleanup-1") is None and counter(lambda_env) == 0
    assert aws_lambda.cleanup_handler(task_state_change(task, "STOPPED"), None)["removed"] is False  # redelivery
    lines = [r.getMessage() for r in caplog.records if r.name == "room_api.lambda"]
    assert any('"cleanup": "removed"' in line and "cleanup-1" in line for line in lines)
