"""Local backend: rooms are podman containers on this host, the registry is a SQLite database.

- Registry: table `rooms` (WAL journal). A create is one `BEGIN IMMEDIATE` transaction that checks the name, the
  room limit and picks a free host port, so concurrent creates (threads or processes sharing the file) cannot
  overbook. Listing is a keyset scan of the unique `created_key` index (`<created_at with µs>#<name>`); the page
  token is that key, base64url encoded.
- Runtime: one `podman run -d --rm` per room, labelled with the API instance id (`godot-fleet.room-api`) and the
  room name (`godot-fleet.room`), publishing `<publish_ip>:<host port>:<container port>/udp`.
- Cleanup: a watcher thread follows `podman events` (container `died` events of this API instance) and removes
  the row of a room whose container exited (stopped, idle timeout, crash). `reconcile()` (at start-up, after a
  watcher restart and on demand) removes rows whose container is gone and removes labelled containers that have
  no row.

Several API instances may share one host: each has its own `api_id` and touches only containers with its label.
Instances must not share a database file with the same `api_id`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from room_api.model import (
    NAME_PATTERN,
    BadRequest,
    CapacityReached,
    NameTaken,
    NotFound,
    Page,
    Room,
    RoomStatus,
    StartFailed,
)

log = logging.getLogger("room_api.local")

LABEL_API = "godot-fleet.room-api"
LABEL_ROOM = "godot-fleet.room"
CONTAINER_PREFIX = "godot-fleet-room-"
#: API instance ids: no hyphen, so `<prefix><api_id>-<room>` container names cannot collide between instances.
API_ID_PATTERN = re.compile(r"^[a-z0-9]{1,16}$")
#: Podman container states of a container that no longer runs a room.
GONE_STATES = frozenset({"exited", "stopped", "dead", "removing"})
#: A registry row without a container id older than this is a create that died half-way (reconcile drops it).
STALE_START_SECONDS = 120.0
#: Host ports tried per create when podman reports the chosen one in use by something else.
PORT_ATTEMPTS = 3
PODMAN_TIMEOUT = 60.0

_KEY_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#(?P<name>[a-z0-9-]{3,32})$")


@dataclass(frozen=True)
class LocalConfig:
    db_path: str
    image: str
    ports: tuple[int, int] = (15100, 15199)  # inclusive host port range for rooms
    publish_ip: str = "127.0.0.1"  # host address the room ports are published on
    public_ip: str | None = None  # address reported to clients (default: publish_ip)
    max_rooms: int = 20
    room_args: tuple[str, ...] = ()  # replace the image's CMD (game arguments) when not empty
    container_port: int = 12077
    api_id: str = "local"
    build_version: str = ""  # default: the image tag
    read_only: bool = True  # --read-only root with a tmpfs at the image's HOME
    memory: str | None = "512m"
    pids_limit: int = 512
    init: bool = True  # --init: PID 1 forwards SIGTERM (Godot as PID 1 would ignore it)
    stop_timeout: int = 5
    stop_rooms_on_close: bool = True
    podman: str = "podman"

    def validate(self) -> None:
        """Raises ValueError naming the bad setting."""
        low, high = self.ports
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"bad port range {low}-{high}: need 1 <= first <= last <= 65535")
        if not 1 <= self.container_port <= 65535:
            raise ValueError(f"bad container port {self.container_port}")
        if self.max_rooms < 1:
            raise ValueError(f"max_rooms must be at least 1, not {self.max_rooms}")
        if not API_ID_PATTERN.fullmatch(self.api_id):
            raise ValueError(f"bad api id {self.api_id!r}: 1-16 characters a-z, 0-9 (no hyphen)")
        if not self.image or self.image.startswith("-"):
            raise ValueError(f"bad image name {self.image!r}")
        if self.stop_timeout < 0 or self.pids_limit < 1:
            raise ValueError("stop_timeout must be >= 0 and pids_limit >= 1")

    @property
    def default_build_version(self) -> str:
        last = self.image.rsplit("/", 1)[-1]
        return last.rsplit(":", 1)[1] if ":" in last else "latest"


# -- runtime ------------------------------------------------------------------------------------------------------


class RuntimeFailure(Exception):
    """The container runtime refused (message: the first line of its error output)."""


class PortInUse(RuntimeFailure):
    """The chosen host port is held by something outside the registry."""


@dataclass(frozen=True)
class Container:
    id: str
    room: str
    state: str


@dataclass(frozen=True)
class Died:
    room: str
    container_id: str
    exit_code: int | None


class EventStream(Protocol):
    def __iter__(self) -> Iterator[Died]: ...

    def close(self) -> None: ...


class Runtime(Protocol):
    def run(self, room: str, port: int) -> str:
        """Start the room's container publishing `port`; its id. Raises RuntimeFailure / PortInUse."""

    def state(self, container_id: str) -> str | None:
        """The container's state ("running", "exited", ...), None if it does not exist."""

    def stop(self, container_ids: Sequence[str]) -> None:
        """Stop running containers (blocking); missing ones are ignored."""

    def remove(self, container_ids: Sequence[str]) -> None:
        """Force-remove containers in any state (blocking); missing ones are ignored."""

    def containers(self) -> list[Container]:
        """All containers carrying this API instance's label, in any state."""

    def events(self, since: float) -> EventStream:
        """Container exits of this API instance from `since` (epoch seconds) on; ends if the source dies."""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "no error output"


