"""Running a playbook the way an AWX job runs it: ansible-runner in the execution environment (EE), with AWX's
private data directory, inventory, extra vars, environment and credential injection; and the hosts such a job
reaches over SSH.

What AWX does (awx/main/tasks/jobs.py of the AWX sources, testbed.awx_sources), and what is done here:

- `BaseTask.build_private_data_dir` / `RunJob.build_project_dir` (`RunProjectUpdate.make_local_copy`): a private
  data dir with `project/` (a copy of the project checkout, without `.git`, symlinks kept), `inventory/`, `env/`.
  The checkout's files a project sync would have are `git ls-files --cached --others --exclude-standard` (tracked
  and not yet committed files; nothing git ignores: no venv, caches or builds).
- `BaseTask.build_inventory` / `write_inventory_file`: `inventory/hosts` is an executable script
  (`#! /usr/bin/env python3`, mode 0700) printing `Inventory.get_script_data(hostvars=True, towervars=True)`:
  `all` (vars, ungrouped hosts, children), one entry per group, `_meta.hostvars` with `remote_tower_id`/`_enabled`.
- `RunJob.build_extra_vars_file` / `_write_extra_vars_file`: `env/extravars`, the job template's extra vars, the
  launch-time ones (survey answers) and AWX's meta vars (`awx_job_id`, `tower_job_template_name`, ...), written
  with AWX's own `safe_dump` (awx/main/utils/safe_yaml.py, loaded from the sources): everything but the job
  template's own extra vars is `!unsafe` (ALLOW_JINJA_IN_EXTRA_VARS = 'template', AWX's default).
- `RunJob.build_args` / `write_args_file`: `env/cmdline` (`-u <Machine username or root>`, `--become`, ...).
- `RunJob.build_env` + `CredentialType.inject_credential`: the environment (AWX's ANSIBLE_* settings, JOB_ID,
  INVENTORY_ID, PROJECT_REVISION, AWX_HOST, ANSIBLE_SSH_CONTROL_PATH_DIR=/runner/cp, the collections and roles
  paths read from the project's ansible.cfg), then each credential's injector: the awx-plugins sources'
  `awx_plugins/credentials/injectors.py` functions (`aws`, `azure_rm`, ...) for managed types without template
  injectors, the type's own `injectors` (env templates, rendered in Jinja's sandbox as AWX does) otherwise. Written
  to `env/envvars`. (AWX hands the same dict to ansible-runner as its `envvars` argument with suppress_env_files;
  ansible-runner merges `env/envvars` into the job's environment in the same place: config/_base.py.)
- `build_private_data_files`: a Machine credential's private key goes to ansible-runner (here `env/ssh_key`), which
  feeds it through a fifo to `ssh-add` in an `ssh-agent` wrapping ansible-playbook in the EE, as in AWX.
- `env/settings`: AWX's runner settings (job_timeout, suppress_ansible_output, suppress_output_file): the job's
  stdout is its events' stdout, as AWX shows it.
- `build_execution_environment_params`: `process_isolation=True`, `process_isolation_executable='podman'`,
  `container_image=<EE>`, `container_options=['--user=root', *DEFAULT_CONTAINER_RUN_OPTIONS, '--pull=<pull>']`, and
  `container_volume_mounts` for AWX_ISOLATION_SHOW_PATHS (a path shown at the same path). Here
  DEFAULT_CONTAINER_RUN_OPTIONS is `['--network', 'host']` (an AWX setting; its default is slirp4netns) so that the
  local emulators and the stand-in hosts on this machine's loopback are reachable from the job.

Not AWX: no database, dispatcher or receptor (ansible-runner runs the job in this process, as receptor's `local`
work type runs `ansible-runner worker`); no password prompts (Machine credentials with a password, key passphrase or
become password are refused here).

The stand-in hosts (`ssh_host`, `local_sshd`): an AWX job reaches hosts over SSH with a Machine credential (the EE
has no podman). A game host is a systemd container (testbed.hosts) of an image with openssh-server (`sshd_image`,
built FROM the host image and cached by a hash of its recipe and base) whose sshd listens on its own loopback port
(the containers share this machine's network), root login by key only, host keys generated per container. A build
host is this machine itself through an sshd of its own (own config, host key and authorized_keys in a directory of
the caller, `sshd -D -f`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from configparser import ConfigParser
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from testbed import ROOT, hosts
from testbed.awx_sources import sources

#: The root of the private data dir inside the EE (awx_plugins.interfaces' CONTAINER_ROOT)
CONTAINER_ROOT = "/runner"
#: AWX settings the job environment and runner parameters come from (awx/settings/defaults.py), by name
ANSIBLE_SETTINGS = {
    "ANSIBLE_HOST_KEY_CHECKING": False,
    "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": False,
    "ANSIBLE_FORCE_COLOR": True,
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": True,
}
MAX_EVENT_RES_DATA = 700000
TOWER_URL_BASE = "https://platformhost"
JOB_VARIABLE_PREFIXES = ("awx", "tower")
#: DEFAULT_CONTAINER_RUN_OPTIONS of this AWX: the host network, so loopback services are reachable from the job
DEFAULT_CONTAINER_RUN_OPTIONS = ["--network", "host"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def ee_image() -> str:
    """The execution environment image of this checkout: GF_EE_IMAGE, else what `scripts/ee.sh --print-image` names
    (the image `make ee` builds for this recipe), else <prefix>/ee:latest."""
    if os.environ.get("GF_EE_IMAGE"):
        return os.environ["GF_EE_IMAGE"]
    script = ROOT / "scripts" / "ee.sh"
    if script.is_file():
        printed = subprocess.run([str(script), "--print-image"], capture_output=True, text=True, check=False)
        if printed.returncode != 0:
            raise RuntimeError(f"scripts/ee.sh --print-image failed: {printed.stderr[-2000:]}")
        return printed.stdout.strip().splitlines()[-1]
    return f"{_image_prefix()}/ee:latest"


def _image_prefix() -> str:
    return os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet")


# --- AWX's own code, from its sources -------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialType:
    """A managed credential type of awx-plugins (awx_plugins/credentials/plugins.py): name, namespace, kind, input
    fields and (for some) template injectors."""

    namespace: str
    name: str
    kind: str
    inputs: dict[str, Any]
    injectors: dict[str, Any] | None = None
    managed: bool = False

    @property
    def fields(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.inputs.get("fields", [])
        return found

    @property
    def secret_fields(self) -> list[str]:
        return [f["id"] for f in self.fields if f.get("secret", False) is True]


@dataclass(frozen=True)
class AwxCode:
    """What this module uses of AWX's sources: the credential types, their injector functions, safe_dump."""

    types: dict[str, CredentialType]
    injectors: ModuleType
    safe_yaml: ModuleType


