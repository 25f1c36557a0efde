#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: a reproducible Lambda deployment package (zip) of a Python package directory."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rooms_lambda_package
short_description: Build a reproducible zip of a Python package for AWS Lambda
description:
  - Zips the Python package directory O(src) (as C(<basename of src>/...) inside the archive) so that the same
    sources always give the same bytes, hence the same C(CodeSha256) on Lambda, and amazon.aws.lambda reports no
    change for unchanged code. Entries are sorted, every timestamp is 1980-01-01 00:00:00, every file mode is
    0644, and C(__pycache__) directories, compiled files and hidden files are left out.
  - Writes the archive as C(<dest_dir>/<name>-<first 16 hex digits of its sha256>.zip) unless that file exists.
  - This is a build step on the controller, so it always reports C(changed=false) and also runs in check mode (the
    Lambda task that uploads the archive reports the change).
notes:
  - Meant to run on the controller (for example with C(delegate_to=localhost)), where O(src) and O(dest_dir) are
    and where the Lambda module that uploads the archive reads it.
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
options:
  src:
    description: The package directory (it must contain C(__init__.py)).
    type: path
    required: true
  dest_dir:
    description: Directory the archive is written to (created if missing).
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
- name: Package the room API
  godot_fleet.fleet.rooms_lambda_package:
    src: "{{ playbook_dir }}/../room_api"
    dest_dir: "{{ playbook_dir }}/../.cache/room-api"
  register: package
"""

RETURN = r"""
path:
  description: Path of the archive.
  type: str
  returned: always
code_sha256:
  description: Base64 SHA-256 of the archive, as Lambda reports it (CodeSha256).
  type: str
  returned: always
files:
  description: The archive members, in order.
  type: list
  elements: str
  returned: always
"""

from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.lambda_package import package


def argument_spec() -> dict[str, Any]:
    return {
        "src": {"type": "path", "required": True},
        "dest_dir": {"type": "path", "required": True},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    src = module.params["src"]
    try:
        result = package(Path(src).resolve(), Path(module.params["dest_dir"]))
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot package {src}: {exc}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
