"""A real AWX on loopback, for the tests of the collection's AWX configuration (configure-awx.yml) and by hand.

It is AWX itself (API, task manager, dispatcher, callback receiver) from the public sources of
`testbed.awx_sources` (GF_AWX_SOURCES), unmodified, with its own services started here:

- a private PostgreSQL 15 cluster (Debian's postgresql-15: `postgres` on a unix socket in the run directory,
  run as the `postgres` user when this runs as root, since PostgreSQL refuses root);
- redis-server on a unix socket in the run directory (no TCP port, no persistence);
- uwsgi serving the API on 127.0.0.1 and a free port, `awx-manage run_dispatcher` and `awx-manage
  run_callback_receiver`;
- `testbed.receptor_standin` in place of receptor (which cannot be built here). IT IS NOT RECEPTOR: it serves the
  few control-socket commands AWX uses on a single hybrid node and runs `ansible-runner worker` for the `local`
  work type; no mesh, TLS or work signing (see that module).

    python -m testbed.awx up      start one in the background; prints CONTROLLER_HOST/USERNAME/PASSWORD
    python -m testbed.awx down    stop it
    python -m testbed.awx build   build the caches only (the AWX venv and the migrated database)

From Python: `with local_awx() as awx:` gives `awx.url`, `awx.username`, `awx.password`, `awx.projects_root`,
`awx.environment()` (CONTROLLER_* for the awx.awx modules), `awx.api(path)`, the memory of all its processes
(`awx.rss_bytes()`, `awx.pss_bytes()`, `awx.rss_by_service()`) and the timings (`awx.start_seconds`, `awx.cold`,
`awx.cold_start_seconds` / `awx.warm_start_seconds`, `awx.phases`, `awx.stop_seconds`). Measured here (2 cores):
a cold start (no cache, no pip cache) 332 s: venv 157 s, database 170 s, then 5 s; a warm start 6-8 s (12-13 s
with two starting side by side), a stop 2-4 s; 31 processes, summed RSS about 2.3 GB (the dispatcher with its 4
workers 1.3 GB), summed PSS about 0.75 GB (forked workers share most of their pages).

What is cached under .cache/awx/, keyed by a hash of the sources tarball and of the recipe below (RECIPE):
- `venv-<key>/`: AWX's own Python venv (not the project venv): AWX's requirements.txt without its git lines, the
  git-only packages from the tarball (django-ansible-base with its extras, awx_plugins.interfaces, awx-plugins),
  ansible-runner, certifi, drf-yasg, then AWX itself, editable, after writing its VERSION file.
- `db-<key>/`: a PostgreSQL data directory after `awx-manage migrate` (241 migrations, 2-3 min) and the
  provisioning (admin user, this node as a hybrid instance in the `controlplane` and `default` instance groups,
  the default execution environments), cleanly shut down, plus `secrets.json` (the SECRET_KEY that encrypts the
  database's secrets and the generated admin password, both made when the database is made). Each run copies the
  data directory (75 MB: 0.2-0.7 s; initdb + start + pg_restore of a dump of it took 1.1 s, so the copy it is).

Per run everything lives in a private directory /tmp/gf-awx-XXXX (sockets, the copied database, AWX's
PROJECTS_ROOT, JOBOUTPUT_ROOT, LOG_ROOT, STATIC_ROOT, AWX_ISOLATION_BASE_PATH, the logs), the API on a free
loopback port: runs side by side do not meet. The logs are kept in .cache/awx/logs/<run> after the run.

Settings this needs beyond the obvious (written to the settings file named by AWX_SETTINGS_FILE):
- AWX_DISABLE_TASK_MANAGERS = False: the source tree has awx/devonly.py, so AWX believes it runs in development and
  production settings then lack the task managers' switch.
- DEFAULT_CONTAINER_RUN_OPTIONS = ['--network=host']: jobs run in the execution environment with `podman run`, and
  the tests' jobs must reach services on this machine's loopback (AWX's default is a slirp4netns network).
- AWX_ISOLATION_SHOW_PATHS = []: the production default mounts /etc/pki/ca-trust and /usr/share/pki, which Debian
  lacks, and podman refuses a missing source.
- The execution environments (GLOBAL_JOB_EXECUTION_ENVIRONMENTS, CONTROL_PLANE_EXECUTION_ENVIRONMENT and the
  database's rows) name the local image `ee_image` with pull "never": no registry is reachable.
- JOB_EVENT_WORKERS = 2 (4 by default): two callback receiver workers (about 160 MB each) are plenty here.
- METRICS_SUBSYSTEM_CONFIG: the Prometheus endpoints of the dispatcher and the callback receiver on free ports
  (fixed 8014-8016 by default: a second AWX's dispatcher died on "address already in use").
- Not a setting: each run's job ids start at port x 10000 (ansible-runner names a job's container after its id, so
  two AWX running side by side collided on `ansible_runner_1`).

Receptor's configuration path is a constant of AWX (`/etc/receptor/receptor.conf` in awx/main/tasks/receptor.py,
read by every AWX process that talks to receptor; no setting overrides it). So that runs side by side each have
their own, the AWX processes run in a private mount namespace (`unshare --mount`, root only) where the run's
directory is bind-mounted on /etc/receptor. This needs the directory /etc/receptor to exist as a mount point: it is
created empty on this machine if missing, and nothing is ever written into it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import ROOT, free_port_block
from testbed.awx_sources import sources

CACHE = ROOT / ".cache" / "awx"
#: the node name of this AWX: its CLUSTER_HOST_ID, its instance and the stand-in receptor's node ID
NODE = "awx-local"
USERNAME = "admin"
#: the execution environment image jobs run in (`make ee`); GF_AWX_EE overrides it
DEFAULT_EE_IMAGE = "localhost/godot-fleet/ee:latest"
RECEPTOR_CONF_DIR = Path("/etc/receptor")
#: how long a start may take once the caches exist (services up, API answering, the node with capacity)
READY_TIMEOUT = 180.0

#: Everything that decides what the caches hold: change it (or bump "revision") and they are rebuilt.
RECIPE: dict[str, Any] = {
    "revision": 2,
    "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    # the Python the venv is made from (a machine may have several 3.11s; uWSGI links one of them)
    "interpreter": sys.base_prefix,
    # what the sources report (README of the tarball); setuptools-scm cannot tell without git metadata
    "awx_version": "24.6.2.dev0",
    # requirements.txt lines left out: the git ones (replaced by the tarball's packages) and the pin of pip itself
    "skip_requirements": ["git+", "pip=="],
    "extra_requirements": ["ansible-runner==2.4.3", "certifi==2026.10.19.post1", "drf-yasg==1.21.18"],
    # the tarball's packages: directory -> (pip requirement, version setuptools-scm is told to use)
    "local_packages": {
        "django-ansible-base": ["[rest_filters,jwt_consumer,resource_registry,rbac]", "2024.10.17"],
        "awx_plugins.interfaces": ["", "0.0.1"],
        "awx-plugins": ["", "0.0.1"],
    },
    "provision": [
        ["migrate", "--noinput"],
        ["createsuperuser", "--noinput", f"--username={USERNAME}", "--email=admin@localhost"],
        ["register_default_execution_environments"],
        ["provision_instance", f"--hostname={NODE}", "--node_type=hybrid"],
        ["register_queue", "--queuename=controlplane", f"--hostnames={NODE}"],
        ["register_queue", "--queuename=default", f"--hostnames={NODE}"],
    ],
}


class AwxError(RuntimeError):
    """AWX or one of its services did not come up; the message names the log to read."""


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def _log(message: str) -> None:
    print(f"==> testbed.awx: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (a cache being built by one process at a time, others wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: Sequence[str | Path], log: Path, **kwargs: Any) -> None:
    """Runs a set-up command with its output appended to `log`; AwxError with the log's tail when it fails."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(map(str, command))}\n")
        out.flush()
        proc = subprocess.run([str(c) for c in command], stdout=out, stderr=subprocess.STDOUT, check=False, **kwargs)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise AwxError(f"{' '.join(map(str, command))} failed (rc={proc.returncode}), see {log}:\n{tail}")