class PodmanEvents:
    def __init__(self, argv: list[str]) -> None:
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

    def __iter__(self) -> Iterator[Died]:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                event = json.loads(line)
                room = event["Attributes"][LABEL_ROOM]
                container_id = event["ID"]
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring an unreadable podman event line: %.200s", line.strip())
                continue
            code = event.get("ContainerExitCode", 0)
            yield Died(str(room), str(container_id), code if isinstance(code, int) else None)
        self._proc.wait()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    @property
    def pid(self) -> int:
        return self._proc.pid


class PodmanRuntime:
    """Rooms as podman containers (rootful or rootless; nothing is ever pulled)."""

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self._home: str | None = None
        self._home_known = False

    def container_name(self, room: str) -> str:
        return f"{CONTAINER_PREFIX}{self.config.api_id}-{room}"

    def _podman(self, *args: str, timeout: float = PODMAN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.config.podman, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _image_home(self) -> str | None:
        """HOME from the image's environment (the room needs it writable); cached once known."""
        if not self._home_known:
            result = self._podman("image", "inspect", "--format", "{{json .Config.Env}}", self.config.image)
            if result.returncode != 0:
                return None  # missing image: `podman run` reports it
            env = json.loads(result.stdout or "[]") or []
            homes = [e.partition("=")[2] for e in env if isinstance(e, str) and e.startswith("HOME=")]
            self._home = homes[-1] if homes and homes[-1] not in ("", "/") else None
            self._home_known = True
        return self._home

    def run_argv(self, room: str, port: int) -> list[str]:
        c = self.config
        argv = [
            "run",
            "--detach",
            "--rm",
            "--replace",  # a leftover container of a name the registry says is free
            "--pull=never",
            "--name",
            self.container_name(room),
            "--label",
            f"{LABEL_API}={c.api_id}",
            "--label",
            f"{LABEL_ROOM}={room}",
            "--publish",
            f"{c.publish_ip}:{port}:{c.container_port}/udp",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            f"--pids-limit={c.pids_limit}",
        ]
        if c.memory:
            argv.append(f"--memory={c.memory}")
        if c.init:
            argv.append("--init")
        if c.read_only:
            argv.append("--read-only")  # podman keeps /tmp, /var/tmp and /run as tmpfs
            home = self._image_home()
            if home:
                # U: owned by the container's user (the image's HOME directory is usually root-owned)
                argv += ["--tmpfs", f"{home}:rw,nosuid,nodev,size=64m,U"]
            else:
                argv += ["--env", "HOME=/tmp"]
        argv.append(c.image)
        argv += c.room_args
        return argv

    def run(self, room: str, port: int) -> str:
        result = self._podman(*self.run_argv(room, port))
        if result.returncode != 0:
            message = _first_line(result.stderr)
            if "address already in use" in result.stderr:
                raise PortInUse(message)
            raise RuntimeFailure(message)
        container_id = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if not re.fullmatch(r"[0-9a-f]{12,64}", container_id):
            raise RuntimeFailure(f"podman run printed no container id: {result.stdout[:200]!r}")
        return container_id

    def state(self, container_id: str) -> str | None:
        result = self._podman("container", "inspect", "--format", "{{.State.Status}}", container_id)
        if result.returncode != 0:
            return None
        return result.stdout.strip() or None

    def stop(self, container_ids: Sequence[str]) -> None:
        if container_ids:
            result = self._podman("stop", "--ignore", "--time", str(self.config.stop_timeout), *container_ids)
            if result.returncode != 0:
                log.warning("podman stop: %s", _first_line(result.stderr))

    def remove(self, container_ids: Sequence[str]) -> None:
        if container_ids:
            result = self._podman("rm", "--force", "--ignore", "--time", str(self.config.stop_timeout), *container_ids)
            if result.returncode != 0:
                log.warning("podman rm: %s", _first_line(result.stderr))

    def containers(self) -> list[Container]:
        result = self._podman("ps", "--all", "--filter", f"label={LABEL_API}={self.config.api_id}", "--format", "json")
        if result.returncode != 0:
            raise RuntimeFailure(_first_line(result.stderr))
        found = []
        for item in json.loads(result.stdout or "[]") or []:
            labels = item.get("Labels") or {}
            if labels.get(LABEL_API) == self.config.api_id and LABEL_ROOM in labels:
                found.append(Container(str(item["Id"]), str(labels[LABEL_ROOM]), str(item.get("State", ""))))
        return found

    def events(self, since: float) -> PodmanEvents:
        return PodmanEvents(
            [
                self.config.podman,
                "events",
                "--format",
                "json",
                "--since",
                str(int(since)),
                "--filter",
                "type=container",
                "--filter",
                "event=died",
                "--filter",
                f"label={LABEL_API}={self.config.api_id}",
            ]
        )


# -- registry -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    port: int
    container_id: str  # "" while the container is being started
    status: RoomStatus
    ip: str | None
    build_version: str
    created_at: str
    created_key: str

    def room(self) -> Room:
        return Room(self.name, self.ip, self.port, self.status, self.build_version, self.created_at)


_COLUMNS = "name, port, container_id, status, ip, build_version, created_at, created_key"
SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    name          TEXT PRIMARY KEY,
    port          INTEGER NOT NULL UNIQUE,
    container_id  TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('starting', 'running', 'stopping')),
    ip            TEXT,
    build_version TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_key   TEXT NOT NULL UNIQUE
)
"""
META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
#: Keyset pagination over the unique index of created_key (never OFFSET).
PAGE_QUERY = f"SELECT {_COLUMNS} FROM rooms WHERE created_key > ? ORDER BY created_key LIMIT ?"


def encode_page_token(created_key: str) -> str:
    return base64.urlsafe_b64encode(created_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_page_token(token: str) -> str:
    bad = BadRequest("bad_page_token", "page_token is not a token from a previous page; omit it to start over")
    if len(token) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise bad
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise bad from None
    match = _KEY_PATTERN.fullmatch(key)
    if not match or not NAME_PATTERN.fullmatch(match["name"]):
        raise bad
    return key


class Registry:
    """The SQLite room registry. One connection guarded by a lock (SQLite serialises writers anyway);
    `BEGIN IMMEDIATE` also makes several processes sharing the file safe."""

    def __init__(self, path: str, owner: str = "local") -> None:
        """`owner`: the API instance id the file belongs to; a file of another instance is refused (ValueError),
        since reconcile would drop that instance's rows."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(SCHEMA)
            self._conn.execute(META_SCHEMA)
            self._conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('api_id', ?)", (owner,))
            (found,) = self._conn.execute("SELECT value FROM meta WHERE key = 'api_id'").fetchone()
            self._conn.execute("COMMIT")
        if found != owner:
            self._conn.close()
            raise ValueError(f"the registry {path} belongs to API instance {found!r}, not {owner!r}: use another --db")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            return [Row(*r) for r in self._conn.execute(sql, args).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _free_port(conn: sqlite3.Connection, ports: tuple[int, int], exclude: set[int]) -> int | None:
        used = {p for (p,) in conn.execute("SELECT port FROM rooms WHERE port BETWEEN ? AND ?", ports)}
        used |= exclude
        return next((p for p in range(ports[0], ports[1] + 1) if p not in used), None)

    def insert(self, name: str, ip: str | None, build_version: str, max_rooms: int, ports: tuple[int, int]) -> Row:
        """Atomically: the name is free, fewer than max_rooms rows exist, a free port -> a new "starting" row."""
        now = datetime.now(UTC)
        created_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        created_key = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "#" + name
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM rooms WHERE name = ?", (name,)).fetchone():
                raise NameTaken("name_taken", f"a room called {name!r} exists; pick another name or omit it")
            (count,) = conn.execute("SELECT COUNT(*) FROM rooms").fetchone()
            if count >= max_rooms:
                raise CapacityReached("capacity", f"all {max_rooms} rooms are in use; try again later")
            port = self._free_port(conn, ports, set())
            if port is None:
                raise CapacityReached("capacity", f"no free port in {ports[0]}-{ports[1]}; try again later")
            row = Row(name, port, "", "starting", ip, build_version, created_at, created_key)
            conn.execute(f"INSERT INTO rooms ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(vars(row).values()))
        return row

    def move_port(self, name: str, ports: tuple[int, int], exclude: set[int]) -> Row:
        """Give a starting row another free port (not in `exclude`); CapacityReached if there is none."""
        with self._tx() as conn:
            port = self._free_port(conn, ports, exclude)
            if port is None:
                raise CapacityReached("capacity", f"no usable free port in {ports[0]}-{ports[1]}; try again later")
            conn.execute("UPDATE rooms SET port = ? WHERE name = ? AND container_id = ''", (port, name))
            found = conn.execute(f"SELECT {_COLUMNS} FROM rooms WHERE name = ?", (name,)).fetchone()
        if found is None:
            raise StartFailed("start_failed", "the room was removed while it was starting")
        return Row(*found)

    def set_container(self, name: str, container_id: str) -> Row | None:
        """Record the container of a starting row; the row as it is now (None if it went away meanwhile)."""
        with self._tx() as conn:
            conn.execute("UPDATE rooms SET container_id = ? WHERE name = ? AND container_id = ''", (container_id, name))
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM rooms WHERE name = ? AND container_id = ?", (name, container_id)
            ).fetchone()
        return Row(*found) if found else None

    def set_running(self, name: str, container_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE rooms SET status = 'running' WHERE name = ? AND container_id = ? AND status = 'starting'",
                (name, container_id),
            )

    def mark_stopping(self, name: str) -> Row | None:
        with self._tx() as conn:
            conn.execute("UPDATE rooms SET status = 'stopping' WHERE name = ?", (name,))
            found = conn.execute(f"SELECT {_COLUMNS} FROM rooms WHERE name = ?", (name,)).fetchone()
        return Row(*found) if found else None

    def delete(self, name: str, container_id: str) -> bool:
        """Remove the row only if it still belongs to `container_id` ("" = a row whose start failed)."""
        with self._tx() as conn:
            cursor = conn.execute("DELETE FROM rooms WHERE name = ? AND container_id = ?", (name, container_id))
            return cursor.rowcount > 0

    def get(self, name: str) -> Row | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM rooms WHERE name = ?", (name,))
        return rows[0] if rows else None

    def page(self, limit: int, after_key: str) -> list[Row]:
        return self._read(PAGE_QUERY, (after_key, limit))

    def all(self) -> list[Row]:
        return self._read(f"SELECT {_COLUMNS} FROM rooms ORDER BY created_key")

    def explain_page_query(self) -> str:
        with self._lock:
            plan = self._conn.execute("EXPLAIN QUERY PLAN " + PAGE_QUERY, ("", 1)).fetchall()
        return " | ".join(str(step[-1]) for step in plan)


# -- backend ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciled:
    removed_rows: list[str]
    removed_containers: list[str]


class LocalBackend:
    """room_api.backend.Backend over podman + SQLite. Call start() (watcher + reconcile) and close()."""

    kind = "local"

    def __init__(self, config: LocalConfig, runtime: Runtime | None = None) -> None:
        config.validate()
        self.config = config
        self.build_version = config.build_version or config.default_build_version
        self.runtime: Runtime = runtime if runtime is not None else PodmanRuntime(config)
        self.registry = Registry(config.db_path, config.api_id)
        self._ip = config.public_ip or config.publish_ip
        self._closing = threading.Event()
        self._closed = False
        self._watcher: threading.Thread | None = None
        self._stream: EventStream | None = None
        self._stream_lock = threading.Lock()
        self._stoppers: list[threading.Thread] = []
        self._stoppers_lock = threading.Lock()
        #: Bumped each time the watcher (re)starts following events (tests use it to see a restart).
        self.watch_generation = 0

    def __enter__(self) -> LocalBackend:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the runtime's exit events, then reconcile (events from before the watcher are then covered)."""
        ready = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(ready,), name="room-events", daemon=True)
        self._watcher.start()
        ready.wait(timeout=10)
        self.reconcile(startup=True)

    def close(self) -> None:
        """Stop the watcher; with stop_rooms_on_close, remove all rooms of this API instance first."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.config.stop_rooms_on_close:
                self.stop_all()
        finally:
            self._closing.set()
            with self._stream_lock:
                if self._stream is not None:
                    self._stream.close()
            if self._watcher is not None:
                self._watcher.join(timeout=10)
            with self._stoppers_lock:
                stoppers = list(self._stoppers)
            for thread in stoppers:
                thread.join(timeout=self.config.stop_timeout + 30)
            self.registry.close()

    def stop_all(self) -> None:
        """Remove every container of this API instance and every registry row."""
        containers = self.runtime.containers()
        ids = sorted({c.id for c in containers} | {r.container_id for r in self.registry.all() if r.container_id})
        if ids:
            log.info("stopping %d room(s)", len(ids))
            self.runtime.remove(ids)
        for row in self.registry.all():
            self.registry.delete(row.name, row.container_id)

    def _watch(self, ready: threading.Event) -> None:
        backoff = 0.5
        while not self._closing.is_set():
            since = time.time() - 2.0  # overlap: reaping is idempotent
            try:
                stream = self.runtime.events(since)
            except OSError:
                log.exception("cannot follow runtime events")
                ready.set()
                self._closing.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            with self._stream_lock:
                if self._closing.is_set():
                    stream.close()
                    return
                self._stream = stream
            self.watch_generation += 1
            if self.watch_generation > 1:
                # Exits while no watcher ran were missed (their containers are gone by now): catch up.
                self._safe_reconcile()
            ready.set()
            started = time.monotonic()
            try:
                for died in stream:
                    self._on_died(died)
            except Exception:
                log.exception("runtime event watcher failed")
            finally:
                stream.close()
            if self._closing.is_set():
                return
            if time.monotonic() - started > 30:
                backoff = 0.5
            log.warning("runtime event watcher ended; restarting it in %.1f s", backoff)
            self._closing.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _on_died(self, died: Died) -> None:
        try:
            if self.reap(died.room, died.container_id):
                log.info(
                    "room %s exited (container %.12s, exit code %s): removed",
                    died.room,
                    died.container_id,
                    died.exit_code,
                )
        except Exception:
            log.exception("cleanup of room %s failed", died.room)

    def _safe_reconcile(self) -> None:
        try:
            self.reconcile()
        except Exception:
            log.exception("reconcile failed")

    def _stop_in_background(self, container_ids: list[str]) -> None:
        thread = threading.Thread(target=self._stop_now, args=(container_ids,), name="room-stop", daemon=True)
        with self._stoppers_lock:
            self._stoppers = [t for t in self._stoppers if t.is_alive()]
            self._stoppers.append(thread)
        thread.start()

    def _stop_now(self, container_ids: list[str]) -> None:
        try:
            self.runtime.stop(container_ids)
        except Exception:
            log.exception("stopping container(s) failed")

    # -- Backend ----------------------------------------------------------------------------------------------

    def create(self, name: str) -> Room:
        c = self.config
        row = self.registry.insert(name, self._ip, self.build_version, c.max_rooms, c.ports)
        tried: set[int] = set()
        try:
            while True:
                try:
                    container_id = self.runtime.run(name, row.port)
                    break
                except PortInUse:
                    tried.add(row.port)
                    log.warning("host port %d is in use outside the registry; trying another", row.port)
                    if len(tried) >= PORT_ATTEMPTS:
                        raise
                    row = self.registry.move_port(name, c.ports, tried)
        except RuntimeFailure as exc:
            self.registry.delete(name, "")
            raise StartFailed("start_failed", f"the room could not be started: {exc}") from None
        except BaseException:
            self.registry.delete(name, "")
            raise
        current = self.registry.set_container(name, container_id)
        if current is None:  # removed meanwhile (another instance's start-up reconcile): do not leak it
            self._stop_in_background([container_id])
            raise StartFailed("start_failed", "the room was removed while it was starting")
        if current.status == "stopping":  # a stop arrived while the container was starting
            self._stop_in_background([container_id])
            return current.room()
        state = self.runtime.state(container_id)
        if state is None or state in GONE_STATES:
            # It died before its id was recorded, so the watcher could not match it.
            self.registry.delete(name, container_id)
            raise StartFailed("start_failed", f"the room exited right after starting (state {state or 'gone'})")
        if state == "running":
            self.registry.set_running(name, container_id)
            current = self.registry.get(name) or current
        return current.room()

    def get(self, name: str) -> Room | None:
        row = self.registry.get(name)
        if row is None:
            return None
        if row.status == "starting" and row.container_id:
            state = self.runtime.state(row.container_id)
            if state == "running":
                self.registry.set_running(name, row.container_id)
                row = self.registry.get(name)
            elif state is None or state in GONE_STATES:
                self.reap(name, row.container_id)
                return None
        return row.room() if row else None

    def list(self, limit: int, page_token: str | None) -> Page:
        after = decode_page_token(page_token) if page_token else ""
        rows = self.registry.page(limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([r.room() for r in rows], encode_page_token(rows[-1].created_key) if more else None)

    def stop(self, name: str) -> Room:
        row = self.registry.mark_stopping(name)
        if row is None:
            raise NotFound("not_found", f"no room called {name!r}")
        if row.container_id:  # otherwise create() stops it once the container id is known
            self._stop_in_background([row.container_id])
        return row.room()

    def reap(self, name: str, runtime_id: str) -> bool:
        return bool(runtime_id) and self.registry.delete(name, runtime_id)

    # -- reconcile ----------------------------------------------------------------------------------------------

    def reconcile(self, startup: bool = False) -> Reconciled:
        """Make the registry and the runtime agree: drop rows whose container is gone (and rows of creates that
        died half-way), remove labelled containers without a row, re-send stops of rooms still stopping.

        `startup=True` assumes no create of this instance is in flight."""
        rows_before = self.registry.all()  # rows read before the listing: a missing container is really gone
        containers = self.runtime.containers()
        rows_after = self.registry.all()  # rows read after: a container started before the listing has its row
        alive = {c.id: c for c in containers if c.state not in GONE_STATES}
        removed_rows: list[str] = []
        restop: list[str] = []
        now = datetime.now(UTC)
        for row in rows_before:
            if not row.container_id:
                age = (
                    now - datetime.strptime(row.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                ).total_seconds()
                if (startup or age > STALE_START_SECONDS) and self.registry.delete(row.name, ""):
                    removed_rows.append(row.name)
                continue
            container = alive.get(row.container_id)
            if container is None:
                if self.registry.delete(row.name, row.container_id):
                    removed_rows.append(row.name)
            elif row.status == "starting" and container.state == "running":
                self.registry.set_running(row.name, row.container_id)
            elif row.status == "stopping":
                restop.append(container.id)
        owned = {(r.name, r.container_id) for r in rows_after}
        pending = set() if startup else {r.name for r in rows_after if not r.container_id}
        strays = [c.id for c in containers if (c.room, c.id) not in owned and c.room not in pending]
        if strays:
            log.warning("removing %d container(s) of this API instance that have no registry row", len(strays))
            self.runtime.remove(strays)
        if restop:
            self.runtime.stop(restop)
        if removed_rows:
            log.info("reconcile removed the rows of gone rooms: %s", ", ".join(removed_rows))
        return Reconciled(removed_rows, strays)
