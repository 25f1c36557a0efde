"""Shared parts of the godot-fleet benchmarks: provenance and the result document, statistics and tables, the demo
build, the containers of converge.py and rooms.py, and playbook runs (testbed.playbook) timed per play and task.

Containers are local systemd containers exactly like `make demo` (scripts/demo.sh): podman run --systemd=always
--cap-add SYS_ADMIN, UDP ports published on 127.0.0.1 only, the artifacts mounted at /srv/artifacts and served
inside the container on 127.0.0.1:8079. The benchmarks copy the demo build from dist/ into their own temporary
directory first, so a rebuild of dist/ by someone else during a run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import testbed.playbook
from testbed import ROOT, hosts
from testbed.demo import DIST

RESULTS_DIR = ROOT / "bench" / "results"
IMAGE = hosts.IMAGE
ARTIFACT_PORT = 8079
# Actions that never leave the controller process (no module run, no round trip to a host).
CONTROLLER_ACTIONS = frozenset(
    f"ansible.builtin.{name}"
    for name in ("assert", "set_fact", "debug", "fail", "include_tasks", "import_tasks", "include_vars",
                 "validate_argument_spec", "meta", "include_role", "import_role", "add_host", "group_by")
)  # fmt: skip
# Files whose content defines what is being measured (the tree is shared: record it at start and end).
MEASURED_PATHS = ("deploy-hosts.yml", "playbooks", "roles/godot_server", "ansible.cfg")

JsonDict = dict[str, Any]


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def mitogen_env() -> dict[str, str]:
    """The environment that runs a playbook with Mitogen's strategy (`pip install mitogen` in the venv): one
    persistent Python per host instead of a new interpreter and a copied module per task."""
    try:
        import ansible_mitogen
    except ImportError as exc:
        raise SystemExit("Mitogen is not installed: .venv/bin/pip install mitogen") from exc
    plugins = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": "mitogen_linear"}


def run(argv: Sequence[str], *, check: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


# --- statistics ----------------------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float | None:
    data = list(values)
    return statistics.median(data) if data else None


def percentile(values: Iterable[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100)."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, round(pct / 100.0 * len(data) + 0.4999))
    return data[min(rank, len(data)) - 1]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


def fmt(value: float | int | str | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


# --- provenance ----------------------------------------------------------------------------------------------


def paths_hash(base: Path, paths: Sequence[str]) -> str:
    """Hash of the files below base/path for every path (names and contents; a missing path counts as missing)."""
    digest = hashlib.sha256()
    for rel in paths:
        path = base / rel
        if not path.exists():
            digest.update(f"{rel}: missing".encode())
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            digest.update(str(f.relative_to(base)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def git_info() -> JsonDict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout

    porcelain = git("status", "--porcelain").splitlines()  # "XY path": do not strip the leading space
    dirty = [line[3:] for line in porcelain if line[3:] and not line[3:].startswith("bench/")]
    measured = paths_hash(ROOT, MEASURED_PATHS)
    return {"commit": git("rev-parse", "HEAD").strip(), "dirty_paths": dirty, "measured_tree_hash": measured}


def machine_info() -> JsonDict:
    meminfo: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        meminfo[key] = int(rest.split()[0])
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break

    def version(argv: Sequence[str]) -> str:
        try:
            return run(argv, check=False, timeout=60).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return ""

    cpu0 = host_cpu_times()
    time.sleep(3.0)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_gib": round(meminfo["MemTotal"] / 2**20, 2),
        "mem_available_gib_at_start": round(meminfo["MemAvailable"] / 2**20, 2),
        "kernel": platform.release(),
        "loadavg_at_start": list(os.getloadavg()),
        "busy_cores_at_start": busy_cores_since(cpu0),
        "python": platform.python_version(),
        "podman": version(["podman", "--version"]),
        "ansible_core": version(["ansible-playbook", "--version"]),
        "note": "shared, noisy machine: other engineers run containers and builds at the same time",
    }


def host_cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is in user)
    return total - idle, total


def busy_cores_since(start: tuple[int, int]) -> float:
    """How many cores the whole machine kept busy since `start` (host_cpu_times(): everyone's load)."""
    busy, total = host_cpu_times()
    return round((busy - start[0]) / max(1, total - start[1]) * (os.cpu_count() or 1), 3)


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def begin() -> tuple[str, JsonDict, JsonDict]:
    """The start of every benchmark: the settings of scripts/env.sh in this process's environment (so sourcing it
    first is optional; every child inherits them), SIGTERM/SIGHUP ending it through its finally blocks (container
    removal); then its date, git and machine."""
    for key, value in {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}.items():
        os.environ.setdefault(key, value)
    if str(testbed.playbook.BIN) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{testbed.playbook.BIN}{os.pathsep}{os.environ.get('PATH', '')}"

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), git_info(), machine_info()


