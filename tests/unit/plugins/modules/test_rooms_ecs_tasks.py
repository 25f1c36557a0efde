"""The rooms_ecs_tasks module: main() against a stubbed ECS API."""

from __future__ import annotations

from ansible_collections.godot_fleet.fleet.plugins.modules import rooms_ecs_tasks
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import (
    fail_module,
    run_module,
    stubbed_aws,
)
from botocore.stub import Stubber

CLUSTER = "godot-fleet-rooms"
RUNNING = [f"arn:aws:ecs:eu-west-1:123456789012:task/{CLUSTER}/{n:032x}" for n in (1, 2)]
STOPPING = [f"arn:aws:ecs:eu-west-1:123456789012:task/{CLUSTER}/{n:032x}" for n in (3,)]


def listed(stubber: Stubber, running: list[str], stopping: list[str]) -> None:
    for status, arns in (("RUNNING", running), ("STOPPED", stopping)):
        stubber.add_response("list_tasks", {"taskArns": arns}, {"cluster": CLUSTER, "desiredStatus": status})


def test_stops_every_running_task_and_waits_for_all() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, RUNNING, STOPPING)
        for arn in RUNNING:
            stubber.add_response("stop_task", {}, {"cluster": CLUSTER, "task": arn, "reason": "bye"})
        stubber.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": arn, "lastStatus": "STOPPED"} for arn in RUNNING + STOPPING]},
            {"cluster": CLUSTER, "tasks": RUNNING + STOPPING},
        )
        result = run_module(rooms_ecs_tasks.main, {"cluster": CLUSTER, "reason": "bye"})
    assert result == {"changed": True, "stopped": RUNNING}


def test_check_mode_stops_nothing() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, RUNNING, [])
        result = run_module(rooms_ecs_tasks.main, {"cluster": CLUSTER}, check_mode=True)
    assert result == {"changed": True, "stopped": RUNNING}


def test_waits_for_tasks_already_stopping_without_a_change() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, [], STOPPING)
        stubber.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": STOPPING[0], "lastStatus": "STOPPED"}]},
            {"cluster": CLUSTER, "tasks": STOPPING},
        )
        assert run_module(rooms_ecs_tasks.main, {"cluster": CLUSTER}) == {"changed": False, "stopped": []}


def test_without_wait_nothing_to_stop_is_no_call() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, [], STOPPING)
        assert run_module(rooms_ecs_tasks.main, {"cluster": CLUSTER, "wait": False}) == {
            "changed": False,
            "stopped": [],
        }


def test_a_missing_cluster_has_nothing_to_stop() -> None:
    with stubbed_aws("ecs") as stubber:
        for _call in range(2):
            stubber.add_client_error("list_tasks", service_error_code="ClusterNotFoundException", http_status_code=400)
        assert run_module(rooms_ecs_tasks.main, {"cluster": CLUSTER}) == {"changed": False, "stopped": []}


def test_an_error_names_what_failed() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, RUNNING, [])
        stubber.add_client_error("stop_task", service_error_code="AccessDeniedException", http_status_code=400)
        result = fail_module(rooms_ecs_tasks.main, {"cluster": CLUSTER})
    assert result["msg"].startswith(f"Failed to stop the tasks of the cluster {CLUSTER}: ")
    assert result["error"]["code"] == "AccessDeniedException"


def test_state_has_one_choice() -> None:
    assert "state" in fail_module(rooms_ecs_tasks.main, {"cluster": CLUSTER, "state": "running"})["msg"]
