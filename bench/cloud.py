"""Shared parts of the cloud benchmarks (bench/aws.py, bench/azure.py).

Both run a cloud playbook against a local stand-in of the cloud (a child process that prints READY once it serves)
and one local systemd container standing in for instance/VM 0 of the fleet: fresh deploy up to an ENet round trip
with both rooms, no-op re-run, --check run, a playbook measuring one no-op module call, teardown. This module holds
what does not depend on the cloud: ansible-playbook with the ansible.posix.json callback across several hosts, the
per-play and per-task aggregation, the phases of one run, the summary, the printed tables and the result document.
What differs between the clouds is described by a `Cloud`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.common import (
    CONTROLLER_ACTIONS,
    JSON_CALLBACK_ENV,
    ROOT,
    JsonDict,
    begin,
    bench_env,
    fmt,
    host_cpu_times,
    log,
    median,
    rounded,
    snapshot_artifacts,
    span,
    table,
    write_results,
)
from tests.probe.enet_probe import probe_many

TARGET_RATIO = 0.5
PROBE_DEADLINE_S = 60.0
ADMIN_CIDR = "198.51.100.7/32"  # TEST-NET-2: only written into the emulated security group, never contacted
# Actions that never leave the controller process (CONTROLLER_ACTIONS of common.py plus the inventory/include ones).
CONTROLLER_ONLY = CONTROLLER_ACTIONS | {
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
    "ansible.builtin.add_host",
    "ansible.builtin.group_by",
}
# The image of the instance/VM stand-in (what scripts/local_hosts.py starts), recorded in the results.
HOST_IMAGE = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/host:bookworm"
# tests/integration/cloud.py PORTABLE_ROOMS: Debian 12 runs the portable bundle, rooms on loopback only.
ROOM_VARS: JsonDict = {
    "godot_server_bind": "127.0.0.1",
    "godot_server_style": "runtime",
    "godot_server_executable": "godot",
    "godot_server_main_pack": "godot-fleet-demo.pck",
}


@dataclass(frozen=True)
class Cloud:
    """What tells the results and figures of one cloud benchmark from the other's."""

    kind: str  # the kind of the cloud modules' tasks: by_kind, median_<kind>_tasks, median_<kind>_share
    prefixes: tuple[str, ...]  # the actions of that kind
    tasks_label: str  # how the conclusions call those tasks
    instance: str  # what the container stands in for
    anonymous_hosts: bool = False  # playbook warnings name the instance by what it is (its name differs per run)
    # The local cloud logs its requests: runs, tasks and phases carry request counts, runs and phases also the
    # machine's busy cores during the run.
    request_log: bool = False

    @property
    def kinds(self) -> tuple[str, str, str]:
        return (self.kind, "module", "controller")

    def kind_of(self, action: str) -> str:
        """The cloud's kind (its modules' calls), controller (no module run) or module (any other module run)."""
        if action.startswith(self.prefixes):
            return self.kind
        if not action or action in CONTROLLER_ONLY:
            return "controller"
        return "module"


# --- the local cloud -----------------------------------------------------------------------------------------


def free_port_block(size: int, avoid: Sequence[int]) -> int:
    """A loopback TCP port P with P..P+size-1 free, chosen by the kernel, none of them in avoid (the room ports)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        block = range(port, port + size)
        if port + size > 65535 or any(p in block for p in avoid):
            continue
        try:
            for p in block[1:]:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no block of {size} free loopback ports")


def require_free_udp(ports: Sequence[int]) -> None:
    """The rooms bind 127.0.0.1:<port> of this machine (the container shares its network): the ports must be free."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"UDP 127.0.0.1:{port} is in use ({exc}); the rooms need it") from exc


