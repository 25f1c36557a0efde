"""The AWS backend: rooms are ECS Fargate tasks, the registry is a DynamoDB table (no scan anywhere).

Table (helper-common "DynamoDB table"): hash key `name`; room items carry listing="room", created_key
("<created_at>#<name>"), status, port, build_version, created_at and, once known, task_arn and ip; the global
secondary index `by_created` (listing, created_key) lists them oldest first. The item named "#count" holds the
number of room items (`rooms`): creating a room puts its item and increments the counter in ONE transaction whose
conditions are "no item of that name" and "rooms < max", so concurrent creates can neither duplicate a name nor
exceed the limit. Removing a row (a failed start, the cleanup of a stopped task) deletes it and decrements the
counter in one transaction as well.

A room is "starting" until its task is RUNNING and has an address (the ENI's public IP, or its private IP when
public IPs are disabled); reads of starting rooms ask ECS (one DescribeTasks per page) and record the change.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from room_api.model import (
    MAX_PAGE_SIZE,
    NAME_PATTERN,
    BadRequest,
    CapacityReached,
    NameTaken,
    NotFound,
    Page,
    Room,
    RoomStatus,
    StartFailed,
)

log = logging.getLogger("room_api.aws")

COUNTER_KEY = "#count"
LISTING = "room"
INDEX = "by_created"
#: ECS task states that come before RUNNING, and those after it.
_PENDING_STATES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
_STOPPING_STATES = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING"})
_GONE_STATES = frozenset({"STOPPED", "DELETED"})
_TRANSACTION_ATTEMPTS = 6
_MAX_TOKEN_LENGTH = 512
_DESCRIBE_TASKS_BATCH = 100  # the DescribeTasks limit

Client = Any  # a boto3 client (no type stubs in this project)


class ConfigError(ValueError):
    """A missing or malformed ROOM_* environment variable."""


# --- configuration -------------------------------------------------------------------------------------------

_VARIABLES = {
    "ROOM_TABLE": "the DynamoDB table of the room registry",
    "ROOM_CLUSTER": "the ECS cluster (name or ARN) the rooms run in",
    "ROOM_TASK_DEFINITION": "the room task definition (family or ARN)",
    "ROOM_CONTAINER": "the container name in the task definition",
    "ROOM_SUBNETS": "comma-separated subnet ids of the room tasks",
    "ROOM_SECURITY_GROUPS": "comma-separated security group ids of the room tasks",
    "ROOM_ASSIGN_PUBLIC_IP": "ENABLED or DISABLED",
    "ROOM_CAPACITY_PROVIDER": "FARGATE_SPOT or FARGATE",
    "ROOM_PORT": "the UDP port of the game in the room (12077)",
    "ROOM_BUILD_VERSION": "the build version the room image runs",
    "ROOM_MAX_ROOMS": "the largest number of rooms at once",
}


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set ({_VARIABLES[name]})")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in _require(env, name).split(",") if part.strip())
    if not items:
        raise ConfigError(f"environment variable {name} lists nothing ({_VARIABLES[name]})")
    return items


def _int(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    text = _require(env, name)
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer ({_VARIABLES[name]})") from None
    if not low <= value <= high:
        raise ConfigError(f"environment variable {name}={value} is outside {low}..{high} ({_VARIABLES[name]})")
    return value


@dataclass(frozen=True)
class AwsConfig:
    table: str
    cluster: str
    task_definition: str
    container: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: str  # "ENABLED" | "DISABLED"
    capacity_provider: str
    port: int
    build_version: str
    max_rooms: int
    command: tuple[str, ...] | None = None  # replaces the container's CMD (the game arguments) when set

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AwsConfig:
        """Reads the ROOM_* variables (helper-common "AWS Lambda"); ConfigError names the first bad one."""
        env = os.environ if env is None else env
        assign = _require(env, "ROOM_ASSIGN_PUBLIC_IP").upper()
        if assign not in ("ENABLED", "DISABLED"):
            raise ConfigError(f"environment variable ROOM_ASSIGN_PUBLIC_IP={assign!r} is not ENABLED or DISABLED")
        command: tuple[str, ...] | None = None
        raw_command = env.get("ROOM_COMMAND", "").strip()
        if raw_command:
            try:
                parsed = json.loads(raw_command)
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, list) or not all(isinstance(part, str) for part in parsed):
                raise ConfigError("environment variable ROOM_COMMAND is not a JSON list of strings")
            command = tuple(parsed)
        return cls(
            table=_require(env, "ROOM_TABLE"),
            cluster=_require(env, "ROOM_CLUSTER"),
            task_definition=_require(env, "ROOM_TASK_DEFINITION"),
            container=_require(env, "ROOM_CONTAINER"),
            subnets=_csv(env, "ROOM_SUBNETS"),
            security_groups=_csv(env, "ROOM_SECURITY_GROUPS"),
            assign_public_ip=assign,
            capacity_provider=_require(env, "ROOM_CAPACITY_PROVIDER"),
            port=_int(env, "ROOM_PORT", 1, 65535),
            build_version=_require(env, "ROOM_BUILD_VERSION"),
            max_rooms=_int(env, "ROOM_MAX_ROOMS", 1, 1_000_000),
            command=command,
        )


def default_client(service: str) -> Client:
    """A boto3 client with short timeouts and standard retries; the endpoint comes from AWS_ENDPOINT_URL (botocore)
    when that is set, the region from AWS_REGION (set in Lambda)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=3,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=50,
    )
    return boto3.client(service, config=config)


