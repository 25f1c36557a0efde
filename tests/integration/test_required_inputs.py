"""Required role options are required: left out, the play stops at the role's argument validation, with Ansible's
own message naming every missing option, before any task ran (from the installed collection, as users run it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed import playbook


@pytest.mark.parametrize(
    ("entry_point", "values", "missing"),
    [
        ("build-game.yml", {}, "godot_build_engine, godot_build_project"),
        ("build-game.yml", {"godot_build_project": "/nonexistent/game"}, "godot_build_engine"),
        ("deploy-hosts.yml", {}, "godot_server_checksum, godot_server_version"),
        ("deploy-hosts.yml", {"godot_server_version": "1.0.0"}, "godot_server_checksum"),
    ],
)
def test_a_missing_required_option_stops_the_role_before_any_task(
    entry_point: str, values: dict[str, str], missing: str, installed_collection: Path, tmp_path: Path
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("godot_servers:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    result = playbook.run(entry_point, values, inventory=inventory, installed=installed_collection)
    assert not result.ok
    assert f"missing required arguments: {missing}" in result.text, str(result)
    [failed] = result.failures
    assert "Validating arguments against arg spec" in failed.task, str(result)
    assert [t.task for t in result.tasks if t.task != failed.task] == [], str(result)  # nothing ran before it


def test_configure_awx_without_a_project_or_image_says_what_to_set_before_calling_the_controller(
    installed_collection: Path,
) -> None:
    """configure-awx.yml with neither a project source nor an execution environment image stops at its first check,
    naming the variables to set, before any awx.awx module talks to a controller (none is reachable here)."""
    env = {"CONTROLLER_HOST": "http://127.0.0.1:9", "CONTROLLER_USERNAME": "admin", "CONTROLLER_PASSWORD": "x"}
    result = playbook.run("configure-awx.yml", {}, env=env, installed=installed_collection)
    assert not result.ok
    [failed] = result.failures
    assert failed.task.endswith("Check the project and the execution environment settings"), str(result)
    for variable in ("awx_configuration_scm_url", "awx_configuration_project_local_path",
                     "awx_configuration_execution_environment_image"):  # fmt: skip
        assert variable in result.text, str(result)
    assert not [t for t in result.tasks if "awx.awx" in str(t.result.get("invocation", ""))], str(result)