class LocalServer:
    """A local cloud (scripts/*_local.py serve) as a child process that prints READY once it serves; timed from
    its start to READY (startup_s) and from stop() to its end (stop_s). With new_session it runs in its own process
    group, whatever is left of the group is killed at the end."""

    def __init__(
        self, what: str, argv: Sequence[str], log_path: Path, *, new_session: bool = False, stop_wait_s: float = 15.0
    ) -> None:
        self.what = what
        self.log_path = log_path
        self.new_session = new_session
        self.stop_wait_s = stop_wait_s
        self.startup_s = 0.0
        self.stop_s = 0.0
        self._t0 = time.perf_counter()
        with log_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
                env=bench_env(), start_new_session=new_session,
            )  # fmt: skip
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # EOF

    def wait_ready(self, timeout: float) -> list[str]:
        """The lines printed before READY (the server is stopped when it exits first or stays silent too long)."""
        seen: list[str] = []
        try:
            while True:
                remaining = timeout - (time.perf_counter() - self._t0)
                if remaining <= 0:
                    raise RuntimeError(f"{self.what} did not print READY within {timeout:.0f} s")
                try:
                    line = self._lines.get(timeout=remaining)
                except queue.Empty:
                    continue
                if line == "READY":
                    break
                if line == "":
                    tail = self.log_path.read_text()[-1500:]
                    raise RuntimeError(f"{self.what} exited (rc {self.proc.poll()}): {tail}")
                seen.append(line)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - self._t0
        return seen

    def stop(self) -> None:
        t0 = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.new_session:  # anything left of the process group this benchmark started
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stop_s = time.perf_counter() - t0


# --- ansible-playbook with the JSON callback, several hosts --------------------------------------------------


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
    kind: str  # Cloud.kind_of(action)
    seconds: float
    changed: bool
    skipped: bool
    failed: bool
    items: int
    start: float = 0.0  # epoch seconds (a local cloud's request log is in epoch seconds)
    end: float = 0.0
    requests: JsonDict = field(default_factory=dict)  # the requests made during the task (Cloud.request_log)

    def doc(self, requests: bool) -> JsonDict:
        out: JsonDict = {
            "play": self.play,
            "host": self.host,
            "name": self.name,
            "path": self.path,
            "action": self.action,
            "kind": self.kind,
            "s": round(self.seconds, 3),
            "changed": self.changed,
            "skipped": self.skipped,
            "failed": self.failed,
            "items": self.items,
        }
        if requests:
            out["requests"] = self.requests
        return out


@dataclass
class Play:
    index: int
    name: str
    label: str  # provision (the cloud roles on localhost), configure (the instance/VM), teardown
    hosts: list[str]
    wall_s: float


@dataclass
class Run:
    cloud: Cloud
    playbook: str
    wall_s: float
    rc: int
    stats: dict[str, dict[str, int]]
    plays: list[Play]
    tasks: list[Task]
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    busy_cores: float | None = None  # the whole machine's, during the run
    requests: JsonDict = field(default_factory=dict)  # the requests of the whole run (Cloud.request_log)
    unattributed_requests: int = 0  # requests made outside any task (start-up, between tasks)

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
        for kind in self.cloud.kinds:
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
        out: JsonDict = {
            "playbook": self.playbook,
            "wall_s": round(self.wall_s, 3),
            "rc": self.rc,
            "recap": self.stats,
            "changed": self.changed,
            "tasks_listed": len(self.tasks),
            "tasks_executed": len(self.executed),
            "outside_tasks_s": round(self.outside_tasks_s(), 3),
        }
        if self.cloud.request_log:
            out["requests"] = self.requests
            out["unattributed_requests"] = self.unattributed_requests
            out["machine_busy_cores"] = self.busy_cores
        out["plays"] = [self.play_summary(p) for p in self.plays]
        out["error"] = self.error
        out["warnings"] = self.warnings
        out["tasks"] = [t.doc(self.cloud.request_log) for t in self.tasks]
        return out