# --- DynamoDB items ------------------------------------------------------------------------------------------


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _cancellation_codes(exc: Exception) -> list[str]:
    response = getattr(exc, "response", {})
    reasons = response.get("CancellationReasons", []) if isinstance(response, dict) else []
    return [str(reason.get("Code", "None")) for reason in reasons]


def _room_from_item(item: Mapping[str, Any]) -> Room:
    status = item["status"]["S"]
    if status not in ("starting", "running", "stopping"):
        status = "starting"
    ip = item.get("ip", {}).get("S")
    return Room(
        name=item["name"]["S"],
        ip=ip or None,
        port=int(item["port"]["N"]),
        status=cast(RoomStatus, status),
        build_version=item["build_version"]["S"],
        created_at=item["created_at"]["S"],
    )


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_page_token(key: Mapping[str, Any]) -> str:
    """The opaque page token: base64url (unpadded) of the JSON of the index's LastEvaluatedKey."""
    raw = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> dict[str, Any]:
    """The ExclusiveStartKey of a token from encode_page_token; BadRequest bad_page_token for anything else."""
    bad = BadRequest("bad_page_token", "page_token is not a token returned by GET /get_servers")
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(key, dict) or set(key) != {"name", "listing", "created_key"}:
        raise bad
    values: dict[str, str] = {}
    for attr, typed in key.items():
        if not isinstance(typed, dict) or set(typed) != {"S"} or not isinstance(typed["S"], str):
            raise bad
        values[attr] = typed["S"]
    name = values["name"]
    if (
        values["listing"] != LISTING
        or not NAME_PATTERN.fullmatch(name)
        or not values["created_key"].endswith("#" + name)
    ):
        raise bad
    return {attr: {"S": value} for attr, value in values.items()}