def result_document(
    benchmark: str,
    started: str,
    t_start: float,
    git: JsonDict,
    machine: JsonDict,
    config: JsonDict,
    failures: list[str],
    **sections: Any,
) -> JsonDict:
    """The JSON written by every benchmark: provenance, configuration, its own sections, failures, warnings (one
    when the measured files changed during the run: the working tree is shared)."""
    end = paths_hash(ROOT, MEASURED_PATHS)
    start = git["measured_tree_hash"]
    return {
        "benchmark": benchmark,
        "date": started,
        "duration_s": round(time.perf_counter() - t_start, 1),
        "git": git,
        "machine": machine,
        "config": config,
        **sections,
        "failures": failures,
        "warnings": [f"the role/playbooks changed during the run (tree hash {start} -> {end})"] if end != start else [],
    }


def write_results(name: str, data: JsonDict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


# --- the demo build ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifacts:
    directory: Path
    version: str
    archive: str
    release: str  # the label to deploy (dist/RELEASE)

    @property
    def file(self) -> Path:
        return self.directory / self.archive


def snapshot_artifacts(dest: Path, attempts: int = 10) -> Artifacts:
    """Copies the portable demo build, its SHA256SUMS and labels from dist/ into dest; retries while dist/ is
    rewritten (a copy counts when the archive matches its sum and the labels did not change meanwhile)."""
    dest.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            version, release = ((DIST / name).read_text().strip() for name in ("VERSION", "RELEASE"))
            archive = f"godot-fleet-demo-{version}-portable-linux-x86_64.tar.gz"
            for name in ("VERSION", "RELEASE", "SHA256SUMS", archive):
                shutil.copyfile(DIST / name, dest / name)
            sums = (dest / "SHA256SUMS").read_text().splitlines()
            want = next(line.split()[0] for line in sums if line.split()[-1].lstrip("*").endswith(archive))
            got = hashlib.sha256((dest / archive).read_bytes()).hexdigest()
            labels = [(dest / name).read_text().strip() for name in ("VERSION", "RELEASE")]
            if got == want and labels == [version, release]:
                return Artifacts(dest, version, archive, release)
        except (OSError, StopIteration, IndexError):
            pass
        log(f"dist/ is being rewritten (attempt {attempt + 1}); retrying in 5 s")
        time.sleep(5)
    raise RuntimeError("no consistent demo build in dist/ (run 'make game')")


# --- containers ----------------------------------------------------------------------------------------------


def podman_exec(name: str, *argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run(["podman", "exec", name, *argv], check=check, timeout=timeout)


def start_host(
    name: str, publish: Sequence[str], artifacts: Artifacts, extra_args: Sequence[str] = ()
) -> dict[str, float]:
    """podman run + wait until systemd runs + start the artifact server: the seconds of each and their total."""
    if any(not spec.startswith("127.0.0.1:") for spec in publish):
        raise ValueError(f"publish only on loopback: {publish}")
    argv = ["podman", "run", "-d", "--name", name, "--hostname", name, "--systemd=always", "--cap-add", "SYS_ADMIN"]
    argv += [arg for spec in publish for arg in ("-p", spec)]
    argv += [*extra_args, "-v", f"{artifacts.directory}:/srv/artifacts:ro", IMAGE, "/lib/systemd/systemd"]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run(argv, timeout=300)
    timings["podman_run_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    state = ""
    while time.perf_counter() - t1 < 120:
        state = podman_exec(name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{name}: systemd did not come up ({state})")
    timings["systemd_boot_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    podman_exec(name, "systemd-run", "--quiet", "--unit", "gf-artifacts", "--property=Restart=always", "python3", "-m",
                "http.server", str(ARTIFACT_PORT), "--bind", "127.0.0.1", "--directory", "/srv/artifacts")  # fmt: skip
    wait = (
        "import time, urllib.request\n"
        "for _ in range(300):\n"
        "    try:\n"
        f"        urllib.request.urlopen('http://127.0.0.1:{ARTIFACT_PORT}/VERSION', timeout=1).read(); break\n"
        "    except OSError: time.sleep(0.05)\n"
        "else: raise SystemExit('artifact server did not answer')\n"
    )
    podman_exec(name, "python3", "-c", wait)
    timings["artifact_server_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    return timings


def remove_host(name: str) -> None:
    proc = run(["podman", "rm", "-f", "-t", "0", name], check=False, timeout=300)
    if proc.returncode != 0 and "no such container" not in proc.stderr.lower():
        log(f"could not remove {name}: {proc.stderr.strip()}")


def write_inventory(
    directory: Path, host: str, artifacts: Artifacts, ports: Sequence[int], connection: str = "containers.podman.podman"
) -> Path:
    """An inventory like inventories/local/demo.yml, pointing at the benchmark's own artifact copy."""
    directory.mkdir(parents=True, exist_ok=True)
    hostvars = {
        "ansible_connection": connection,
        "ansible_python_interpreter": "/usr/bin/python3",
        "godot_server_version": artifacts.version,
        "godot_server_url": f"http://127.0.0.1:{ARTIFACT_PORT}/{artifacts.archive}",
        "godot_server_checksum": f"sha256:http://127.0.0.1:{ARTIFACT_PORT}/SHA256SUMS",
        "godot_server_style": "runtime",
        "godot_server_executable": "godot",
        "godot_server_main_pack": "godot-fleet-demo.pck",
        "godot_server_ports": list(ports),
        "godot_server_max_players": 8,
    }
    path = directory / f"{host}.json"  # the yaml inventory plugin reads .json files too
    path.write_text(json.dumps({"godot_servers": {"hosts": {host: hostvars}}}, indent=2) + "\n")
    return path


# --- playbook runs, timed per play and task ------------------------------------------------------------------


@dataclass(frozen=True)
class Kinds:
    """What a task is: `kind` for the actions starting with `prefixes` (a cloud's modules, when given), controller
    (no module run: CONTROLLER_ACTIONS) or module (any other module run, on a host or on the controller)."""

    kind: str = ""
    prefixes: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind, "module", "controller") if self.kind else ("module", "controller")

    def kind_of(self, action: str) -> str:
        if self.kind and action.startswith(self.prefixes):
            return self.kind
        return "controller" if not action or action in CONTROLLER_ACTIONS else "module"


PLAIN = Kinds()


@dataclass
class Task:
    """One task's result on one host, timed by the json callback."""

    play: int
    host: str
    name: str
    path: str
    action: str
    kind: str  # Kinds.kind_of(action)
    seconds: float
    changed: bool
    skipped: bool
    failed: bool
    items: int
    start: float = 0.0  # epoch seconds (the local Azure's request log is in epoch seconds)
    end: float = 0.0
    requests: JsonDict = field(default_factory=dict)  # requests to a local cloud during the task (bench/azure.py)

    @property
    def remote(self) -> bool:
        """Whether the task ran a module (a round trip to its host; on the controller for localhost)."""
        return self.kind != "controller"


@dataclass
class Play:
    index: int
    name: str
    hosts: list[str]
    wall_s: float
    label: str = ""  # what the play is (the cloud benchmarks: provision, configure, teardown)


@dataclass
class Run:
    """A finished playbook run: its wall time, recap, plays and every task on every host."""

    playbook: str
    kinds: Kinds
    wall_s: float
    rc: int
    stats: dict[str, dict[str, int]]
    plays: list[Play]
    tasks: list[Task]
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    busy_cores: float | None = None  # the whole machine's, during the run
    requests: JsonDict = field(default_factory=dict)  # the requests to a local cloud during the run (azure.py)
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
        for kind in self.kinds.kinds:
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
        remote = [t for t in executed if t.remote]
        out: JsonDict = {
            "playbook": self.playbook,
            "wall_s": round(self.wall_s, 3),
            "rc": self.rc,
            "recap": self.stats,
            "changed": self.changed,
            "tasks_listed": len(self.tasks),
            "tasks_executed": len(executed),
            "tasks_executed_remote": len(remote),
            "remote_tasks_s": round(sum(t.seconds for t in remote), 3),
            "controller_tasks_s": round(sum(t.seconds for t in executed if not t.remote), 3),
            "outside_tasks_s": round(self.outside_tasks_s(), 3),
            "machine_busy_cores": self.busy_cores,
        }
        if self.requests:
            out["requests"] = self.requests
            out["unattributed_requests"] = self.unattributed_requests
        out["plays"] = [self.play_summary(p) for p in self.plays]
        out["error"] = self.error
        out["warnings"] = self.warnings
        keys = ("play", "host", "name", "path", "action", "kind", "changed", "skipped", "failed", "items")
        out["tasks"] = [
            {
                **{k: getattr(t, k) for k in keys},
                "s": round(t.seconds, 3),
                **({"requests": t.requests} if self.requests else {}),
            }
            for t in self.tasks
        ]
        return out


def span(duration: Mapping[str, str]) -> tuple[float, float, float]:
    """Start and end (epoch seconds) and length in seconds of an ansible.posix.json duration; zeros without one."""
    if "start" not in duration or "end" not in duration:
        return 0.0, 0.0, 0.0
    start, end = (dt.datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
    return start.timestamp(), end.timestamp(), (end - start).total_seconds()


def result_warnings(result: Mapping[str, Any]) -> list[str]:
    """The warnings and deprecations in one task's result."""
    found = [f"[WARNING] {w if isinstance(w, str) else w.get('msg', w)}" for w in result.get("warnings") or []]
    found += [
        f"[DEPRECATION] {d.get('msg', d) if isinstance(d, dict) else d}" for d in result.get("deprecations") or []
    ]
    return found


def run_playbook(
    playbook: str | Path,
    extra_vars: Mapping[str, Any] | None = None,
    *args: str,
    inventory: str | Path = "localhost,",
    env: Mapping[str, str] | None = None,
    root: Path = ROOT,
    kinds: Kinds = PLAIN,
    anonymous: str = "",
    timeout: float = 3600,
) -> Run:
    """testbed.playbook.run in the checkout `root` (its working directory), timed per play and per task from the
    json callback's start/end times, with the whole machine's busy cores during the run. `anonymous`: what the hosts
    other than localhost are called in the warnings (their names differ per run, e.g. instance ids)."""
    cpu0 = host_cpu_times()
    result = testbed.playbook.run(playbook, extra_vars, *args, inventory=inventory, env=env, cwd=root, timeout=timeout)
    busy = busy_cores_since(cpu0)
    warnings = [
        line.strip()
        for line in result.stderr.splitlines()
        if line.lstrip().startswith(("[WARNING]", "[DEPRECATION WARNING]", "[ERROR]"))
    ]
    if not result.plays and not result.stats:
        tail = (result.stderr.strip() or result.stdout.strip())[-1500:]
        return Run(str(playbook), kinds, result.seconds, result.returncode, {}, [], [], f"no JSON output: {tail}",
                   busy_cores=busy)  # fmt: skip
    plays: list[Play] = []
    tasks: list[Task] = []
    errors: list[str] = []
    for index, entry in enumerate(result.plays):
        play_hosts: list[str] = []
        for task_entry in entry.get("tasks", []):
            task = task_entry.get("task", {})
            name = str(task.get("name", ""))
            start, end, seconds = span(task.get("duration", {}))
            for host, outcome in task_entry.get("hosts", {}).items():
                if host not in play_hosts:
                    play_hosts.append(host)
                failed = bool(outcome.get("failed")) and not outcome.get("ignore_errors", False)
                if failed:
                    errors.append(f"{host}: {name}: {str(outcome.get('msg', ''))[:500]}")
                where = anonymous if anonymous and host != "localhost" else host
                warnings += [f"{where}: {name}: {w}" for w in result_warnings(outcome)]
                action = str(outcome.get("action", ""))
                if "." not in action and f"ansible.builtin.{action}" in CONTROLLER_ACTIONS:
                    action = f"ansible.builtin.{action}"  # short names of the controller's builtins: their FQCN
                results = outcome.get("results")
                tasks.append(
                    Task(
                        play=index, host=host, name=name, path=str(task.get("path", "")).replace(f"{root}/", ""),
                        action=action, kind=kinds.kind_of(action), seconds=seconds,
                        changed=bool(outcome.get("changed")), skipped=bool(outcome.get("skipped")), failed=failed,
                        items=len(results) if isinstance(results, list) else 0, start=start, end=end,
                    )
                )  # fmt: skip
        play = entry.get("play", {})
        plays.append(Play(index, str(play.get("name", "")), play_hosts, span(play.get("duration", {}))[2]))
    if result.returncode != 0 and not errors:
        errors.append(result.stderr.strip()[-1500:])
    return Run(str(playbook), kinds, result.seconds, result.returncode, result.stats, plays, tasks, "; ".join(errors),
               list(dict.fromkeys(warnings)), busy_cores=busy)  # fmt: skip


def slowest(
    runs: Sequence[Run], count: int, items: bool = False, requests: Mapping[str, str] | None = None
) -> list[JsonDict]:
    """The slowest executed tasks by median duration over the runs (keyed by play label, file:line and name), with
    their items if asked, and the median of each of `requests` (result key: key of the tasks' request counts)."""
    samples: dict[tuple[str, str, str], list[Task]] = {}
    for r in runs:
        labels = {p.index: p.label for p in r.plays}
        for t in r.executed:
            samples.setdefault((labels.get(t.play, ""), t.path, t.name), []).append(t)
    ranked = sorted(samples.items(), key=lambda kv: median(t.seconds for t in kv[1]) or 0.0, reverse=True)[:count]
    out: list[JsonDict] = []
    for (play, path, name), tasks in ranked:
        doc: JsonDict = {"play": play, "task": name, "path": path, "action": tasks[-1].action}
        if items:
            doc["items"] = tasks[-1].items
        doc["median_s"] = round(median(t.seconds for t in tasks) or 0.0, 3)
        doc["samples_s"] = [round(t.seconds, 3) for t in tasks]
        for key, counted in (requests or {}).items():
            doc[key] = median(int(t.requests.get(counted, 0)) for t in tasks)
        out.append(doc)
    return out
