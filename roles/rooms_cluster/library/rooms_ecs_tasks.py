#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: stop every task of an ECS cluster and wait until they stopped (no collection module lists tasks)."""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
---
module: rooms_ecs_tasks
short_description: Stop every task of an ECS cluster
description:
  - Lists the tasks of an ECS cluster that are meant to run (desired status RUNNING), stops them and waits until
    they and any task already stopping reached STOPPED. An ECS cluster cannot be deleted while it has tasks, and
    on AWS the network interfaces of Fargate tasks keep their security group and subnets in use until then.
  - Used by the rooms_cluster role before it deletes the cluster (teardown-aws-rooms.yml).
  - A cluster that does not exist (or no longer does) has no tasks; nothing changes.
version_added: "0.1.0"
author: godot-fleet contributors
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
- name: Stop every room
  rooms_ecs_tasks:
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

BATCH = 100  # DescribeTasks takes at most 100 tasks


def list_tasks(ecs: Any, cluster: str, desired_status: str) -> list[str]:
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=desired_status):
        arns.extend(page["taskArns"])
    return arns


def main() -> None:
    from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError

    module = AnsibleAWSModule(
        argument_spec={
            "cluster": {"type": "str", "required": True},
            "state": {"type": "str", "default": "stopped", "choices": ["stopped"]},
            "reason": {"type": "str", "default": "stopped by godot-fleet teardown"},
            "wait": {"type": "bool", "default": True},
            "wait_timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    cluster = module.params["cluster"]
    ecs = module.client("ecs")
    try:
        running = list_tasks(ecs, cluster, "RUNNING")
        stopping = list_tasks(ecs, cluster, "STOPPED")
    except is_boto3_error_code("ClusterNotFoundException"):
        module.exit_json(changed=False, stopped=[])
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg=f"listing the tasks of the cluster {cluster}")
    if module.check_mode or (not running and not (module.params["wait"] and stopping)):
        module.exit_json(changed=bool(running), stopped=running)
    try:
        for arn in running:
            ecs.stop_task(cluster=cluster, task=arn, reason=module.params["reason"])
        if module.params["wait"]:
            waiter = ecs.get_waiter("tasks_stopped")
            delay = 6
            config = {"Delay": delay, "MaxAttempts": max(1, module.params["wait_timeout"] // delay)}
            tasks = running + stopping
            for first in range(0, len(tasks), BATCH):
                waiter.wait(cluster=cluster, tasks=tasks[first : first + BATCH], WaiterConfig=config)
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg=f"stopping the tasks of the cluster {cluster}")
    module.exit_json(changed=bool(running), stopped=running)


if __name__ == "__main__":
    main()
