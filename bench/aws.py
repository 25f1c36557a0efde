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
import datetime as dt
import hashlib
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CONTROLLER_ACTIONS,
    ROOT,
    JsonDict,
    bench_env,
    fmt,
    git_info,
    install_signal_handlers,
    log,
    machine_info,
    median,
    now_iso,
    result_document,
    snapshot_artifacts,
    table,
    write_results,
)
from scripts.aws_local import host_down, host_up
from tests.probe.enet_probe import probe_many

FLEET = "gf-bench-aws"  # godot_fleet_name: the Name tag of the instance, prefix of every AWS resource
BUCKET = "gf-bench-aws-builds"
REGION = "eu-west-1"
AMI = "ami-12c6146b"  # an image moto knows
ADMIN_CIDR = "198.51.100.7/32"  # TEST-NET-2: only written into the emulated security group, never contacted
ROOM_PORTS = (41077, 41078)  # the instance container shares this machine's loopback: rooms on 127.0.0.1:41077-8
TARGET_RATIO = 0.5
PROBE_DEADLINE_S = 60.0
# Dummy credentials: the local AWS accepts any. Nothing else of the caller's AWS_* environment is passed on.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "gf-bench-access-key", "AWS_SECRET_ACCESS_KEY": "gf-bench-secret-key"}
AWS_PREFIXES = ("amazon.aws.", "community.aws.")
# Actions that never leave the controller process (CONTROLLER_ACTIONS of common.py plus the inventory/include ones).
CONTROLLER_ONLY = CONTROLLER_ACTIONS | {
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
    "ansible.builtin.add_host",
    "ansible.builtin.group_by",
}
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
# The image of the instance stand-in (what scripts/aws_local.py host_up starts), recorded in the results.
HOST_IMAGE = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/host:bookworm"


# --- provenance ----------------------------------------------------------------------------------------------


def aws_tree_hash() -> str:
    digest = hashlib.sha256()
    for rel in AWS_MEASURED_PATHS:
        path = ROOT / rel
        if not path.exists():
            digest.update(f"{rel}: missing".encode())
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            digest.update(str(f.relative_to(ROOT)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


# --- the local AWS -------------------------------------------------------------------------------------------


def free_tcp_port() -> int:
    """A free loopback TCP port chosen by the kernel (never one of the room ports)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in ROOM_PORTS:
            return port


def require_free_udp(ports: Sequence[int]) -> None:
    """The rooms bind 127.0.0.1:<port> of this machine (the container shares its network): the ports must be free."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"UDP 127.0.0.1:{port} is in use ({exc}); the rooms need it") from exc


@dataclass
class LocalAws:
    """`scripts/aws_local.py serve` as a child process (moto + the instance-credentials stand-in)."""

    proc: subprocess.Popen[str]
    endpoint: str
    startup_s: float

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_local_aws(log_path: Path, timeout: float = 90.0) -> LocalAws:
    """Starts a fresh local AWS on a free loopback port and waits for its READY line (timed)."""
    port = free_tcp_port()
    t0 = time.perf_counter()
    with log_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "aws_local.py"), "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=bench_env(),
        )
    lines: queue.Queue[str] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put("")  # EOF

    threading.Thread(target=reader, daemon=True).start()
    aws = LocalAws(proc, "", 0.0)
    try:
        while True:
            remaining = timeout - (time.perf_counter() - t0)
            if remaining <= 0:
                raise RuntimeError(f"the local AWS did not print READY within {timeout:.0f} s")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line.startswith("AWS_ENDPOINT_URL="):
                aws.endpoint = line.split("=", 1)[1]
            elif line == "READY":
                break
            elif line == "":
                tail = log_path.read_text()[-1500:]
                raise RuntimeError(f"the local AWS exited (rc {proc.poll()}): {tail}")
    except BaseException:
        aws.stop()
        raise
    aws.startup_s = time.perf_counter() - t0
    if not aws.endpoint.startswith("http://127.0.0.1:"):
        aws.stop()
        raise RuntimeError(f"the local AWS is not on loopback: {aws.endpoint!r}")
    return aws


# --- ansible-playbook with the JSON callback, two hosts ------------------------------------------------------


