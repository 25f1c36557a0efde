#!/usr/bin/env python3
"""AWS benchmark: wall time of `deploy-aws.yml` against the local AWS, fresh up to a client round trip, of a no-op
re-run, of a check-mode run and of `teardown-aws.yml`; tasks per play and what the time is spent on.

Each run starts a new local AWS (scripts/aws_local.py: moto on a free loopback port, a fresh account) and a new
local systemd container standing in for instance 0 of the fleet (both timed separately, not part of the deploy),
then: fresh deploy + ENet probe of both rooms until both answer, no-op re-run (the recap must say changed=0 on
both hosts), --check run, a small playbook measuring what one no-op AWS module call costs, teardown. Everything it
started (moto, the container) is stopped at the end of the run, also on failure or SIGTERM.

    python bench/aws.py [--runs 3] [--quick] [--no-check] [--name NAME]

Prints a table and writes bench/results/aws.json (aws-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cloud
from bench.common import ROOT, JsonDict, fmt, paths_hash, result_document, table
from scripts.aws_local import host_down, host_up

FLEET = "gf-bench-aws"  # godot_fleet_name: the Name tag of the instance, prefix of every AWS resource
BUCKET = "gf-bench-aws-builds"
REGION = "eu-west-1"
AMI = "ami-12c6146b"  # an image moto knows
ROOM_PORTS = (41077, 41078)  # the instance container shares this machine's loopback: rooms on 127.0.0.1:41077-8
# Dummy credentials: the local AWS accepts any. Nothing else of the caller's AWS_* environment is passed on.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "gf-bench-access-key", "AWS_SECRET_ACCESS_KEY": "gf-bench-secret-key"}
AWS = cloud.Cloud(
    kind="aws",
    prefixes=("amazon.aws.", "community.aws."),
    tasks_label="amazon.aws tasks",
    instance="instance",
    anonymous_hosts=True,  # instance ids differ per run
)
# The files that define what this benchmark measures (common.py's tree hash covers only the host role).
AWS_MEASURED_PATHS = (
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
    "scripts/aws_local.py",
)
PHASES = ("fresh", "rerun", "check", "teardown")
PYTHON_COSTS = ("python_pass", "python_import_boto3", "python_boto3_sts_call")


# --- the local AWS -------------------------------------------------------------------------------------------


class LocalAws(cloud.LocalServer):
    """`scripts/aws_local.py serve` as a child process (moto + the instance-credentials stand-in)."""

    endpoint = ""


def start_local_aws(log_path: Path, timeout: float = 90.0) -> LocalAws:
    """Starts a fresh local AWS on a free loopback port and waits for its READY line (timed)."""
    port = cloud.free_port_block(1, ROOM_PORTS)
    argv = [sys.executable, str(ROOT / "scripts" / "aws_local.py"), "serve", "--port", str(port)]
    aws = LocalAws("the local AWS", argv, log_path)
    for line in aws.wait_ready(timeout):
        if line.startswith("AWS_ENDPOINT_URL="):
            aws.endpoint = line.split("=", 1)[1]
    if not aws.endpoint.startswith("http://127.0.0.1:"):
        aws.stop()
        raise RuntimeError(f"the local AWS is not on loopback: {aws.endpoint!r}")
    return aws


# --- one run -------------------------------------------------------------------------------------------------


def playbook_env(workdir: Path, endpoint: str) -> dict[str, str]:
    """The project environment, the local AWS's address, dummy credentials, no other AWS_* variable, no AWS config
    file, no metadata service."""
    return cloud.playbook_env(
        "AWS_",
        {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )


def extra_vars(container: str, build: cloud.Build, public_key: str) -> JsonDict:
    """The variables of tests/integration/test_aws.py, with the benchmark's names and ports."""
    return {
        **cloud.fleet_vars(FLEET, public_key, build, ROOM_PORTS),
        "godot_fleet_aws_region": REGION,
        "godot_fleet_aws_bucket": BUCKET,
        "godot_fleet_aws_ami_id": AMI,
        "godot_fleet_aws_host_overrides": cloud.container_overrides(container),
        **cloud.ROOM_VARS,
    }


def cost_calls(endpoint: str) -> list[tuple[str, JsonDict]]:
    """The no-op calls measured: debug, ping, aws_caller_info and ec2_vpc_net_info."""
    aws_args = {"region": REGION, "endpoint_url": endpoint}
    return [
        ("ansible.builtin.debug", {"msg": "no module run"}),
        ("ansible.builtin.ping", {}),
        ("amazon.aws.aws_caller_info", aws_args),
        ("amazon.aws.ec2_vpc_net_info", {"filters": {"tag:Name": FLEET}, **aws_args}),
    ]


def python_snippets(endpoint: str) -> dict[str, str]:
    """A bare interpreter, importing boto3, and import + one STS call (controller Python)."""
    sts = f"import boto3; boto3.client('sts', endpoint_url={endpoint!r}, region_name={REGION!r}).get_caller_identity()"
    return dict(zip(PYTHON_COSTS, ("pass", "import boto3", sts), strict=True))