# --- the AWX venv -------------------------------------------------------------------------------------------------


def venv_key(src: Path) -> str:
    """The cache key of the AWX venv: the sources tarball (src's name is its hash) and the recipe."""
    return _digest("venv", src.name, {k: v for k, v in RECIPE.items() if k != "provision"})


def build_venv(src: Path) -> tuple[Path, float | None]:
    """AWX's venv (built once per key): its path, and the seconds building it took (None when cached)."""
    venv = CACHE / f"venv-{venv_key(src)}"
    with _locked(venv.with_name(venv.name + ".lock")):
        if (venv / ".complete").exists():
            return venv, None
        started = time.monotonic()
        _log(f"building AWX's venv {venv} (about 2-3 min, once)")
        shutil.rmtree(venv, ignore_errors=True)
        log = venv.with_name(venv.name + ".log")
        log.unlink(missing_ok=True)
        python = Path(sys.base_prefix) / "bin" / f"python{RECIPE['python']}"
        _run([python, "-m", "venv", venv], log)
        skipped = tuple(RECIPE["skip_requirements"])
        kept = [
            line
            for line in (src / "awx" / "requirements" / "requirements.txt").read_text().splitlines()
            if not any(s in line for s in skipped)
        ]
        requirements = venv / "awx-requirements.txt"
        requirements.write_text("\n".join(kept) + "\n")
        env = dict(os.environ)
        local = []
        for directory, (extras, version) in RECIPE["local_packages"].items():
            name = re.sub(r"[^A-Z0-9]", "_", _project_name(src / directory).upper())
            env[f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{name}"] = version
            local.append(f"{src / directory}{extras}")
        # --no-cache-dir: pip's wheel cache may hold a uWSGI built against another Python 3.11 of this machine (its
        # libpython then loads that Python's standard library); built here, it links the venv's own
        pip: list[str | Path] = [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--no-cache-dir",
        ]
        _run([*pip, "-r", requirements, *RECIPE["extra_requirements"], *local], log, env=env)
        (src / "awx" / "VERSION").write_text(RECIPE["awx_version"] + "\n")
        _run([*pip, "--no-deps", "--no-build-isolation", "-e", src / "awx"], log, env=env)
        (venv / ".complete").write_text(f"{time.monotonic() - started:.1f}\n")
        return venv, time.monotonic() - started


def _project_name(directory: Path) -> str:
    match = re.search(r'^name\s*=\s*"([^"]+)"', (directory / "pyproject.toml").read_text(), re.MULTILINE)
    if not match:
        raise AwxError(f"no project name in {directory / 'pyproject.toml'}")
    return match.group(1)


# --- the services ---------------------------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The directory of PostgreSQL's server programs (Debian: /usr/lib/postgresql/15/bin; GF_PG_BIN overrides)."""
    if os.environ.get("GF_PG_BIN"):
        return Path(os.environ["GF_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise AwxError("PostgreSQL's server is not installed (postgresql-15: make bootstrap)")
    return found[-1].parent


def _postgres_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as: `postgres` when this runs as root (it refuses root), else None (this user)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as error:
        raise AwxError("running as root needs the 'postgres' user (the postgresql package creates it)") from error


def _chown_tree(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    os.chown(path, user.pw_uid, user.pw_gid)


def _as_postgres() -> dict[str, Any]:
    user = _postgres_user()
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _stop_process(proc: subprocess.Popen[Any], sig: int, timeout: float = 30.0, signalled: bool = False) -> None:
    """Signals one of our children (unless `signalled` already), waits, then kills its process group (its own
    session) if anything of it is still there."""
    if proc.poll() is None:
        if not signalled:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # whatever it left in its session (workers whose master died first)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _proc_bytes(pid: int, file: str, key: str) -> int:
    """A memory figure of /proc/PID/FILE (kB) in bytes, 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss(pid: int) -> int:
    return _proc_bytes(pid, "status", "VmRSS:")


def _pss(pid: int) -> int:
    return _proc_bytes(pid, "smaps_rollup", "Pss:")


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[Any]
    stop_signal: int
    log: Path


@dataclass
class LocalAwx:
    """One AWX on loopback: start() it, use url/username/password, stop() it (local_awx() does both)."""

    ee_image: str = field(default_factory=lambda: os.environ.get("GF_AWX_EE", DEFAULT_EE_IMAGE))
    username: str = USERNAME
    password: str = field(default="", repr=False)
    port: int = 0
    run_dir: Path = Path()
    venv: Path = Path()
    #: True when this start built a cache (the venv or the database): a cold start
    cold: bool = False
    #: seconds from start() to an API answering with a node that has capacity
    start_seconds: float = 0.0
    #: seconds per phase: venv, database (cache builds, absent when cached), copy_database, services, ready
    phases: dict[str, float] = field(default_factory=dict)
    #: seconds the last stop() took
    stop_seconds: float = 0.0
    services: list[Service] = field(default_factory=list, repr=False)
    _secret_key: str = field(default="", repr=False)

    # --- what a test uses

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def projects_root(self) -> Path:
        """AWX's PROJECTS_ROOT: a manual project is a directory here (its local_path is the directory's name)."""
        return self.run_dir / "projects"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def cold_start_seconds(self) -> float | None:
        return self.start_seconds if self.cold else None

    @property
    def warm_start_seconds(self) -> float | None:
        return None if self.cold else self.start_seconds

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with the awx.awx modules' connection settings."""
        env = dict(os.environ if base is None else base)
        env.update(
            CONTROLLER_HOST=self.url,
            CONTROLLER_USERNAME=self.username,
            CONTROLLER_PASSWORD=self.password,
            CONTROLLER_VERIFY_SSL="false",
        )
        return env

    def api(
        self, path: str, body: Any = None, method: str | None = None, timeout: float = 30.0, raw: bool = False
    ) -> Any:
        """A call of AWX's REST API as the admin (path relative to /api/v2/ or absolute); the decoded JSON (the
        text with `raw`)."""
        url = self.url + (path if path.startswith("/") else f"/api/v2/{path}")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        if raw:
            return text
        return json.loads(text) if text else None

    def find(self, kind: str, name: str) -> dict[str, Any]:
        """The one object of `kind` (an API collection: job_templates, inventories, ...) named `name`."""
        found = self.api(f"{kind}/?{urllib.parse.urlencode({'name': name})}")["results"]
        if len(found) != 1:
            raise AwxError(f"{len(found)} {kind} named {name!r}")
        item: dict[str, Any] = found[0]
        return item

    def launch(self, kind: str, name: str, extra_vars: Mapping[str, Any], timeout: float = 900.0) -> dict[str, Any]:
        """Launches the job template or workflow (`kind`: job_templates or workflow_job_templates) `name` with
        `extra_vars` (survey answers among them), waits until it has finished (or `timeout`); the job."""
        template = self.find(kind, name)
        started = self.api(f"{kind}/{template['id']}/launch/", {"extra_vars": dict(extra_vars)})
        jobs = "workflow_jobs" if kind == "workflow_job_templates" else "jobs"
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.api(f"{jobs}/{started['id']}/")
            # a job's events are saved by the callback receiver, possibly after the job has finished
            done = job["finished"] and job.get("event_processing_finished", True)
            if done or time.monotonic() > deadline:
                return job
            time.sleep(1)

    def ok_events(self, job: Mapping[str, Any], task: str) -> list[dict[str, Any]]:
        """The job's events of `task` succeeding on a host, as AWX recorded them (once the callback receiver has saved
        them all: a workflow's jobs may finish before their events are in)."""
        deadline = time.monotonic() + 60
        while not self.api(f"jobs/{job['id']}/").get("event_processing_finished", True):
            if time.monotonic() > deadline:
                raise AwxError(f"the events of job {job['id']} were not all saved within 60 s")
            time.sleep(1)
        query = urllib.parse.urlencode({"event": "runner_on_ok", "task": task, "page_size": 200})
        found: list[dict[str, Any]] = self.api(f"jobs/{job['id']}/job_events/?{query}")["results"]
        return found

    def stdout(self, job: Mapping[str, Any]) -> str:
        """The job's output as AWX keeps it."""
        text: str = self.api(f"jobs/{job['id']}/stdout/?format=txt_download", raw=True)
        return text

    def pids(self) -> list[int]:
        """Every process of this AWX: the services and all their descendants (workers, postgres backends, jobs)."""
        tree = _children()
        found: list[int] = []
        todo = [s.proc.pid for s in self.services if s.proc.poll() is None]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(tree.get(pid, []))
        return found

    def rss_bytes(self) -> int:
        """The summed resident memory of every process of this AWX (shared pages count once per process)."""
        return sum(_rss(pid) for pid in self.pids())

    def exited(self) -> dict[str, int]:
        """The services that have exited (name: exit code): none should while it runs."""
        return {s.name: s.proc.returncode for s in self.services if s.proc.poll() is not None}

    def pss_bytes(self) -> int:
        """The summed proportional set size of the same processes (shared pages divided among their sharers): what
        this AWX really takes from the machine's memory."""
        return sum(_pss(pid) for pid in self.pids())

    def rss_by_service(self) -> dict[str, int]:
        tree = _children()
        result = {}
        for service in self.services:
            todo, total = [service.proc.pid], 0
            while todo:
                pid = todo.pop()
                total += _rss(pid)
                todo.extend(tree.get(pid, []))
            result[service.name] = total
        return result

    # --- start and stop

    def start(self) -> LocalAwx:
        started = time.monotonic()
        try:
            self._start(started)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _start(self, started: float) -> None:
        if os.geteuid() != 0:
            raise AwxError("testbed.awx runs as root (podman for the jobs, a mount namespace for receptor's config)")
        src = sources()
        self.venv, built = build_venv(src)
        if built is not None:
            self.phases["venv"] = built
        template, built = build_database(src, self.venv)
        if built is not None:
            self.phases["database"] = built
        self.cold = "venv" in self.phases or "database" in self.phases
        stored = json.loads((template / "secrets.json").read_text())
        self._secret_key, self.password = stored["secret_key"], stored["admin_password"]
        _reap_stale_runs()

        mark = time.monotonic()
        self.run_dir = Path(tempfile.mkdtemp(prefix="gf-awx-", dir="/tmp"))
        self.run_dir.chmod(0o755)  # postgres (another user) reaches its data directory and socket below it
        (self.run_dir / "owner").write_text(f"{os.getpid()}\n")
        for name in ("projects", "job_output", "logs", "static", "isolation", "receptor", "conf.d", "pg"):
            (self.run_dir / name).mkdir()
        _chown_tree(self.run_dir / "pg", _postgres_user())
        subprocess.run(["cp", "-a", str(template / "pgdata"), str(self.run_dir / "pgdata")], check=True)
        self.phases["copy_database"] = time.monotonic() - mark

        mark = time.monotonic()
        self._start_postgres()
        self._start_redis()
        self._wait_postgres()
        self.port = free_port_block(4)  # the API, then the three metrics endpoints
        self._prepare_database()
        self._write_settings()
        self._write_receptor_conf()
        self._start_receptor_standin()
        self._start_awx_processes()
        self.phases["services"] = time.monotonic() - mark
        mark = time.monotonic()
        self._wait_ready(started)
        self.phases["ready"] = time.monotonic() - mark

    def stop(self) -> None:
        """Stops every service (uwsgi with SIGINT, as its master may take SIGTERM for a reload), keeps the logs in
        .cache/awx/logs/<run>, removes the run directory. Safe to call twice and after a failed start."""
        started = time.monotonic()
        # AWX's processes together (they stop in parallel), then what they use
        for group in (("uwsgi", "dispatcher", "callback_receiver"), ("receptor_standin",), ("redis",), ("postgres",)):
            members = [s for s in self.services if s.name in group]
            for service in members:
                with contextlib.suppress(ProcessLookupError):
                    service.proc.send_signal(service.stop_signal)
            for service in members:
                # the dispatcher may wait long for a worker whose job it has just cancelled: 15 s, then SIGKILL
                _stop_process(service.proc, service.stop_signal, timeout=15, signalled=True)
        self.services.clear()
        if self.run_dir != Path() and self.run_dir.exists():
            kept = CACHE / "logs" / self.run_dir.name
            with contextlib.suppress(OSError):
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(self.logs, kept)
                _prune(CACHE / "logs", keep=10)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.stop_seconds = time.monotonic() - started

    def __enter__(self) -> LocalAwx:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- the parts

    def _spawn(self, name: str, command: Sequence[str | Path], stop_signal: int, **kwargs: Any) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(c) for c in command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        self.services.append(Service(name, proc, stop_signal, log))
        with (self.run_dir / "pids").open("a") as pids:
            pids.write(f"{proc.pid} {name}\n")

    def _start_postgres(self) -> None:
        pgdata = self.run_dir / "pgdata"
        self._spawn(
            "postgres",
            [postgres_bin() / "postgres", "-D", pgdata, *_postgres_options(self.run_dir / "pg")],
            signal.SIGINT,  # fast shutdown
            **_as_postgres(),
        )

    def _wait_postgres(self) -> None:
        _wait_postgres(self.run_dir / "pg", self.services[0])

    def _start_redis(self) -> None:
        conf = self.run_dir / "redis.conf"
        conf.write_text(_redis_conf(self.run_dir))
        self._spawn("redis", [_redis_server(), conf], signal.SIGTERM)

    def _prepare_database(self) -> None:
        """The copied database's execution environments name this run's image, never pulled; and its job ids
        start at API port x 10000: ansible-runner names a job's container `ansible_runner_<job id>`, and two AWX
        running side by side would otherwise both run job 1 in containers of the same name."""
        sql = (
            "UPDATE main_executionenvironment SET image = :'image', pull = 'never' "
            "WHERE organization_id IS NULL AND (managed OR name = 'godot-fleet EE');\n"
            "SELECT setval(pg_get_serial_sequence('main_unifiedjob', 'id'), :first_job, false);\n"
        )
        proc = subprocess.run(
            [postgres_bin() / "psql", "-h", str(self.run_dir / "pg"), "-U", "awx", "-d", "awx", "-X", "-q",
             "-v", f"image={self.ee_image}", "-v", f"first_job={self.port * 10000}", "-v", "ON_ERROR_STOP=1"],
            input=sql, check=False, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise AwxError(f"could not prepare the database: {proc.stderr}")

    def _write_settings(self) -> None:
        (self.run_dir / "settings.py").write_text(
            settings_file(self.run_dir, self._secret_key, self.ee_image, metrics_port=self.port + 1)
        )

    def _write_receptor_conf(self) -> None:
        (self.run_dir / "receptor" / "receptor.conf").write_text(receptor_conf(self.run_dir))

    def _env(self) -> dict[str, str]:
        return awx_environment(self.run_dir, self.venv)

    def _start_receptor_standin(self) -> None:
        sock = self.run_dir / "receptor" / "receptor.sock"
        self._spawn(
            "receptor_standin",
            [sys.executable, "-m", "testbed.receptor_standin", "--config", self.run_dir / "receptor" / "receptor.conf",
             "--data-dir", self.run_dir / "receptor" / "data"],
            signal.SIGTERM,
            env=self._env(),
        )  # fmt: skip
        _wait_for(lambda: sock.exists(), 30, "the receptor stand-in's socket", self.services[-1])

    def _start_awx_processes(self) -> None:
        env = self._env()
        ns = _namespaced(self.run_dir / "receptor")
        uwsgi: list[str | Path] = [
            self.venv / "bin" / "uwsgi", "--http", f"127.0.0.1:{self.port}", "--module", "awx.wsgi:application",
            "--master", "--processes", "2", "--lazy-apps", "--vacuum", "--no-orphans", "--buffer-size", "32768",
            "--py-call-osafterfork", "--die-on-term", "--enable-threads", "--need-app",
        ]  # fmt: skip
        self._spawn("uwsgi", [*ns, *uwsgi], signal.SIGINT, env=env, cwd=self.run_dir)
        self._spawn("dispatcher", [*ns, self.venv / "bin" / "awx-manage", "run_dispatcher"], signal.SIGTERM, env=env)
        self._spawn(
            "callback_receiver", [*ns, self.venv / "bin" / "awx-manage", "run_callback_receiver"], signal.SIGTERM,
            env=env,
        )  # fmt: skip

    def _wait_ready(self, started: float) -> None:
        deadline = started + READY_TIMEOUT + sum(self.phases.get(k, 0) for k in ("venv", "database"))
        last = "no answer"
        while time.monotonic() < deadline:
            for service in self.services:
                if service.proc.poll() is not None:
                    raise AwxError(f"{service.name} exited with {service.proc.returncode}: see {service.log}\n"
                                   + _tail(service.log))  # fmt: skip
            try:
                ping = self.api("ping/", timeout=5)
                nodes = {i["node"]: i for i in ping.get("instances", [])}
                if nodes.get(NODE, {}).get("capacity", 0) > 0:
                    return
                last = f"ping: {ping}"
            except (OSError, ValueError) as error:
                last = str(error)
            time.sleep(0.5)
        raise AwxError(f"AWX at {self.url} not ready after {READY_TIMEOUT:.0f} s ({last}); logs in {self.logs}")


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _wait_for(condition: Any, timeout: float, what: str, service: Service | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if service is not None and service.proc.poll() is not None:
            raise AwxError(f"{service.name} exited with {service.proc.returncode}:\n{_tail(service.log)}")
        time.sleep(0.1)
    raise AwxError(f"timed out waiting for {what}")


def _prune(directory: Path, keep: int) -> None:
    entries = sorted(directory.iterdir(), key=lambda p: p.stat().st_mtime)
    for old in entries[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _postgres_options(socket_dir: Path) -> list[str]:
    return [
        "-c", "listen_addresses=", "-c", f"unix_socket_directories={socket_dir}", "-c", "unix_socket_permissions=0700",
        "-c", "port=5432", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "shared_buffers=64MB", "-c", "max_connections=200", "-c", "logging_collector=off",
    ]  # fmt: skip


def _wait_postgres(socket_dir: Path, service: Service) -> None:
    def ready() -> bool:
        proc = subprocess.run([postgres_bin() / "pg_isready", "-q", "-h", str(socket_dir), "-p", "5432"], check=False)
        return proc.returncode == 0

    _wait_for(ready, 60, f"PostgreSQL on {socket_dir}", service)


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise AwxError("redis-server is not installed (make bootstrap installs bindep.txt's redis-server)")
    return found


def _redis_conf(run_dir: Path) -> str:
    return (
        "port 0\n"
        f"unixsocket {run_dir / 'redis.sock'}\n"
        "unixsocketperm 700\n"
        "daemonize no\n"
        'save ""\n'
        "appendonly no\n"
        f"dir {run_dir}\n"
        "databases 16\n"
        "loglevel warning\n"
    )


def settings_file(run_dir: Path, secret_key: str, ee_image: str, metrics_port: int = 0) -> str:
    """The settings file of one run (AWX_SETTINGS_FILE), run by the production settings after their defaults.
    `metrics_port`: the first of three free loopback ports for the Prometheus endpoints of the callback receiver,
    the dispatcher and the websocket relay (fixed ports 8014-8016 by default: two AWX would collide)."""
    redis = run_dir / "redis.sock"
    values = {
        "SECRET_KEY": secret_key,
        "CLUSTER_HOST_ID": NODE,
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "DATABASES": {
            "default": {
                "ATOMIC_REQUESTS": True,
                "ENGINE": "awx.main.db.profiled_pg",
                "NAME": "awx",
                "USER": "awx",
                "PASSWORD": "",
                "HOST": str(run_dir / "pg"),
                "PORT": "5432",
            }
        },
        "BROKER_URL": f"unix://{redis}",
        "CACHES": {"default": {"BACKEND": "awx.main.cache.AWXRedisCache", "LOCATION": f"unix://{redis}?db=1"}},
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [f"unix://{redis}"], "capacity": 10000, "group_expiry": 157784760},
            }
        },
        "PROJECTS_ROOT": str(run_dir / "projects"),
        "JOBOUTPUT_ROOT": str(run_dir / "job_output"),
        "LOG_ROOT": str(run_dir / "logs"),
        "STATIC_ROOT": str(run_dir / "static"),
        "AWX_ISOLATION_BASE_PATH": str(run_dir / "isolation"),
        "AWX_ISOLATION_SHOW_PATHS": [],
        "AWX_DISABLE_TASK_MANAGERS": False,
        "DEFAULT_CONTAINER_RUN_OPTIONS": ["--network=host"],
        "GLOBAL_JOB_EXECUTION_ENVIRONMENTS": [{"name": "godot-fleet EE", "image": ee_image}],
        "CONTROL_PLANE_EXECUTION_ENVIRONMENT": ee_image,
        "JOB_EVENT_WORKERS": 2,
    }
    if metrics_port:
        services = ("callback_receiver", "dispatcher", "websockets")
        values["METRICS_SUBSYSTEM_CONFIG"] = {
            "server": {name: {"port": metrics_port + i} for i, name in enumerate(services)}
        }
    lines = [
        "# Written by testbed.awx for one run of a local AWX (see testbed/awx.py); run by awx.settings.production.",
        "import os",
        *(f"{name} = {value!r}" for name, value in values.items()),
        "# the log files of the file logging mode, computed from the default LOG_ROOT before this file ran",
        "for _handler in LOGGING['handlers'].values():",
        "    if 'filename' in _handler:",
        "        _handler['filename'] = os.path.join(LOG_ROOT, os.path.basename(_handler['filename']))",
    ]
    return "\n".join(lines) + "\n"


def receptor_conf(run_dir: Path) -> str:
    """The receptor configuration AWX reads (as /etc/receptor/receptor.conf) and the stand-in serves."""
    sock = run_dir / "receptor" / "receptor.sock"
    return (
        "# Read by AWX as /etc/receptor/receptor.conf and by testbed.receptor_standin (not receptor: no mesh, TLS\n"
        "# or work signing).\n"
        f"- node:\n    id: {NODE}\n"
        "- local-only: null\n"
        f"- control-service:\n    service: control\n    filename: {sock}\n    permissions: '0660'\n"
        "- work-command:\n    worktype: local\n    command: ansible-runner\n    params: worker\n"
        "    allowruntimeparams: true\n"
    )


def awx_environment(run_dir: Path, venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONTROLLER_", "DJANGO_", "AWX_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="awx.settings.production",
        AWX_SETTINGS_FILE=str(run_dir / "settings.py"),
        AWX_SETTINGS_DIR=str(run_dir / "conf.d"),
        AWX_LOGGING_MODE="file",
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        CONTAINERS_CONF=str(ROOT / "scripts" / "containers.conf"),
        HOME=str(run_dir),
        TMPDIR=str(run_dir / "isolation"),
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def _namespaced(receptor_dir: Path) -> list[str]:
    """The command prefix that runs an AWX process in a private mount namespace where `receptor_dir` is
    /etc/receptor (AWX reads receptor's configuration from that fixed path)."""
    if not RECEPTOR_CONF_DIR.is_dir():
        RECEPTOR_CONF_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)  # an empty mount point, nothing else
    script = f'mount --bind "$0" {RECEPTOR_CONF_DIR} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(receptor_dir)]


def _reap_stale_runs() -> None:
    """Stops what a run ended without its stop() (SIGKILL, a crash) left behind: the services recorded in its pids
    file, once its owner is gone, and only those whose command line or environment still names its directory."""
    for run_dir in Path("/tmp").glob("gf-awx-*"):
        try:
            owner = int((run_dir / "owner").read_text())
            recorded = [int(line.split()[0]) for line in (run_dir / "pids").read_text().splitlines()]
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{owner}").exists():
            continue
        for pid in recorded:
            with contextlib.suppress(OSError):
                seen = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
                if str(run_dir).encode() in seen:
                    os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(run_dir, ignore_errors=True)


# --- the migrated, provisioned database -----------------------------------------------------------------------------


def database_key(src: Path) -> str:
    return _digest("database", venv_key(src), RECIPE["provision"], postgres_bin().parent.name)


def build_database(src: Path, venv: Path) -> tuple[Path, float | None]:
    """The template of AWX's database (built once per key): a directory with pgdata/ (a shut-down PostgreSQL data
    directory, migrated and provisioned) and secrets.json; and the seconds building it took (None when cached)."""
    template = CACHE / f"db-{database_key(src)}"
    with _locked(template.with_name(template.name + ".lock")):
        if (template / ".complete").exists():
            return template, None
        started = time.monotonic()
        _log(f"building AWX's database {template} (migrations: about 2-3 min, once)")
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir(parents=True)
        template.chmod(0o755)
        stored = {"secret_key": secrets.token_urlsafe(50), "admin_password": secrets.token_urlsafe(18)}
        secrets_file = template / "secrets.json"
        secrets_file.touch(mode=0o600)
        secrets_file.write_text(json.dumps(stored))
        log = template / "build.log"
        pguser = _postgres_user()
        pgdata = template / "pgdata"
        pgdata.mkdir(mode=0o700)
        _chown_tree(pgdata, pguser)
        _run([postgres_bin() / "initdb", "-D", pgdata, "-U", "awx", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
             log, **_as_postgres())  # fmt: skip
        run_dir = Path(tempfile.mkdtemp(prefix="gf-awx-build-", dir="/tmp"))
        run_dir.chmod(0o755)
        services: list[Service] = []
        try:
            for name in ("projects", "job_output", "logs", "static", "isolation", "receptor", "conf.d", "pg"):
                (run_dir / name).mkdir()
            _chown_tree(run_dir / "pg", pguser)
            with log.open("ab") as out:
                options: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": out, "stderr": subprocess.STDOUT,
                           "start_new_session": True}  # fmt: skip
                postgres = subprocess.Popen(
                    [str(postgres_bin() / "postgres"), "-D", str(pgdata), *_postgres_options(run_dir / "pg")],
                    **options, **_as_postgres(),
                )  # fmt: skip
                services.append(Service("postgres", postgres, signal.SIGINT, log))
                (run_dir / "redis.conf").write_text(_redis_conf(run_dir))
                redis = subprocess.Popen([_redis_server(), str(run_dir / "redis.conf")], **options)
                services.append(Service("redis", redis, signal.SIGTERM, log))
            _wait_postgres(run_dir / "pg", services[0])
            _run([postgres_bin() / "createdb", "-h", run_dir / "pg", "-U", "awx", "awx"], log)
            (run_dir / "settings.py").write_text(settings_file(run_dir, stored["secret_key"], DEFAULT_EE_IMAGE))
            env = awx_environment(run_dir, venv)
            env["DJANGO_SUPERUSER_PASSWORD"] = stored["admin_password"]
            for command in RECIPE["provision"]:
                _run([venv / "bin" / "awx-manage", *command], log, env=env)
            for service in reversed(services):
                _stop_process(service.proc, service.stop_signal)
            services.clear()
        finally:
            for service in reversed(services):
                _stop_process(service.proc, service.stop_signal)
            shutil.rmtree(run_dir, ignore_errors=True)
        (template / ".complete").write_text(f"{time.monotonic() - started:.1f}\n")
        return template, time.monotonic() - started


# --- entry points ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_awx(ee_image: str | None = None) -> Iterator[LocalAwx]:
    """A started AWX for the duration of the block; everything it started is stopped afterwards, also on errors."""
    awx = LocalAwx(ee_image=ee_image or os.environ.get("GF_AWX_EE", DEFAULT_EE_IMAGE))
    with awx:
        yield awx


STATE = CACHE / "up.json"


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    """Writes JSON readable by this user only, atomically (`up` polls for the file)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        json.dump(data, out)
    partial.replace(path)


def _serve(state: Path) -> int:
    """`up`'s background process: starts AWX, writes `state`, runs until SIGTERM/SIGINT, stops AWX."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    awx = LocalAwx()
    try:
        awx.start()
    except Exception as error:  # the `up` waiting for us shows it
        _write_private(state, {"pid": os.getpid(), "error": str(error)})
        return 1
    _write_private(
        state,
        {
            "pid": os.getpid(),
            "url": awx.url,
            "username": awx.username,
            "password": awx.password,
            "projects_root": str(awx.projects_root),
            "logs": str(awx.logs),
            "start_seconds": round(awx.start_seconds, 1),
            "rss_mb": awx.rss_bytes() // 2**20,
        },
    )
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        awx.stop()
        state.unlink(missing_ok=True)
    return 0


def up() -> int:
    if STATE.exists():
        current = json.loads(STATE.read_text())
        if Path(f"/proc/{current.get('pid')}").exists() and "url" in current:
            _print_up(current)
            return 0
        STATE.unlink()
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.awx", "serve", str(STATE)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _log(f"starting (the first time builds the caches: about 5 min; {log})")
    while not STATE.exists():
        if proc.poll() is not None:
            print(_tail(log), file=sys.stderr)
            return 1
        time.sleep(0.5)
    current = json.loads(STATE.read_text())
    if "error" in current:
        print(current["error"], file=sys.stderr)
        STATE.unlink()
        return 1
    _print_up(current)
    return 0


def _print_up(state: Mapping[str, Any]) -> None:
    image = os.environ.get("GF_AWX_EE", DEFAULT_EE_IMAGE)
    if subprocess.run(["podman", "image", "exists", image], check=False).returncode != 0:
        _log(f"warning: the execution environment image {image} is missing (`make ee`): jobs will fail")
    print(f"CONTROLLER_HOST={state['url']}")
    print(f"CONTROLLER_USERNAME={state['username']}")
    print(f"CONTROLLER_PASSWORD={state['password']}")
    print("CONTROLLER_VERIFY_SSL=false")
    _log(
        f"AWX is up (pid {state['pid']}, {state.get('start_seconds')} s, {state.get('rss_mb')} MB RSS); manual "
        f"projects go in {state['projects_root']}; logs in {state['logs']}; `python -m testbed.awx down` stops it"
    )


def down() -> int:
    if not STATE.exists():
        _log("no AWX is up")
        return 0
    pid = int(json.loads(STATE.read_text())["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    STATE.unlink(missing_ok=True)
    _log("AWX stopped")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.awx", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start AWX in the background; prints CONTROLLER_HOST/USERNAME/PASSWORD")
    sub.add_parser("down", help="stop the AWX `up` started")
    sub.add_parser("build", help="build the caches (the AWX venv and the migrated database) only")
    serve = sub.add_parser("serve", help=argparse.SUPPRESS)
    serve.add_argument("state", type=Path)
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    if args.command == "serve":
        return _serve(args.state)
    src = sources()
    venv, seconds = build_venv(src)
    _log(f"venv {venv} ({f'built in {seconds:.0f} s' if seconds else 'cached'})")
    template, seconds = build_database(src, venv)
    _log(f"database {template} ({f'built in {seconds:.0f} s' if seconds else 'cached'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
