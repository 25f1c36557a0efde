"""Shared parts of the cloud benchmarks (bench/aws.py, bench/azure.py).

Both run a cloud playbook against the local stand-in of the cloud (testbed.aws, testbed.azure) and one local systemd
container standing in for instance/VM 0 of the fleet: fresh deploy up to an ENet round trip with both rooms, no-op
re-run, --check run, a playbook measuring one no-op module call, teardown. This module holds what does not depend on
the cloud: the command line and the runs, the phases of one run, the summary, the printed tables and the result
document. What differs between the clouds is described by a `Cloud`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from bench.common import (
    IMAGE,
    Artifacts,
    JsonDict,
    Kinds,
    Run,
    begin,
    fmt,
    log,
    median,
    mitogen_env,
    paths_hash,
    result_document,
    rounded,
    run_playbook,
    snapshot_artifacts,
    table,
    write_results,
)
from testbed import ROOT
from testbed.demo import PORTABLE_ROOMS, admin_public_key, local_host_vars
from testbed.enet_probe import probe_many

TARGET_RATIO = 0.5
PROBE_DEADLINE_S = 60.0
ADMIN_CIDR = "198.51.100.7/32"  # TEST-NET-2: only written into the emulated security group, never contacted
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Cloud(Kinds):
    """What tells one cloud benchmark from the other: `kind` (aws, azure: the kind of the cloud modules' tasks,
    by_kind, median_<kind>_tasks, ..., and the results' name), its modules' `prefixes`, and the rest below."""

    local: str  # what the local cloud is called: local AWS, local Azure
    tasks_label: str  # how the conclusions call the cloud modules' tasks
    instance: str  # what the container stands in for
    fleet: str  # godot_fleet_name, gf-bench-*; the containers are <fleet>-<pid>-<run>
    ports: tuple[int, int]  # the rooms (the container shares this machine's loopback: on 127.0.0.1)
    playbooks: tuple[str, str]  # deploy, teardown
    measured: tuple[str, ...]  # the files of --root that define what is measured
    harness: tuple[str, ...]  # the files of this checkout's test bed that run the local cloud
    anonymous_hosts: bool = False  # playbook warnings name the instance by what it is (its name differs per run)


def require_free_udp(ports: Sequence[int]) -> None:
    """The rooms bind 127.0.0.1:<port> of this machine (the container shares its network): the ports must be free."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"UDP 127.0.0.1:{port} is in use ({exc}); the rooms need it") from exc


def playbook_env(root: Path, without: str, extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the caller's variables starting with `without` (its cloud credentials and
    settings), plus extra, with the ansible.cfg (and so the collection) of the checkout `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(without)}
    return {**env, **extra, "ANSIBLE_CONFIG": str(root / "ansible.cfg")}


def fleet_vars(cloud: Cloud, args: argparse.Namespace, container: str, public_key: str, build: Artifacts) -> JsonDict:
    """The variables of tests/integration/test_<cloud>.py every cloud shares, with the benchmark's names and ports:
    instance/VM 0 is the local container (over args.connection), the portable rooms on loopback."""
    host = local_host_vars(container) | {"ansible_connection": args.connection}
    return {
        "godot_fleet_name": cloud.fleet,
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": public_key,
        "godot_fleet_build_file": str(build.file),
        "godot_server_version": build.release,
        "godot_server_ports": list(cloud.ports),
        f"godot_fleet_{cloud.kind}_host_overrides": [host],
        **PORTABLE_ROOMS,
    }


# --- one run -------------------------------------------------------------------------------------------------


class RunState:
    """One run: its document (`out`, what the results keep of it), its Runs by phase, its failures (also in `out`
    until run_all takes them out), the name of the container standing in for the instance/VM, and the checkout
    whose playbooks run."""

    def __init__(self, cloud: Cloud, index: int, root: Path) -> None:
        self.cloud = cloud
        self.index = index
        self.root = root
        self.runs: dict[str, Run] = {}
        self.failures: list[str] = []
        self.container = f"{cloud.fleet}-{os.getpid()}-{index}"
        self.out: JsonDict = {"run": index + 1, "loadavg_at_start": list(os.getloadavg()), "failures": self.failures,
                              "container": self.container}  # fmt: skip

    def log(self, message: str) -> None:
        log(f"run {self.index + 1}: {message}")

    def fail(self, message: str) -> None:
        self.failures.append(f"run {self.index + 1}: {message}")

    def run(self, playbook: str | Path, values: JsonDict, env: Mapping[str, str], *args: str, label: str = "") -> Run:
        """A playbook of --root; its plays labelled `label`, else provision (on localhost) or configure."""
        cloud = self.cloud
        anonymous = cloud.instance if cloud.anonymous_hosts else ""
        result = run_playbook(playbook, values, *args, env=env, root=self.root, kinds=cloud, anonymous=anonymous,
                              timeout=1800)  # fmt: skip
        for play in result.plays:
            play.label = label or ("provision" if play.hosts in ([], ["localhost"]) else "configure")
        return result


@contextlib.contextmanager
def local_cloud(state: RunState, launcher: contextlib.AbstractContextManager[T]) -> Iterator[T]:
    """The local cloud of a run (a testbed launcher), its start-up until it serves (local_<kind>.startup_s) and its
    stop (local_<kind>_stop_s) timed."""
    key = f"local_{state.cloud.kind}"
    stack = contextlib.ExitStack()
    t0 = time.perf_counter()
    server = stack.enter_context(launcher)
    state.out[key] = {"startup_s": round(time.perf_counter() - t0, 3)}
    try:
        yield server
    finally:
        t_stop = time.perf_counter()
        stack.close()
        state.out[f"{key}_stop_s"] = round(time.perf_counter() - t_stop, 3)


@contextlib.contextmanager
def stand_in(state: RunState, up: Callable[[], object], down: Callable[[], object]) -> Iterator[None]:
    """The container standing in for the instance/VM: up (host_up_s), the phases, then, also when they fail, down
    (host_down_s) and the summary of every phase that ran into the run's document."""
    state.log(f"starting {state.container} ({state.cloud.instance} 0 of {state.cloud.fleet})")
    t0 = time.perf_counter()
    try:
        up()
        state.out["host_up_s"] = round(time.perf_counter() - t0, 3)
        yield
    finally:
        t_down = time.perf_counter()
        down()
        state.out["host_down_s"] = round(time.perf_counter() - t_down, 3)
        for name, r in state.runs.items():
            state.out[name] = r.summary()


Phase = Callable[..., Run]  # (name, playbook, *args, label=""): a playbook run as the phase `name` of the run


def wait_round_trip(ports: Sequence[int]) -> tuple[float, int, list[JsonDict]]:
    """Probes both rooms (ENet handshake + RAW echo) in rounds until both answer: (seconds, rounds, last results)."""
    targets = [f"127.0.0.1:{p}" for p in ports]
    t0 = time.perf_counter()
    rounds = 0
    while True:
        rounds += 1
        results = probe_many(targets, timeout=2.0)
        if all(r.ok for r in results):
            return time.perf_counter() - t0, rounds, [asdict(r) for r in results]
        if time.perf_counter() - t0 > PROBE_DEADLINE_S:
            raise RuntimeError(f"the rooms did not answer within {PROBE_DEADLINE_S:.0f} s: {results}")
        time.sleep(0.2)


def fresh_deploy(state: RunState, phase: Phase) -> Run:
    """The fresh deploy, then ENet probes until both rooms answer (fresh_to_round_trip_s, probe)."""
    playbook = state.cloud.playbooks[0]
    state.log(f"fresh {playbook}")
    t_fresh = time.perf_counter()
    fresh = phase("fresh", playbook)
    if fresh.rc != 0:
        raise RuntimeError(f"fresh deploy failed (rc {fresh.rc}): {fresh.error}")
    probe_s, rounds, probes = wait_round_trip(state.cloud.ports)
    state.out["fresh_to_round_trip_s"] = round(time.perf_counter() - t_fresh, 3)
    state.out["probe"] = {"s": round(probe_s, 3), "rounds": rounds, "results": probes}
    return fresh


def noop_rerun(state: RunState, phase: Phase) -> Run:
    """The same deploy again: the recap of both hosts must say changed=0."""
    state.log("no-op re-run")
    rerun = phase("rerun", state.cloud.playbooks[0])
    if rerun.rc != 0:
        raise RuntimeError(f"re-run failed (rc {rerun.rc}): {rerun.error}")
    if rerun.changed != 0 or len(rerun.stats) != 2:
        state.fail(f"re-run not a no-op: recap {rerun.stats}")
    return rerun


def check_mode(state: RunState, phase: Phase) -> Run:
    """The deploy with --check on the converged state: it must succeed and change nothing on both hosts."""
    state.log("--check on the converged state")
    check = phase("check", state.cloud.playbooks[0], "--check")
    if check.rc != 0:
        state.fail(f"check mode failed (rc {check.rc}): {check.error}")
    elif check.changed != 0 or len(check.stats) != 2:
        state.fail(f"check mode reports changes: recap {check.stats}")
    return check


def teardown(state: RunState, phase: Phase) -> Run:
    """The teardown playbook (one play, labelled teardown): it must succeed and change something."""
    state.log(state.cloud.playbooks[1])
    result = phase("teardown", state.cloud.playbooks[1], label="teardown")
    if result.rc != 0:
        raise RuntimeError(f"teardown failed (rc {result.rc}): {result.error}")
    if result.changed == 0:
        state.fail("teardown changed nothing")
    return result


def module_cost_playbook(state: RunState, workdir: Path, calls: Sequence[tuple[str, JsonDict]], samples: int) -> Path:
    """A playbook of one play on localhost: `samples` separate tasks of each (action, arguments) of calls."""
    state.log(f"cost of one no-op module call ({samples} samples each)")
    tasks = [{"name": f"{action} {i}", action: args} for i in range(samples) for action, args in calls]
    play = {
        "name": "Cost of one no-op module call",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": tasks,
    }
    path = workdir / f"module-cost-{state.index}.yml"
    path.write_text(json.dumps([play], indent=2) + "\n")  # YAML is a superset of JSON
    return path


def module_cost(state: RunState, cost: Run) -> JsonDict:
    """The module cost playbook's wall time, time outside tasks and every task's seconds by action."""
    if cost.rc != 0:
        state.fail(f"module cost playbook failed: {cost.error}")
    samples: dict[str, list[float]] = defaultdict(list)
    for t in cost.executed:
        samples[t.action].append(round(t.seconds, 4))
    return {
        "wall_s": round(cost.wall_s, 3),
        "outside_tasks_s": round(cost.outside_tasks_s(), 3),
        "task_s": dict(samples),
    }


def python_costs(snippets: Mapping[str, str], env: Mapping[str, str], samples: int, timeout: float) -> JsonDict:
    """Wall time of `python -c CODE` for every snippet (controller Python, the playbooks' environment)."""
    out: JsonDict = {}
    for key, code in snippets.items():
        values: list[float] = []
        for _ in range(samples):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, env=dict(env), timeout=timeout
            )
            values.append(round(time.perf_counter() - t0, 4))
        out[key] = values
    return out


# --- the benchmark -------------------------------------------------------------------------------------------

OneRun = Callable[[argparse.Namespace, RunState, Path, Artifacts, str], None]


def arguments(cloud: Cloud, doc: str | None) -> argparse.Namespace:
    """--runs, --quick, --no-check, --samples, --name (results file name: <kind>, <kind>-quick by default), --root;
    the number of runs asked for as `requested`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--runs", type=int, default=3, help=f"runs, each on a fresh {cloud.local} and container")
    parser.add_argument("--quick", action="store_true", help="one run (overrides --runs)")
    parser.add_argument("--no-check", action="store_true", help="skip the --check run on the converged state")
    parser.add_argument("--samples", type=int, default=5, help="samples of each no-op module call per run (default 5)")
    parser.add_argument("--name", default=None, help=f"results file name (default {cloud.kind}, {cloud.kind}-quick)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="checkout whose playbooks, roles and ansible.cfg are run (default: this one)")  # fmt: skip
    parser.add_argument("--mitogen", action="store_true",
                        help="Mitogen's strategy, and its podman connection to the container")  # fmt: skip
    args = parser.parse_args()
    # Mitogen knows the connection by its short name only (not containers.podman.podman)
    args.connection = "podman" if args.mitogen else "containers.podman.podman"
    args.root = args.root.resolve()
    if not all((args.root / f).is_file() for f in (*cloud.playbooks, "ansible.cfg")):
        parser.error(f"--root {args.root}: no {' / '.join(cloud.playbooks)} / ansible.cfg there")
    args.samples = max(1, args.samples)
    args.requested = 1 if args.quick else max(1, args.runs)
    args.name = args.name or (f"{cloud.kind}-quick" if args.quick else cloud.kind)
    return args


def root_git_info(cloud: Cloud, root: Path) -> JsonDict:
    """Commit and uncommitted changes of the checkout whose playbooks are measured, the hash of its measured files
    and of this checkout's test bed that runs the local cloud."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True).stdout

    porcelain = [line[3:] for line in git("status", "--porcelain").splitlines() if line[3:]]
    links = [p for p in porcelain if (root / p.rstrip("/")).is_symlink()]  # .venv, dist, .cache of a worktree
    return {
        "root": str(root),
        "root_commit": git("rev-parse", "HEAD").strip(),
        "root_describe": git("log", "-1", "--format=%h %s").strip(),
        "root_dirty_paths": [p for p in porcelain if p not in links and not p.startswith("bench/")],
        "root_symlinks": links,
        f"{cloud.kind}_measured_paths": list(cloud.measured),
        f"{cloud.kind}_measured_tree_hash": paths_hash(root, cloud.measured),
        "harness_paths": list(cloud.harness),
        "harness_tree_hash": paths_hash(ROOT, cloud.harness),
    }


def main(
    cloud: Cloud,
    args: argparse.Namespace,
    one_run: OneRun,
    summarize: Callable[[list[JsonDict], list[dict[str, Run]], int], JsonDict],
    config: JsonDict,
    report: Callable[[JsonDict, list[str], list[str]], None],
    no_runs: JsonDict | None = None,
) -> int:
    """The benchmark: `args.requested` runs in a temporary directory (a snapshot of the build, an admin SSH key),
    each with a RunState, then the summary (`no_runs` when no run completed), the result document (`config` added to
    the shared configuration) and the report; the exit status."""
    started, git, machine = begin()
    if args.mitogen:
        os.environ.update(mitogen_env())
    git.update(root_git_info(cloud, args.root))
    t_start = time.perf_counter()
    raw: list[JsonDict] = []
    runs: list[dict[str, Run]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"{cloud.fleet}-") as tmp:
        workdir = Path(tmp)
        build = snapshot_artifacts(workdir / "artifacts")
        public_key = admin_public_key(workdir)
        for i in range(args.requested):
            state = RunState(cloud, i, args.root)
            try:
                require_free_udp(cloud.ports)
                one_run(args, state, workdir, build, public_key)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                log(f"run {i + 1} failed: {exc}")
                failures.append(f"run {i + 1}: {exc}")
                continue
            failures += state.out.pop("failures")
            raw.append(state.out)
            runs.append(state.runs)

    summary = (
        summarize(raw, runs, args.requested)
        if raw
        else {"runs_ok": 0, "runs_requested": args.requested, **(no_runs or {})}
    )
    summary["playbook_warnings"] = list(dict.fromkeys(w for r in runs for run in r.values() for w in run.warnings))
    config = {
        "runs": args.requested,
        "quick": args.quick,
        "check_run": not args.no_check,
        "module_cost_samples": args.samples,
        "root": str(args.root),
        "playbooks": list(cloud.playbooks),
        "fleet": cloud.fleet,
        "rooms": list(cloud.ports),
        "godot_server_bind": PORTABLE_ROOMS["godot_server_bind"],
        "build": build.file.name,
        "release": build.release,
        f"{cloud.instance.lower()}_image": IMAGE,
        f"{cloud.instance.lower()}_connection": f"{args.connection} (container on the host network, own UTS namespace)",
        "strategy": "mitogen_linear" if args.mitogen else "linear",
        **config,
        "callback": "ansible.posix.json (per-task start/end)",
    }
    data = result_document(cloud.kind, started, t_start, git, machine, config, failures, summary=summary, runs=raw)
    if args.root != ROOT:  # common.py's tree-hash check is about this checkout's host role, not the one measured
        data["warnings"] = []
    for what, key, base, paths in (
        (f"the playbooks/roles of {args.root}", f"{cloud.kind}_measured_tree_hash", args.root, cloud.measured),
        ("the local cloud (testbed)", "harness_tree_hash", ROOT, cloud.harness),
    ):
        if paths_hash(base, paths) != git[key]:
            data["warnings"].append(f"{what} changed during the run ({git[key]} -> {paths_hash(base, paths)})")

    path = write_results(args.name, data)
    if raw:
        report(summary, failures, data["warnings"])
    else:
        for f in failures:
            print(f"FAILURE: {f}")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if failures or not raw else 0


# --- summary -------------------------------------------------------------------------------------------------


def phase_summary(raw: list[JsonDict], phase: str, cloud: Cloud) -> JsonDict:
    docs = [r[phase] for r in raw if phase in r]
    if not docs:
        return {}
    kinds = cloud.kinds
    labels: list[str] = []
    for d in docs:
        labels += [p["label"] for p in d["plays"] if p["label"] not in labels]
    plays: JsonDict = {}
    for label in labels:
        ps = [p for d in docs for p in d["plays"] if p["label"] == label]
        plays[label] = {
            "median_wall_s": rounded(median(p["wall_s"] for p in ps)),
            "median_tasks_executed": median(p["tasks_executed"] for p in ps),
            "median_s_per_task": rounded(median(p["s_per_task"] for p in ps if p["s_per_task"] is not None)),
            "median_task_s": rounded(median(p["median_task_s"] for p in ps)),
            **{f"median_{kind}_tasks": median(p["by_kind"][kind]["tasks"] for p in ps) for kind in kinds},
            **{f"median_{kind}_tasks_s": rounded(median(p["by_kind"][kind]["s"] for p in ps)) for kind in kinds},
        }
    kind_s = {kind: [sum(p["by_kind"][kind]["s"] for p in d["plays"]) for d in docs] for kind in kinds}
    walls = [d["wall_s"] for d in docs]
    tasks = median(d["tasks_executed"] for d in docs)
    med = median(walls)
    out: JsonDict = {
        "median_wall_s": rounded(med),
        "wall_s": walls,
        "median_tasks_executed": tasks,
        "median_s_per_task": rounded(med / tasks) if med and tasks else None,
        "median_outside_tasks_s": rounded(median(d["outside_tasks_s"] for d in docs)),
        "changed": [d["changed"] for d in docs],
        "machine_busy_cores": [d.get("machine_busy_cores") for d in docs],
    }
    out.update({f"median_{kind}_tasks_s": rounded(median(v)) for kind, v in kind_s.items()})
    for kind in (cloud.kind, "module"):
        out[f"median_{kind}_share"] = rounded(median(s / d["wall_s"] for s, d in zip(kind_s[kind], docs, strict=True)))
    if docs[0].get("requests"):
        out["requests"] = {k: median(d["requests"].get(k, 0) for d in docs) for k in docs[0]["requests"]}
        out["requests_per_run"] = [d.get("requests", {}) for d in docs]
    out["plays"] = plays
    return out


def deploy_summary(raw: list[JsonDict], requested: int, cloud: Cloud, phases: Sequence[str]) -> JsonDict:
    """Round trip, phase medians, the re-run / fresh ratio, the local cloud's start-up and stop, the container up
    and down, the phases."""
    summaries = {p: phase_summary(raw, p, cloud) for p in phases}
    fresh_s = [r["fresh"]["wall_s"] for r in raw if "fresh" in r]
    rerun_s = [r["rerun"]["wall_s"] for r in raw if "rerun" in r]
    med_fresh, med_rerun = median(fresh_s), median(rerun_s)
    ratio = med_rerun / med_fresh if med_fresh and med_rerun is not None else None
    run_ratios = [round(r["rerun"]["wall_s"] / r["fresh"]["wall_s"], 3) for r in raw if "rerun" in r and "fresh" in r]
    with_probe = [r for r in raw if "fresh_to_round_trip_s" in r]
    local = f"local_{cloud.kind}"
    return {
        "runs_ok": len(raw),
        "runs_requested": requested,
        "median_fresh_to_round_trip_s": rounded(median(r["fresh_to_round_trip_s"] for r in with_probe)),
        "fresh_to_round_trip_s": [r["fresh_to_round_trip_s"] for r in with_probe],
        "median_probe_s": rounded(median(r["probe"]["s"] for r in with_probe)),
        "median_fresh_s": rounded(med_fresh),
        "median_rerun_s": rounded(med_rerun),
        **{f"median_{p}_s": s.get("median_wall_s") for p, s in summaries.items() if p not in ("fresh", "rerun")},
        "ratio_rerun_over_fresh": rounded(ratio),
        "ratio_per_run": run_ratios,
        "median_ratio_per_run": median(run_ratios),
        "ratio_target": TARGET_RATIO,
        "ratio_meets_target": ratio is not None and ratio < TARGET_RATIO,
        f"median_{local}_startup_s": rounded(median(r[local]["startup_s"] for r in raw)),
        f"median_{local}_stop_s": rounded(median(r[f"{local}_stop_s"] for r in raw)),
        "median_host_up_s": rounded(median(r["host_up_s"] for r in raw if "host_up_s" in r)),
        "median_host_down_s": rounded(median(r["host_down_s"] for r in raw)),
        "phases": summaries,
    }


def module_cost_summary(raw: list[JsonDict], python_keys: Sequence[str]) -> JsonDict:
    """Median seconds of each no-op call, of each python_costs snippet, and of the playbook outside its tasks."""
    costs = [r["module_cost"] for r in raw if "module_cost" in r]
    cost_keys = sorted({k for c in costs for k in c["task_s"]})
    out: JsonDict = {k: rounded(median(v for c in costs for v in c["task_s"].get(k, [])), 4) for k in cost_keys}
    for key in python_keys:
        out[key] = rounded(median(v for c in costs for v in c.get(key, [])), 4)
    out["outside_tasks_s"] = rounded(median(c["outside_tasks_s"] for c in costs))
    return out


def phase_conclusions(
    summary: JsonDict, phases: Sequence[str], cloud: Cloud, extra: Callable[[JsonDict], str] | None = None
) -> list[str]:
    """'What dominates' each phase: its plays, the time outside tasks, extra(phase summary), the shares by kind."""
    out: list[str] = []
    for phase in phases:
        s = summary["phases"].get(phase)
        if not s or not s["median_wall_s"]:
            continue
        wall = s["median_wall_s"]
        parts = []
        for label, p in s["plays"].items():
            share = 100 * (p["median_wall_s"] or 0) / wall
            tasks = fmt(p["median_tasks_executed"], 0)
            text = f"{label} play {fmt(p['median_wall_s'], 1)} s ({share:.0f} %, {tasks} tasks"
            if p[f"median_{cloud.kind}_tasks"]:
                count, seconds = p[f"median_{cloud.kind}_tasks"], p[f"median_{cloud.kind}_tasks_s"] or 0.0
                text += f"; {fmt(count, 0)} {cloud.tasks_label} {fmt(seconds, 1)} s = {fmt(seconds / count, 2)} s each"
            if p["median_module_tasks"]:
                where = f"on the {cloud.instance} over podman" if label == "configure" else "local"
                count, seconds = p["median_module_tasks"], p["median_module_tasks_s"] or 0.0
                text += f"; {fmt(count, 0)} other module tasks ({where}) {fmt(seconds, 1)} s"
                text += f" = {fmt(seconds / count, 2)} s each"
            parts.append(text + ")")
        parts.append(f"outside tasks {fmt(s['median_outside_tasks_s'], 1)} s")
        if extra is not None:
            parts.append(extra(s))
        shares = (
            f"{cloud.tasks_label} {100 * (s[f'median_{cloud.kind}_share'] or 0):.0f} %, other module tasks"
            f" {100 * (s['median_module_share'] or 0):.0f} % of the wall time"
        )
        out.append(f"{phase} {fmt(wall, 1)} s: " + ", ".join(parts) + f"; {shares}")
    return out


def builtin_costs(cost: Mapping[str, str]) -> str:
    """The no-op calls of ansible.builtin and a bare Python (cost: module_cost figures, formatted)."""
    return (
        f"ansible.builtin.ping on localhost {cost.get('ansible.builtin.ping')} s, a debug task"
        f" {cost.get('ansible.builtin.debug')} s; outside Ansible a new Python takes {cost['python_pass']} s"
    )


def rerun_provisioning(summary: JsonDict, cloud: Cloud, call_s: float, call: str) -> str | None:
    """What one cloud module task of the re-run's provision play takes, also in no-op calls (call_s: one `call`)."""
    rerun = summary["phases"].get("rerun", {}).get("plays", {}).get("provision")
    if not rerun or not rerun[f"median_{cloud.kind}_tasks"]:
        return None
    count = rerun[f"median_{cloud.kind}_tasks"]
    each = (rerun[f"median_{cloud.kind}_tasks_s"] or 0.0) / count
    return (
        f"re-run provisioning: its {fmt(count, 0)} {cloud.tasks_label} take {fmt(each, 2)} s each,"
        f" {fmt(each / call_s, 2)} x a no-op {call}"
    )


def ratio_conclusion(summary: JsonDict) -> list[str]:
    ratio = summary["ratio_rerun_over_fresh"]
    if ratio is None:
        return []
    verdict = "met" if ratio < TARGET_RATIO else "NOT met"
    return [f"re-run / fresh = {fmt(ratio, 3)} (target < {TARGET_RATIO}: {verdict})"]


# --- report --------------------------------------------------------------------------------------------------


def round_trip_row(summary: JsonDict, blanks: int) -> list[str]:
    """The first row of the overview: fresh deploy to the rooms' round trip."""
    return [
        "fresh to round trip",
        fmt(summary["median_fresh_to_round_trip_s"]),
        *[""] * blanks,
        ", ".join(fmt(v, 1) for v in summary["fresh_to_round_trip_s"]),
        f"probe {fmt(summary['median_probe_s'], 3)} s",
    ]


def phase_row(s: JsonDict, title: str, extra: Sequence[str] = ()) -> list[str]:
    """A phase in the overview: wall, tasks, s/task, outside tasks, extra, samples, changed."""
    return [
        title,
        fmt(s.get("median_wall_s")),
        fmt(s.get("median_tasks_executed"), 0),
        fmt(s.get("median_s_per_task"), 3),
        fmt(s.get("median_outside_tasks_s")),
        *extra,
        ", ".join(fmt(v, 1) for v in s.get("wall_s", [])),
        ",".join(str(c) for c in s.get("changed", [])),
    ]


def print_ratio_and_plays(summary: JsonDict, phases: Sequence[str], cloud: Cloud, kind_headers: Sequence[str]) -> None:
    """The ratio, then per play of every phase: medians of wall, tasks, s/task, median task, tasks / s of each kind."""
    verdict = "met" if summary["ratio_meets_target"] else "NOT met"
    print(
        f"\nratio re-run / fresh: {fmt(summary['ratio_rerun_over_fresh'], 3)} (per run "
        f"{', '.join(fmt(v, 3) for v in summary['ratio_per_run'])}; target < {TARGET_RATIO}: {verdict})"
    )
    local = f"local_{cloud.kind}"
    print(
        f"not in the deploy: {cloud.local} start-up {fmt(summary[f'median_{local}_startup_s'])} s, container up "
        f"{fmt(summary['median_host_up_s'])} s, container removal {fmt(summary['median_host_down_s'])} s, "
        f"{cloud.local} stop {fmt(summary[f'median_{local}_stop_s'])} s"
    )
    rows = []
    for phase in phases:
        for label, p in (summary["phases"].get(phase) or {}).get("plays", {}).items():
            rows.append(
                [
                    phase,
                    label,
                    fmt(p["median_wall_s"]),
                    fmt(p["median_tasks_executed"], 0),
                    fmt(p["median_s_per_task"], 3),
                    fmt(p["median_task_s"], 3),
                    *(f"{fmt(p[f'median_{k}_tasks'], 0)} / {fmt(p[f'median_{k}_tasks_s'], 1)}" for k in cloud.kinds),
                ]
            )
    print("\nPer play (medians; kinds: tasks / s)\n")
    print(table(["phase", "play", "wall", "tasks", "s/task", "median task", *kind_headers], rows))


def cost_rows(cost: JsonDict) -> list[list[str]]:
    return [[k, fmt(v, 3)] for k, v in cost.items() if not isinstance(v, dict)]


def print_slowest(
    summary: JsonDict, phases: Sequence[str], note: str, headers: Sequence[str], row: Callable[[JsonDict], list[str]]
) -> None:
    for phase in phases:
        tasks = summary["slowest_tasks"].get(phase) or []
        if not tasks:
            continue
        print(f"\nSlowest tasks, {phase} ({note})")
        print(table(headers, [row(t) for t in tasks]))


def print_closing(summary: JsonDict, failures: list[str], warnings: list[str]) -> None:
    """What dominates, then the playbooks' warnings, the failures and the benchmark's warnings."""
    print("\nWhat dominates")
    for line in summary["what_dominates"]:
        print(f"- {line}")
    for w in summary["playbook_warnings"]:
        print(f"PLAYBOOK WARNING: {w}")
    for f in failures:
        print(f"FAILURE: {f}")
    for w in warnings:
        print(f"WARNING: {w}")