def _warnings(result: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for w in result.get("warnings", []) or []:
        found.append(f"[WARNING] {w if isinstance(w, str) else w.get('msg', w)}")
    for d in result.get("deprecations", []) or []:
        found.append(f"[DEPRECATION] {d.get('msg', d) if isinstance(d, dict) else d}")
    return found


def run_playbook(
    cloud: Cloud,
    root: Path,
    playbook: str,
    values: JsonDict,
    env: Mapping[str, str],
    *args: str,
    label: str = "",
    timeout: float = 1800,
) -> Run:
    """ansible-playbook -i localhost, ROOT/PLAYBOOK -e JSON, ansible.posix.json callback: every task of every host."""
    argv = ["ansible-playbook", "-i", "localhost,", str(root / playbook), "-e", json.dumps(values), *args]
    busy0, total0 = host_cpu_times()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(env), cwd=str(root), timeout=timeout)
    wall = time.perf_counter() - t0
    busy1, total1 = host_cpu_times()
    busy = round((busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1), 3)
    warnings = [
        line.strip()
        for line in proc.stderr.splitlines()
        if line.lstrip().startswith(("[WARNING]", "[DEPRECATION WARNING]", "[ERROR]"))
    ]
    try:
        doc: JsonDict = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        return Run(cloud, playbook, wall, proc.returncode, {}, [], [], f"no JSON output: {tail}", busy_cores=busy)
    plays: list[Play] = []
    tasks: list[Task] = []
    errors: list[str] = []
    for index, entry in enumerate(doc.get("plays", [])):
        play = entry.get("play", {})
        hosts: list[str] = []
        for task_entry in entry.get("tasks", []):
            task = task_entry.get("task", {})
            start, end, seconds = span(task.get("duration", {}))
            for host, result in task_entry.get("hosts", {}).items():
                if host not in hosts:
                    hosts.append(host)
                failed = bool(result.get("failed")) and not result.get("ignore_errors", False)
                if failed:
                    errors.append(f"{host}: {task.get('name')}: {str(result.get('msg', ''))[:500]}")
                where = cloud.instance if cloud.anonymous_hosts and host != "localhost" else host
                warnings += [f"{where}: {task.get('name')}: {w}" for w in _warnings(result)]
                results = result.get("results")
                action = normalise_action(str(result.get("action", "")))
                tasks.append(
                    Task(
                        play=index,
                        host=host,
                        name=str(task.get("name", "")),
                        path=str(task.get("path", "")).replace(str(root) + "/", ""),
                        action=action,
                        kind=cloud.kind_of(action),
                        seconds=seconds,
                        changed=bool(result.get("changed")),
                        skipped=bool(result.get("skipped")),
                        failed=failed,
                        items=len(results) if isinstance(results, list) else 0,
                        start=start,
                        end=end,
                    )
                )
        play_label = label or ("provision" if hosts == ["localhost"] or not hosts else "configure")
        plays.append(Play(index, str(play.get("name", "")), play_label, hosts, span(play.get("duration", {}))[2]))
    stats = {h: {k: int(v) for k, v in s.items()} for h, s in doc.get("stats", {}).items()}
    if proc.returncode != 0 and not errors:
        errors.append(proc.stderr.strip()[-1500:])
    unique_warnings = list(dict.fromkeys(warnings))
    return Run(
        cloud, playbook, wall, proc.returncode, stats, plays, tasks, "; ".join(errors), unique_warnings, busy_cores=busy
    )


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


def playbook_env(without: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The project environment without the caller's variables starting with `without` (its cloud credentials and
    settings), plus extra, plus the JSON callback."""
    env = {k: v for k, v in bench_env().items() if not k.startswith(without)}
    env.update(extra)
    env.update(JSON_CALLBACK_ENV)
    return env


def fleet_vars(fleet: str, public_key: str, build: Build, ports: Sequence[int]) -> JsonDict:
    """The variables of tests/integration/test_<cloud>.py every cloud shares, with the benchmark's names and ports."""
    return {
        "godot_fleet_name": fleet,
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": public_key,
        "godot_fleet_build_file": str(build.file),
        "godot_server_version": build.release,
        "godot_server_ports": list(ports),
    }


def container_overrides(container: str) -> list[JsonDict]:
    """godot_fleet_<cloud>_host_overrides: instance/VM 0 is the local container, reached over podman."""
    return [{"ansible_host": container, "ansible_connection": "containers.podman.podman", "ansible_user": "root"}]


