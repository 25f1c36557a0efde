#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: everything the godot_server role needs to know about a host, read in one call."""

from __future__ import annotations

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
notes:
  - Runs on the managed host with Python 3.9 or newer and needs nothing beyond the standard library.
  - The room units are read with C(systemctl) (C(list-units) and one C(show) for all of them); on a host without
    systemd RV(rooms) is empty.
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
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
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read the host state
  godot_fleet.fleet.godot_server_state:
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

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.godot_host import host_state


def argument_spec() -> dict[str, Any]:
    return {
        "install_dir": {"type": "path", "required": True},
        "service_name": {"type": "str", "required": True},
        "ports": {"type": "list", "elements": "int", "default": []},
        "release": {"type": "str", "default": ""},
        "marker": {"type": "str", "default": ".godot-fleet-release.json"},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)

    def run(args: list[str]) -> str:
        _rc, out, _err = module.run_command(args)
        return str(out)

    p = module.params
    state = host_state(
        p["install_dir"],
        p["service_name"],
        p["ports"],
        p["release"],
        p["marker"],
        systemctl=module.get_bin_path("systemctl"),
        run=run,
    )
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
