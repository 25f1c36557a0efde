"""The local backend's SQLite registry and its cleanup logic.

The first part drives LocalBackend with FakeRuntime, an in-memory stand-in for podman (no sockets, no
processes; its "ports" are only numbers), to run many creates at once, 1 000 rows and precise races. The second
part runs the same backend on real podman with the room image: security flags, port conflicts, reconcile, a
watcher restart. The full contract on real podman is in test_contract.py.
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from room_api.local import (
    GONE_STATES,
    LABEL_API,
    Container,
    Died,
    LocalBackend,
    LocalConfig,
    PodmanRuntime,
    PortInUse,
    Registry,
    RuntimeFailure,
    decode_page_token,
    encode_page_token,
)
from room_api.model import BadRequest, CapacityReached, NameTaken, NotFound, RoomApiError, StartFailed
from testbed.enet_probe import probe
from tests.room_api.roomtest import ROOM_ARGS, new_api_id

#: FakeRuntime ports are never bound (nothing listens): plain numbers for the registry.
FAKE_PORTS = (40000, 41999)


class FakeEvents:
    def __init__(self) -> None:
        self.queue: queue.Queue[Died | None] = queue.Queue()

    def __iter__(self) -> Iterator[Died]:
        while (item := self.queue.get()) is not None:
            yield item

    def close(self) -> None:
        self.queue.put(None)


class FakeRuntime:
    """Podman as the backend sees it, in memory. Stopped containers vanish and report a `died` event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, Container] = {}
        self.fail: str | None = None
        self.busy_ports: set[int] = set()
        self.run_gate: threading.Event | None = None  # run() waits for it (races with stop)
        self.run_started = threading.Event()
        self.streams: list[FakeEvents] = []
        self.runs = 0

    def run(self, room: str, port: int) -> str:
        self.run_started.set()
        if self.run_gate is not None:
            assert self.run_gate.wait(10)
        with self.lock:
            self.runs += 1
            if self.fail:
                raise RuntimeFailure(self.fail)
            if port in self.busy_ports:
                raise PortInUse(f"cannot listen on the UDP port: listen udp4 127.0.0.1:{port}: address already in use")
            container_id = secrets.token_hex(32)
            self.items[container_id] = Container(container_id, room, "running")
            return container_id

    def state(self, container_id: str) -> str | None:
        with self.lock:
            item = self.items.get(container_id)
            return item.state if item else None

    def exit(self, container_id: str, code: int = 0) -> None:
        """The room's process ended: the container goes away and a `died` event is sent."""
        with self.lock:
            item = self.items.pop(container_id, None)
            streams = list(self.streams)
        if item is not None:
            for stream in streams:
                stream.queue.put(Died(item.room, container_id, code))

    def stop(self, container_ids: Sequence[str]) -> None:
        for container_id in container_ids:
            self.exit(container_id, 137)

    def remove(self, container_ids: Sequence[str]) -> None:
        self.stop(container_ids)

    def containers(self) -> list[Container]:
        with self.lock:
            return list(self.items.values())

    def events(self, since: float) -> FakeEvents:
        stream = FakeEvents()
        with self.lock:
            self.streams.append(stream)
        return stream

    def by_room(self, room: str) -> list[str]:
        with self.lock:
            return [c.id for c in self.items.values() if c.room == room]


def make_backend(
    path: Path, runtime: FakeRuntime, max_rooms: int = 20, ports: tuple[int, int] = FAKE_PORTS
) -> LocalBackend:
    config = LocalConfig(db_path=str(path), image="localhost/fake:1.2.3", ports=ports, max_rooms=max_rooms)
    return LocalBackend(config, runtime)


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def backend(tmp_path: Path, runtime: FakeRuntime) -> Iterator[LocalBackend]:
    b = make_backend(tmp_path / "rooms.db", runtime)
    try:
        yield b
    finally:
        b.close()


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def run_threads(count: int, work: object) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)  # type: ignore[operator]
        except RoomApiError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# -- atomic create --------------------------------------------------------------------------------------------------