class Registry:
    """The DynamoDB side: every operation reads or writes by key or through the by_created index."""

    def __init__(self, table: str, dynamodb: Client) -> None:
        self.table = table
        self.dynamodb = dynamodb

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """TransactWriteItems, retried on transaction conflicts (a concurrent transaction on the same items, e.g.
        the counter); None on success, else the cancellation reason codes."""
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self.dynamodb.transact_write_items(TransactItems=items)
                return None
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                codes = _cancellation_codes(exc)
                if "ConditionalCheckFailed" in codes or "TransactionConflict" not in codes:
                    return codes
                if attempt == _TRANSACTION_ATTEMPTS - 1:
                    return codes
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
        return ["TransactionConflict"]  # pragma: no cover - the loop always returns

    def _counter_update(self, delta: int, max_rooms: int | None) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"name": {"S": COUNTER_KEY}},
            "UpdateExpression": "SET rooms = if_not_exists(rooms, :zero) + :delta",
            "ExpressionAttributeValues": {":zero": {"N": "0"}, ":delta": {"N": str(delta)}},
        }
        if max_rooms is not None:
            update["ConditionExpression"] = "attribute_not_exists(rooms) OR rooms < :max"
            update["ExpressionAttributeValues"][":max"] = {"N": str(max_rooms)}
        return {"Update": update}

    def insert(self, name: str, port: int, build_version: str, created_at: str, max_rooms: int) -> dict[str, Any]:
        """Puts a "starting" row and counts it; NameTaken / CapacityReached when a condition fails."""
        item = {
            "name": {"S": name},
            "listing": {"S": LISTING},
            "created_key": {"S": f"{created_at}#{name}"},
            "created_at": {"S": created_at},
            "status": {"S": "starting"},
            "port": {"N": str(port)},
            "build_version": {"S": build_version},
        }
        put = {
            "Put": {
                "TableName": self.table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#n)",
                "ExpressionAttributeNames": {"#n": "name"},
            }
        }
        codes = self._transact([put, self._counter_update(+1, max_rooms)])
        if codes is None:
            return item
        if codes and codes[0] == "ConditionalCheckFailed":
            raise NameTaken("name_taken", f"a room called {name!r} exists already")
        if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
            raise CapacityReached("capacity", f"the fleet runs its maximum of {max_rooms} rooms; try again later")
        log.warning("create %s: registry transaction cancelled: %s", name, codes)
        raise StartFailed("start_failed", "the room registry is busy; try again")

    def remove_unstarted(self, name: str, created_key: str) -> bool:
        """Undoes insert() after the runtime refused the room (only that very row, still without a task)."""
        delete = {
            "Delete": {
                "TableName": self.table,
                "Key": {"name": {"S": name}},
                "ConditionExpression": "created_key = :ck AND attribute_not_exists(task_arn)",
                "ExpressionAttributeValues": {":ck": {"S": created_key}},
            }
        }
        return self._transact([delete, self._counter_update(-1, None)]) is None

    def reap(self, name: str, task_arn: str) -> bool:
        """Deletes the row of `name` if it belongs to `task_arn` and uncounts it; False when it does not."""
        delete = {
            "Delete": {
                "TableName": self.table,
                "Key": {"name": {"S": name}},
                "ConditionExpression": "task_arn = :arn",
                "ExpressionAttributeValues": {":arn": {"S": task_arn}},
            }
        }
        return self._transact([delete, self._counter_update(-1, None)]) is None

    def get(self, name: str) -> dict[str, Any] | None:
        found = self.dynamodb.get_item(TableName=self.table, Key={"name": {"S": name}}, ConsistentRead=True)
        item: dict[str, Any] | None = found.get("Item")
        if item is None or "listing" not in item:  # the counter is no room
            return None
        return item

    def _conditional_update(
        self, name: str, expression: str, condition: str, values: dict[str, Any]
    ) -> dict[str, Any] | None:
        """UpdateItem returning the new item, or None when the condition failed."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"name": {"S": name}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return cast(dict[str, Any], answer["Attributes"])

    def set_task(self, name: str, created_key: str, task_arn: str) -> dict[str, Any] | None:
        return self._conditional_update(
            name,
            "SET task_arn = :arn",
            "created_key = :ck AND #s IN (:starting, :stopping)",
            {
                ":arn": {"S": task_arn},
                ":ck": {"S": created_key},
                ":starting": {"S": "starting"},
                ":stopping": {"S": "stopping"},
            },
        )

    def set_running(self, name: str, task_arn: str, ip: str) -> dict[str, Any] | None:
        return self._conditional_update(
            name,
            "SET #s = :running, ip = :ip",
            "task_arn = :arn AND #s = :starting",
            {
                ":running": {"S": "running"},
                ":starting": {"S": "starting"},
                ":ip": {"S": ip},
                ":arn": {"S": task_arn},
            },
        )

    def set_stopping(self, name: str, task_arn: str | None) -> dict[str, Any] | None:
        """Marks the row stopping: the row of that task, or (task_arn None) a row whose RunTask is in flight."""
        if task_arn is None:
            condition, values = "attribute_exists(listing) AND attribute_not_exists(task_arn)", {}
        else:
            condition, values = "task_arn = :arn", {":arn": {"S": task_arn}}
        return self._conditional_update(
            name, "SET #s = :stopping", condition, {":stopping": {"S": "stopping"}, **values}
        )

    def page(self, limit: int, start_key: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """`limit` room items oldest first and the key to continue after them (None on the last page). Asks for
        one item more than the page so that the last page does not hand out a token to an empty page."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX,
            "KeyConditionExpression": "listing = :room",
            "ExpressionAttributeValues": {":room": {"S": LISTING}},
            "Limit": limit + 1,
            "ScanIndexForward": True,
        }
        if start_key is not None:
            query["ExclusiveStartKey"] = start_key
        answer = self.dynamodb.query(**query)
        items: list[dict[str, Any]] = answer.get("Items", [])
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            return items, {attr: last[attr] for attr in ("name", "listing", "created_key")}
        # Fewer items than asked: the end, unless DynamoDB stopped early (1 MB per query).
        return items, answer.get("LastEvaluatedKey")


