#!/usr/bin/env python3
"""Azure benchmark: wall time of `deploy-azure.yml` against the local Azure, fresh up to a client round trip, of a
no-op re-run, of a check-mode run and of `teardown-azure.yml` (twice); tasks per play, ARM requests and logins, and
what the time is spent on.

Each run starts a new local Azure (testbed.azure: the ARM test double, the managed-identity stand-in and Azurite
over HTTPS on a free block of loopback ports, fresh state) and a new local systemd container standing in for VM 0
of the fleet (both timed separately, not part of the deploy), then: fresh deploy + ENet probe of both rooms until
both answer, no-op re-run (the recap must say changed=0 on both hosts), --check run (changed=0, no ARM write), a
small playbook measuring what one no-op azure.azcollection module call costs, teardown, a second teardown
(changed=0). The double's request log gives the ARM requests and logins of every phase and task. Everything it
started (the local Azure, the container) is stopped at the end of the run, also on failure or SIGTERM.

    python -m bench.azure [--runs 3] [--quick] [--no-check] [--samples 5] [--name NAME] [--root DIR]

--root runs the playbooks, roles and ansible.cfg of another checkout (e.g. a git worktree of an older commit) with
this checkout's benchmark, test bed and venv. Prints a table and writes bench/results/azure.json (azure-quick.json
with --quick).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import cloud
from bench.common import Artifacts, JsonDict, Run, fmt, log, median, slowest, table
from testbed import free_port_block
from testbed.azure import host_down, host_up, local_azure

ACCOUNT = "gfbenchazbuilds"  # storage account (3-24 lower-case letters and digits)
AZURE = cloud.Cloud(
    kind="azure",
    prefixes=("azure.azcollection.",),
    local="local Azure",
    tasks_label="azure module tasks",
    instance="VM",
    fleet="gf-bench-az",  # prefix of every Azure resource
    ports=(41177, 41178),
    playbooks=("deploy-azure.yml", "teardown-azure.yml"),
    measured=(
        "deploy-azure.yml",
        "teardown-azure.yml",
        "playbooks/deploy_azure.yml",
        "playbooks/teardown_azure.yml",
        "roles/azure_build_store",
        "roles/azure_network",
        "roles/azure_vm",
        "roles/godot_server",
        "plugins",
        "ansible.cfg",
    ),
    harness=("testbed/azure.py", "testbed/hosts.py", "testbed/arm_double"),
)
FLEET = AZURE.fleet
VM = f"{FLEET}-0"  # the inventory name of VM 0 (what deploy-azure.yml's add_host calls it)
GROUP = f"{FLEET}-rg"  # the resource group deploy-azure.yml derives from the fleet name
RETRY_AFTER_S = 1  # the double's Retry-After on long-running operations (testbed/arm_double Config.retry_after)
ARM_HOST = "management.azure.com"
LOGIN_HOST = "login.microsoftonline.com"
# ARM writes as tests/integration/test_azure.py counts them (POST is an action: listKeys, ListServiceSas, ...)
WRITES = frozenset({"PUT", "PATCH", "DELETE"})
LRO_PATH = re.compile(r"/(operations|operationresults|asyncoperations)/", re.IGNORECASE)
PHASES = ("fresh", "rerun", "check", "teardown", "teardown2")
PHASE_TITLES = {
    "fresh": "fresh deploy-azure.yml",
    "rerun": "no-op re-run",
    "check": "--check (converged)",
    "teardown": "teardown-azure.yml",
    "teardown2": "second teardown",
}
# What every azure.azcollection module imports first (measured outside Ansible).
AZURE_RM_COMMON = "ansible_collections.azure.azcollection.plugins.module_utils.azure_rm_common"
PYTHON_COSTS = ("python_pass", "python_import_azure_rm_common", "python_sdk_login_and_get")
# The request counts of the slowest tasks (median over the runs): result key, request_counts key.
SLOWEST_REQUESTS = {"median_arm_requests": "arm", "median_lro_polls": "arm_lro_polls", "median_logins": "logins"}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- the double's request log --------------------------------------------------------------------------------


def double(env: Mapping[str, str], path: str, method: str = "GET") -> Any:
    """The double's inspection API (plain HTTP on loopback, never through a proxy): /_double/requests, resources."""
    request = urllib.request.Request(env["GF_AZURE_DOUBLE"] + path, method=method)
    with _NO_PROXY.open(request, timeout=30) as answer:
        return json.load(answer)