def one_run(
    index: int, workdir: Path, build: cloud.Build, public_key: str, args: argparse.Namespace
) -> tuple[JsonDict, dict[str, cloud.Run]]:
    state = cloud.RunState(index, "gf-bench-aws")
    cloud.require_free_udp(ROOM_PORTS)
    state.log("starting a fresh local AWS")
    aws = start_local_aws(workdir / f"aws-{index}.log")
    try:
        state.out["local_aws"] = {"endpoint": aws.endpoint, "startup_s": round(aws.startup_s, 3)}
        env = playbook_env(workdir, aws.endpoint)
        values = extra_vars(state.container, build, public_key)

        def phase(name: str, playbook: str, *extra: str, label: str = "") -> cloud.Run:
            result = state.runs[name] = cloud.run_playbook(AWS, ROOT, playbook, values, env, *extra, label=label)
            return result

        state.log(f"starting {state.container} (instance 0 of {FLEET}) on {aws.endpoint}")
        with cloud.stand_in(
            state, lambda: host_up(state.container, aws.endpoint, FLEET, 0, REGION), lambda: host_down(state.container)
        ):
            cloud.fresh_deploy(state, phase, "deploy-aws.yml", ROOM_PORTS)
            cloud.noop_rerun(state, phase, "deploy-aws.yml")
            if not args.no_check:
                cloud.check_mode(state, phase, "deploy-aws.yml")

            state.log(f"cost of one no-op module call ({args.samples} samples each)")
            book = cloud.module_cost_playbook(
                workdir / f"module-cost-{index}.yml", cost_calls(aws.endpoint), args.samples
            )
            state.out["module_cost"] = {
                **cloud.module_cost(state, cloud.run_playbook(AWS, ROOT, str(book), {}, env)),
                **cloud.python_costs(python_snippets(aws.endpoint), env, max(3, args.samples // 2), timeout=120),
            }

            cloud.teardown(state, phase, "teardown-aws.yml")
    finally:
        aws.stop()
    return state.out, state.runs


# --- summary -------------------------------------------------------------------------------------------------


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


def build_summary(raw: list[JsonDict], runs: list[dict[str, cloud.Run]], requested: int) -> JsonDict:
    phases = {p: cloud.phase_summary(raw, p, AWS) for p in PHASES}
    summary = cloud.deploy_summary(raw, requested, phases, "local_aws")
    summary["module_cost"] = cloud.module_cost_summary(raw, PYTHON_COSTS)
    summary["slowest_tasks"] = {p: cloud.slowest([r[p] for r in runs if p in r], 6) for p in PHASES}
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
    cloud.print_ratio(summary)
    print(
        f"not in the deploy: local AWS start-up {fmt(summary['median_local_aws_startup_s'])} s, container up "
        f"{fmt(summary['median_host_up_s'])} s, container removal {fmt(summary['median_host_down_s'])} s"
    )
    cloud.print_plays(summary, PHASES, AWS, ["amazon.aws", "other module", "controller"])
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    cloud.add_arguments(parser, "local AWS", "aws")
    args, runs_requested, result_name = cloud.parse_args(parser, "aws")
    started, git, machine = cloud.start()
    git["aws_measured_paths"] = list(AWS_MEASURED_PATHS)
    git["aws_measured_tree_hash"] = paths_hash(ROOT, AWS_MEASURED_PATHS)
    t_start = time.perf_counter()
    raw, runs, failures, build = cloud.run_all(
        "gf-bench-aws", runs_requested, lambda i, workdir, build, key: one_run(i, workdir, build, key, args)
    )

    summary: JsonDict = (
        build_summary(raw, runs, runs_requested) if raw else {"runs_ok": 0, "runs_requested": runs_requested}
    )
    summary["playbook_warnings"] = cloud.playbook_warnings(runs)
    config: JsonDict = {
        **cloud.run_config(args, runs_requested),
        "playbooks": ["deploy-aws.yml", "teardown-aws.yml"],
        "inventory": "localhost, (the instance is added by deploy-aws.yml, named by its instance id)",
        "fleet": FLEET,
        "bucket": BUCKET,
        "region": REGION,
        "ami": AMI,
        "rooms": list(ROOM_PORTS),
        "godot_server_bind": "127.0.0.1",
        "build": build.file.name,
        "release": build.release,
        "instance_image": cloud.HOST_IMAGE,
        "instance_connection": "containers.podman.podman (container on the host network, own UTS namespace)",
        "aws": "scripts/aws_local.py serve (moto, fresh per run, loopback)",
        "callback": "ansible.posix.json (per-task start/end)",
    }
    data = result_document("aws", started, t_start, git, machine, config, failures, summary=summary, runs=raw)
    end_hash = paths_hash(ROOT, AWS_MEASURED_PATHS)
    cloud.warn_if_changed(
        data, git["aws_measured_tree_hash"], end_hash, "the AWS playbooks/roles changed during the run"
    )
    return cloud.finish(result_name, data, raw, failures, lambda: print_report(summary, failures, data["warnings"]))


if __name__ == "__main__":
    sys.exit(main())
