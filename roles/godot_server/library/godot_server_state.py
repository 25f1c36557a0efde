#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: everything the godot_server role needs to know about a host, read in one call."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from typing import Any

DOCUMENTATION = r"""
---
module: godot_server_state
short_description: Read the state of a Godot game server host in one call
description:
  - Reads, without changing anything, what the godot_server role decides on, so that a run on a converged host
    costs one module call instead of one per fact and per room.
  - The C library version, whether APT package lists are present, where the current release link points, the
    marker of a release, the installed releases, and the state of every room unit (requested or found enabled
    or loaded).
version_added: "0.1.0"
author: godot-fleet contributors
options:
  install_dir:
    description: Install directory of the role (holds releases/ and the current link).
    type: path
    required: true
  service_name:
    description: Name of the room unit template (SERVICE@PORT.service).
    type: str
    required: true
  ports:
    description: Room ports the caller wants; their units are reported even when they do not exist yet.
    type: list
    elements: int
    default: []
  release:
    description: Release label whose marker file is read.
    type: str
    default: ""
  marker:
    description: File name of the release marker inside a release directory.
    type: str
    default: .godot-fleet-release.json
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the host state
  godot_server_state:
    install_dir: /opt/godot-server
    service_name: godot-server
    ports: [12077, 12078]
    release: "1.4.0"
  register: state
"""

RETURN = r"""
glibc:
  description: Version of the host's GNU C library, empty when it has none (e.g. musl).
  type: str
  returned: always
apt_lists:
  description: Whether /var/lib/apt/lists holds downloaded package lists.
  type: bool
  returned: always
current:
  description: Target of the current link, empty when there is none.
  type: str
  returned: always
marker:
  description: Contents of the release's marker file, empty when the release is not installed.
  type: dict
  returned: always
releases:
  description: Installed release directories, newest first (by modification time).
  type: list
  elements: str
  returned: always
rooms:
  description: Port (as a string) to the unit's active state, unit file state and load state.
  type: dict
  returned: always
"""

SHOW_PROPERTIES = ("Id", "ActiveState", "UnitFileState", "LoadState")


def libc_version() -> str:
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return ""
    return value.split()[-1] if value.startswith("glibc") else ""


def apt_lists_present(lists_dir: str = "/var/lib/apt/lists") -> bool:
    return bool(glob.glob(os.path.join(lists_dir, "*_Packages*")))


def read_marker(install_dir: str, release: str, marker: str) -> dict[str, Any]:
    if not release:
        return {}
    try:
        with open(os.path.join(install_dir, "releases", release, marker)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_releases(install_dir: str) -> list[str]:
    base = os.path.join(install_dir, "releases")
    try:
        entries = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    entries.sort(key=lambda e: (e.stat(follow_symlinks=False).st_mtime, e.name), reverse=True)
    return [e.path for e in entries]


def enabled_ports(service_name: str, unit_dir: str = "/etc/systemd/system") -> set[int]:
    pattern = re.compile(rf"^{re.escape(service_name)}@(\d+)\.service$")
    ports = set()
    for path in glob.glob(os.path.join(unit_dir, "*.wants", f"{service_name}@*.service")):
        match = pattern.match(os.path.basename(path))
        if match:
            ports.add(int(match.group(1)))
    return ports


def parse_list_units(output: str, service_name: str) -> set[int]:
    pattern = re.compile(rf"^{re.escape(service_name)}@(\d+)\.service$")
    ports = set()
    for line in output.splitlines():
        fields = line.split()
        match = pattern.match(fields[0]) if fields else None
        if match:
            ports.add(int(match.group(1)))
    return ports


def parse_show(output: str, service_name: str) -> dict[str, dict[str, str]]:
    """Parse `systemctl show -p ...` output for several units (blocks separated by blank lines)."""
    pattern = re.compile(rf"^{re.escape(service_name)}@(\d+)\.service$")
    rooms: dict[str, dict[str, str]] = {}
    for block in output.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        match = pattern.match(props.get("Id", ""))
        if match:
            rooms[match.group(1)] = {
                "active": props.get("ActiveState", ""),
                "enabled": props.get("UnitFileState", ""),
                "loaded": props.get("LoadState", ""),
            }
    return rooms


def room_states(service_name: str, wanted: list[int]) -> dict[str, dict[str, str]]:
    systemctl = shutil.which("systemctl")
    if not systemctl:
        return {}
    listed = subprocess.run(
        [systemctl, "list-units", "--all", "--plain", "--no-legend", "--type=service", f"{service_name}@*.service"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    ports = sorted(set(wanted) | enabled_ports(service_name) | parse_list_units(listed, service_name))
    if not ports:
        return {}
    args = [systemctl, "show", *(f"-p{p}" for p in SHOW_PROPERTIES), *(f"{service_name}@{p}.service" for p in ports)]
    shown = subprocess.run(args, capture_output=True, text=True, check=False).stdout
    return parse_show(shown, service_name)


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "install_dir": {"type": "path", "required": True},
            "service_name": {"type": "str", "required": True},
            "ports": {"type": "list", "elements": "int", "default": []},
            "release": {"type": "str", "default": ""},
            "marker": {"type": "str", "default": ".godot-fleet-release.json"},
        },
        supports_check_mode=True,
    )
    p = module.params
    current_link = os.path.join(p["install_dir"], "current")
    module.exit_json(
        changed=False,
        glibc=libc_version(),
        apt_lists=apt_lists_present(),
        current=os.readlink(current_link) if os.path.islink(current_link) else "",
        marker=read_marker(p["install_dir"], p["release"], p["marker"]),
        releases=list_releases(p["install_dir"]),
        rooms=room_states(p["service_name"], p["ports"]),
    )


if __name__ == "__main__":
    main()