def request_counts(entries: Sequence[Mapping[str, Any]]) -> JsonDict:
    """ARM requests (reads, writes, POST actions, long-running-operation polls, 4xx/5xx answers such as the 404 of an
    existence check), logins (Entra token requests; login_metadata: the OpenID/discovery reads before each) and
    refused CONNECTs (anything that tried to leave the machine)."""
    arm = [e for e in entries if e.get("host") == ARM_HOST]
    login = [e for e in entries if e.get("host") == LOGIN_HOST]
    polls = [e for e in arm if e.get("method") == "GET" and LRO_PATH.search(str(e.get("path", "")))]
    tokens = [e for e in login if e.get("method") == "POST" and str(e.get("path", "")).lower().endswith("/token")]
    return {
        "arm": len(arm),
        "arm_reads": sum(1 for e in arm if e.get("method") in ("GET", "HEAD")) - len(polls),
        "arm_writes": sum(1 for e in arm if e.get("method") in WRITES),
        "arm_posts": sum(1 for e in arm if e.get("method") == "POST"),
        "arm_lro_polls": len(polls),
        "arm_4xx_5xx": sum(1 for e in arm if int(e.get("status", 0)) >= 400),
        "logins": len(tokens),
        "login_metadata": len(login) - len(tokens),
        "refused": len(entries) - len(arm) - len(login),
    }


def arm_write_list(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in entries if e.get("host") == ARM_HOST and e.get("method") in WRITES]


def attribute(run: Run, entries: Sequence[Mapping[str, Any]]) -> None:
    """The run's request counts, and each task's (a request belongs to the task running when it was logged)."""
    run.requests = request_counts(entries)
    timed = [t for t in run.tasks if t.end > 0]
    per_task: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    unattributed = 0
    for entry in entries:
        when = float(entry.get("time", 0.0))
        owner = next((i for i, t in enumerate(timed) if t.start - 0.005 <= when <= t.end + 0.005), None)
        if owner is None:
            unattributed += 1
        else:
            per_task[owner].append(entry)
    for i, t in enumerate(timed):
        t.requests = request_counts(per_task.get(i, []))
    run.unattributed_requests = unattributed


# The no-op calls measured: debug, ping and two read-only azure modules.
COST_CALLS: list[tuple[str, JsonDict]] = [
    ("ansible.builtin.debug", {"msg": "no module run"}),
    ("ansible.builtin.ping", {}),
    ("azure.azcollection.azure_rm_resourcegroup_info", {"name": GROUP}),
    ("azure.azcollection.azure_rm_virtualnetwork_info", {"resource_group": GROUP, "name": f"{FLEET}-vnet"}),
]
SDK_CALL = (
    "import os\n"
    "from azure.identity import ClientSecretCredential\n"
    "from azure.mgmt.resource import ResourceManagementClient\n"
    "e = os.environ\n"
    "c = ClientSecretCredential(e['AZURE_TENANT'], e['AZURE_CLIENT_ID'], e['AZURE_SECRET'])\n"
    f"ResourceManagementClient(c, e['AZURE_SUBSCRIPTION_ID']).resource_groups.get({GROUP!r})\n"
)
# A bare interpreter, importing the collection's azure_rm_common (what every azure module imports), and the SDK
# alone: import, login, one ARM GET (controller Python, same environment).
PYTHON_SNIPPETS = dict(zip(PYTHON_COSTS, ("pass", f"import {AZURE_RM_COMMON}", SDK_CALL), strict=True))


# --- one run -------------------------------------------------------------------------------------------------