# --- the backend ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TaskView:
    status: str  # ECS lastStatus
    eni: str | None
    private_ip: str | None


class AwsBackend:
    """room_api.backend.Backend on ECS Fargate + DynamoDB. Clients are injectable (tests point them at moto)."""

    kind = "aws"

    def __init__(
        self,
        config: AwsConfig,
        *,
        dynamodb: Client | None = None,
        ecs: Client | None = None,
        ec2: Client | None = None,
        clock: Callable[[], str] = _utc_now,
    ) -> None:
        self.config = config
        self.build_version = config.build_version
        self.registry = Registry(config.table, dynamodb if dynamodb is not None else default_client("dynamodb"))
        self.ecs = ecs if ecs is not None else default_client("ecs")
        self.ec2 = ec2 if ec2 is not None else default_client("ec2")
        self._clock = clock

    # -- create -------------------------------------------------------------------------------------------

    def _run_task_request(self, name: str, created_key: str) -> dict[str, Any]:
        cfg = self.config
        request: dict[str, Any] = {
            # Idempotency: botocore retrying a timed-out RunTask must not start a second task for one row.
            "clientToken": created_key,
            "cluster": cfg.cluster,
            "taskDefinition": cfg.task_definition,
            "count": 1,
            "startedBy": name,
            "capacityProviderStrategy": [{"capacityProvider": cfg.capacity_provider, "weight": 1}],
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(cfg.subnets),
                    "securityGroups": list(cfg.security_groups),
                    "assignPublicIp": cfg.assign_public_ip,
                }
            },
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
            "tags": [{"key": "godot-fleet-room", "value": name}],
        }
        if cfg.command is not None:
            request["overrides"] = {"containerOverrides": [{"name": cfg.container, "command": list(cfg.command)}]}
        return request

    def create(self, name: str) -> Room:
        created_at = self._clock()
        item = self.registry.insert(name, self.config.port, self.build_version, created_at, self.config.max_rooms)
        created_key = item["created_key"]["S"]
        task_arn: str | None = None
        reason = ""
        try:
            answer = self.ecs.run_task(**self._run_task_request(name, created_key))
            tasks = answer.get("tasks", [])
            if answer.get("failures") or len(tasks) != 1:
                reason = "; ".join(
                    f"{f.get('reason')} {f.get('detail', '')}".strip() for f in answer.get("failures", [])
                )
                for task in tasks:  # a partial answer: do not leave a task without a row behind
                    self._stop_task(task["taskArn"], "room start failed")
            else:
                task_arn = str(tasks[0]["taskArn"])
        except (ClientError, BotoCoreError) as exc:
            # An AWS error, or no answer at all (connection, timeout: botocore retried with the same clientToken).
            # Should the task have started anyway, it runs without a row until its game exits when empty.
            reason = f"{type(exc).__name__} {_error_code(exc)}: {exc}"
        except Exception:
            self.registry.remove_unstarted(name, created_key)
            raise
        if task_arn is None:
            log.warning("create %s: RunTask failed: %s", name, reason or "no task")
            if not self.registry.remove_unstarted(name, created_key):
                log.error("create %s: could not remove the row of the failed start", name)
            raise StartFailed("start_failed", "the runtime could not start the room; try again later")
        updated = self.registry.set_task(name, created_key, task_arn)
        if updated is None:  # cannot happen: only this call removes a row without a task
            log.error("create %s: the row disappeared while its task %s started", name, task_arn)
            self._stop_task(task_arn, "room row lost during start")
            raise StartFailed("start_failed", "the room could not be registered; try again")
        if updated["status"]["S"] == "stopping":  # stopped while RunTask was in flight
            self._stop_task(task_arn, "stopped through the room API")
        return _room_from_item(updated)

    # -- read -----------------------------------------------------------------------------------------------

    def _describe(self, arns: list[str]) -> dict[str, _TaskView]:
        views: dict[str, _TaskView] = {}
        for start in range(0, len(arns), _DESCRIBE_TASKS_BATCH):
            answer = self.ecs.describe_tasks(
                cluster=self.config.cluster, tasks=arns[start : start + _DESCRIBE_TASKS_BATCH]
            )
            for task in answer.get("tasks", []):
                eni = private_ip = None
                for attachment in task.get("attachments", []):
                    if attachment.get("type") != "ElasticNetworkInterface":
                        continue
                    details = {d.get("name"): d.get("value") for d in attachment.get("details", [])}
                    eni = details.get("networkInterfaceId")
                    private_ip = details.get("privateIPv4Address")
                views[task["taskArn"]] = _TaskView(str(task.get("lastStatus", "")), eni, private_ip)
        return views

    def _public_ips(self, enis: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(enis))
        if not ids:
            return {}
        # A filter (not NetworkInterfaceIds) so that an ENI deleted meanwhile does not fail the whole call.
        answer = self.ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": ids}])
        found: dict[str, str] = {}
        for eni in answer.get("NetworkInterfaces", []):
            public = eni.get("Association", {}).get("PublicIp")
            if public:
                found[eni["NetworkInterfaceId"]] = public
        return found

    def _refresh(self, items: list[dict[str, Any]]) -> list[Room]:
        """Rooms of `items`, the starting ones refreshed from ECS (one DescribeTasks per 100, one
        DescribeNetworkInterfaces); rooms whose task already stopped are reaped and left out."""
        pending = {
            item["task_arn"]["S"]: item
            for item in items
            if item["status"]["S"] == "starting" and "task_arn" in item and "ip" not in item
        }
        views = self._describe(list(pending)) if pending else {}
        public: dict[str, str] = {}
        if self.config.assign_public_ip == "ENABLED":
            public = self._public_ips(v.eni for v in views.values() if v.status == "RUNNING" and v.eni)
        rooms: list[Room] = []
        for item in items:
            arn = item.get("task_arn", {}).get("S")
            view = views.get(arn) if arn in pending else None
            if view is None:
                rooms.append(_room_from_item(item))
                continue
            name = item["name"]["S"]
            if view.status in _GONE_STATES:
                # The task ended before it ever ran (bad image, no capacity): the cleanup event may not have come.
                self.registry.reap(name, arn)
                continue
            new_item: dict[str, Any] | None = item
            if view.status == "RUNNING":
                ip = public.get(view.eni or "") if self.config.assign_public_ip == "ENABLED" else view.private_ip
                if ip:
                    new_item = self.registry.set_running(name, arn, ip) or self.registry.get(name)
            elif view.status in _STOPPING_STATES:
                new_item = self.registry.set_stopping(name, arn) or self.registry.get(name)
            if new_item is not None:
                rooms.append(_room_from_item(new_item))
        return rooms

    def get(self, name: str) -> Room | None:
        item = self.registry.get(name)
        if item is None:
            return None
        rooms = self._refresh([item])
        return rooms[0] if rooms else None

    def list(self, limit: int, page_token: str | None) -> Page:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise BadRequest("bad_limit", f"limit must be 1..{MAX_PAGE_SIZE}")
        start_key = decode_page_token(page_token) if page_token is not None else None
        items, last_key = self.registry.page(limit, start_key)
        return Page(self._refresh(items), encode_page_token(last_key) if last_key else None)

    # -- stop / cleanup -------------------------------------------------------------------------------------

    def _stop_task(self, task_arn: str, reason: str) -> bool:
        """StopTask; False when ECS no longer knows the task (it stopped long ago)."""
        try:
            self.ecs.stop_task(cluster=self.config.cluster, task=task_arn, reason=reason)
        except ClientError as exc:
            # "The referenced task was not found": ECS forgets stopped tasks after about an hour.
            if _error_code(exc) == "InvalidParameterException" and "not found" in str(exc).lower():
                log.warning("stop %s: ECS does not know the task: %s", task_arn, exc)
                return False
            raise
        return True

    def stop(self, name: str) -> Room:
        for _attempt in range(3):
            item = self.registry.get(name)
            if item is None:
                raise NotFound("not_found", f"there is no room called {name!r}")
            arn = item.get("task_arn", {}).get("S")
            if arn is None:
                # RunTask is in flight: mark the row, create() stops the task when it records it.
                updated = self.registry.set_stopping(name, None)
                if updated is not None:
                    return _room_from_item(updated)
                continue  # the task ARN arrived meanwhile: read again
            if not self._stop_task(arn, "stopped through the room API"):
                # ECS forgot the task (stopped over an hour ago) and the cleanup missed it: drop the row.
                self.registry.reap(name, arn)
                return _room_from_item({**item, "status": {"S": "stopping"}})
            updated = self.registry.set_stopping(name, arn)
            if updated is not None:
                return _room_from_item(updated)
            # The row was reaped (or replaced) meanwhile: read again.
        raise NotFound("not_found", f"there is no room called {name!r}")

    def reap(self, name: str, runtime_id: str) -> bool:
        return self.registry.reap(name, runtime_id)