def normalise_action(action: str) -> str:
    """Short names of the controller-only builtins get their FQCN (role modules keep their own short name)."""
    full = f"ansible.builtin.{action}"
    return full if "." not in action and full in CONTROLLER_ONLY else action


@dataclass
class Task:
    play: int
    host: str
    name: str
    path: str
    action: str
    seconds: float
    changed: bool
    skipped: bool
    failed: bool
    items: int

    @property
    def kind(self) -> str:
        """aws: an amazon.aws module (boto3 calls); controller: no module run; module: any other module run."""
        if self.action.startswith(AWS_PREFIXES):
            return "aws"
        if not self.action or self.action in CONTROLLER_ONLY:
            return "controller"
        return "module"


@dataclass
class Play:
    index: int
    name: str
    label: str  # provision (the AWS roles on localhost), configure (the instance), teardown
    hosts: list[str]
    wall_s: float


@dataclass
class Run:
    playbook: str
    wall_s: float
    rc: int
    stats: dict[str, dict[str, int]]
    plays: list[Play]
    tasks: list[Task]
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def executed(self) -> list[Task]:
        return [t for t in self.tasks if not t.skipped]

    @property
    def changed(self) -> int:
        return sum(s.get("changed", 0) for s in self.stats.values())

    def outside_tasks_s(self) -> float:
        """Wall time not spent in any task: ansible-playbook start-up, inventory, play set-up, callbacks."""
        return self.wall_s - sum(t.seconds for t in self.tasks)

    def play_summary(self, play: Play) -> JsonDict:
        tasks = [t for t in self.tasks if t.play == play.index]
        executed = [t for t in tasks if not t.skipped]
        by_kind: JsonDict = {}
        for kind in ("aws", "module", "controller"):
            chosen = [t for t in executed if t.kind == kind]
            by_kind[kind] = {"tasks": len(chosen), "s": round(sum(t.seconds for t in chosen), 3)}
        return {
            "name": play.name,
            "label": play.label,
            "hosts": play.hosts,
            "wall_s": round(play.wall_s, 3),
            "tasks_listed": len(tasks),
            "tasks_executed": len(executed),
            "tasks_s": round(sum(t.seconds for t in tasks), 3),
            "s_per_task": round(play.wall_s / len(executed), 3) if executed else None,
            "median_task_s": round(median(t.seconds for t in executed) or 0.0, 3),
            "by_kind": by_kind,
        }

    def summary(self) -> JsonDict:
        executed = self.executed
        return {
            "playbook": self.playbook,
            "wall_s": round(self.wall_s, 3),
            "rc": self.rc,
            "recap": self.stats,
            "changed": self.changed,
            "tasks_listed": len(self.tasks),
            "tasks_executed": len(executed),
            "outside_tasks_s": round(self.outside_tasks_s(), 3),
            "plays": [self.play_summary(p) for p in self.plays],
            "error": self.error,
            "warnings": self.warnings,
            "tasks": [
                {
                    "play": t.play,
                    "host": t.host,
                    "name": t.name,
                    "path": t.path,
                    "action": t.action,
                    "kind": t.kind,
                    "s": round(t.seconds, 3),
                    "changed": t.changed,
                    "skipped": t.skipped,
                    "failed": t.failed,
                    "items": t.items,
                }
                for t in self.tasks
            ],
        }