def test_fifty_creates_of_one_name_make_one_room(backend: LocalBackend, runtime: FakeRuntime) -> None:
    results = run_threads(50, lambda i: backend.create("same-name"))
    rooms = [r for r in results if not isinstance(r, Exception)]
    assert len(rooms) == 1
    assert all(isinstance(r, NameTaken) for r in results if isinstance(r, Exception))
    assert [r.name for r in backend.registry.all()] == ["same-name"]
    assert runtime.runs == 1


def test_fifty_names_with_room_for_twenty(tmp_path: Path, runtime: FakeRuntime) -> None:
    # two backends (two connections: like two processes) share the file: BEGIN IMMEDIATE keeps the count exact
    first = make_backend(tmp_path / "rooms.db", runtime, max_rooms=20)
    second = make_backend(tmp_path / "rooms.db", runtime, max_rooms=20)
    try:
        results = run_threads(50, lambda i: (first if i % 2 else second).create(f"room-{i:03d}"))
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 30
        assert all(isinstance(e, CapacityReached) and e.code == "capacity" for e in errors)
        rows = first.registry.all()
        assert len(rows) == 20
        assert len({r.port for r in rows}) == 20
        assert len(runtime.containers()) == 20
    finally:
        first.close()
        second.close()


def test_no_free_port_is_capacity(tmp_path: Path, runtime: FakeRuntime) -> None:
    with make_backend(tmp_path / "rooms.db", runtime, max_rooms=10, ports=(40000, 40001)) as b:
        b.create("one")
        b.create("two")
        with pytest.raises(CapacityReached, match="no free port"):
            b.create("three")


def test_failed_start_leaves_no_row(backend: LocalBackend, runtime: FakeRuntime) -> None:
    runtime.fail = "Error: localhost/nope: image not known"
    with pytest.raises(StartFailed, match="image not known") as caught:
        backend.create("broken")
    assert caught.value.code == "start_failed"
    assert backend.registry.all() == []
    runtime.fail = None
    room = backend.create("broken")  # the name and the port are free again
    assert room.port == FAKE_PORTS[0]


def test_port_in_use_outside_the_registry_is_skipped(backend: LocalBackend, runtime: FakeRuntime) -> None:
    runtime.busy_ports = {FAKE_PORTS[0], FAKE_PORTS[0] + 1}
    room = backend.create("abc")
    assert room.port == FAKE_PORTS[0] + 2
    runtime.busy_ports = set(range(FAKE_PORTS[0], FAKE_PORTS[0] + 10))
    with pytest.raises(StartFailed, match="address already in use"):
        backend.create("xyz")
    assert [r.name for r in backend.registry.all()] == ["abc"]


def test_create_reports_running_and_get_refreshes(backend: LocalBackend, runtime: FakeRuntime) -> None:
    room = backend.create("abc")
    assert (room.status, room.ip, room.build_version) == ("running", "127.0.0.1", "1.2.3")
    got = backend.get("abc")
    assert got == room
    runtime.items.clear()  # the container vanished without an event
    assert backend.get("abc") == room  # running rows are not re-inspected by get ...
    assert backend.reconcile().removed_rows == ["abc"]  # ... reconcile removes them
    assert backend.get("abc") is None


def test_stop_during_start_stops_the_new_container(backend: LocalBackend, runtime: FakeRuntime) -> None:
    runtime.run_gate = threading.Event()
    result: list[object] = []
    creator = threading.Thread(target=lambda: result.append(backend.create("early")))
    creator.start()
    assert runtime.run_started.wait(10)
    stopping = backend.stop("early")  # no container id yet
    assert stopping.status == "stopping"
    runtime.run_gate.set()
    creator.join(10)
    assert result[0].status == "stopping"  # type: ignore[attr-defined]
    assert wait_for(lambda: runtime.by_room("early") == [])


