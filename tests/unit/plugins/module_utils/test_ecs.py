"""plugins/module_utils/ecs.py against a botocore ECS client whose answers are stubbed (botocore's Stubber checks
every request against the ECS API model and the parameters the test expects)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import ecs as ecs_utils
from botocore.stub import Stubber

CLUSTER = "godot-fleet-rooms"
FAMILY = "godot-fleet-room"
PREFIX = "arn:aws:ecs:eu-west-1:123456789012"


def task(n: int) -> str:
    return f"{PREFIX}:task/{CLUSTER}/{n:032x}"


def revision(n: int, family: str = FAMILY) -> str:
    return f"{PREFIX}:task-definition/{family}:{n}"


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    client = botocore.session.get_session().create_client(
        "ecs", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_batches() -> None:
    assert list(ecs_utils.batches([str(i) for i in range(5)], 2)) == [["0", "1"], ["2", "3"], ["4"]]
    assert list(ecs_utils.batches([], 10)) == []


def test_family_revisions_follow_pages_and_drop_other_families_with_the_same_prefix(ecs: Any) -> None:
    client, stubber = ecs
    request = {"familyPrefix": FAMILY, "status": "ACTIVE"}
    stubber.add_response(
        "list_task_definitions",
        {"taskDefinitionArns": [revision(1), revision(1, FAMILY + "-test")], "nextToken": "t"},
        request,
    )
    stubber.add_response("list_task_definitions", {"taskDefinitionArns": [revision(2)]}, {**request, "nextToken": "t"})
    assert ecs_utils.family_revisions(client, FAMILY, "ACTIVE") == [revision(1), revision(2)]


def test_retirement() -> None:
    active = [revision(3), revision(4), revision(5)]
    assert ecs_utils.retirement(active, [revision(1)], [revision(5)], delete=False) == ([revision(3), revision(4)], [])
    assert ecs_utils.retirement(active, [revision(1)], [revision(5)], delete=True) == (
        [revision(3), revision(4)],
        [revision(1), revision(3), revision(4)],
    )
    assert ecs_utils.retirement(active, [], active, delete=False) == ([], [])


def test_retire_revisions_deregisters_then_deletes_in_batches_of_ten(ecs: Any) -> None:
    client, stubber = ecs
    deregister = [revision(20), revision(21)]
    delete = [revision(n) for n in range(1, 13)]
    for arn in deregister:
        stubber.add_response("deregister_task_definition", {}, {"taskDefinition": arn})
    stubber.add_response("delete_task_definitions", {"failures": []}, {"taskDefinitions": delete[:10]})
    failure = {"arn": delete[11], "reason": "in use"}
    stubber.add_response("delete_task_definitions", {"failures": [failure]}, {"taskDefinitions": delete[10:]})
    assert ecs_utils.retire_revisions(client, FAMILY, deregister, delete) == [failure]


def test_cluster_tasks(ecs: Any) -> None:
    client, stubber = ecs
    request = {"cluster": CLUSTER, "desiredStatus": "RUNNING"}
    stubber.add_response("list_tasks", {"taskArns": [task(1)], "nextToken": "t"}, request)
    stubber.add_response("list_tasks", {"taskArns": [task(2)]}, {**request, "nextToken": "t"})
    assert ecs_utils.cluster_tasks(client, CLUSTER, "RUNNING") == [task(1), task(2)]


def test_a_missing_cluster_has_no_tasks(ecs: Any) -> None:
    client, stubber = ecs
    stubber.add_client_error("list_tasks", service_error_code="ClusterNotFoundException", http_status_code=400)
    assert ecs_utils.cluster_tasks(client, CLUSTER, "STOPPED") == []


def test_other_errors_say_what_failed(ecs: Any) -> None:
    client, stubber = ecs
    stubber.add_client_error("list_tasks", service_error_code="AccessDeniedException", http_status_code=400)
    with pytest.raises(ecs_utils.EcsError) as raised:
        ecs_utils.cluster_tasks(client, CLUSTER, "RUNNING")
    assert raised.value.message == f"Failed to list the tasks of the cluster {CLUSTER}"
    assert raised.value.exception.response["Error"]["Code"] == "AccessDeniedException"


def test_stop_tasks(ecs: Any) -> None:
    client, stubber = ecs
    for n in (1, 2):
        stubber.add_response("stop_task", {}, {"cluster": CLUSTER, "task": task(n), "reason": "teardown"})
    ecs_utils.stop_tasks(client, CLUSTER, [task(1), task(2)], "teardown")


def test_wait_stopped_asks_for_at_most_one_hundred_tasks_at_a_time(ecs: Any) -> None:
    client, stubber = ecs
    tasks = [task(n) for n in range(150)]
    for batch in (tasks[:100], tasks[100:]):
        stubber.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": arn, "lastStatus": "STOPPED"} for arn in batch], "failures": []},
            {"cluster": CLUSTER, "tasks": batch},
        )
    ecs_utils.wait_stopped(client, CLUSTER, tasks, timeout=600)


def test_wait_stopped_times_out(ecs: Any) -> None:
    client, stubber = ecs
    stubber.add_response(
        "describe_tasks",
        {"tasks": [{"taskArn": task(1), "lastStatus": "RUNNING"}], "failures": []},
        {"cluster": CLUSTER, "tasks": [task(1)]},
    )
    with pytest.raises(ecs_utils.EcsError, match="Timeout trying to wait for the tasks of the cluster"):
        ecs_utils.wait_stopped(client, CLUSTER, [task(1)], timeout=1, delay=1)