def module_cost_playbook(path: Path, calls: Sequence[tuple[str, JsonDict]], samples: int) -> Path:
    """One play on localhost: `samples` separate tasks of each (action, arguments) of calls."""
    tasks = [{"name": f"{action} {i}", action: args} for i in range(samples) for action, args in calls]
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


class RunState:
    """One run: its document (`out`, what the results keep of it), its Runs by phase, its failures (also in `out`
    until run_all takes them out) and the name of the container standing in for the instance/VM."""

    def __init__(self, index: int, prefix: str, **first: Any) -> None:
        self.index = index
        self.out: JsonDict = {"run": index + 1, **first}
        self.runs: dict[str, Run] = {}
        self.failures: list[str] = []
        self.out["failures"] = self.failures
        self.container = f"{prefix}-{os.getpid()}-{index}"
        self.out["container"] = self.container

    def log(self, message: str) -> None:
        log(f"run {self.index + 1}: {message}")

    def fail(self, message: str) -> None:
        self.failures.append(f"run {self.index + 1}: {message}")


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


class Phase(Protocol):
    """Runs a playbook of the benchmark as the phase `name` of the current run (and keeps its Run under that name)."""

    def __call__(self, name: str, playbook: str, *extra: str, label: str = "") -> Run: ...


@contextlib.contextmanager
def stand_in(state: RunState, up: Callable[[], object], down: Callable[[], object]) -> Iterator[None]:
    """The container standing in for the instance/VM: up (host_up_s), the phases, then, also when they fail, down
    (host_down_s) and the summary of every phase that ran into the run's document."""
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


def fresh_deploy(state: RunState, phase: Phase, playbook: str, ports: Sequence[int]) -> Run:
    """The fresh deploy, then ENet probes until both rooms answer (fresh_to_round_trip_s, probe)."""
    state.log(f"fresh {playbook}")
    t_fresh = time.perf_counter()
    fresh = phase("fresh", playbook)
    if fresh.rc != 0:
        raise RuntimeError(f"fresh deploy failed (rc {fresh.rc}): {fresh.error}")
    probe_s, rounds, probes = wait_round_trip(ports)
    state.out["fresh_to_round_trip_s"] = round(time.perf_counter() - t_fresh, 3)
    state.out["probe"] = {"s": round(probe_s, 3), "rounds": rounds, "results": probes}
    return fresh


def noop_rerun(state: RunState, phase: Phase, playbook: str) -> Run:
    """The same deploy again: the recap of both hosts must say changed=0."""
    state.log("no-op re-run")
    rerun = phase("rerun", playbook)
    if rerun.rc != 0:
        raise RuntimeError(f"re-run failed (rc {rerun.rc}): {rerun.error}")
    if rerun.changed != 0 or len(rerun.stats) != 2:
        state.fail(f"re-run not a no-op: recap {rerun.stats}")
    return rerun


def check_mode(state: RunState, phase: Phase, playbook: str) -> Run:
    """The deploy with --check on the converged state: it must succeed and change nothing on both hosts."""
    state.log("--check on the converged state")
    check = phase("check", playbook, "--check")
    if check.rc != 0:
        state.fail(f"check mode failed (rc {check.rc}): {check.error}")
    elif check.changed != 0 or len(check.stats) != 2:
        state.fail(f"check mode reports changes: recap {check.stats}")
    return check


def teardown(state: RunState, phase: Phase, playbook: str) -> Run:
    """The teardown playbook (one play, labelled teardown): it must succeed and change something."""
    state.log(playbook)
    result = phase("teardown", playbook, label="teardown")
    if result.rc != 0:
        raise RuntimeError(f"teardown failed (rc {result.rc}): {result.error}")
    if result.changed == 0:
        state.fail("teardown changed nothing")
    return result


# --- all runs ------------------------------------------------------------------------------------------------

OneRun = Callable[[int, Path, Build, str], tuple[JsonDict, dict[str, Run]]]