def _seconds(duration: Mapping[str, str]) -> float:
    if "start" not in duration or "end" not in duration:
        return 0.0
    start = dt.datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _warnings(result: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for w in result.get("warnings", []) or []:
        found.append(f"[WARNING] {w if isinstance(w, str) else w.get('msg', w)}")
    for d in result.get("deprecations", []) or []:
        found.append(f"[DEPRECATION] {d.get('msg', d) if isinstance(d, dict) else d}")
    return found


def run_playbook(
    playbook: str, values: JsonDict, env: Mapping[str, str], *args: str, label: str = "", timeout: float = 1800
) -> Run:
    """ansible-playbook -i localhost, PLAYBOOK -e JSON, ansible.posix.json callback: every task of every host."""
    argv = ["ansible-playbook", "-i", "localhost,", str(ROOT / playbook), "-e", json.dumps(values), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(env), cwd=str(ROOT), timeout=timeout)
    wall = time.perf_counter() - t0
    warnings = [
        line.strip()
        for line in proc.stderr.splitlines()
        if line.lstrip().startswith(("[WARNING]", "[DEPRECATION WARNING]", "[ERROR]"))
    ]
    try:
        doc: JsonDict = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return Run(playbook, wall, proc.returncode, {}, [], [], f"no JSON output: {proc.stderr.strip()[-1500:]}")
    plays: list[Play] = []
    tasks: list[Task] = []
    errors: list[str] = []
    for index, entry in enumerate(doc.get("plays", [])):
        play = entry.get("play", {})
        hosts: list[str] = []
        for task_entry in entry.get("tasks", []):
            task = task_entry.get("task", {})
            for host, result in task_entry.get("hosts", {}).items():
                if host not in hosts:
                    hosts.append(host)
                failed = bool(result.get("failed")) and not result.get("ignore_errors", False)
                if failed:
                    errors.append(f"{host}: {task.get('name')}: {str(result.get('msg', ''))[:500]}")
                where = "localhost" if host == "localhost" else "instance"  # instance ids differ per run
                warnings += [f"{where}: {task.get('name')}: {w}" for w in _warnings(result)]
                results = result.get("results")
                tasks.append(
                    Task(
                        play=index,
                        host=host,
                        name=str(task.get("name", "")),
                        path=str(task.get("path", "")).replace(str(ROOT) + "/", ""),
                        action=normalise_action(str(result.get("action", ""))),
                        seconds=_seconds(task.get("duration", {})),
                        changed=bool(result.get("changed")),
                        skipped=bool(result.get("skipped")),
                        failed=failed,
                        items=len(results) if isinstance(results, list) else 0,
                    )
                )
        play_label = label or ("provision" if hosts == ["localhost"] or not hosts else "configure")
        plays.append(Play(index, str(play.get("name", "")), play_label, hosts, _seconds(play.get("duration", {}))))
    stats = {h: {k: int(v) for k, v in s.items()} for h, s in doc.get("stats", {}).items()}
    if proc.returncode != 0 and not errors:
        errors.append(proc.stderr.strip()[-1500:])
    unique_warnings = list(dict.fromkeys(warnings))
    return Run(playbook, wall, proc.returncode, stats, plays, tasks, "; ".join(errors), unique_warnings)


# --- one run -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    file: Path
    release: str


def snapshot_build(dest: Path, attempts: int = 10) -> Build:
    """The portable demo build and its release label, copied out of dist/ (a rebuild during the run changes nothing)."""
    for _ in range(attempts):
        before = (ROOT / "dist" / "RELEASE").read_text().strip()
        artifacts = snapshot_artifacts(dest)
        shutil.copyfile(ROOT / "dist" / "RELEASE", dest / "RELEASE")
        if (dest / "RELEASE").read_text().strip() == before:
            return Build(artifacts.directory / artifacts.archive, before)
        time.sleep(5)
    raise RuntimeError("dist/RELEASE keeps changing (a rebuild is running)")


def playbook_env(workdir: Path) -> dict[str, str]:
    """The project environment, dummy credentials, no other AWS_* variable, no AWS config file, no metadata service."""
    env = {k: v for k, v in bench_env().items() if not k.startswith("AWS_")}
    env.update(CREDENTIALS)
    env.update(
        {
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
        }
    )
    return env


def extra_vars(endpoint: str, container: str, build: Build, public_key: str) -> JsonDict:
    """The variables of tests/integration/test_aws.py, with the benchmark's names and ports."""
    return {
        "godot_fleet_name": FLEET,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_aws_endpoint_url": endpoint,
        "godot_fleet_aws_bucket": BUCKET,
        "godot_fleet_aws_ami_id": AMI,
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": public_key,
        "godot_fleet_build_file": str(build.file),
        "godot_server_version": build.release,
        "godot_server_ports": list(ROOM_PORTS),
        "godot_fleet_aws_host_overrides": [
            {"ansible_host": container, "ansible_connection": "containers.podman.podman", "ansible_user": "root"}
        ],
        "godot_server_bind": "127.0.0.1",
        "godot_server_style": "runtime",
        "godot_server_executable": "godot",
        "godot_server_main_pack": "godot-fleet-demo.pck",
    }


def module_cost_playbook(path: Path, endpoint: str, samples: int) -> Path:
    """One play on localhost: `samples` separate tasks each of debug, ping, aws_caller_info and ec2_vpc_net_info."""
    aws_args = {"region": REGION, "endpoint_url": endpoint}
    kinds: list[tuple[str, JsonDict]] = [
        ("ansible.builtin.debug", {"msg": "no module run"}),
        ("ansible.builtin.ping", {}),
        ("amazon.aws.aws_caller_info", aws_args),
        ("amazon.aws.ec2_vpc_net_info", {"filters": {"tag:Name": FLEET}, **aws_args}),
    ]
    tasks = [{"name": f"{action} {i}", action: args} for i in range(samples) for action, args in kinds]
    play = {
        "name": "Cost of one no-op module call",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": tasks,
    }
    path.write_text(json.dumps([play], indent=2) + "\n")  # YAML is a superset of JSON
    return path


def python_costs(endpoint: str, env: Mapping[str, str], samples: int) -> JsonDict:
    """Wall time of a bare interpreter, of importing boto3, and of import + one STS call (controller Python)."""
    sts = f"import boto3; boto3.client('sts', endpoint_url={endpoint!r}, region_name={REGION!r}).get_caller_identity()"
    snippets = {"python_pass": "pass", "python_import_boto3": "import boto3", "python_boto3_sts_call": sts}
    out: JsonDict = {}
    for key, code in snippets.items():
        values: list[float] = []
        for _ in range(samples):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=dict(env), timeout=120)
            values.append(round(time.perf_counter() - t0, 4))
        out[key] = values
    return out


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