def test_stop_unknown_is_not_found(backend: LocalBackend) -> None:
    with pytest.raises(NotFound):
        backend.stop("nothing")


def test_reap_needs_the_matching_container(backend: LocalBackend, runtime: FakeRuntime) -> None:
    backend.create("abc")
    (container_id,) = runtime.by_room("abc")
    assert not backend.reap("abc", "0" * 64)
    assert not backend.reap("abc", "")
    assert backend.reap("abc", container_id)
    assert not backend.reap("abc", container_id)


# -- keyset pagination --------------------------------------------------------------------------------------------


def test_keyset_pagination_over_a_thousand_rooms(backend: LocalBackend) -> None:
    names = [f"r{i:04d}" for i in range(1000)]
    for name in names:
        backend.registry.insert(name, "127.0.0.1", "1.0.0", 2000, FAKE_PORTS)
    for limit in (100, 37, 1):
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            page = backend.list(limit, token)
            pages += 1
            seen += [r.name for r in page.rooms]
            token = page.next_page_token
            if token is None:
                break
            assert len(page.rooms) == limit
        assert seen == names  # oldest first, each exactly once
        assert pages == -(-1000 // limit)


def test_pages_survive_deletions_between_requests(backend: LocalBackend) -> None:
    for i in range(30):
        backend.registry.insert(f"r{i:02d}", "127.0.0.1", "1.0.0", 100, FAKE_PORTS)
    first = backend.list(10, None)
    assert [r.name for r in first.rooms] == [f"r{i:02d}" for i in range(10)]
    for i in (5, 9, 10, 11):  # rows on the page just read and on the next one go away
        assert backend.registry.delete(f"r{i:02d}", "")
    second = backend.list(10, first.next_page_token)
    assert [r.name for r in second.rooms] == [f"r{i:02d}" for i in range(12, 22)]


def test_page_query_uses_the_index(backend: LocalBackend) -> None:
    plan = backend.registry.explain_page_query()
    assert "SEARCH rooms USING INDEX" in plan and "created_key>?" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "not a token",
        "%%%",
        encode_page_token("2026-11-21T10:00:00Z#abc"),  # no microseconds
        encode_page_token("2026-11-21T10:00:00.000000Z#AB"),
        encode_page_token("2026-11-21T10:00:00.000000Z#a--b") + "A" * 300,
        "A" * 201,
        "_-_-",
    ],
)
def test_bad_page_tokens(token: str, backend: LocalBackend) -> None:
    with pytest.raises(BadRequest) as caught:
        backend.list(10, token)
    assert caught.value.code == "bad_page_token"


def test_page_token_round_trip() -> None:
    key = "2026-11-21T10:00:00.123456Z#room-abc"
    token = encode_page_token(key)
    assert "=" not in token
    assert decode_page_token(token) == key