def add_arguments(parser: argparse.ArgumentParser, local: str, name: str) -> None:
    """--runs, --quick, --no-check, --samples, --name (results file name: NAME, NAME-quick by default)."""
    parser.add_argument("--runs", type=int, default=3, help=f"runs, each on a fresh {local} and container (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run (overrides --runs)")
    parser.add_argument("--no-check", action="store_true", help="skip the --check run on the converged state")
    parser.add_argument("--samples", type=int, default=5, help="samples of each no-op module call per run (default 5)")
    parser.add_argument("--name", default=None, help=f"results file name (default {name}, {name}-quick)")


def parse_args(parser: argparse.ArgumentParser, name: str) -> tuple[argparse.Namespace, int, str]:
    """The arguments, the number of runs asked for and the results file name."""
    args = parser.parse_args()
    args.samples = max(1, args.samples)
    requested = 1 if args.quick else max(1, args.runs)
    return args, requested, args.name or (f"{name}-quick" if args.quick else name)


def start() -> tuple[str, JsonDict, JsonDict]:
    """CONTAINERS_CONF for the harness (scripts/*_local.py run podman with this process's environment), then
    common.begin: signal handlers, the start date, git and machine information."""
    os.environ["CONTAINERS_CONF"] = bench_env()["CONTAINERS_CONF"]
    return begin()


def run_all(
    prefix: str, requested: int, one_run: OneRun
) -> tuple[list[JsonDict], list[dict[str, Run]], list[str], Build]:
    """In a temporary directory: a snapshot of the build, an admin SSH key, then `requested` runs. Returns the
    documents of the runs that completed, their Runs by phase, the failures and the build."""
    raw: list[JsonDict] = []
    runs: list[dict[str, Run]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
        workdir = Path(tmp)
        build = snapshot_build(workdir / "artifacts")
        key = workdir / "admin"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", prefix, "-f", str(key)], check=True)
        public_key = (workdir / "admin.pub").read_text().strip()
        for i in range(requested):
            try:
                r, run_docs = one_run(i, workdir, build, public_key)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                log(f"run {i + 1} failed: {exc}")
                failures.append(f"run {i + 1}: {exc}")
                continue
            failures += r.pop("failures")
            raw.append(r)
            runs.append(run_docs)
    return raw, runs, failures, build


def playbook_warnings(runs: list[dict[str, Run]]) -> list[str]:
    return list(dict.fromkeys(w for r in runs for run in r.values() for w in run.warnings))


def run_config(args: argparse.Namespace, requested: int) -> JsonDict:
    return {
        "runs": requested,
        "quick": args.quick,
        "check_run": not args.no_check,
        "module_cost_samples": args.samples,
    }


def warn_if_changed(data: JsonDict, before: str, after: str, what: str, hash_label: str = "tree hash ") -> None:
    """A warning in the result document when a hash of measured files changed during the run."""
    if after != before:
        data["warnings"].append(f"{what} ({hash_label}{before} -> {after})")


def finish(name: str, data: JsonDict, raw: list[JsonDict], failures: list[str], report: Callable[[], None]) -> int:
    """Writes the results, prints the report (or only the failures when no run completed) and the exit status."""
    path = write_results(name, data)
    if raw:
        report()
    else:
        for f in failures:
            print(f"FAILURE: {f}")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if failures or not raw else 0


# --- summary -------------------------------------------------------------------------------------------------


def slowest(
    runs: list[Run], count: int, items: bool = False, requests: Mapping[str, str] | None = None
) -> list[JsonDict]:
    """The slowest executed tasks by median duration over the runs (keyed by play label and task name), with their
    items if asked, and the median of each of `requests` (result key: key of the tasks' request counts)."""
    samples: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for r in runs:
        labels = {p.index: p.label for p in r.plays}
        for t in r.executed:
            samples[(labels.get(t.play, "?"), t.name)].append(t)
    ranked = sorted(samples.items(), key=lambda kv: median(t.seconds for t in kv[1]) or 0.0, reverse=True)[:count]
    out: list[JsonDict] = []
    for (play, name), tasks in ranked:
        doc: JsonDict = {"play": play, "task": name, "action": tasks[-1].action}
        if items:
            doc["items"] = tasks[-1].items
        doc["median_s"] = round(median(t.seconds for t in tasks) or 0.0, 3)
        doc["samples_s"] = [round(t.seconds, 3) for t in tasks]
        for key, counted in (requests or {}).items():
            doc[key] = median(int(t.requests.get(counted, 0)) for t in tasks)
        out.append(doc)
    return out


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
    }
    if cloud.request_log:
        out["machine_busy_cores"] = [d.get("machine_busy_cores") for d in docs]
    out.update({f"median_{kind}_tasks_s": rounded(median(v)) for kind, v in kind_s.items()})
    for kind in (cloud.kind, "module"):
        out[f"median_{kind}_share"] = rounded(median(s / d["wall_s"] for s, d in zip(kind_s[kind], docs, strict=True)))
    if cloud.request_log:
        request_keys = list(docs[0].get("requests", {}))
        out["requests"] = {k: median(d["requests"].get(k, 0) for d in docs) for k in request_keys}
        out["requests_per_run"] = [d.get("requests", {}) for d in docs]
    out["plays"] = plays
    return out


