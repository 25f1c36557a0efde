# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Amazon ECS calls of the rooms cluster: list tasks and task definition revisions, stop tasks and wait, retire
revisions. Every function takes a boto3 ECS client and raises EcsError (an amazon.aws AnsibleAWSError, for
AnsibleAWSModule.fail_json_aws_error) when a call fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, TypeVar

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError

DELETE_TASK_DEFINITIONS_BATCH = 10  # DeleteTaskDefinitions takes at most 10 revisions
DESCRIBE_TASKS_BATCH = 100  # DescribeTasks (the tasks_stopped waiter) takes at most 100 tasks
WAIT_DELAY = 6  # seconds between two DescribeTasks of the tasks_stopped waiter

T = TypeVar("T")
_RAISE = object()  # _guarded(missing=...) not given


class EcsError(AnsibleAWSError):  # type: ignore[misc]
    """An ECS call failed: message says what was tried, exception is the botocore error."""


class EcsErrorHandler(AWSErrorHandler):  # type: ignore[misc]
    _CUSTOM_EXCEPTION = EcsError

    @classmethod
    def _is_missing(cls) -> type[Exception]:
        result: type[Exception] = is_boto3_error_code("ClusterNotFoundException")
        return result


def _guarded(description: str, call: Callable[[], T], missing: Any = _RAISE) -> T:
    """call(), with a failed AWS call raised as EcsError "Failed to <description>" (a waiter that gave up: "Timeout
    trying to <description>"), as amazon.aws's AWSErrorHandler does; a missing cluster returns missing if given."""
    if missing is _RAISE:
        handler = EcsErrorHandler.common_error_handler(description)
    else:
        handler = EcsErrorHandler.list_error_handler(description, default_value=missing)
    result: T = handler(call)()
    return result


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    """items in consecutive lists of at most size elements (for the calls that take a limited number)."""
    for first in range(0, len(items), size):
        yield items[first : first + size]


def _paginate(ecs: Any, operation: str, key: str, **kwargs: Any) -> list[str]:
    items: list[str] = []
    for page in ecs.get_paginator(operation).paginate(**kwargs):
        items.extend(page[key])
    return items


def family_revisions(ecs: Any, family: str, status: str) -> list[str]:
    """ARNs of the revisions of one task definition family with the status ACTIVE or INACTIVE."""
    arns = _guarded(
        f"list the {status} revisions of the task definition family {family}",
        lambda: _paginate(ecs, "list_task_definitions", "taskDefinitionArns", familyPrefix=family, status=status),
    )
    # familyPrefix matches prefixes: "room" would list "room-test" too
    return [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]


def retirement(active: list[str], inactive: list[str], keep: list[str], delete: bool) -> tuple[list[str], list[str]]:
    """The revisions to deregister (every ACTIVE one not kept) and, with delete, to delete (those and the INACTIVE)."""
    kept = set(keep)
    deregister = [arn for arn in active if arn not in kept]
    return deregister, sorted(set(inactive + deregister)) if delete else []


def retire_revisions(ecs: Any, family: str, deregister: list[str], delete: list[str]) -> list[dict[str, Any]]:
    """Deregisters, then deletes revisions (the lists of retirement()); returns the failures DeleteTaskDefinitions
    reports."""

    def retire() -> list[dict[str, Any]]:
        failures: list[dict[str, Any]] = []
        for arn in deregister:
            ecs.deregister_task_definition(taskDefinition=arn)
        for batch in batches(delete, DELETE_TASK_DEFINITIONS_BATCH):
            failures.extend(ecs.delete_task_definitions(taskDefinitions=batch).get("failures", []))
        return failures

    return _guarded(f"retire revisions of the task definition family {family}", retire)


def cluster_tasks(ecs: Any, cluster: str, desired_status: str) -> list[str]:
    """ARNs of the tasks of a cluster with the desired status RUNNING or STOPPED; none when there is no cluster."""
    return _guarded(
        f"list the tasks of the cluster {cluster}",
        lambda: _paginate(ecs, "list_tasks", "taskArns", cluster=cluster, desiredStatus=desired_status),
        missing=[],
    )


def stop_tasks(ecs: Any, cluster: str, tasks: list[str], reason: str) -> None:
    def stop() -> None:
        for arn in tasks:
            ecs.stop_task(cluster=cluster, task=arn, reason=reason)

    _guarded(f"stop the tasks of the cluster {cluster}", stop)


def wait_stopped(ecs: Any, cluster: str, tasks: list[str], timeout: int, delay: int = WAIT_DELAY) -> None:
    """Waits until every task reached STOPPED (the tasks_stopped waiter, at most timeout seconds per batch)."""

    def wait() -> None:
        waiter = ecs.get_waiter("tasks_stopped")
        config = {"Delay": delay, "MaxAttempts": max(1, timeout // delay)}
        for batch in batches(tasks, DESCRIBE_TASKS_BATCH):
            waiter.wait(cluster=cluster, tasks=batch, WaiterConfig=config)

    _guarded(f"wait for the tasks of the cluster {cluster} to stop", wait)
