"""The godot_server_state module: main() with its arguments, systemctl answered by a stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.godot_host import apt_lists_present, libc_version
from ansible_collections.godot_fleet.fleet.plugins.modules import godot_server_state
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import fail_module, run_module

SHOW = """Id=godot-server@12077.service
ActiveState=active
UnitFileState=enabled
LoadState=loaded

Id=godot-server@12078.service
ActiveState=inactive
UnitFileState=
LoadState=not-found
"""


class Systemctl:
    """Stands in for AnsibleModule.run_command: answers systemctl list-units and show, records the commands."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        self.calls.append(args)
        if args[1] == "list-units":
            return 0, "godot-server@12077.service loaded active running Godot room\n", ""
        return 0, SHOW, ""


def install(tmp_path: Path) -> Path:
    release = tmp_path / "releases" / "1.4.0"
    release.mkdir(parents=True)
    (release / ".godot-fleet-release.json").write_text(json.dumps({"checksum": "sha256:ab"}))
    (tmp_path / "current").symlink_to(release)
    return release


def test_reads_the_host_in_one_call(tmp_path: Path) -> None:
    release = install(tmp_path)
    systemctl = Systemctl()
    with (
        mock.patch.object(AnsibleModule, "run_command", systemctl),
        mock.patch.object(AnsibleModule, "get_bin_path", return_value="/usr/bin/systemctl"),
    ):
        result = run_module(
            godot_server_state.main,
            {"install_dir": str(tmp_path), "service_name": "godot-server", "ports": [12078], "release": "1.4.0"},
            check_mode=True,
        )
    assert result == {
        "changed": False,
        "glibc": libc_version(),
        "apt_lists": apt_lists_present(),
        "current": str(release),
        "marker": {"checksum": "sha256:ab"},
        "releases": [str(release)],
        "rooms": {
            "12077": {"active": "active", "enabled": "enabled", "loaded": "loaded"},
            "12078": {"active": "inactive", "enabled": "", "loaded": "not-found"},
        },
    }
    assert [args[:2] for args in systemctl.calls] == [
        ["/usr/bin/systemctl", "list-units"],
        ["/usr/bin/systemctl", "show"],
    ]
    assert systemctl.calls[1][-2:] == ["godot-server@12077.service", "godot-server@12078.service"]


def test_defaults_and_a_host_without_systemd(tmp_path: Path) -> None:
    systemctl = Systemctl()
    with (
        mock.patch.object(AnsibleModule, "run_command", systemctl),
        mock.patch.object(AnsibleModule, "get_bin_path", return_value=None),
    ):
        result = run_module(godot_server_state.main, {"install_dir": str(tmp_path), "service_name": "godot-server"})
    assert (result["current"], result["marker"], result["releases"], result["rooms"]) == ("", {}, [], {})
    assert systemctl.calls == []


def test_ports_must_be_integers(tmp_path: Path) -> None:
    result = fail_module(
        godot_server_state.main, {"install_dir": str(tmp_path), "service_name": "godot-server", "ports": ["x"]}
    )
    assert "ports" in result["msg"]


def test_install_dir_and_service_name_are_required() -> None:
    assert "missing required arguments: install_dir, service_name" in fail_module(godot_server_state.main, {})["msg"]