def deploy_summary(raw: list[JsonDict], requested: int, phases: JsonDict, local: str, stop: bool = False) -> JsonDict:
    """Round trip, phase medians, the re-run / fresh ratio, the local cloud's start-up (`local`: the key of its
    document in a run; with stop also its stop), the container up and down, the phases."""
    fresh_s = [r["fresh"]["wall_s"] for r in raw if "fresh" in r]
    rerun_s = [r["rerun"]["wall_s"] for r in raw if "rerun" in r]
    med_fresh, med_rerun = median(fresh_s), median(rerun_s)
    ratio = med_rerun / med_fresh if med_fresh and med_rerun is not None else None
    run_ratios = [round(r["rerun"]["wall_s"] / r["fresh"]["wall_s"], 3) for r in raw if "rerun" in r and "fresh" in r]
    with_probe = [r for r in raw if "fresh_to_round_trip_s" in r]
    summary: JsonDict = {
        "runs_ok": len(raw),
        "runs_requested": requested,
        "median_fresh_to_round_trip_s": rounded(median(r["fresh_to_round_trip_s"] for r in with_probe)),
        "fresh_to_round_trip_s": [r["fresh_to_round_trip_s"] for r in with_probe],
        "median_probe_s": rounded(median(r["probe"]["s"] for r in with_probe)),
        "median_fresh_s": rounded(med_fresh),
        "median_rerun_s": rounded(med_rerun),
        **{f"median_{p}_s": s.get("median_wall_s") for p, s in phases.items() if p not in ("fresh", "rerun")},
        "ratio_rerun_over_fresh": rounded(ratio),
        "ratio_per_run": run_ratios,
        "median_ratio_per_run": median(run_ratios),
        "ratio_target": TARGET_RATIO,
        "ratio_meets_target": ratio is not None and ratio < TARGET_RATIO,
        f"median_{local}_startup_s": rounded(median(r[local]["startup_s"] for r in raw)),
    }
    if stop:
        summary[f"median_{local}_stop_s"] = rounded(median(r[f"{local}_stop_s"] for r in raw))
    summary["median_host_up_s"] = rounded(median(r["host_up_s"] for r in raw if "host_up_s" in r))
    summary["median_host_down_s"] = rounded(median(r["host_down_s"] for r in raw))
    summary["phases"] = phases
    return summary


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


def print_ratio(summary: JsonDict) -> None:
    verdict = "met" if summary["ratio_meets_target"] else "NOT met"
    print(
        f"\nratio re-run / fresh: {fmt(summary['ratio_rerun_over_fresh'], 3)} (per run "
        f"{', '.join(fmt(v, 3) for v in summary['ratio_per_run'])}; target < {TARGET_RATIO}: {verdict})"
    )


def print_plays(summary: JsonDict, phases: Sequence[str], cloud: Cloud, kind_headers: Sequence[str]) -> None:
    """Per play of every phase: medians of wall, tasks, s/task, median task, and tasks / s of each kind."""
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