def test_registry_schema_constraints(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path / "r.db"))
    registry.insert("abc", None, "1", 10, (40000, 40000))
    conn = sqlite3.connect(tmp_path / "r.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(sqlite3.IntegrityError):  # port UNIQUE
            conn.execute("INSERT INTO rooms VALUES ('xyz', 40000, '', 'starting', NULL, '1', 't', 'k')")
        with pytest.raises(sqlite3.IntegrityError):  # status CHECK
            conn.execute("INSERT INTO rooms VALUES ('xyz', 40001, '', 'odd', NULL, '1', 't', 'k')")
    finally:
        conn.close()
        registry.close()


# -- cleanup: events, reconcile -------------------------------------------------------------------------------------


def test_exit_events_remove_rows(backend: LocalBackend, runtime: FakeRuntime) -> None:
    backend.start()
    backend.create("aaa")
    backend.create("bbb")
    (container_id,) = runtime.by_room("aaa")
    runtime.exit(container_id)  # e.g. the idle timeout
    assert wait_for(lambda: [r.name for r in backend.registry.all()] == ["bbb"])
    stopped = backend.stop("bbb")
    assert stopped.status == "stopping"
    assert wait_for(lambda: backend.registry.all() == [])


def test_watcher_restarts_and_catches_up(backend: LocalBackend, runtime: FakeRuntime) -> None:
    backend.start()
    backend.create("aaa")
    backend.create("bbb")
    assert backend.watch_generation == 1
    runtime.streams[-1].close()  # the event source died ...
    (container_id,) = runtime.by_room("aaa")
    with runtime.lock:
        runtime.items.pop(container_id)  # ... and a room exited meanwhile (no event reaches anyone)
    assert wait_for(lambda: backend.watch_generation == 2)
    assert wait_for(lambda: [r.name for r in backend.registry.all()] == ["bbb"])  # reconcile after the restart
    (other,) = runtime.by_room("bbb")
    runtime.exit(other)  # the new stream works
    assert wait_for(lambda: backend.registry.all() == [])


def test_reconcile(tmp_path: Path, runtime: FakeRuntime) -> None:
    b = make_backend(tmp_path / "rooms.db", runtime)
    b.create("kept")
    b.create("lost")
    with runtime.lock:
        (lost,) = [c for c in runtime.items if runtime.items[c].room == "lost"]
        runtime.items.pop(lost)
        runtime.items["f" * 64] = Container("f" * 64, "stray", "running")  # labelled, no row
        runtime.items["e" * 64] = Container("e" * 64, "kept", "running")  # a second container of a room
    b.registry.insert("halfway", None, "1", 100, FAKE_PORTS)  # a create in flight (no container id yet)
    report = b.reconcile()
    assert report.removed_rows == ["lost"]
    assert sorted(report.removed_containers) == ["e" * 64, "f" * 64]
    assert sorted(r.name for r in b.registry.all()) == ["halfway", "kept"]
    assert b.reconcile(startup=True).removed_rows == ["halfway"]  # at start-up nothing is in flight
    b.close()  # stop_rooms_on_close
    assert runtime.containers() == []
    again = make_backend(tmp_path / "rooms.db", runtime)
    assert again.registry.all() == []
    again.close()


def test_registry_of_another_instance_is_refused(tmp_path: Path) -> None:
    Registry(str(tmp_path / "r.db"), "one").close()
    with pytest.raises(ValueError, match="belongs to API instance 'one'"):
        Registry(str(tmp_path / "r.db"), "two")
    Registry(str(tmp_path / "r.db"), "one").close()


def test_close_can_keep_rooms(tmp_path: Path, runtime: FakeRuntime) -> None:
    config = LocalConfig(db_path=str(tmp_path / "r.db"), image="x:1", ports=FAKE_PORTS, stop_rooms_on_close=False)
    with LocalBackend(config, runtime) as b:
        b.create("abc")
    assert [c.room for c in runtime.containers()] == ["abc"]
    with LocalBackend(config, runtime) as b:  # the next instance adopts it
        assert b.get("abc") is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ports": (15100, 15000)}, "port range"),
        ({"ports": (0, 10)}, "port range"),
        ({"max_rooms": 0}, "max_rooms"),
        ({"api_id": "a-b"}, "api id"),
        ({"api_id": "A"}, "api id"),
        ({"api_id": ""}, "api id"),
        ({"image": "--privileged"}, "image"),
        ({"container_port": 70000}, "container port"),
    ],
)
def test_bad_config(change: dict[str, object], message: str, tmp_path: Path) -> None:
    values: dict[str, object] = {"db_path": str(tmp_path / "r.db"), "image": "x:1", **change}
    with pytest.raises(ValueError, match=message):
        LocalBackend(LocalConfig(**values))  # type: ignore[arg-type]
    assert not (tmp_path / "r.db").exists()