@cache
def awx_code() -> AwxCode:
    """Imports awx-plugins (+ awx_plugins.interfaces) and AWX's safe_yaml from the unpacked sources (sources()).

    The sources are on sys.path only while they are imported. plugins.py declares each type with
    `ManagedCredentialType(...)`, which without AWX is a stub that registers nothing: the file is executed here as a
    private module with a recorder in the stub's place."""
    root = sources()
    paths = [str(root / "awx-plugins" / "src"), str(root / "awx_plugins.interfaces" / "src")]
    saved = list(sys.path)
    sys.path[:0] = paths
    try:
        api = importlib.import_module("awx_plugins.interfaces._temporary_private_api")
        injectors = importlib.import_module("awx_plugins.credentials.injectors")
        recorded: list[CredentialType] = []
        stub = getattr(api, "ManagedCredentialType")  # noqa: B009 (replaced below: mypy does not know the module)

        def record(**definition: Any) -> None:
            recorded.append(CredentialType(**definition))

        setattr(api, "ManagedCredentialType", record)  # noqa: B010
        try:
            _exec_file("godot_fleet_awx_credential_types", root / "awx-plugins/src/awx_plugins/credentials/plugins.py")
        finally:
            setattr(api, "ManagedCredentialType", stub)  # noqa: B010
    finally:
        sys.path[:] = saved
    safe_yaml = _exec_file("godot_fleet_awx_safe_yaml", root / "awx" / "awx" / "main" / "utils" / "safe_yaml.py")
    return AwxCode({t.name: t for t in recorded}, injectors, safe_yaml)


