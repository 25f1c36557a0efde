#!/usr/bin/env python3
"""AWS benchmark: wall time of `deploy-aws.yml` against the local AWS, fresh up to a client round trip, of a no-op
re-run, of a check-mode run and of `teardown-aws.yml`; tasks per play and what the time is spent on.

Each run starts a new local AWS (testbed.aws: moto on a free loopback port, a fresh account) and a new local systemd
container standing in for instance 0 of the fleet (both timed separately, not part of the deploy), then: fresh
deploy + ENet probe of both rooms until both answer, no-op re-run (the recap must say changed=0 on both hosts),
--check run, a small playbook measuring what one no-op AWS module call costs, teardown. Everything it started (moto,
the container) is stopped at the end of the run, also on failure or SIGTERM.

    python -m bench.aws [--runs 3] [--quick] [--no-check] [--samples 5] [--name NAME] [--root DIR]

--root runs the playbooks, roles and ansible.cfg of another checkout (e.g. a git worktree of an older commit) with
this checkout's benchmark, test bed and venv. Prints a table and writes bench/results/aws.json (aws-quick.json with
--quick).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import cloud
from bench.common import Artifacts, JsonDict, Run, fmt, slowest, table
from testbed import free_port_block
from testbed.aws import CREDENTIALS, host_down, host_up, local_aws

REGION = "eu-west-1"
BUCKET = "gf-bench-aws-builds"
AMI = "ami-12c6146b"  # an image moto knows
AWS = cloud.Cloud(
    kind="aws",
    prefixes=("amazon.aws.", "community.aws."),
    local="local AWS",
    tasks_label="amazon.aws tasks",
    instance="instance",
    fleet="gf-bench-aws",  # the Name tag of the instance, prefix of every AWS resource
    ports=(41077, 41078),
    playbooks=("deploy-aws.yml", "teardown-aws.yml"),
    measured=(
        "deploy-aws.yml",
        "teardown-aws.yml",
        "playbooks/deploy_aws.yml",
        "playbooks/teardown_aws.yml",
        "roles/aws_build_store",
        "roles/aws_identity",
        "roles/aws_instances",
        "roles/aws_network",
        "roles/godot_server",
        "plugins",
        "ansible.cfg",
    ),
    harness=("testbed/aws.py", "testbed/hosts.py"),
    anonymous_hosts=True,  # the instance is named by its id, which differs per run
)
PHASES = ("fresh", "rerun", "check", "teardown")
PYTHON_COSTS = ("python_pass", "python_import_boto3", "python_boto3_sts_call")


def one_run(args: argparse.Namespace, state: cloud.RunState, workdir: Path, build: Artifacts, public_key: str) -> None:
    state.log("starting a fresh local AWS")
    with cloud.local_cloud(state, local_aws(free_port_block(1, AWS.ports))) as aws:
        state.out["local_aws"]["endpoint"] = aws.endpoint
        # the local AWS's address and dummy credentials; no other AWS_* variable, AWS config file or metadata service
        env = cloud.playbook_env(state.root, "AWS_", {
            **CREDENTIALS, "AWS_ENDPOINT_URL": aws.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
        })  # fmt: skip
        values = {
            **cloud.fleet_vars(AWS, args, state.container, public_key, build),
            "godot_fleet_aws_region": REGION,
            "godot_fleet_aws_bucket": BUCKET,
            "godot_fleet_aws_ami_id": AMI,
        }

        def phase(name: str, playbook: str, *extra: str, label: str = "") -> Run:
            result = state.runs[name] = state.run(playbook, values, env, *extra, label=label)
            return result

        with cloud.stand_in(
            state,
            lambda: host_up(state.container, aws.endpoint, AWS.fleet, 0, REGION),
            lambda: host_down(state.container),
        ):
            cloud.fresh_deploy(state, phase)
            cloud.noop_rerun(state, phase)
            if not args.no_check:
                cloud.check_mode(state, phase)
            aws_args = {"region": REGION, "endpoint_url": aws.endpoint}
            calls: list[tuple[str, JsonDict]] = [  # the no-op calls measured
                ("ansible.builtin.debug", {"msg": "no module run"}),
                ("ansible.builtin.ping", {}),
                ("amazon.aws.aws_caller_info", aws_args),
                ("amazon.aws.ec2_vpc_net_info", {"filters": {"tag:Name": AWS.fleet}, **aws_args}),
            ]
            # a bare interpreter, importing boto3, and import + one STS call (controller Python)
            sts = f"import boto3; boto3.client('sts', endpoint_url={aws.endpoint!r}, region_name={REGION!r})"
            snippets = dict(zip(PYTHON_COSTS, ("pass", "import boto3", f"{sts}.get_caller_identity()"), strict=True))
            state.out["module_cost"] = {
                **cloud.module_cost(
                    state, state.run(cloud.module_cost_playbook(state, workdir, calls, args.samples), {}, env)
                ),
                **cloud.python_costs(snippets, env, max(3, args.samples // 2), timeout=120),
            }
            cloud.teardown(state, phase)


def conclusions(summary: JsonDict) -> list[str]:
    """'What dominates', derived from the medians."""
    out = cloud.phase_conclusions(summary, PHASES, AWS)
    cost = summary["module_cost"]
    aws_call = cost.get("amazon.aws.aws_caller_info")
    if aws_call is not None:
        c = {k: fmt(v, 2) for k, v in cost.items()}
        out.append(
            f"one no-op amazon.aws module call costs {c['amazon.aws.aws_caller_info']} s (aws_caller_info;"
            f" ec2_vpc_net_info {c.get('amazon.aws.ec2_vpc_net_info')} s), {cloud.builtin_costs(c)}, importing boto3"
            f" {c['python_import_boto3']} s, import + one STS call {c['python_boto3_sts_call']} s"
        )
        rerun = cloud.rerun_provisioning(summary, AWS, aws_call, "aws_caller_info")
        if rerun:
            out.append(
                f"{rerun}: the per-task price is module start-up (a new Python importing boto3/botocore and the"
                " collection's module_utils, AnsiballZ), not the work"
            )
    return out + cloud.ratio_conclusion(summary)


def build_summary(raw: list[JsonDict], runs: list[dict[str, Run]], requested: int) -> JsonDict:
    summary = cloud.deploy_summary(raw, requested, AWS, PHASES)
    summary["module_cost"] = cloud.module_cost_summary(raw, PYTHON_COSTS)
    summary["slowest_tasks"] = {p: slowest([r[p] for r in runs if p in r], 6) for p in PHASES}
    summary["what_dominates"] = conclusions(summary)
    return summary


def print_report(summary: JsonDict, failures: list[str], warnings: list[str]) -> None:
    ph = summary["phases"]
    rows = [
        cloud.round_trip_row(summary, 3),
        cloud.phase_row(ph.get("fresh") or {}, "fresh deploy-aws.yml"),
        cloud.phase_row(ph.get("rerun") or {}, "no-op re-run"),
        cloud.phase_row(ph.get("check") or {}, "--check (converged)"),
        cloud.phase_row(ph.get("teardown") or {}, "teardown-aws.yml"),
    ]
    runs = f"{summary['runs_ok']}/{summary['runs_requested']} runs"
    print(f"\ndeploy-aws.yml against the local AWS (moto) + one systemd container as the instance, {runs} (seconds)\n")
    print(table(["figure", "median", "tasks", "s/task", "outside tasks", "samples", "changed / note"], rows))
    cloud.print_ratio_and_plays(summary, PHASES, AWS, ["amazon.aws", "other module", "controller"])
    print("\nCost of one no-op call (median s)\n")
    print(table(["what", "s"], cloud.cost_rows(summary["module_cost"])))
    cloud.print_slowest(
        summary,
        PHASES,
        "median s over runs",
        ["s", "play", "task", "action"],
        lambda t: [fmt(t["median_s"]), t["play"], t["task"], t["action"]],
    )
    cloud.print_closing(summary, failures, warnings)


def main() -> int:
    args = cloud.arguments(AWS, __doc__)
    config: JsonDict = {
        "inventory": "localhost, (the instance is added by deploy-aws.yml, named by its instance id)",
        "bucket": BUCKET,
        "region": REGION,
        "ami": AMI,
        "aws": "testbed.aws (moto, fresh per run, loopback)",
    }
    return cloud.main(AWS, args, one_run, build_summary, config, print_report)


if __name__ == "__main__":
    sys.exit(main())
