"""Shared helpers of the godot-fleet benchmarks (bench/converge.py, bench/rooms.py; bench/cloud.py builds on them).

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
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
IMAGE = "localhost/godot-fleet/host:bookworm"
ARTIFACT_PORT = 8079
# Actions that run on the controller only (no round trip to the host).
CONTROLLER_ACTIONS = frozenset(
    {
        "ansible.builtin.assert",
        "ansible.builtin.set_fact",
        "ansible.builtin.debug",
        "ansible.builtin.fail",
        "ansible.builtin.include_tasks",
        "ansible.builtin.import_tasks",
        "ansible.builtin.include_vars",
        "ansible.builtin.validate_argument_spec",
        "ansible.builtin.meta",
    }
)
# Files whose content defines what is being measured (the tree is shared: record it at start and end).
MEASURED_PATHS = ("deploy-hosts.yml", "playbooks", "roles/godot_server", "ansible.cfg")


def mitogen_env() -> dict[str, str]:
    """The environment that runs a playbook with Mitogen's strategy (`pip install mitogen` in the venv): one
    persistent Python per host instead of a new interpreter and a copied module per task."""
    try:
        import ansible_mitogen
    except ImportError as exc:
        raise SystemExit("Mitogen is not installed: .venv/bin/pip install mitogen") from exc
    plugins = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": "mitogen_linear"}


# ansible-playbook prints one JSON document (per-task start/end times) and writes no retry files.
JSON_CALLBACK_ENV = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_RETRY_FILES_ENABLED": "false"}

JsonDict = dict[str, Any]


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


# --- environment ---------------------------------------------------------------------------------------------


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of scripts/env.sh (set here too, so sourcing it first is optional)."""
    env = dict(os.environ)
    venv = Path(env.get("GF_VENV", str(ROOT / ".venv")))
    if str(venv / "bin") not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CONTAINERS_CONF", str(ROOT / "scripts" / "containers.conf"))
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env["ANSIBLE_NOCOLOR"] = "1"
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float | None = 600, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, env=dict(env) if env else bench_env()
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP end the benchmark through SystemExit, so every finally block (container removal) runs."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


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


def tree_hash() -> str:
    """Hash of the files that define the measured deployment (the working tree may be edited during a run)."""
    return paths_hash(ROOT, MEASURED_PATHS)


def git_info() -> JsonDict:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout

    porcelain = git("status", "--porcelain").splitlines()  # "XY path": do not strip the leading space
    dirty = [line[3:] for line in porcelain if line[3:] and not line[3:].startswith("bench/")]
    return {"commit": git("rev-parse", "HEAD").strip(), "dirty_paths": dirty, "measured_tree_hash": tree_hash()}


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

    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_gib": round(meminfo["MemTotal"] / 2**20, 2),
        "mem_available_gib_at_start": round(meminfo["MemAvailable"] / 2**20, 2),
        "kernel": platform.release(),
        "loadavg_at_start": list(os.getloadavg()),
        "busy_cores_at_start": busy_cores(),
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


def busy_cores(seconds: float = 3.0) -> float:
    """How many cores the whole machine keeps busy (everyone's load, not only the benchmark's)."""
    busy0, total0 = host_cpu_times()
    time.sleep(seconds)
    busy1, total1 = host_cpu_times()
    return round((busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1), 3)


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def begin() -> tuple[str, JsonDict, JsonDict]:
    """The start of every benchmark: SIGTERM/SIGHUP end it through its finally blocks; its date, git and machine."""
    install_signal_handlers()
    return now_iso(), git_info(), machine_info()


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


