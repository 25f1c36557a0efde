"""Running a playbook and reading its result: the one way the tests, the demos' checks and the benchmarks do it.

The run uses the ansible.posix.json stdout callback, so the result is data (per host counts, every task's result)
rather than text to scrape. A playbook of this checkout can run as it is (`deploy-aws.yml`, with the checkout's
ansible.cfg) or as a user of the installed collection runs it (`installed=`: `godot_fleet.fleet.deploy_aws` from an
empty directory, with only that collections path and no ANSIBLE_* setting of the caller).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import ROOT

BIN = Path(sys.executable).parent
#: the recap's names for the json callback's counters (failures -> failed)
COUNTERS = {"ok": "ok", "changed": "changed", "unreachable": "unreachable", "failures": "failed",
            "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}  # fmt: skip


@dataclass
class TaskResult:
    """One task's result on one host."""

    play: str
    task: str
    host: str
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed") or self.result.get("unreachable"))

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def message(self) -> str:
        """What the task said when it failed: its msg, else the module's stderr or the whole result; for a loop
        (whose own msg is only "One or more items failed"), then what each failed item said."""
        items = [
            i
            for i in self.result.get("results", [])
            if isinstance(i, dict) and (i.get("failed") or i.get("unreachable"))
        ]
        return "\n".join([_said(self.result), *map(_said, items)])


def _said(result: dict[str, Any]) -> str:
    msg = result.get("msg") or result.get("stderr") or result.get("module_stderr")
    if isinstance(msg, list):  # a debug task's list of lines
        return "\n".join(map(str, msg))
    return str(msg) if msg else json.dumps(result, default=str)[:2000]


@dataclass(repr=False)
class Result:
    """A finished ansible-playbook run."""

    command: list[str]
    returncode: int
    #: per host, the recap's counters: ok, changed, unreachable, failed, skipped, rescued, ignored
    stats: dict[str, dict[str, int]]
    #: the json callback's plays (empty when ansible-playbook stopped before running any, e.g. a syntax error)
    plays: list[dict[str, Any]]
    #: what ansible-playbook wrote besides the JSON: errors before the run, warnings, deprecations
    stderr: str
    seconds: float
    #: what ansible-playbook printed on stdout: the callback's JSON, or text when it stopped before (a syntax error)
    stdout: str = ""
    _tasks: list[TaskResult] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def changed(self) -> int:
        """Changed tasks over all hosts (the recap's changed= summed)."""
        return sum(counts["changed"] for counts in self.stats.values())

    @property
    def tasks(self) -> list[TaskResult]:
        """Every task's result on every host, in the order they ran (a loop's items are in its result)."""
        if self._tasks is None:
            self._tasks = [
                TaskResult(play["play"]["name"], task["task"]["name"], host, result)
                for play in self.plays
                for task in play["tasks"]
                for host, result in task["hosts"].items()
            ]
        return self._tasks

    def task(self, name: str, host: str | None = None) -> TaskResult:
        """The last result of the task called `name` (on `host` when given); KeyError when it did not run."""
        for found in reversed(self.tasks):
            if found.task == name and host in (None, found.host):
                return found
        raise KeyError(f"no task {name!r} ran{f' on {host}' if host else ''}:\n{self}")

    def changed_tasks(self) -> list[str]:
        return [f"{t.host}: {t.task}" for t in self.tasks if t.changed]

    @property
    def failures(self) -> list[TaskResult]:
        """The failed and unreachable results (ignored errors and rescued tasks included)."""
        return [t for t in self.tasks if t.failed]

    @property
    def text(self) -> str:
        """Everything a person would look for in the output: what the tasks said (failures, debug messages),
        their warnings, and ansible-playbook's own output besides the JSON."""
        lines = []
        for t in self.tasks:
            if t.failed or "msg" in t.result:
                lines.append(f"{t.host}: {t.task}: {t.message}")
            lines += [f"{t.host}: {t.task}: [WARNING] {w}" for w in t.result.get("warnings", [])]
        before = "" if self.plays else self.stdout
        return "\n".join([*lines, before, self.stderr]).strip()

    @property
    def output(self) -> str:
        """Everything ansible-playbook printed (for checks that a secret appears nowhere)."""
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        """For assertion messages: the command, the recap and what went wrong."""
        return f"{' '.join(self.command)} -> rc={self.returncode} stats={self.stats}\n{self.text[-6000:]}"


def environment(base: Mapping[str, str] | None = None, *, installed: Path | None = None) -> dict[str, str]:
    """The environment of a run: `base` (default: this process's) with the json callback and the project's podman
    settings; for an installed collection without any ANSIBLE_* setting of the caller and with only `installed` as
    the collections path."""
    env = dict(os.environ if base is None else base)
    if installed is not None:
        env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
        env["ANSIBLE_COLLECTIONS_PATH"] = str(installed)
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def collection_name(playbook: str) -> str:
    """deploy-aws.yml (an entry point of this checkout) -> godot_fleet.fleet.deploy_aws."""
    return "godot_fleet.fleet." + Path(playbook).name.removesuffix(".yml").replace("-", "_")


def run(
    playbook: str | Path,
    extra_vars: Mapping[str, Any] | None = None,
    *args: str,
    inventory: str | Path | Sequence[str | Path] = "localhost,",
    env: Mapping[str, str] | None = None,
    installed: Path | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Result:
    """ansible-playbook PLAYBOOK with EXTRA_VARS (as JSON) and ARGS; never raises on a failed play.

    `playbook` is a path (relative to `cwd`, default the checkout) or an entry point of this checkout; with
    `installed` (a collections path holding the built collection) an entry point of the checkout runs as its FQCN
    from an empty directory beside that path.
    """
    target = str(playbook)
    if installed is not None:
        if not target.startswith("godot_fleet.fleet."):
            target = collection_name(target)
        cwd = cwd or installed.parent / "cwd"
        cwd.mkdir(exist_ok=True)
    inventories = [inventory] if isinstance(inventory, str | Path) else list(inventory)
    command = [str(BIN / "ansible-playbook"), target]
    for source in inventories:
        command += ["-i", str(source)]
    if extra_vars:
        command += ["-e", json.dumps(dict(extra_vars))]
    command += list(args)
    started = time.monotonic()
    proc = subprocess.run(
        command,
        cwd=cwd or ROOT,
        env=environment(env, installed=installed),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    seconds = time.monotonic() - started
    # the JSON document follows what -v prints before the play ("Using .../ansible.cfg as config file")
    start = 0 if proc.stdout.startswith("{") else proc.stdout.find("\n{") + 1
    try:
        data = json.loads(proc.stdout[start:])
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return Result(command, proc.returncode, {}, [], proc.stderr, seconds, proc.stdout)
    stats = {
        host: {name: int(counts.get(key, 0)) for key, name in COUNTERS.items()}
        for host, counts in data.get("stats", {}).items()
    }
    return Result(command, proc.returncode, stats, data.get("plays", []), proc.stderr, seconds, proc.stdout)


def inventory(source: str | Path, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """`ansible-inventory -i SOURCE --list` as data (without ansible-core's {"__ansible_unsafe": ...} wrappers)."""
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        cwd=cwd or ROOT, env=dict(os.environ if env is None else env), capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, Any] = _unwrap(json.loads(proc.stdout))
    return found


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value
