"""plugins/module_utils/godot_host.py reads a game host's state for the godot_server role."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import godot_host as gss

SHOW = """Id=godot-server@12077.service
ActiveState=active
UnitFileState=enabled
LoadState=loaded

Id=godot-server@12078.service
ActiveState=inactive
UnitFileState=disabled
LoadState=loaded

Id=godot-server@12079.service
ActiveState=inactive
UnitFileState=
LoadState=not-found
"""


def test_parse_show_reads_every_unit_block() -> None:
    assert gss.parse_show(SHOW, "godot-server") == {
        "12077": {"active": "active", "enabled": "enabled", "loaded": "loaded"},
        "12078": {"active": "inactive", "enabled": "disabled", "loaded": "loaded"},
        "12079": {"active": "inactive", "enabled": "", "loaded": "not-found"},
    }


def test_parse_show_ignores_other_services() -> None:
    assert gss.parse_show(SHOW, "godot-idle") == {}


def test_parse_list_units() -> None:
    out = (
        "godot-server@12077.service loaded active running Godot room\n"
        "godot-server@x.service loaded active running odd instance\n"
        "godot-serverx@1.service loaded active running other\n"
    )
    assert gss.parse_list_units(out, "godot-server") == {12077}


def test_enabled_ports_from_wants_links(tmp_path: Path) -> None:
    wants = tmp_path / "multi-user.target.wants"
    wants.mkdir()
    (wants / "godot-server@12077.service").symlink_to("/etc/systemd/system/godot-server@.service")
    (wants / "godot-idle@12090.service").symlink_to("/etc/systemd/system/godot-idle@.service")
    target = tmp_path / "godot-server.target.wants"
    target.mkdir()
    (target / "godot-server@12078.service").symlink_to("/etc/systemd/system/godot-server@.service")
    assert gss.enabled_ports("godot-server", str(tmp_path)) == {12077, 12078}


def test_marker_and_releases(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    for i, name in enumerate(["1.0.0", "1.1.0", "1.2.0"]):
        (releases / name).mkdir(parents=True)
        os.utime(releases / name, (1_000_000 + i, 1_000_000 + i))
    (releases / "1.1.0" / ".m.json").write_text(json.dumps({"checksum": "sha256:ab"}))
    (releases / "1.2.0" / ".m.json").write_text("not json")
    assert gss.read_marker(str(tmp_path), "1.1.0", ".m.json") == {"checksum": "sha256:ab"}
    assert gss.read_marker(str(tmp_path), "1.2.0", ".m.json") == {}
    assert gss.read_marker(str(tmp_path), "9.9.9", ".m.json") == {}
    assert gss.read_marker(str(tmp_path), "", ".m.json") == {}
    assert [Path(p).name for p in gss.list_releases(str(tmp_path))] == ["1.2.0", "1.1.0", "1.0.0"]
    assert gss.list_releases(str(tmp_path / "missing")) == []


def test_apt_lists(tmp_path: Path) -> None:
    assert not gss.apt_lists_present(str(tmp_path))
    (tmp_path / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4").write_text("")
    assert gss.apt_lists_present(str(tmp_path))


def test_libc_version_matches_the_interpreter() -> None:
    name, version = platform.libc_ver()
    assert name == "glibc"
    assert gss.libc_version() == version


def test_current_release(tmp_path: Path) -> None:
    assert gss.current_release(str(tmp_path)) == ""
    (tmp_path / "current").symlink_to("releases/1.2.0")
    assert gss.current_release(str(tmp_path)) == "releases/1.2.0"


class FakeSystemctl:
    """Answers list-units and show like systemctl and records the command lines."""

    def __init__(self, listed: str, shown: str = SHOW) -> None:
        self.listed = listed
        self.shown = shown
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str]) -> str:
        self.calls.append(args)
        return self.listed if args[1] == "list-units" else self.shown


def test_room_states_asks_for_wanted_enabled_and_loaded_units(tmp_path: Path) -> None:
    wants = tmp_path / "godot-server.target.wants"
    wants.mkdir()
    (wants / "godot-server@12078.service").symlink_to("/etc/systemd/system/godot-server@.service")
    run = FakeSystemctl("godot-server@12079.service loaded inactive dead Godot room\n")
    rooms = gss.room_states("godot-server", [12077], "/bin/systemctl", run, unit_dir=str(tmp_path))
    assert set(rooms) == {"12077", "12078", "12079"}
    assert run.calls[0] == [
        "/bin/systemctl",
        "list-units",
        "--all",
        "--plain",
        "--no-legend",
        "--type=service",
        "godot-server@*.service",
    ]
    assert run.calls[1] == [
        "/bin/systemctl",
        "show",
        "-pId",
        "-pActiveState",
        "-pUnitFileState",
        "-pLoadState",
        "godot-server@12077.service",
        "godot-server@12078.service",
        "godot-server@12079.service",
    ]


@pytest.mark.parametrize("systemctl", [None, ""])
def test_room_states_without_systemd_runs_nothing(systemctl: str | None) -> None:
    run = FakeSystemctl("")
    assert gss.room_states("godot-server", [12077], systemctl, run) == {}
    assert run.calls == []


def test_room_states_without_any_room_shows_nothing(tmp_path: Path) -> None:
    run = FakeSystemctl("")
    assert gss.room_states("godot-server", [], "/bin/systemctl", run, unit_dir=str(tmp_path)) == {}
    assert [args[1] for args in run.calls] == ["list-units"]


def test_host_state_has_every_field(tmp_path: Path) -> None:
    (tmp_path / "releases" / "1.0.0").mkdir(parents=True)
    state = gss.host_state(str(tmp_path), "godot-server", [], "1.0.0", ".m.json", None, FakeSystemctl(""))
    assert state == {
        "glibc": gss.libc_version(),
        "apt_lists": gss.apt_lists_present(),
        "current": "",
        "marker": {},
        "releases": [str(tmp_path / "releases" / "1.0.0")],
        "rooms": {},
    }