def snapshot_artifacts(dest: Path, attempts: int = 10) -> Artifacts:
    """Copies the portable demo build and its SHA256SUMS from dist/ into dest; retries while dist/ is rewritten."""
    dist = ROOT / "dist"
    dest.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            version = (dist / "VERSION").read_text().strip()
            archive = f"godot-fleet-demo-{version}-portable-linux-x86_64.tar.gz"
            for name in ("VERSION", "SHA256SUMS", archive):
                shutil.copyfile(dist / name, dest / name)
            sums = (dest / "SHA256SUMS").read_text().splitlines()
            want = next(line.split()[0] for line in sums if line.split()[-1].lstrip("*").endswith(archive))
            got = hashlib.sha256((dest / archive).read_bytes()).hexdigest()
            if got == want and (dest / "VERSION").read_text().strip() == version:
                return Artifacts(dest, version, archive)
        except (OSError, StopIteration, IndexError):
            pass
        log(f"dist/ is being rewritten (attempt {attempt + 1}); retrying in 5 s")
        time.sleep(5)
    raise RuntimeError("no consistent demo build in dist/ (run 'make game')")


# --- containers ----------------------------------------------------------------------------------------------


@dataclass
class Host:
    """A local systemd container standing in for a game host."""

    name: str
    timings: dict[str, float] = field(default_factory=dict)