def one_run(
    index: int, workdir: Path, build: Build, public_key: str, args: argparse.Namespace
) -> tuple[JsonDict, dict[str, Run]]:
    out: JsonDict = {"run": index + 1}
    runs: dict[str, Run] = {}
    failures: list[str] = []
    out["failures"] = failures
    container = f"gf-bench-aws-{os.getpid()}-{index}"
    out["container"] = container
    require_free_udp(ROOM_PORTS)
    log(f"run {index + 1}: starting a fresh local AWS")
    aws = start_local_aws(workdir / f"aws-{index}.log")
    try:
        out["local_aws"] = {"endpoint": aws.endpoint, "startup_s": round(aws.startup_s, 3)}
        env = playbook_env(workdir)
        log(f"run {index + 1}: starting {container} (instance 0 of {FLEET}) on {aws.endpoint}")
        t0 = time.perf_counter()
        try:
            host_up(container, aws.endpoint, FLEET, 0, REGION)
            out["host_up_s"] = round(time.perf_counter() - t0, 3)
            values = extra_vars(aws.endpoint, container, build, public_key)

            log(f"run {index + 1}: fresh deploy-aws.yml")
            t_fresh = time.perf_counter()
            fresh = runs["fresh"] = run_playbook("deploy-aws.yml", values, env)
            if fresh.rc != 0:
                raise RuntimeError(f"fresh deploy failed (rc {fresh.rc}): {fresh.error}")
            probe_s, rounds, probes = wait_round_trip(ROOM_PORTS)
            out["fresh_to_round_trip_s"] = round(time.perf_counter() - t_fresh, 3)
            out["probe"] = {"s": round(probe_s, 3), "rounds": rounds, "results": probes}

            log(f"run {index + 1}: no-op re-run")
            rerun = runs["rerun"] = run_playbook("deploy-aws.yml", values, env)
            if rerun.rc != 0:
                raise RuntimeError(f"re-run failed (rc {rerun.rc}): {rerun.error}")
            if rerun.changed != 0 or len(rerun.stats) != 2:
                failures.append(f"run {index + 1}: re-run not a no-op: recap {rerun.stats}")

            if not args.no_check:
                log(f"run {index + 1}: --check on the converged state")
                check = runs["check"] = run_playbook("deploy-aws.yml", values, env, "--check")
                if check.rc != 0:
                    failures.append(f"run {index + 1}: check mode failed (rc {check.rc}): {check.error}")
                elif check.changed != 0 or len(check.stats) != 2:
                    failures.append(f"run {index + 1}: check mode reports changes: recap {check.stats}")

            log(f"run {index + 1}: cost of one no-op module call ({args.samples} samples each)")
            cost_book = module_cost_playbook(workdir / f"module-cost-{index}.yml", aws.endpoint, args.samples)
            cost = run_playbook(str(cost_book), {}, env)
            if cost.rc != 0:
                failures.append(f"run {index + 1}: module cost playbook failed: {cost.error}")
            samples: dict[str, list[float]] = defaultdict(list)
            for t in cost.executed:
                samples[t.action].append(round(t.seconds, 4))
            out["module_cost"] = {
                "wall_s": round(cost.wall_s, 3),
                "outside_tasks_s": round(cost.outside_tasks_s(), 3),
                "task_s": dict(samples),
                **python_costs(aws.endpoint, env, max(3, args.samples // 2)),
            }

            log(f"run {index + 1}: teardown-aws.yml")
            teardown = runs["teardown"] = run_playbook("teardown-aws.yml", values, env, label="teardown")
            if teardown.rc != 0:
                raise RuntimeError(f"teardown failed (rc {teardown.rc}): {teardown.error}")
            if teardown.changed == 0:
                failures.append(f"run {index + 1}: teardown changed nothing")
        finally:
            t_down = time.perf_counter()
            host_down(container)
            out["host_down_s"] = round(time.perf_counter() - t_down, 3)
            for phase, r in runs.items():
                out[phase] = r.summary()
    finally:
        aws.stop()
    return out, runs


# --- summary -------------------------------------------------------------------------------------------------


def slowest(runs: list[Run], count: int = 6) -> list[JsonDict]:
    """The slowest executed tasks by median duration over the runs (keyed by play label and task name)."""
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    actions: dict[tuple[str, str], str] = {}
    for r in runs:
        labels = {p.index: p.label for p in r.plays}
        for t in r.executed:
            key = (labels.get(t.play, "?"), t.name)
            samples[key].append(t.seconds)
            actions[key] = t.action
    ranked = sorted(samples.items(), key=lambda kv: median(kv[1]) or 0.0, reverse=True)[:count]
    return [
        {
            "play": play,
            "task": name,
            "action": actions[(play, name)],
            "median_s": round(median(values) or 0.0, 3),
            "samples_s": [round(v, 3) for v in values],
        }
        for (play, name), values in ranked
    ]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


def phase_summary(raw: list[JsonDict], phase: str) -> JsonDict:
    docs = [r[phase] for r in raw if phase in r]
    if not docs:
        return {}
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
            **{
                f"median_{kind}_tasks": median(p["by_kind"][kind]["tasks"] for p in ps)
                for kind in ("aws", "module", "controller")
            },
            **{
                f"median_{kind}_tasks_s": rounded(median(p["by_kind"][kind]["s"] for p in ps))
                for kind in ("aws", "module", "controller")
            },
        }
    kind_s = {
        kind: [sum(p["by_kind"][kind]["s"] for p in d["plays"]) for d in docs]
        for kind in ("aws", "module", "controller")
    }
    walls = [d["wall_s"] for d in docs]
    tasks = median(d["tasks_executed"] for d in docs)
    med = median(walls)
    return {
        "median_wall_s": rounded(med),
        "wall_s": walls,
        "median_tasks_executed": tasks,
        "median_s_per_task": rounded(med / tasks) if med and tasks else None,
        "median_outside_tasks_s": rounded(median(d["outside_tasks_s"] for d in docs)),
        "changed": [d["changed"] for d in docs],
        **{f"median_{kind}_tasks_s": rounded(median(v)) for kind, v in kind_s.items()},
        "median_aws_share": rounded(median(a / d["wall_s"] for a, d in zip(kind_s["aws"], docs, strict=True))),
        "median_module_share": rounded(median(m / d["wall_s"] for m, d in zip(kind_s["module"], docs, strict=True))),
        "plays": plays,
    }


def conclusions(summary: JsonDict) -> list[str]:
    """'What dominates', derived from the medians."""
    out: list[str] = []
    cost = summary["module_cost"]
    aws_call = cost.get("amazon.aws.aws_caller_info")
    for phase in ("fresh", "rerun", "check", "teardown"):
        s = summary["phases"].get(phase)
        if not s or not s["median_wall_s"]:
            continue
        wall = s["median_wall_s"]
        parts = []
        for label, p in s["plays"].items():
            share = 100 * (p["median_wall_s"] or 0) / wall
            tasks = fmt(p["median_tasks_executed"], 0)
            text = f"{label} play {fmt(p['median_wall_s'], 1)} s ({share:.0f} %, {tasks} tasks"
            if p["median_aws_tasks"]:
                count, seconds = p["median_aws_tasks"], p["median_aws_tasks_s"] or 0.0
                text += f"; {fmt(count, 0)} amazon.aws tasks {fmt(seconds, 1)} s = {fmt(seconds / count, 2)} s each"
            if p["median_module_tasks"]:
                where = "on the instance over podman" if label == "configure" else "local"
                count, seconds = p["median_module_tasks"], p["median_module_tasks_s"] or 0.0
                text += f"; {fmt(count, 0)} other module tasks ({where}) {fmt(seconds, 1)} s"
                text += f" = {fmt(seconds / count, 2)} s each"
            parts.append(text + ")")
        parts.append(f"outside tasks {fmt(s['median_outside_tasks_s'], 1)} s")
        shares = (
            f"amazon.aws tasks {100 * (s['median_aws_share'] or 0):.0f} %, other module tasks"
            f" {100 * (s['median_module_share'] or 0):.0f} % of the wall time"
        )
        out.append(f"{phase} {fmt(wall, 1)} s: " + ", ".join(parts) + f"; {shares}")
    if aws_call is not None:
        c = {k: fmt(v, 2) for k, v in cost.items()}
        out.append(
            f"one no-op amazon.aws module call costs {c['amazon.aws.aws_caller_info']} s (aws_caller_info;"
            f" ec2_vpc_net_info {c.get('amazon.aws.ec2_vpc_net_info')} s), ansible.builtin.ping on localhost"
            f" {c.get('ansible.builtin.ping')} s, a debug task {c.get('ansible.builtin.debug')} s; outside Ansible a"
            f" new Python takes {c['python_pass']} s, importing boto3 {c['python_import_boto3']} s, import + one STS"
            f" call {c['python_boto3_sts_call']} s"
        )
        rerun = summary["phases"].get("rerun", {}).get("plays", {}).get("provision")
        if rerun and rerun["median_aws_tasks"]:
            each = (rerun["median_aws_tasks_s"] or 0.0) / rerun["median_aws_tasks"]
            out.append(
                f"re-run provisioning: its {fmt(rerun['median_aws_tasks'], 0)} amazon.aws tasks take {fmt(each, 2)} s"
                f" each, {fmt(each / aws_call, 2)} x a no-op aws_caller_info: the per-task price is module start-up"
                " (a new Python importing boto3/botocore and the collection's module_utils, AnsiballZ), not the work"
            )
    ratio = summary["ratio_rerun_over_fresh"]
    if ratio is not None:
        verdict = "met" if ratio < TARGET_RATIO else "NOT met"
        out.append(f"re-run / fresh = {fmt(ratio, 3)} (target < {TARGET_RATIO}: {verdict})")
    return out


def build_summary(raw: list[JsonDict], runs: list[dict[str, Run]], requested: int) -> JsonDict:
    phases = {p: phase_summary(raw, p) for p in PHASES}
    fresh_s = [r["fresh"]["wall_s"] for r in raw if "fresh" in r]
    rerun_s = [r["rerun"]["wall_s"] for r in raw if "rerun" in r]
    med_fresh, med_rerun = median(fresh_s), median(rerun_s)
    ratio = med_rerun / med_fresh if med_fresh and med_rerun is not None else None
    run_ratios = [round(r["rerun"]["wall_s"] / r["fresh"]["wall_s"], 3) for r in raw if "rerun" in r and "fresh" in r]
    cost_keys = sorted({k for r in raw for k in r.get("module_cost", {}).get("task_s", {})})
    module_cost: JsonDict = {
        k: rounded(median(v for r in raw for v in r["module_cost"]["task_s"].get(k, [])), 4) for k in cost_keys
    }
    for key in ("python_pass", "python_import_boto3", "python_boto3_sts_call"):
        module_cost[key] = rounded(median(v for r in raw for v in r.get("module_cost", {}).get(key, [])), 4)
    module_cost["outside_tasks_s"] = rounded(
        median(r["module_cost"]["outside_tasks_s"] for r in raw if "module_cost" in r)
    )
    summary: JsonDict = {
        "runs_ok": len(raw),
        "runs_requested": requested,
        "median_fresh_to_round_trip_s": rounded(median(r["fresh_to_round_trip_s"] for r in raw)),
        "fresh_to_round_trip_s": [r["fresh_to_round_trip_s"] for r in raw],
        "median_probe_s": rounded(median(r["probe"]["s"] for r in raw)),
        "median_fresh_s": rounded(med_fresh),
        "median_rerun_s": rounded(med_rerun),
        "median_check_s": phases["check"].get("median_wall_s"),
        "median_teardown_s": phases["teardown"].get("median_wall_s"),
        "ratio_rerun_over_fresh": rounded(ratio),
        "ratio_per_run": run_ratios,
        "median_ratio_per_run": median(run_ratios),
        "ratio_target": TARGET_RATIO,
        "ratio_meets_target": ratio is not None and ratio < TARGET_RATIO,
        "median_local_aws_startup_s": rounded(median(r["local_aws"]["startup_s"] for r in raw)),
        "median_host_up_s": rounded(median(r["host_up_s"] for r in raw)),
        "median_host_down_s": rounded(median(r["host_down_s"] for r in raw)),
        "phases": phases,
        "module_cost": module_cost,
        "slowest_tasks": {p: slowest([r[p] for r in runs if p in r]) for p in PHASES},
    }
    summary["what_dominates"] = conclusions(summary)
    return summary


def print_report(summary: JsonDict, failures: list[str], warnings: list[str], playbook_warnings: list[str]) -> None:
    ph = summary["phases"]

    def phase_row(label: str, phase: str) -> list[str]:
        s = ph.get(phase) or {}
        return [
            label,
            fmt(s.get("median_wall_s")),
            fmt(s.get("median_tasks_executed"), 0),
            fmt(s.get("median_s_per_task"), 3),
            fmt(s.get("median_outside_tasks_s")),
            ", ".join(fmt(v, 1) for v in s.get("wall_s", [])),
            ",".join(str(c) for c in s.get("changed", [])),
        ]

    rows = [
        [
            "fresh to round trip",
            fmt(summary["median_fresh_to_round_trip_s"]),
            "",
            "",
            "",
            ", ".join(fmt(v, 1) for v in summary["fresh_to_round_trip_s"]),
            f"probe {fmt(summary['median_probe_s'], 3)} s",
        ],
        phase_row("fresh deploy-aws.yml", "fresh"),
        phase_row("no-op re-run", "rerun"),
        phase_row("--check (converged)", "check"),
        phase_row("teardown-aws.yml", "teardown"),
    ]
    runs = f"{summary['runs_ok']}/{summary['runs_requested']} runs"
    print(f"\ndeploy-aws.yml against the local AWS (moto) + one systemd container as the instance, {runs} (seconds)\n")
    print(table(["figure", "median", "tasks", "s/task", "outside tasks", "samples", "changed / note"], rows))
    verdict = "met" if summary["ratio_meets_target"] else "NOT met"
    print(
        f"\nratio re-run / fresh: {fmt(summary['ratio_rerun_over_fresh'], 3)} (per run "
        f"{', '.join(fmt(v, 3) for v in summary['ratio_per_run'])}; target < {TARGET_RATIO}: {verdict})"
    )
    print(
        f"not in the deploy: local AWS start-up {fmt(summary['median_local_aws_startup_s'])} s, container up "
        f"{fmt(summary['median_host_up_s'])} s, container removal {fmt(summary['median_host_down_s'])} s"
    )

    play_rows = []
    for phase in PHASES:
        for label, p in (ph.get(phase) or {}).get("plays", {}).items():
            play_rows.append(
                [
                    phase,
                    label,
                    fmt(p["median_wall_s"]),
                    fmt(p["median_tasks_executed"], 0),
                    fmt(p["median_s_per_task"], 3),
                    fmt(p["median_task_s"], 3),
                    f"{fmt(p['median_aws_tasks'], 0)} / {fmt(p['median_aws_tasks_s'], 1)}",
                    f"{fmt(p['median_module_tasks'], 0)} / {fmt(p['median_module_tasks_s'], 1)}",
                    f"{fmt(p['median_controller_tasks'], 0)} / {fmt(p['median_controller_tasks_s'], 1)}",
                ]
            )
    print("\nPer play (medians; kinds: tasks / s)\n")
    print(
        table(
            ["phase", "play", "wall", "tasks", "s/task", "median task", "amazon.aws", "other module", "controller"],
            play_rows,
        )
    )

    cost = summary["module_cost"]
    cost_rows = [[k, fmt(v, 3)] for k, v in cost.items()]
    print("\nCost of one no-op call (median s)\n")
    print(table(["what", "s"], cost_rows))

    for phase in PHASES:
        tasks = summary["slowest_tasks"].get(phase) or []
        if not tasks:
            continue
        print(f"\nSlowest tasks, {phase} (median s over runs)")
        print(
            table(
                ["s", "play", "task", "action"],
                [[fmt(t["median_s"]), t["play"], t["task"], t["action"]] for t in tasks],
            )
        )

    print("\nWhat dominates")
    for line in summary["what_dominates"]:
        print(f"- {line}")
    for w in playbook_warnings:
        print(f"PLAYBOOK WARNING: {w}")
    for f in failures:
        print(f"FAILURE: {f}")
    for w in warnings:
        print(f"WARNING: {w}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh local AWS and container (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run (overrides --runs)")
    parser.add_argument("--no-check", action="store_true", help="skip the --check run on the converged state")
    parser.add_argument("--samples", type=int, default=5, help="samples of each no-op module call per run (default 5)")
    parser.add_argument("--name", default=None, help="results file name (default aws, aws-quick)")
    args = parser.parse_args()
    runs_requested = 1 if args.quick else max(1, args.runs)
    args.samples = max(1, args.samples)
    result_name = args.name or ("aws-quick" if args.quick else "aws")
    install_signal_handlers()
    # scripts/aws_local.py runs podman with this process's environment
    os.environ["CONTAINERS_CONF"] = bench_env()["CONTAINERS_CONF"]

    started = now_iso()
    git = git_info()
    git["aws_measured_paths"] = list(AWS_MEASURED_PATHS)
    git["aws_measured_tree_hash"] = aws_tree_hash()
    machine = machine_info()
    raw: list[JsonDict] = []
    runs: list[dict[str, Run]] = []
    failures: list[str] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gf-bench-aws-") as tmp:
        workdir = Path(tmp)
        build = snapshot_build(workdir / "artifacts")
        key = workdir / "admin"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gf-bench-aws", "-f", str(key)], check=True
        )
        public_key = (workdir / "admin.pub").read_text().strip()
        for i in range(runs_requested):
            try:
                r, run_docs = one_run(i, workdir, build, public_key, args)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                log(f"run {i + 1} failed: {exc}")
                failures.append(f"run {i + 1}: {exc}")
                continue
            failures += r.pop("failures")
            raw.append(r)
            runs.append(run_docs)

    summary = build_summary(raw, runs, runs_requested) if raw else {"runs_ok": 0, "runs_requested": runs_requested}
    playbook_warnings = list(dict.fromkeys(w for r in runs for run in r.values() for w in run.warnings))
    summary["playbook_warnings"] = playbook_warnings
    config: JsonDict = {
        "runs": runs_requested,
        "quick": args.quick,
        "check_run": not args.no_check,
        "module_cost_samples": args.samples,
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
        "instance_image": HOST_IMAGE,
        "instance_connection": "containers.podman.podman (container on the host network, own UTS namespace)",
        "aws": "scripts/aws_local.py serve (moto, fresh per run, loopback)",
        "callback": "ansible.posix.json (per-task start/end)",
    }
    data = result_document("aws", started, t_start, git, machine, config, failures, summary=summary, runs=raw)
    end_hash = aws_tree_hash()
    if end_hash != git["aws_measured_tree_hash"]:
        data["warnings"].append(
            f"the AWS playbooks/roles changed during the run (tree hash {git['aws_measured_tree_hash']} -> {end_hash})"
        )
    path = write_results(result_name, data)
    if raw:
        print_report(summary, failures, data["warnings"], playbook_warnings)
    else:
        for f in failures:
            print(f"FAILURE: {f}")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if failures or not raw else 0


if __name__ == "__main__":
    sys.exit(main())