def test_podman_command_line(tmp_path: Path) -> None:
    config = LocalConfig(
        db_path=str(tmp_path / "r.db"),
        image="localhost/godot-fleet/demo-room:1.0.0",
        api_id="abc",
        publish_ip="127.0.0.1",
        room_args=("--max-players=4",),
        read_only=False,
    )
    argv = PodmanRuntime(config).run_argv("my-room", 15123)
    assert argv[:3] == ["run", "--detach", "--rm"]
    assert argv[argv.index("--name") + 1] == "godot-fleet-room-abc-my-room"
    assert argv[argv.index("--publish") + 1] == "127.0.0.1:15123:12077/udp"
    assert {"--cap-drop=ALL", "--security-opt=no-new-privileges", "--pull=never", "--init"} <= set(argv)
    assert argv[-2:] == ["localhost/godot-fleet/demo-room:1.0.0", "--max-players=4"]


# -- real podman ----------------------------------------------------------------------------------------------------

REAL_PORTS = (15140, 15159)


@pytest.fixture
def real(room_image: str, tmp_path: Path) -> Iterator[LocalBackend]:
    config = LocalConfig(
        db_path=str(tmp_path / "rooms.db"),
        image=room_image,
        ports=REAL_PORTS,
        max_rooms=5,
        room_args=ROOM_ARGS,
        api_id=new_api_id("r"),
    )
    b = LocalBackend(config)
    try:
        yield b
    finally:
        b.close()
        left = podman("ps", "-aq", "--filter", f"label={LABEL_API}={config.api_id}").split()
        if left:
            podman("rm", "-f", *left)
        assert left == []


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False).stdout


def test_real_room_is_locked_down(real: LocalBackend) -> None:
    real.start()
    room = real.create("locked")
    assert room.status == "running"
    (container_id,) = [c.id for c in real.runtime.containers()]
    inspect = podman(
        "container",
        "inspect",
        "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.PidsLimit}}",
        container_id,
    )
    assert inspect.startswith("true ")
    assert "no-new-privileges" in inspect and inspect.strip().endswith(" 512")
    assert "CAP_NET_RAW" in inspect  # dropped (podman lists the dropped defaults)
    assert probe("127.0.0.1", room.port, timeout=10).ok  # Godot runs with its HOME on the tmpfs


def test_real_port_conflict_and_failed_start(real: LocalBackend, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", REAL_PORTS[0]))  # something outside the registry holds the first port
        room = real.create("squat")
        assert room.port == REAL_PORTS[0] + 1
        assert probe("127.0.0.1", room.port, timeout=10).ok
    # an image that does not exist: the failed start leaves no row behind
    missing = "localhost/godot-fleet/gf-local-no-such-image:0"
    db = str(tmp_path / "bad.db")
    with LocalBackend(LocalConfig(db_path=db, image=missing, ports=REAL_PORTS, api_id=new_api_id("b"))) as bad:
        with pytest.raises(StartFailed, match="image") as caught:
            bad.create("ghost")
        assert "localhost/godot-fleet/gf-local-no-such-image:0" in caught.value.message
        assert bad.registry.all() == []
    assert [r.name for r in real.registry.all()] == ["squat"]


def test_real_reconcile(real: LocalBackend) -> None:
    runtime = real.runtime
    assert isinstance(runtime, PodmanRuntime)
    stray = runtime.run("stray", REAL_PORTS[1])  # our label, no row
    real.create("kept")
    real.create("lost")
    podman("rm", "-f", runtime.container_name("lost"))  # gone while no watcher ran
    report = real.reconcile()
    assert report.removed_rows == ["lost"]
    assert report.removed_containers == [stray]
    assert [c.room for c in runtime.containers() if c.state not in GONE_STATES] == ["kept"]


def test_real_watcher_restarts(real: LocalBackend) -> None:
    real.start()
    stream = real._stream
    assert stream is not None and real.watch_generation == 1
    os.kill(stream.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    assert wait_for(lambda: real.watch_generation == 2, timeout=20)
    room = real.create("after")
    real.stop(room.name)
    assert wait_for(lambda: real.registry.all() == [], timeout=30)