def podman_exec(name: str, *argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run(["podman", "exec", name, *argv], check=check, timeout=timeout)


def start_host(
    name: str, publish: Sequence[str], artifacts: Artifacts, extra_args: Sequence[str] = (), image: str = IMAGE
) -> Host:
    """podman run + wait until systemd runs + start the artifact server, each timed (seconds)."""
    for spec in publish:
        if not spec.startswith("127.0.0.1:"):
            raise ValueError(f"publish only on loopback: {spec}")
    host = Host(name)
    argv = ["podman", "run", "-d", "--name", name, "--hostname", name, "--systemd=always", "--cap-add", "SYS_ADMIN"]
    for spec in publish:
        argv += ["-p", spec]
    argv += [*extra_args, "-v", f"{artifacts.directory}:/srv/artifacts:ro", image, "/lib/systemd/systemd"]
    t0 = time.perf_counter()
    run(argv, timeout=300)
    host.timings["podman_run_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    state = ""
    while time.perf_counter() - t1 < 120:
        state = podman_exec(name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{name}: systemd did not come up ({state})")
    host.timings["systemd_boot_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    podman_exec(
        name,
        "systemd-run",
        "--quiet",
        "--unit",
        "gf-artifacts",
        "--property=Restart=always",
        "python3",
        "-m",
        "http.server",
        str(ARTIFACT_PORT),
        "--bind",
        "127.0.0.1",
        "--directory",
        "/srv/artifacts",
    )
    wait = (
        "import time, urllib.request\n"
        "for _ in range(300):\n"
        "    try:\n"
        f"        urllib.request.urlopen('http://127.0.0.1:{ARTIFACT_PORT}/VERSION', timeout=1).read(); break\n"
        "    except OSError: time.sleep(0.05)\n"
        "else: raise SystemExit('artifact server did not answer')\n"
    )
    podman_exec(name, "python3", "-c", wait)
    host.timings["artifact_server_s"] = time.perf_counter() - t2
    host.timings["total_s"] = time.perf_counter() - t0
    return host


def remove_host(name: str) -> None:
    proc = run(["podman", "rm", "-f", "-t", "0", name], check=False, timeout=300)
    if proc.returncode != 0 and "no such container" not in proc.stderr.lower():
        log(f"could not remove {name}: {proc.stderr.strip()}")


def exec_latency(name: str, samples: int = 10) -> list[float]:
    """Wall time of `podman exec NAME true`: the floor of every round trip of the podman connection."""
    out: list[float] = []
    for _ in range(samples):
        t0 = time.perf_counter()
        podman_exec(name, "true")
        out.append(time.perf_counter() - t0)
    return out


# --- Ansible -------------------------------------------------------------------------------------------------


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


@dataclass
class TaskTiming:
    name: str
    path: str
    action: str
    seconds: float
    changed: bool
    skipped: bool
    failed: bool
    items: int

    @property
    def remote(self) -> bool:
        return self.action not in CONTROLLER_ACTIONS and bool(self.action)


@dataclass
class PlaybookRun:
    wall_s: float
    rc: int
    stats: dict[str, int]
    tasks: list[TaskTiming]
    error: str = ""

    @property
    def executed(self) -> list[TaskTiming]:
        return [t for t in self.tasks if not t.skipped]

    def summary(self) -> JsonDict:
        executed = self.executed
        remote = [t for t in executed if t.remote]
        return {
            "wall_s": round(self.wall_s, 3),
            "rc": self.rc,
            "recap": self.stats,
            "tasks_listed": len(self.tasks),
            "tasks_executed": len(executed),
            "tasks_executed_remote": len(remote),
            "remote_tasks_s": round(sum(t.seconds for t in remote), 3),
            "controller_tasks_s": round(sum(t.seconds for t in executed if not t.remote), 3),
            "error": self.error,
            "tasks": [
                {
                    "name": t.name,
                    "path": t.path,
                    "action": t.action,
                    "s": round(t.seconds, 3),
                    "changed": t.changed,
                    "skipped": t.skipped,
                    "failed": t.failed,
                    "items": t.items,
                }
                for t in self.tasks
            ],
        }


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def span(duration: Mapping[str, str]) -> tuple[float, float, float]:
    """Start and end (epoch seconds) and length in seconds of an ansible.posix.json duration; zeros without one."""
    if "start" not in duration or "end" not in duration:
        return 0.0, 0.0, 0.0
    start, end = _parse_time(duration["start"]), _parse_time(duration["end"])
    return start.timestamp(), end.timestamp(), (end - start).total_seconds()


def run_playbook(
    inventory: Path,
    host: str,
    playbook: str = "deploy-hosts.yml",
    timeout: float = 3600,
    extra_env: Mapping[str, str] | None = None,
) -> PlaybookRun:
    """ansible-playbook with the ansible.posix.json callback: wall time, recap and the duration of every task."""
    env = bench_env({**JSON_CALLBACK_ENV, **(extra_env or {})})
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(ROOT / playbook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=timeout,
    )
    wall = time.perf_counter() - t0
    try:
        doc: JsonDict = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return PlaybookRun(wall, proc.returncode, {}, [], f"no JSON output: {proc.stderr.strip()[-1500:]}")
    tasks: list[TaskTiming] = []
    errors: list[str] = []
    for play in doc.get("plays", []):
        for entry in play.get("tasks", []):
            task = entry.get("task", {})
            result = entry.get("hosts", {}).get(host)
            if result is None:  # meta tasks (flush_handlers) have no host result
                continue
            seconds = span(task.get("duration", {}))[2]
            failed = bool(result.get("failed")) and not result.get("ignore_errors", False)
            if failed:
                errors.append(f"{task.get('name')}: {str(result.get('msg', ''))[:500]}")
            tasks.append(
                TaskTiming(
                    name=str(task.get("name", "")),
                    path=str(task.get("path", "")).replace(str(ROOT) + "/", ""),
                    action=str(result.get("action", "")),
                    seconds=seconds,
                    changed=bool(result.get("changed")),
                    skipped=bool(result.get("skipped")),
                    failed=failed,
                    items=len(result.get("results", [])) if isinstance(result.get("results"), list) else 0,
                )
            )
    stats = {k: int(v) for k, v in doc.get("stats", {}).get(host, {}).items()}
    return PlaybookRun(wall, proc.returncode, stats, tasks, "; ".join(errors))


def check_paths_unchanged(start_hash: str) -> str:
    """A warning when the measured files changed during the run (shared working tree), else ''."""
    end = tree_hash()
    if end != start_hash:
        return f"the role/playbooks changed during the run (tree hash {start_hash} -> {end})"
    return ""


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
    """The JSON written by every benchmark: provenance, configuration, its own sections, failures, warnings."""
    warning = check_paths_unchanged(git["measured_tree_hash"])
    return {
        "benchmark": benchmark,
        "date": started,
        "duration_s": round(time.perf_counter() - t_start, 1),
        "git": git,
        "machine": machine,
        "config": config,
        **sections,
        "failures": failures,
        "warnings": [warning] if warning else [],
    }
