#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: keep only the given revisions of an ECS task definition family active (or none, and delete)."""

from __future__ import annotations

from typing import Any

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
version_added: "0.1.0"
author: godot-fleet contributors
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
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Keep only the revision just registered
  rooms_ecs_task_definitions:
    family: godot-fleet-room
    keep: ["{{ task_definition.taskdefinition.taskDefinitionArn }}"]

- name: Remove every revision (teardown)
  rooms_ecs_task_definitions:
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

BATCH = 10  # DeleteTaskDefinitions takes at most 10 revisions


def list_revisions(ecs: Any, family: str, status: str) -> list[str]:
    arns: list[str] = []
    pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status)
    for page in pages:
        # familyPrefix matches prefixes: "room" would list "room-test" too
        arns.extend(a for a in page["taskDefinitionArns"] if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family)
    return arns


def main() -> None:
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError

    module = AnsibleAWSModule(
        argument_spec={
            "family": {"type": "str", "required": True},
            "keep": {"type": "list", "elements": "str", "default": []},
            "delete": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    family = module.params["family"]
    keep = set(module.params["keep"])
    ecs = module.client("ecs")
    try:
        active = list_revisions(ecs, family, "ACTIVE")
        retire = [arn for arn in active if arn not in keep]
        inactive = list_revisions(ecs, family, "INACTIVE") if module.params["delete"] else []
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg=f"listing the revisions of the task definition family {family}")
    delete = sorted(set(inactive + retire)) if module.params["delete"] else []
    if module.check_mode:
        module.exit_json(changed=bool(retire or delete), deregistered=retire, deleted=delete)
    try:
        for arn in retire:
            ecs.deregister_task_definition(taskDefinition=arn)
        for first in range(0, len(delete), BATCH):
            answer = ecs.delete_task_definitions(taskDefinitions=delete[first : first + BATCH])
            if answer.get("failures"):
                module.fail_json(msg=f"deleting task definitions of {family} failed", failures=answer["failures"])
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg=f"retiring revisions of the task definition family {family}")
    module.exit_json(changed=bool(retire or delete), deregistered=retire, deleted=delete)


if __name__ == "__main__":
    main()
