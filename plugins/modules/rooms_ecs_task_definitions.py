#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: keep only the given revisions of an ECS task definition family active (or none, and delete)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rooms_ecs_task_definitions
short_description: Retire the revisions of an ECS task definition family
description:
  - Deregisters every ACTIVE revision of a task definition family except the ones in O(keep), so the family
    resolves to one revision only (community.aws.ecs_taskdefinition reuses any matching ACTIVE revision, not the
    latest, and leaves the others ACTIVE).
  - With O(delete=true) also deletes the INACTIVE revisions (DeleteTaskDefinitions), which teardown uses to
    leave nothing behind.
  - Tasks that run a deregistered revision keep running.
notes:
  - Needs the IAM actions C(ecs:ListTaskDefinitions), C(ecs:DeregisterTaskDefinition) and, with O(delete=true),
    C(ecs:DeleteTaskDefinitions).
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
options:
  family:
    description: The task definition family.
    type: str
    required: true
  keep:
    description: ARNs of the revisions that stay ACTIVE.
    type: list
    elements: str
    default: []
  delete:
    description: Also delete every INACTIVE revision of the family (after the deregistration).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - godot_fleet.fleet.aws
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Keep only the revision just registered
  godot_fleet.fleet.rooms_ecs_task_definitions:
    family: godot-fleet-room
    keep: ["{{ task_definition.taskdefinition.taskDefinitionArn }}"]

- name: Remove every revision (teardown)
  godot_fleet.fleet.rooms_ecs_task_definitions:
    family: godot-fleet-room
    delete: true
"""

RETURN = r"""
deregistered:
  description: ARNs of the revisions this run deregistered (or would, in check mode).
  type: list
  elements: str
  returned: always
deleted:
  description: ARNs of the revisions this run deleted (or would, in check mode).
  type: list
  elements: str
  returned: always
"""

from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.ecs import (
    family_revisions,
    retire_revisions,
    retirement,
)


def argument_spec() -> dict[str, Any]:
    return {
        "family": {"type": "str", "required": True},
        "keep": {"type": "list", "elements": "str", "default": []},
        "delete": {"type": "bool", "default": False},
    }


def main() -> None:
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    family = module.params["family"]
    ecs = module.client("ecs")
    try:
        active = family_revisions(ecs, family, "ACTIVE")
        inactive = family_revisions(ecs, family, "INACTIVE") if module.params["delete"] else []
        deregister, delete = retirement(active, inactive, module.params["keep"], module.params["delete"])
        changed = bool(deregister or delete)
        if module.check_mode or not changed:
            module.exit_json(changed=changed, deregistered=deregister, deleted=delete)
        failures = retire_revisions(ecs, family, deregister, delete)
    except AnsibleAWSError as exc:
        module.fail_json_aws_error(exc)
    if failures:
        module.fail_json(msg=f"deleting task definitions of {family} failed", failures=failures)
    module.exit_json(changed=True, deregistered=deregister, deleted=delete)


if __name__ == "__main__":
    main()