def _exec_file(name: str, path: Path) -> ModuleType:
    """A source file executed as a module of its own (not registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- credentials ----------------------------------------------------------------------------------------------


@dataclass
class Credential:
    """A credential of an AWX credential type (by the name AWX shows, e.g. "Amazon Web Services"), with the
    get_input/has_input behaviour of awx.main.models.Credential that the injectors call."""

    type_name: str
    inputs: dict[str, Any]
    name: str = ""

    @property
    def credential_type(self) -> CredentialType:
        try:
            return awx_code().types[self.type_name]
        except KeyError:
            raise ValueError(f"no AWX credential type {self.type_name!r} in awx-plugins") from None

    def get_input(self, field_name: str, **kwargs: Any) -> Any:
        if field_name in self.inputs:
            return self.inputs[field_name]
        for spec in self.credential_type.fields:
            if spec["id"] == field_name and "default" in spec:
                return spec["default"]
        if "default" in kwargs:
            return kwargs["default"]
        raise AttributeError(field_name)

    def has_input(self, field_name: str) -> bool:
        return field_name in self.inputs and self.inputs[field_name] not in ("", None)

    def secrets(self) -> list[str]:
        """The values of the type's secret fields (what must never show in a job's output)."""
        return [str(self.inputs[f]) for f in self.credential_type.secret_fields if self.has_input(f)]

    def inject(self, env: dict[str, str], private_data_dir: Path) -> None:
        """CredentialType.inject_credential (awx/main/models/credential.py) for the job environment: the type's
        template injectors, else the managed type's injector function of awx-plugins."""
        ctype = self.credential_type
        unknown = set(self.inputs) - {f["id"] for f in ctype.fields}
        if unknown:
            raise ValueError(f"{self.type_name} has no input {', '.join(sorted(unknown))}")
        if not ctype.injectors:
            injectors = awx_code().injectors
            if ctype.namespace in dir(injectors):
                injected: dict[str, str] = {}
                getattr(injectors, ctype.namespace)(self, injected, str(private_data_dir))
                env.update(injected)
            return
        from jinja2 import sandbox

        namespace: dict[str, Any] = {f: v for f, v in self.inputs.items() if v not in ("", None)}
        for spec in ctype.fields:
            if spec["type"] == "boolean" and spec["id"] not in self.inputs:
                namespace[spec["id"]] = False
        renderer = sandbox.ImmutableSandboxedEnvironment()
        if ctype.injectors.get("file") or ctype.injectors.get("extra_vars"):
            raise NotImplementedError(f"{self.type_name}: file and extra_vars injectors are not used here")
        for var, template in ctype.injectors.get("env", {}).items():
            env[var] = renderer.from_string(template).render(**namespace)


def machine(username: str, ssh_key_data: str, **inputs: str) -> Credential:
    """A Machine credential: the user and private key a job logs in to the hosts with."""
    return Credential("Machine", {"username": username, "ssh_key_data": ssh_key_data, **inputs})


# --- inventory ------------------------------------------------------------------------------------------------


@dataclass
class Group:
    hosts: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass
class Inventory:
    """An AWX inventory: its variables, hosts (with their variables) and groups."""

    name: str
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    id: int = 1

    def script_data(self) -> dict[str, Any]:
        """Inventory.get_script_data(hostvars=True, towervars=True) (awx/main/models/inventory.py)."""
        names = sorted(self.hosts)
        data: dict[str, Any] = {}
        everything = data.setdefault("all", {})
        if self.variables:
            everything["vars"] = self.variables
        grouped = {h for g in self.groups.values() for h in g.hosts}
        everything["hosts"] = [h for h in names if h not in grouped]
        for name, group in self.groups.items():
            info: dict[str, Any] = {}
            if group.hosts:
                info["hosts"] = list(group.hosts)
            if group.children:
                info["children"] = list(group.children)
            if group.vars:
                info["vars"] = group.vars
            if info:
                data[name] = info
        if self.groups:
            everything["children"] = list(self.groups)
        hostvars = data.setdefault("_meta", {}).setdefault("hostvars", {})
        for number, name in enumerate(names, start=1):
            hostvars[name] = dict(self.hosts[name])
            for prefix in ("host", "tower"):
                hostvars[name].update({f"remote_{prefix}_enabled": "true", f"remote_{prefix}_id": number})
        return data

    def script(self) -> str:
        """BaseTask.write_inventory_file's script."""
        return f"#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint({json.dumps(self.script_data())!r})\n"


# --- the job --------------------------------------------------------------------------------------------------


@dataclass
class JobTemplate:
    """What of an AWX job template a job needs: name, playbook, its own extra vars, become, job type, verbosity."""

    name: str
    playbook: str
    extra_vars: dict[str, Any] = field(default_factory=dict)
    become_enabled: bool = False
    job_type: str = "run"
    diff_mode: bool = False
    verbosity: int = 0
    id: int = 1


