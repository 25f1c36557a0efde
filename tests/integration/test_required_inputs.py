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
