"""The rooms_ecs_task_definitions module: main() against a stubbed ECS API."""

from __future__ import annotations

from ansible_collections.godot_fleet.fleet.plugins.modules import rooms_ecs_task_definitions
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import (
    fail_module,
    run_module,
    stubbed_aws,
)
from botocore.stub import Stubber

FAMILY = "godot-fleet-room"


def revision(n: int) -> str:
    return f"arn:aws:ecs:eu-west-1:123456789012:task-definition/{FAMILY}:{n}"


def listed(stubber: Stubber, status: str, arns: list[str]) -> None:
    stubber.add_response(
        "list_task_definitions", {"taskDefinitionArns": arns}, {"familyPrefix": FAMILY, "status": status}
    )


def test_keeps_only_the_given_revision_active() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, "ACTIVE", [revision(1), revision(2), revision(3)])
        for n in (1, 2):
            stubber.add_response("deregister_task_definition", {}, {"taskDefinition": revision(n)})
        result = run_module(rooms_ecs_task_definitions.main, {"family": FAMILY, "keep": [revision(3)]})
    assert result == {"changed": True, "deregistered": [revision(1), revision(2)], "deleted": []}


def test_a_converged_family_is_not_changed() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, "ACTIVE", [revision(3)])
        result = run_module(rooms_ecs_task_definitions.main, {"family": FAMILY, "keep": [revision(3)]})
    assert result == {"changed": False, "deregistered": [], "deleted": []}


def test_delete_retires_and_deletes_every_revision() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, "ACTIVE", [revision(3)])
        listed(stubber, "INACTIVE", [revision(1), revision(2)])
        stubber.add_response("deregister_task_definition", {}, {"taskDefinition": revision(3)})
        every = [revision(1), revision(2), revision(3)]
        stubber.add_response("delete_task_definitions", {"failures": []}, {"taskDefinitions": every})
        result = run_module(rooms_ecs_task_definitions.main, {"family": FAMILY, "delete": True})
    assert result == {"changed": True, "deregistered": [revision(3)], "deleted": every}


def test_check_mode_changes_nothing() -> None:
    with stubbed_aws("ecs") as stubber:
        listed(stubber, "ACTIVE", [revision(3)])
        listed(stubber, "INACTIVE", [revision(1)])
        result = run_module(rooms_ecs_task_definitions.main, {"family": FAMILY, "delete": True}, check_mode=True)
    assert result == {"changed": True, "deregistered": [revision(3)], "deleted": [revision(1), revision(3)]}


def test_failed_deletions_fail_the_module() -> None:
    failure = {"arn": revision(1), "reason": "TASK_DEFINITION_IN_USE"}
    with stubbed_aws("ecs") as stubber:
        listed(stubber, "ACTIVE", [])
        listed(stubber, "INACTIVE", [revision(1)])
        stubber.add_response("delete_task_definitions", {"failures": [failure]}, {"taskDefinitions": [revision(1)]})
        result = fail_module(rooms_ecs_task_definitions.main, {"family": FAMILY, "delete": True})
    assert result["msg"] == f"deleting task definitions of {FAMILY} failed"
    assert result["failures"] == [failure]


def test_an_error_names_what_failed() -> None:
    with stubbed_aws("ecs") as stubber:
        stubber.add_client_error(
            "list_task_definitions", service_error_code="AccessDeniedException", http_status_code=400
        )
        result = fail_module(rooms_ecs_task_definitions.main, {"family": FAMILY})
    assert result["msg"].startswith(f"Failed to list the ACTIVE revisions of the task definition family {FAMILY}: ")