@dataclass
class TaskEvent:
    """One task's result on one host, from the job events (runner_on_ok / _failed / _unreachable / _skipped)."""

    event: str
    play: str
    task: str
    host: str
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.event in ("runner_on_failed", "runner_on_unreachable") and not self.result.get("_ansible_ignore")


@dataclass(repr=False)
class JobResult:
    """A finished job: ansible-runner's status and rc, the job events, the private data dir."""

    status: str
    rc: int
    events: list[dict[str, Any]]
    private_data_dir: Path
    seconds: float
    command: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "successful"

    @property
    def stdout(self) -> str:
        """The job's stdout as AWX shows it: its events' stdout, in order (with the EE's colours)."""
        return "\n".join(e["stdout"] for e in self.events if e.get("stdout"))

    @property
    def text(self) -> str:
        return ANSI.sub("", self.stdout)

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Per host, the recap's counters (ok, changed, unreachable, failed, skipped, rescued, ignored)."""
        found = [e["event_data"] for e in self.events if e.get("event") == "playbook_on_stats"]
        if not found:
            return {}
        data = found[-1]
        names = {"ok": "ok", "changed": "changed", "dark": "unreachable", "failures": "failed",
                 "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}  # fmt: skip
        counts: dict[str, dict[str, int]] = {}
        for key, name in names.items():
            for host, value in (data.get(key) or {}).items():
                counts.setdefault(host, dict.fromkeys(names.values(), 0))[name] = int(value)
        for host in data.get("processed") or {}:
            counts.setdefault(host, dict.fromkeys(names.values(), 0))
        return counts

    @property
    def changed(self) -> int:
        return sum(c["changed"] for c in self.stats.values())

    @property
    def tasks(self) -> list[TaskEvent]:
        kinds = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")
        return [
            TaskEvent(e["event"], d.get("play", ""), d.get("task", ""), d.get("host", ""), d.get("res") or {})
            for e in self.events
            if e.get("event") in kinds
            for d in [e.get("event_data", {})]
        ]

    def task(self, name: str, host: str | None = None) -> TaskEvent:
        """The last result of the task `name` (on `host` when given)."""
        for found in reversed(self.tasks):
            if found.task == name and host in (None, found.host):
                return found
        raise KeyError(f"no task {name!r} ran{f' on {host}' if host else ''}:\n{self!r}")

    @property
    def failures(self) -> list[TaskEvent]:
        return [t for t in self.tasks if t.failed]

    def everything(self) -> str:
        """stdout and every event as JSON (for checks that a secret shows nowhere AWX keeps)."""
        return self.stdout + "\n" + json.dumps(self.events, default=str)

    def __repr__(self) -> str:
        said = [f"{t.host}: {t.task}: {t.result.get('msg') or json.dumps(t.result, default=str)[:1500]}"
                for t in self.failures]  # fmt: skip
        return (
            f"AWX job in {self.private_data_dir} -> status={self.status} rc={self.rc} stats={self.stats}\n"
            + "\n".join(said)
            + "\n--- stdout (end) ---\n"
            + self.text[-5000:]
        )


def project_files(checkout: Path = ROOT) -> list[str]:
    """The files of the checkout an AWX project sync would have: tracked and not yet committed, not ignored."""
    listed = subprocess.run(
        ["git", "-C", str(checkout), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    return sorted({name for name in listed if name and os.path.lexists(checkout / name)})


def copy_project(destination: Path, checkout: Path = ROOT) -> None:
    """RunProjectUpdate.make_local_copy: the project's files, symlinks as symlinks."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in project_files(checkout):
        source, target = checkout / name, destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)


def _project_revision(checkout: Path) -> str:
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip()


def _write(path: Path, content: str, mode: int = 0o600) -> Path:
    """BaseTask.write_private_data_file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=mode, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)
    return path


def _path_settings(project: Path, env: dict[str, str]) -> None:
    """RunJob.build_env's collections and roles paths (read_ansible_config of the project's ansible.cfg)."""
    path_vars = (
        ("ANSIBLE_COLLECTIONS_PATHS", "collections_paths", "requirements_collections",
         "~/.ansible/collections:/usr/share/ansible/collections"),
        ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles",
         "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"),
        ("ANSIBLE_COLLECTIONS_PATH", "collections_path", "requirements_collections",
         "~/.ansible/collections:/usr/share/ansible/collections"),
    )  # fmt: skip
    parser = ConfigParser()
    parser.read([project / "ansible.cfg"])
    config = dict(parser["defaults"]) if "defaults" in parser else {}
    for env_key, setting, folder, default in path_vars:
        paths = default.split(":")
        if env_key in env:
            for path in env[env_key].split(":"):
                if path not in paths:
                    paths = [env[env_key], *paths]
        elif setting in config:
            for path in config[setting].split(":"):
                if path not in paths:
                    paths = [config[setting], *paths]
        env[env_key] = os.pathsep.join([os.path.join(CONTAINER_ROOT, folder), *paths])


def unique_id() -> int:
    """A job id for parallel test runs (the container of a job is named after it: ansible_runner_<id>)."""
    return uuid.uuid4().int % 10**9


@dataclass
class Job:
    """One launch of a job template: builds AWX's private data dir and runs it with ansible-runner in the EE.

    `launch_vars` are what a launch adds (survey answers, prompted extra vars: `!unsafe` as in AWX);
    `extra_env` is what this machine's emulators need besides the credentials (AWX injects nothing of it);
    `show_paths` are host paths the job sees at the same path (AWX_ISOLATION_SHOW_PATHS, read-only here);
    `private_file()` writes a file into the private data dir's env/ and tells where the job reads it.
    `image=None` runs ansible-runner without process isolation, from the venv (development only: not AWX).
    The private data dir stays after the run (AWX removes it: AWX_CLEANUP_PATHS), for the caller to inspect.
    """

    template: JobTemplate
    inventory: Inventory
    credentials: Sequence[Credential] = ()
    launch_vars: Mapping[str, Any] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    show_paths: Sequence[Path] = ()
    image: str | None = field(default_factory=ee_image)
    pull: str = "never"
    checkout: Path = ROOT
    id: int = field(default_factory=unique_id)
    timeout: int = 0
    base_dir: Path | None = None
    private_data_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        base = self.base_dir or Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        # BaseTask.build_private_data_dir: awx_<id>_ prefix, mode 0700, inventory/ and env/
        self.private_data_dir = Path(tempfile.mkdtemp(prefix=f"awx_{self.id}_", dir=base))
        self.private_data_dir.chmod(stat.S_IRWXU)
        for sub in ("inventory", "env"):
            (self.private_data_dir / sub).mkdir(exist_ok=True)

    @property
    def isolated(self) -> bool:
        return self.image is not None

    def job_path(self, path: Path) -> str:
        """Where the job sees a path of the private data dir (get_incontainer_path in the EE)."""
        if not self.isolated:
            return str(path)
        return str(Path(CONTAINER_ROOT) / path.resolve().relative_to(self.private_data_dir.resolve()))

    def private_file(self, name: str, content: str) -> str:
        """A file in env/ (as credential file injectors write them); the path the job reads it at."""
        return self.job_path(_write(self.private_data_dir / "env" / name, content))

    def secrets(self) -> list[str]:
        return [s for c in self.credentials for s in c.secrets()]

    # --- the private data dir, step by step as RunJob does it
    def _machine(self) -> Credential | None:
        found = [c for c in self.credentials if c.credential_type.kind == "ssh"]
        if len(found) > 1:
            raise ValueError("a job has at most one Machine credential")
        return found[0] if found else None

    def _args(self, cred: Credential | None) -> list[str]:
        """RunJob.build_args (no passwords: see the module docstring)."""
        if cred is not None:
            asked = [f for f in ("password", "ssh_key_unlock", "become_password") if cred.has_input(f)]
            if asked:
                raise NotImplementedError(f"Machine credential inputs that AWX answers prompts with: {asked}")
        safe = awx_code().safe_yaml.sanitize_jinja
        username = (cred.get_input("username", default="") if cred else "") or "root"
        become_method = cred.get_input("become_method", default="") if cred else ""
        become_username = cred.get_input("become_username", default="") if cred else ""
        args: list[str] = []
        if self.template.job_type == "check":
            args.append("--check")
        args += ["-u", safe(username)]
        if self.template.become_enabled:
            args.append("--become")
        if self.template.diff_mode:
            args.append("--diff")
        if become_method:
            args += ["--become-method", safe(become_method)]
        if become_username:
            args += ["--become-user", safe(become_username)]
        if self.template.verbosity:
            args.append("-" + "v" * min(5, self.template.verbosity))
        return args

    def _meta_vars(self) -> dict[str, Any]:
        """Job.awx_meta_vars (the cheap ones: no user, workflow or schedule)."""
        found: dict[str, Any] = {}
        for name in JOB_VARIABLE_PREFIXES:
            found[f"{name}_job_id"] = self.id
            found[f"{name}_job_launch_type"] = "manual"
            found[f"{name}_project_revision"] = _project_revision(self.checkout)
            found[f"{name}_project_scm_branch"] = ""
            found[f"{name}_job_template_id"] = self.template.id
            found[f"{name}_job_template_name"] = self.template.name
        return found

    def _env(self) -> dict[str, str]:
        """BaseTask.build_env + RunJob.build_env."""
        env = {name: str(value) for name, value in ANSIBLE_SETTINGS.items()}
        env["AWX_PRIVATE_DATA_DIR"] = str(self.private_data_dir)
        env["JOB_ID"] = str(self.id)
        env["INVENTORY_ID"] = str(self.inventory.id)
        env["PROJECT_REVISION"] = _project_revision(self.checkout)
        env["ANSIBLE_RETRY_FILES_ENABLED"] = "False"
        env["MAX_EVENT_RES"] = str(MAX_EVENT_RES_DATA)
        env["AWX_HOST"] = TOWER_URL_BASE
        (self.private_data_dir / "cp").mkdir(mode=0o700, exist_ok=True)
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = self.job_path(self.private_data_dir / "cp")
        _path_settings(self.private_data_dir / "project", env)
        return env

    def prepare(self) -> dict[str, Any]:
        """Writes the private data dir; returns ansible-runner's parameters."""
        pdd = self.private_data_dir
        copy_project(pdd / "project", self.checkout)
        if not (pdd / "project" / self.template.playbook).is_file():
            raise FileNotFoundError(f"the project has no playbook {self.template.playbook}")
        _write(pdd / "inventory" / "hosts", self.inventory.script(), mode=0o700)
        cred = self._machine()
        if cred is not None and cred.has_input("ssh_key_data"):
            key = str(cred.get_input("ssh_key_data"))
            if "OPENSSH PRIVATE KEY" in key and not key.endswith("\n"):
                key += "\n"
            _write(pdd / "env" / "ssh_key", key)
        extra_vars = {**self.template.extra_vars, **self.launch_vars, **self._meta_vars()}
        _write(pdd / "env" / "extravars", awx_code().safe_yaml.safe_dump(extra_vars, self.template.extra_vars))
        from ansible_runner.utils import args2cmdline

        _write(pdd / "env" / "cmdline", args2cmdline(*self._args(cred)))
        env = self._env()
        for credential in self.credentials:
            credential.inject(env, pdd)
        env.update(self.extra_env)
        _write(pdd / "env" / "envvars", json.dumps(env, indent=1))
        settings = {"job_timeout": self.timeout, "suppress_ansible_output": True, "suppress_output_file": True}
        _write(pdd / "env" / "settings", json.dumps(settings))
        params: dict[str, Any] = {
            "private_data_dir": str(pdd),
            "playbook": self.template.playbook,
            "ident": str(self.id),
            "quiet": True,
            # no fact cache (a job template's use_fact_cache is off by default)
            "fact_cache_type": "",
        }
        if self.isolated:
            params.update(
                process_isolation=True,
                process_isolation_executable="podman",
                container_image=self.image,
                container_options=["--user=root", *DEFAULT_CONTAINER_RUN_OPTIONS, f"--pull={self.pull}"],
            )
            if self.show_paths:
                params["container_volume_mounts"] = [f"{p}:{p}:ro" for p in self.show_paths]
        return params

    def run(self) -> JobResult:
        import ansible_runner

        params = self.prepare()
        started = time.monotonic()
        runner = ansible_runner.run(**params)
        seconds = time.monotonic() - started
        events = sorted(runner.events, key=lambda e: int(e.get("counter", 0)))
        return JobResult(str(runner.status), int(runner.rc), events, self.private_data_dir, seconds,
                         list(runner.config.command or []))  # fmt: skip


# --- the hosts a job reaches over SSH -------------------------------------------------------------------------

SSHD_CONTAINERFILE = """\
ARG BASE
FROM $BASE
# openssh-server without starting it (policy-rc.d), without its host keys (made per container at start) and
# without starting at boot: the container shares this machine's network, so sshd may only listen where it is told
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null \\
 && rm -f /usr/sbin/policy-rc.d /etc/ssh/ssh_host_* \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \\
 && systemctl disable ssh.service ssh.socket \\
 && printf 'PermitRootLogin prohibit-password\\nPasswordAuthentication no\\nKbdInteractiveAuthentication no\\n' \\
    > /etc/ssh/sshd_config.d/50-godot-fleet-key-only.conf
"""


def sshd_image(base: str = hosts.IMAGE) -> str:
    """The host image with openssh-server (built FROM `base`), tagged by a hash of the recipe and the base's id."""
    base_id = hosts.podman("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    digest = hashlib.sha256(f"{SSHD_CONTAINERFILE}\n{base_id}".encode()).hexdigest()[:12]
    name, _, tag = base.rpartition(":")
    image = f"{name}-sshd:{tag}-{digest}"
    if hosts.podman("image", "exists", image, check=False).returncode == 0:
        return image
    with tempfile.TemporaryDirectory(prefix="gf-sshd-image.") as context:
        (Path(context) / "Containerfile").write_text(SSHD_CONTAINERFILE)
        proc = subprocess.run(
            ["podman", "build", "--quiet", "--network=host", "--build-arg", f"BASE={base}",
             "--label", f"org.godot-fleet.recipe={digest}", "-t", image, context],
            capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"building {image} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return image


def wait_for_sshd(port: int, timeout: float = 30.0) -> None:
    """Until an SSH server answers with its banner on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SSH server answers on 127.0.0.1:{port}")
        time.sleep(0.2)


@dataclass
class SshHost:
    """A host an AWX job reaches over SSH: 127.0.0.1:port, user root."""

    name: str
    port: int

    def hostvars(self) -> dict[str, Any]:
        return {"ansible_host": "127.0.0.1", "ansible_port": self.port, "ansible_user": "root"}


def ssh_host(name: str, port: int, authorized_key: str, image: str | None = None) -> SshHost:
    """A systemd container (testbed.hosts) with sshd on 127.0.0.1:`port`, root login with `authorized_key` only,
    host keys of its own. Reuses a running container of that name (see hosts.start)."""
    hosts.start(name, image or sshd_image())
    script = (
        "set -e; "
        f"printf 'Port {port}\\nListenAddress 127.0.0.1\\n' > /etc/ssh/sshd_config.d/00-godot-fleet-port.conf; "
        "ssh-keygen -A >/dev/null; "
        "install -d -m 0700 /root/.ssh; cat > /root/.ssh/authorized_keys; chmod 0600 /root/.ssh/authorized_keys; "
        "systemctl restart ssh"
    )
    hosts.run_in(name, script, authorized_key.strip() + "\n")
    wait_for_sshd(port)
    return SshHost(name, port)


@contextlib.contextmanager
def local_sshd(directory: Path, authorized_key: str, port: int) -> Iterator[SshHost]:
    """This machine as a host reached over SSH: `sshd -D -f` with its own config, host key and authorized_keys in
    `directory`, on 127.0.0.1:`port`, root login by key only; stopped afterwards.

    The session gets the project's podman settings (CONTAINERS_CONF, what this machine's podman needs: README
    "Machine notes") through SetEnv: the build host's own configuration."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = directory / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    _write(directory / "authorized_keys", authorized_key.strip() + "\n")
    config = _write(
        directory / "sshd_config",
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {directory / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        # the test's files are in a temporary directory below the world-writable /tmp
        "StrictModes no\nUsePAM no\n"
        f"SetEnv CONTAINERS_CONF={os.environ['CONTAINERS_CONF']}\n"
        "Subsystem sftp internal-sftp\n",
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    sshd = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
    if sshd is None:
        raise RuntimeError("sshd is not installed: openssh-server is in bindep.txt's test profile (make bootstrap)")
    subprocess.run([sshd, "-t", "-f", str(config)], check=True, capture_output=True, text=True)
    log = (directory / "sshd.log").open("w")
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_sshd(port)
        yield SshHost("localhost-sshd", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def key_pair(directory: Path, name: str = "awx-machine") -> tuple[str, str]:
    """An ed25519 key pair in `directory` (made once): (private key, public key)."""
    key = directory / name
    if not key.exists():
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key.read_text(), (directory / f"{name}.pub").read_text().strip()
