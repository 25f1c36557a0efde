#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: stop every task of an ECS cluster and wait until they stopped (no collection module lists tasks)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rooms_ecs_tasks
short_description: Stop every task of an ECS cluster
description:
  - Lists the tasks of an ECS cluster that are meant to run (desired status RUNNING), stops them and waits until
    they and any task already stopping reached STOPPED. An ECS cluster cannot be deleted while it has tasks, and
    on AWS the network interfaces of Fargate tasks keep their security group and subnets in use until then.
  - Used by the aws_rooms_cluster role before it deletes the cluster (teardown-aws-rooms.yml).
  - A cluster that does not exist (or no longer does) has no tasks; nothing changes.
notes:
  - Needs the IAM actions C(ecs:ListTasks), C(ecs:StopTask) and, with O(wait=true), C(ecs:DescribeTasks).
  - O(wait_timeout) applies to every 100 tasks (one C(DescribeTasks) call takes at most 100).
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
options:
  cluster:
    description: Name or ARN of the cluster.
    type: str
    required: true
  state:
    description: C(stopped) is the only state.
    type: str
    default: stopped
    choices: [stopped]
  reason:
    description: The reason recorded on each stopped task.
    type: str
    default: stopped by godot-fleet teardown
  wait:
    description: Wait until every task of the cluster reached STOPPED.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 600
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
- name: Stop every room
  godot_fleet.fleet.rooms_ecs_tasks:
    cluster: godot-fleet-rooms
    region: eu-west-1
"""

RETURN = r"""
stopped:
  description: ARNs of the tasks this run stopped (or would stop, in check mode).
  type: list
  elements: str
  returned: always
"""

from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.ecs import cluster_tasks, stop_tasks, wait_stopped


def argument_spec() -> dict[str, Any]:
    return {
        "cluster": {"type": "str", "required": True},
        "state": {"type": "str", "default": "stopped", "choices": ["stopped"]},
        "reason": {"type": "str", "default": "stopped by godot-fleet teardown"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 600},
    }


def main() -> None:
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    cluster, wait = module.params["cluster"], module.params["wait"]
    ecs = module.client("ecs")
    try:
        running = cluster_tasks(ecs, cluster, "RUNNING")  # none when the cluster does not exist
        stopping = cluster_tasks(ecs, cluster, "STOPPED")
        if module.check_mode or not (running or (wait and stopping)):
            module.exit_json(changed=bool(running), stopped=running)
        stop_tasks(ecs, cluster, running, module.params["reason"])
        if wait:
            wait_stopped(ecs, cluster, running + stopping, module.params["wait_timeout"])
    except AnsibleAWSError as exc:
        module.fail_json_aws_error(exc)
    module.exit_json(changed=bool(running), stopped=running)


if __name__ == "__main__":
    main()
