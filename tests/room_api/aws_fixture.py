"""The AWS backend of the room API on the local AWS (testbed.aws, testbed.aws_rooms): the pytest fixtures, and the
"aws" target of tests/room_api/test_contract.py.

Used by tests/room_api/test_aws_backend.py and test_contract.py.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from room_api import aws_lambda
from room_api.aws import AwsBackend
from room_api.handlers import Api
from testbed.aws import LocalAws, local_aws
from testbed.aws_rooms import TABLE, AwsWorld, create_table, fresh, provision, task_state_change

TEST_PORTS = range(15200, 15205)  # the tests' local AWS (15205 is bench/room_api.py's)


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

    def __init__(self, server: LocalAws) -> None:
        self.server = server
        self.key = secrets.token_urlsafe(24)
        self._build()

    def _build(self) -> None:
        fresh(self.server)
        self.world = provision(self.server, max_rooms=self.max_rooms)
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
def moto_endpoint() -> Iterator[LocalAws]:
    """One local AWS for the test session (made fresh by each aws_world)."""
    with local_aws(TEST_PORTS) as server:
        yield server


@pytest.fixture()
def aws_world(moto_endpoint: LocalAws) -> AwsWorld:
    """A fresh local AWS with the room infrastructure (max_rooms 50, private IPs)."""
    fresh(moto_endpoint)
    return provision(moto_endpoint)


@pytest.fixture()
def aws_backend(aws_world: AwsWorld) -> AwsBackend:
    return aws_world.backend()


@pytest.fixture()
def aws_backend_factory(aws_world: AwsWorld) -> Callable[..., AwsBackend]:
    """backend(max_rooms=N, ...) on the same fresh world (one per test)."""
    return aws_world.backend


@pytest.fixture(scope="session")
def aws_contract_target() -> Iterator[AwsContractTarget]:
    """The "aws" target of tests/room_api/test_contract.py (its own local AWS)."""
    with local_aws(TEST_PORTS) as server:
        yield AwsContractTarget(server)
