#!/usr/bin/env python3
"""Converge benchmark: wall time of a fresh `deploy-hosts.yml` converge on a new host and of a no-op re-run.

Each run starts a new local systemd container (Debian 12, like `make demo`; its creation is timed separately and
not part of the converge), converges it, checks the two rooms with a real ENet client, converges again (the recap
must say changed=0), and removes the container.

    python -m bench.converge [--runs 3] [--quick]

Prints a table and writes bench/results/converge.json (medians, raw samples, per-task durations, machine info).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import (
    IMAGE,
    JsonDict,
    Run,
    begin,
    fmt,
    log,
    median,
    mitogen_env,
    podman_exec,
    remove_host,
    result_document,
    run_playbook,
    slowest,
    snapshot_artifacts,
    start_host,
    table,
    write_inventory,
    write_results,
)
from testbed.enet_probe import probe_many

ROOM_PORTS = (12077, 12078)  # the demo's two rooms
HOST_PORT_BASE = 49000  # 127.0.0.1:49000+ on this machine (the bench's range is 40000-49999)
TARGET_RATIO = 0.5


def exec_latency(name: str, samples: int = 10) -> list[float]:
    """Wall time of `podman exec NAME true`: the floor of every round trip of the podman connection."""
    out: list[float] = []
    for _ in range(samples):
        t0 = time.perf_counter()
        podman_exec(name, "true")
        out.append(time.perf_counter() - t0)
    return out


def one_run(index: int, workdir: Path, quick: bool, strategy_env: dict[str, str]) -> tuple[JsonDict, Run, Run]:
    artifacts = snapshot_artifacts(workdir / "artifacts")
    name = f"gf-bench-conv-{os.getpid()}-{index}"
    host_ports = [HOST_PORT_BASE + index * len(ROOM_PORTS) + i for i in range(len(ROOM_PORTS))]
    publish = [f"127.0.0.1:{hp}:{cp}/udp" for hp, cp in zip(host_ports, ROOM_PORTS, strict=True)]
    out: JsonDict = {"container": name, "host_ports": host_ports}
    try:
        log(f"run {index + 1}: creating {name}")
        out["create"] = {k: round(v, 3) for k, v in start_host(name, publish, artifacts).items()}
        # Mitogen has its own podman connection, under the connection name "podman"
        connection = "podman" if strategy_env else "containers.podman.podman"
        inventory = write_inventory(workdir / f"inventory-{index}", name, artifacts, ROOM_PORTS, connection)
        env = {**os.environ, **strategy_env}

        log(f"run {index + 1}: fresh converge")
        fresh = run_playbook("deploy-hosts.yml", inventory=inventory, env=env)
        out["fresh"] = fresh.summary()
        if fresh.rc != 0:
            raise RuntimeError(f"fresh converge failed (rc {fresh.rc}): {fresh.error}")

        probes = probe_many([f"127.0.0.1:{p}" for p in host_ports], timeout=5.0)
        out["probe_after_fresh"] = [asdict(p) for p in probes]

        log(f"run {index + 1}: no-op re-run")
        rerun = run_playbook("deploy-hosts.yml", inventory=inventory, env=env)
        out["rerun"] = rerun.summary()
        if rerun.rc != 0:
            raise RuntimeError(f"re-run failed (rc {rerun.rc}): {rerun.error}")

        out["podman_exec_true_s"] = [round(v, 4) for v in exec_latency(name, 5 if quick else 10)]
    finally:
        remove_host(name)
    return out, fresh, rerun


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh container (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run (overrides --runs)")
    parser.add_argument("--name", default=None, help="results file name (default converge, converge-quick)")
    parser.add_argument("--mitogen", action="store_true", help="run the playbooks with Mitogen's strategy")
    args = parser.parse_args()
    strategy_env = mitogen_env() if args.mitogen else {}
    runs = 1 if args.quick else max(1, args.runs)
    result_name = args.name or ("converge-quick" if args.quick else "converge")

    started, git, machine = begin()
    raw: list[JsonDict] = []
    fresh_runs: list[Run] = []
    rerun_runs: list[Run] = []
    failures: list[str] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gf-bench-converge-") as tmp:
        for i in range(runs):
            try:
                r, fresh, rerun = one_run(i, Path(tmp), args.quick, strategy_env)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                log(f"run {i + 1} failed: {exc}")
                failures.append(f"run {i + 1}: {exc}")
                continue
            raw.append(r)
            fresh_runs.append(fresh)
            rerun_runs.append(rerun)

    for i, r in enumerate(raw):
        changed = r["rerun"]["changed"]
        if changed != 0:
            failures.append(f"run {i + 1}: re-run reported changed={changed} (not idempotent)")
        if not all(p["ok"] for p in r["probe_after_fresh"]):
            failures.append(f"run {i + 1}: a room did not answer a client after the fresh converge")

    fresh_s = [r["fresh"]["wall_s"] for r in raw]
    rerun_s = [r["rerun"]["wall_s"] for r in raw]
    med_fresh = median(fresh_s)
    med_rerun = median(rerun_s)
    ratio = med_rerun / med_fresh if med_fresh and med_rerun is not None else None
    # Each run pairs a fresh converge and its re-run under the same machine load: the per-run ratio is steadier.
    run_ratios = [round(r["rerun"]["wall_s"] / r["fresh"]["wall_s"], 3) for r in raw if r["fresh"]["wall_s"]]
    med_run_ratio = median(run_ratios)
    fresh_tasks = median(r["fresh"]["tasks_executed"] for r in raw)
    rerun_tasks = median(r["rerun"]["tasks_executed"] for r in raw)
    # The typical cost of one module round trip that changes nothing (loops excluded).
    rerun_remote_task_s = median(t.seconds for r in rerun_runs for t in r.executed if t.remote and t.items == 0)
    exec_s = median(v for r in raw for v in r["podman_exec_true_s"])

    def overhead(key: str) -> float | None:
        """Wall time not spent inside any task: ansible-playbook start-up, inventory, callbacks."""
        return median(r[key]["outside_tasks_s"] for r in raw)

    summary: JsonDict = {
        "runs_ok": len(raw),
        "runs_requested": runs,
        "median_fresh_s": med_fresh,
        "median_rerun_s": med_rerun,
        "ratio_rerun_over_fresh": round(ratio, 3) if ratio is not None else None,
        "ratio_per_run": run_ratios,
        "median_ratio_per_run": med_run_ratio,
        "ratio_target": TARGET_RATIO,
        "ratio_meets_target": ratio is not None and ratio < TARGET_RATIO,
        "per_run_ratio_meets_target": med_run_ratio is not None and med_run_ratio < TARGET_RATIO,
        "rerun_changed": [r["rerun"]["changed"] for r in raw],
        "fresh_s": fresh_s,
        "rerun_s": rerun_s,
        "median_tasks_executed_fresh": fresh_tasks,
        "median_tasks_executed_rerun": rerun_tasks,
        "median_s_per_task_fresh": round(med_fresh / fresh_tasks, 3) if med_fresh and fresh_tasks else None,
        "median_s_per_task_rerun": round(med_rerun / rerun_tasks, 3) if med_rerun and rerun_tasks else None,
        "median_remote_tasks_executed_rerun": median(r["rerun"]["tasks_executed_remote"] for r in raw),
        "median_remote_tasks_s_rerun": median(r["rerun"]["remote_tasks_s"] for r in raw),
        "median_remote_tasks_executed_fresh": median(r["fresh"]["tasks_executed_remote"] for r in raw),
        "median_remote_tasks_s_fresh": median(r["fresh"]["remote_tasks_s"] for r in raw),
        "median_noop_remote_task_s": rerun_remote_task_s,
        "median_outside_tasks_s_fresh": overhead("fresh"),
        "median_outside_tasks_s_rerun": overhead("rerun"),
        "median_podman_exec_true_s": exec_s,
        "median_container_create_s": median(r["create"]["total_s"] for r in raw),
        "median_podman_run_s": median(r["create"]["podman_run_s"] for r in raw),
        "median_systemd_boot_s": median(r["create"]["systemd_boot_s"] for r in raw),
        "median_artifact_server_s": median(r["create"]["artifact_server_s"] for r in raw),
        "slowest_tasks_fresh": slowest(fresh_runs, 5),
        "slowest_tasks_rerun": slowest(rerun_runs, 5),
    }
    config: JsonDict = {
        "image": IMAGE,
        "runs": runs,
        "quick": args.quick,
        "rooms": list(ROOM_PORTS),
        "playbook": "deploy-hosts.yml",
        "connection": "podman (Mitogen)" if args.mitogen else "containers.podman.podman",
        "strategy": "mitogen_linear" if args.mitogen else "linear",
        "callback": "ansible.posix.json (per-task start/end)",
    }
    data = result_document("converge", started, t_start, git, machine, config, failures, summary=summary, runs=raw)
    path = write_results(result_name, data)

    rows = [
        ["fresh converge (median)", fmt(med_fresh), f"{fmt(fresh_tasks, 0)} tasks executed", ""],
        ["no-op re-run (median)", fmt(med_rerun), f"{fmt(rerun_tasks, 0)} tasks executed", ""],
        [
            "ratio re-run / fresh (medians)",
            fmt(ratio, 3),
            f"target < {TARGET_RATIO}",
            "met" if summary["ratio_meets_target"] else "NOT met",
        ],
        [
            "ratio per run (median)",
            fmt(med_run_ratio, 3),
            ", ".join(fmt(v, 3) for v in run_ratios),
            "met" if summary["per_run_ratio_meets_target"] else "NOT met",
        ],
        ["re-run changed=", ",".join(str(c) for c in summary["rerun_changed"]), "must be 0", ""],
        ["s per executed task, fresh", fmt(summary["median_s_per_task_fresh"], 3), "", ""],
        ["s per executed task, re-run", fmt(summary["median_s_per_task_rerun"], 3), "", ""],
        ["no-op remote task (median)", fmt(rerun_remote_task_s, 3), "one module round trip", ""],
        ["podman exec true (median)", fmt(exec_s, 3), "floor of one round trip", ""],
        ["outside tasks, fresh / re-run", f"{fmt(overhead('fresh'))} / {fmt(overhead('rerun'))}", "start-up", ""],
        ["container creation (median)", fmt(summary["median_container_create_s"]), "not in converge", ""],
        ["  podman run", fmt(summary["median_podman_run_s"]), "", ""],
        ["  systemd boot", fmt(summary["median_systemd_boot_s"]), "", ""],
        ["  artifact server", fmt(summary["median_artifact_server_s"]), "", ""],
    ]
    print(f"\nConverge of deploy-hosts.yml on a new Debian 12 container, {len(raw)}/{runs} runs (seconds)\n")
    print(table(["figure", "value", "note", ""], rows))
    for label, key in (("fresh", "slowest_tasks_fresh"), ("re-run", "slowest_tasks_rerun")):
        print(f"\nSlowest 5 tasks, {label} (median s over runs)")
        rows = [[fmt(t["median_s"]), t["task"].rsplit(" : ", 1)[-1], t["action"]] for t in summary[key]]
        print(table(["s", "task", "action"], rows))
    for f in failures:
        print(f"FAILURE: {f}")
    for w in data["warnings"]:
        print(f"WARNING: {w}")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if failures or not raw else 0


if __name__ == "__main__":
    sys.exit(main())
