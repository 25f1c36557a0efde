"""The room API contract (room_api/README.md), run against every backend through the HTTP handlers.

`contract_target` (conftest.py) is parametrized over BACKEND_KINDS. The local backend runs real podman rooms from
the room image; a real ENet client checks that they answer. The last tests run the real `python -m room_api serve`
process over HTTP.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from room_api.handlers import Response
from room_api.local import LABEL_API
from testbed import ROOT
from testbed.enet_probe import probe
from tests.room_api.roomtest import ROOM_ARGS, ContractTarget, call, new_api_id


def post(target: ContractTarget, path: str, body: dict[str, Any]) -> Response:
    return call(target.api, "POST", path, json.dumps(body).encode(), key=target.key)


def create(target: ContractTarget, name: str | None = None) -> Response:
    return post(target, "/create_server", {} if name is None else {"name": name})


def listing(target: ContractTarget, **query: str) -> Response:
    return call(target.api, "GET", "/get_servers", query=query, key=target.key)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def check_room(room: dict[str, Any], name: str | None = None) -> None:
    assert set(room) == {"name", "ip", "port", "status", "build_version", "created_at"}
    if name is not None:
        assert room["name"] == name
    assert room["status"] in ("starting", "running")
    assert isinstance(room["port"], int)
    assert room["created_at"].endswith("Z") and len(room["created_at"]) == len("2026-11-21T10:00:00Z")


def test_health_needs_no_key(contract_target: ContractTarget) -> None:
    response = call(contract_target.api, "GET", "/health")
    assert response.status == 200
    assert response.body["status"] == "ok"
    assert response.body["backend"] == contract_target.kind
    assert response.body["build_version"]


def test_create_answers_then_stop_removes_it(contract_target: ContractTarget) -> None:
    t = contract_target
    name = unique("play")
    created = create(t, name)
    assert created.status == 201, created.body
    room = created.body["room"]
    check_room(room, name)
    assert t.answers(room), f"room {room} does not answer"
    assert t.runtime_rooms() == [name]

    got = listing(t, name=name)
    assert got.status == 200
    assert [r["name"] for r in got.body["rooms"]] == [name]
    assert got.body["next_page_token"] is None

    stopped = post(t, "/stop_server", {"name": name})
    assert stopped.status == 200, stopped.body
    assert stopped.body["room"]["name"] == name
    assert stopped.body["room"]["status"] == "stopping"
    assert t.wait_gone(name, timeout=30), "the stopped room is still listed"
    assert name not in t.runtime_rooms()
    assert not t.answers(room, timeout=1.5)
    again = post(t, "/stop_server", {"name": name})
    assert again.status == 404
    assert again.body["error"] == "not_found"


def test_random_name_and_delete(contract_target: ContractTarget) -> None:
    t = contract_target
    created = create(t)
    assert created.status == 201, created.body
    room = created.body["room"]
    check_room(room)
    assert room["name"].startswith("room-")
    deleted = call(t.api, "DELETE", f"/servers/{room['name']}", key=t.key)
    assert deleted.status == 200, deleted.body
    assert deleted.body["room"]["status"] == "stopping"
    assert t.wait_gone(room["name"], timeout=30)


def test_concurrent_creates_of_one_name_give_one_room(contract_target: ContractTarget) -> None:
    t = contract_target
    name = unique("race")
    barrier = threading.Barrier(2)
    results: list[Response] = []

    def attempt() -> None:
        barrier.wait()
        results.append(create(t, name))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in results) == [201, 409], [r.body for r in results]
    assert next(r for r in results if r.status == 409).body["error"] == "name_taken"
    assert t.runtime_rooms() == [name]
    assert [r["name"] for r in listing(t).body["rooms"]] == [name]


def test_capacity_and_pages(contract_target: ContractTarget) -> None:
    t = contract_target
    names = [unique(f"cap{i}") for i in range(t.max_rooms)]
    for name in names:
        created = create(t, name)
        assert created.status == 201, created.body
    full = create(t, unique("over"))
    assert full.status == 429
    assert full.body["error"] == "capacity"
    assert sorted(t.runtime_rooms()) == sorted(names)

    first = listing(t, limit="2")
    assert first.status == 200
    assert [r["name"] for r in first.body["rooms"]] == names[:2]  # oldest first
    token = first.body["next_page_token"]
    assert isinstance(token, str) and token
    second = listing(t, limit="2", page_token=token)
    assert [r["name"] for r in second.body["rooms"]] == names[2:]
    assert second.body["next_page_token"] is None
    bad = listing(t, page_token="not-a-token")
    assert bad.status == 400
    assert bad.body["error"] == "bad_page_token"


def test_empty_room_exits_by_itself(contract_target: ContractTarget) -> None:
    t = contract_target
    name = unique("idle")
    created = create(t, name)
    assert created.status == 201, created.body
    # Nobody joins: the game exits after idle_exit_seconds and the cleanup path removes the room.
    assert t.wait_gone(name, timeout=t.idle_exit_seconds + 30), "the idle room is still listed"
    assert name not in t.runtime_rooms()


def test_failed_start_leaves_no_row(contract_target: ContractTarget) -> None:
    t = contract_target
    name = unique("broken")
    for _ in range(2):  # the second attempt proves the name is free again (503, not 409)
        failed = call(t.failing_api, "POST", "/create_server", json.dumps({"name": name}).encode(), key=t.key)
        assert failed.status == 503, failed.body
        assert failed.body["error"] == "start_failed"
        assert failed.body["message"]
    listed = call(t.failing_api, "GET", "/get_servers", key=t.key)
    assert listed.status == 200
    assert listed.body == {"rooms": [], "next_page_token": None}


def test_unauthorized_changes_nothing(contract_target: ContractTarget) -> None:
    t = contract_target
    name = unique("nokey")
    for key in (None, "wrong-" + t.key):
        response = call(t.api, "POST", "/create_server", json.dumps({"name": name}).encode(), key=key)
        assert response.status == 401
        assert response.body["error"] == "unauthorized"
    assert call(t.api, "GET", "/get_servers", query={"name": name}, key=t.key).body["rooms"] == []
    assert name not in t.runtime_rooms()


# -- the real server process (local backend) ------------------------------------------------------------------------

HTTP_PORT = 15000
SERVE_PORTS = "15160-15179"


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, key: str, api_id: str) -> None:
        self.proc = proc
        self.url = url
        self.key = key
        self.api_id = api_id
        self.stderr = ""

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = ""
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body); key "" = the server's key, None = no Authorization header."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if key is not None:
            request.add_header("Authorization", f"Bearer {key or self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def serve_argv(image: str, db: Path, api_id: str, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "room_api", "serve", "--port", str(HTTP_PORT), "--db", str(db)]
    argv += ["--image", image, "--ports", SERVE_PORTS, "--max-rooms", "5", "--api-id", api_id]
    return argv + [f"--room-arg={arg}" for arg in ROOM_ARGS] + list(extra)


def containers_of(api_id: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label={LABEL_API}={api_id}"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


@pytest.fixture
def served(room_image: str, tmp_path: Path) -> Iterator[Served]:
    key = secrets.token_urlsafe(24)
    api_id = new_api_id("s")
    proc = subprocess.Popen(
        serve_argv(room_image, tmp_path / "rooms.db", api_id),
        cwd=ROOT,
        env={**os.environ, "ROOM_API_KEY": key},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        if line.strip() == "READY":
            break
    served = Served(proc, "", key, api_id)
    try:
        assert lines[-2:] == [f"ROOM_API_URL=http://127.0.0.1:{HTTP_PORT}", "READY"], lines
        served.url = lines[-2].partition("=")[2]
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, served.stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        leftovers = containers_of(api_id)
        if leftovers:
            subprocess.run(["podman", "rm", "-f", *leftovers], capture_output=True, check=False)
        assert key not in served.stderr
        assert leftovers == [], "the server left rooms running"


def test_serve_over_http(served: Served) -> None:
    s = served
    status, body = s.request("GET", "/health", key=None)
    assert (status, body["status"], body["backend"]) == (200, "ok", "local")
    assert s.request("GET", "/get_servers", key=None)[0] == 401
    assert s.request("GET", "/nowhere")[0] == 404
    assert s.request("PUT", "/create_server", {})[0] == 405

    status, body = s.request("POST", "/create_server", {"name": "served-one"})
    assert status == 201, body
    room = body["room"]
    assert probe(room["ip"], room["port"], timeout=10).ok
    status, body = s.request("GET", "/get_servers?limit=10")
    assert status == 200
    assert [r["name"] for r in body["rooms"]] == ["served-one"]
    status, body = s.request("DELETE", "/servers/served-one")
    assert (status, body["room"]["status"]) == (200, "stopping")
    deadline = time.monotonic() + 30
    while s.request("GET", "/get_servers?name=served-one")[1]["rooms"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert s.request("GET", "/get_servers?name=served-one")[1]["rooms"] == []

    # A room still running at shutdown is removed by SIGTERM (stop_rooms_on_close).
    assert s.request("POST", "/create_server", {})[0] == 201
    assert len(containers_of(s.api_id)) == 1
    s.proc.send_signal(signal.SIGTERM)
    _, s.stderr = s.proc.communicate(timeout=60)
    assert s.proc.returncode == 0, s.stderr[-2000:]
    assert containers_of(s.api_id) == []
    assert "POST /create_server 201" in s.stderr
    assert "Bearer" not in s.stderr


@pytest.mark.parametrize(
    ("extra", "env_key", "message"),
    [
        ((), None, "no API key"),
        ((), "", "no API key"),
        (("--host", "0.0.0.0"), "k" * 24, "--allow-public"),
        (("--ports", "15160"), "k" * 24, None),  # a single port is a valid range: this one must start
        (("--api-id", "Bad-Id"), "k" * 24, "bad api id"),
        (("--key-file", "/nonexistent/key"), None, "cannot read --key-file"),
    ],
)
def test_serve_refuses_bad_settings(
    extra: tuple[str, ...], env_key: str | None, message: str | None, room_image: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ROOM_API_KEY"}
    if env_key is not None:
        env["ROOM_API_KEY"] = env_key
    argv = serve_argv(room_image, tmp_path / "rooms.db", new_api_id("r"), *extra)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if message is None:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("ROOM_API_URL=")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert message in err
    assert "READY" not in out
    assert not (tmp_path / "rooms.db").exists()  # refused before anything changed