def import_profile(top: int = 10) -> JsonDict:
    """python -X importtime of azure_rm_common: its total and its heaviest direct imports (cumulative, seconds)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {AZURE_RM_COMMON}"], capture_output=True,
                          text=True, timeout=180, check=False)  # fmt: skip
    total = 0.0
    children: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)$", line)
        if not m:
            continue
        level = (len(m.group(3)) - 1) // 2
        seconds = int(m.group(2)) / 1e6
        if level == 0 and m.group(4) == AZURE_RM_COMMON:
            total = seconds
        elif level == 1:
            children.append((m.group(4), seconds))
    children.sort(key=lambda kv: kv[1], reverse=True)
    return {
        "module": AZURE_RM_COMMON,
        "total_s": round(total, 3),
        "direct_imports_s": {name: round(s, 3) for name, s in children[:top]},
        "note": "one sample (python -X importtime), warm file cache, at the start of the benchmark",
    }


def one_run(args: argparse.Namespace, state: cloud.RunState, workdir: Path, build: Artifacts, public_key: str) -> None:
    state.log("starting a fresh local Azure")
    harness = workdir / f"azure-{state.index}"
    port = free_port_block(3, AZURE.ports)
    with cloud.local_cloud(state, local_azure(harness, [ACCOUNT], port)) as azure:
        state.out["local_azure"].update(double=azure["GF_AZURE_DOUBLE"], imds=azure["GF_AZURE_IMDS"],
                                        blob=azure["GF_AZURE_BLOB"])  # fmt: skip
        # as tests/integration/test_azure.py: no AZURE_* of the caller; the harness's proxy, CA bundle and fake
        # service principal
        env = cloud.playbook_env(state.root, "AZURE_", azure)
        values = {
            **cloud.fleet_vars(AZURE, args, state.container, public_key, build),
            "godot_fleet_azure_storage_account": ACCOUNT,
            # VM 0's identity endpoint: the harness's stand-in, named after the VM
            "godot_server_azure_identity_endpoint": (
                f"{azure['GF_AZURE_IMDS']}/instance/{VM}/metadata/identity/oauth2/token"
            ),
        }
        logged: dict[str, list[JsonDict]] = {}  # the double's requests during each phase

        def run(playbook: str | Path, run_values: JsonDict, *extra: str, label: str = "", name: str = "") -> Run:
            """A playbook run and the requests made to the double during it (logged[name]), attributed to its tasks."""
            double(azure, "/_double/requests", "DELETE")
            result = state.run(playbook, run_values, env, *extra, label=label)
            logged[name] = double(azure, "/_double/requests")["value"]
            attribute(result, logged[name])
            return result

        def phase(name: str, playbook: str, *extra: str, label: str = "") -> Run:
            result = state.runs[name] = run(playbook, values, *extra, label=label, name=name)
            return result

        with cloud.stand_in(state, lambda: host_up(state.container, harness), lambda: host_down(state.container)):
            cloud.fresh_deploy(state, phase)
            state.out["resources_after_deploy"] = sorted(
                str(r.get("type", "")) for r in double(azure, "/_double/resources")["value"]
            )
            cloud.noop_rerun(state, phase)
            if not args.no_check:
                cloud.check_mode(state, phase)
                writes = arm_write_list(logged["check"])
                if writes:
                    state.fail(f"check mode wrote to ARM: {writes[:10]}")

            cost = run(cloud.module_cost_playbook(state, workdir, COST_CALLS, args.samples), {})
            measured = cloud.module_cost(state, cost)
            arm_per_call: dict[str, list[int]] = defaultdict(list)
            logins_per_call: dict[str, list[int]] = defaultdict(list)
            for t in cost.executed:
                if t.kind == "azure":
                    arm_per_call[t.action].append(int(t.requests.get("arm", 0)))
                    logins_per_call[t.action].append(int(t.requests.get("logins", 0)))
            state.out["module_cost"] = {
                **measured,
                "arm_requests_per_call": dict(arm_per_call),
                "logins_per_call": dict(logins_per_call),
                **cloud.python_costs(PYTHON_SNIPPETS, env, max(3, args.samples // 2), timeout=180),
            }

            cloud.teardown(state, phase)
            left = [str(r.get("id", "")) for r in double(azure, "/_double/resources")["value"]]
            if left:
                state.fail(f"resources left after teardown: {left[:10]}")

            state.log("second teardown")
            again = phase("teardown2", AZURE.playbooks[1], label="teardown")
            if again.rc != 0:
                state.fail(f"second teardown failed (rc {again.rc}): {again.error}")
            elif again.changed != 0:
                state.fail(f"second teardown not a no-op: recap {again.stats}")


# --- summary -------------------------------------------------------------------------------------------------


def arm_conclusion(s: JsonDict) -> str:
    """The ARM requests and logins of a phase (medians)."""
    req = s.get("requests", {})
    return (
        f"{fmt(req.get('arm'), 0)} ARM requests ({fmt(req.get('arm_writes'), 0)} writes,"
        f" {fmt(req.get('arm_lro_polls'), 0)} operation polls after a {RETRY_AFTER_S} s Retry-After each),"
        f" {fmt(req.get('logins'), 0)} logins"
    )


def conclusions(summary: JsonDict) -> list[str]:
    """'What dominates', derived from the medians."""
    out = cloud.phase_conclusions(summary, PHASES, AZURE, arm_conclusion)
    cost = summary["module_cost"]
    az_call = cost.get("azure.azcollection.azure_rm_resourcegroup_info")
    if az_call is not None:
        c = {k: fmt(v, 2) for k, v in cost.items() if not isinstance(v, dict)}
        per_call = cost.get("requests_per_call", {}).get("azure.azcollection.azure_rm_resourcegroup_info", {})
        out.append(
            f"one no-op azure module call costs {c['azure.azcollection.azure_rm_resourcegroup_info']} s"
            f" (azure_rm_resourcegroup_info, {fmt(per_call.get('arm'), 0)} ARM request(s) and"
            f" {fmt(per_call.get('logins'), 0)} login(s) per call; azure_rm_virtualnetwork_info"
            f" {c.get('azure.azcollection.azure_rm_virtualnetwork_info')} s), {cloud.builtin_costs(c)}, importing the"
            f" collection's azure_rm_common {c['python_import_azure_rm_common']} s, the SDK alone (import, login, one"
            f" ARM GET) {c['python_sdk_login_and_get']} s"
        )
        rerun = cloud.rerun_provisioning(summary, AZURE, az_call, "azure_rm_resourcegroup_info")
        if rerun:
            out.append(rerun)
    profile = summary.get("import_profile", {})
    if profile.get("total_s"):
        heaviest = ", ".join(f"{k} {fmt(v, 2)}" for k, v in list(profile["direct_imports_s"].items())[:5])
        out.append(
            f"importing azure_rm_common took {fmt(profile['total_s'], 2)} s (-X importtime); heaviest: {heaviest}"
        )
    return out + cloud.ratio_conclusion(summary)


def build_summary(raw: list[JsonDict], runs: list[dict[str, Run]], requested: int, profile: JsonDict) -> JsonDict:
    summary = cloud.deploy_summary(raw, requested, AZURE, PHASES)
    costs = [r["module_cost"] for r in raw if "module_cost" in r]
    module_cost = cloud.module_cost_summary(raw, PYTHON_COSTS)
    module_cost["requests_per_call"] = {
        action: {
            "arm": median(v for c in costs for v in c["arm_requests_per_call"].get(action, [])),
            "logins": median(v for c in costs for v in c["logins_per_call"].get(action, [])),
        }
        for action in sorted({a for c in costs for a in c["arm_requests_per_call"]})
    }
    summary["module_cost"] = module_cost
    summary["import_profile"] = profile
    summary["slowest_tasks"] = {
        p: slowest([r[p] for r in runs if p in r], 8, items=True, requests=SLOWEST_REQUESTS) for p in PHASES
    }
    summary["what_dominates"] = conclusions(summary)
    return summary


def print_report(summary: JsonDict, failures: list[str], warnings: list[str]) -> None:
    ph = summary["phases"]

    def azure_row(phase: str) -> list[str]:
        req = ph[phase].get("requests", {})
        arm = f"{fmt(req.get('arm'), 0)} / {fmt(req.get('arm_writes'), 0)} / {fmt(req.get('arm_lro_polls'), 0)}"
        return cloud.phase_row(ph[phase], PHASE_TITLES[phase], [arm, fmt(req.get("logins"), 0)])

    rows = [cloud.round_trip_row(summary, 5), *(azure_row(p) for p in PHASES if ph.get(p))]
    runs = f"{summary['runs_ok']}/{summary['runs_requested']} runs"
    print(
        f"\ndeploy-azure.yml against the local Azure (ARM double + Azurite) + one systemd container as VM 0, {runs}\n"
    )
    print(
        table(
            ["figure", "median s", "tasks", "s/task", "outside tasks", "ARM req / writes / polls", "logins", "samples",
             "changed / note"],
            rows,
        )
    )  # fmt: skip
    cloud.print_ratio_and_plays(summary, PHASES, AZURE, ["azure modules", "other modules", "controller"])

    cost = summary["module_cost"]
    per_call = [
        [f"{action} per call", f"{fmt(v['arm'], 0)} ARM, {fmt(v['logins'], 0)} login(s)"]
        for action, v in cost.get("requests_per_call", {}).items()
    ]
    print("\nCost of one no-op call (median s)\n")
    print(table(["what", "s"], cloud.cost_rows(cost) + per_call))
    cloud.print_slowest(
        summary,
        PHASES,
        "median s over runs; ARM requests / operation polls / logins in the task",
        ["s", "play", "task", "action", "ARM/polls/logins"],
        lambda t: [
            fmt(t["median_s"]),
            t["play"],
            t["task"][:80],
            t["action"],
            "/".join(fmt(t[k], 0) for k in SLOWEST_REQUESTS),
        ],
    )
    cloud.print_closing(summary, failures, warnings)


def main() -> int:
    args = cloud.arguments(AZURE, __doc__)
    log("profiling the import of azure_rm_common")
    profile = import_profile()
    config: JsonDict = {
        "inventory": f"localhost, (VM 0 is added by deploy-azure.yml as {VM})",
        "resource_group": GROUP,
        "storage_account": ACCOUNT,
        "azure": "testbed.azure of this checkout (ARM double, identity, Azurite; fresh per run)",
        "lro_retry_after_s": RETRY_AFTER_S,
    }

    def summarize(raw: list[JsonDict], runs: list[dict[str, Run]], requested: int) -> JsonDict:
        return build_summary(raw, runs, requested, profile)

    return cloud.main(AZURE, args, one_run, summarize, config, print_report, {"import_profile": profile})


if __name__ == "__main__":
    sys.exit(main())
