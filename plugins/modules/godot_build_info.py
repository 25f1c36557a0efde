#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: facts about a game server executable (ELF class, architecture, glibc it needs)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: godot_build_info
short_description: Read what a server executable needs from the host
description:
  - Reads an executable without running it and reports whether it is an ELF file, its CPU architecture,
    its program interpreter and the newest C library (glibc) symbol version it needs.
  - Used by the godot_server role to refuse a build that cannot run on the host before it is switched to.
  - A file that is not ELF (for example a launcher script that brings its own loader) reports C(elf=false).
notes:
  - Runs on the managed host with Python 3.9 or newer and needs nothing beyond the standard library; the file is
    read, never executed.
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
options:
  path:
    description: Path of the executable on the managed host.
    type: path
    required: true
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
- name: Inspect the server build
  godot_fleet.fleet.godot_build_info:
    path: /opt/godot-server/releases/1.0.0/game.x86_64
  register: build

- name: Refuse a build that needs a newer glibc
  ansible.builtin.assert:
    that: build.glibc_required is version('2.36', '<=')
"""

RETURN = r"""
exists:
  description: Whether the path exists and is a regular file.
  type: bool
  returned: always
executable:
  description: Whether any execute bit is set.
  type: bool
  returned: always
elf:
  description: Whether the file is an ELF object.
  type: bool
  returned: always
architecture:
  description: CPU architecture of an ELF file (x86_64, aarch64, i386, arm, ...), empty otherwise.
  type: str
  returned: always
interpreter:
  description: Program interpreter (PT_INTERP) of an ELF executable, empty when there is none.
  type: str
  returned: always
glibc_required:
  description: Newest GLIBC_x.y symbol version the file needs, empty when it needs none.
  type: str
  returned: always
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.elf import ElfError, describe_executable


def argument_spec() -> dict[str, Any]:
    return {"path": {"type": "path", "required": True}}


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    path = module.params["path"]
    try:
        facts = describe_executable(path)
    except (ElfError, OSError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}")
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
