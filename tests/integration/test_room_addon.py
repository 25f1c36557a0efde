"""The Godot add-on godot/addons/godot_fleet_rooms end to end, through the demo game's headless `--rooms-client`.

The client is the exported demo pack run by the portable Godot runtime from dist/ on this host; it talks to the
real local room API (`python -m room_api serve --backend local`, key in ROOM_API_KEY), which starts real podman
rooms from localhost/godot-fleet/demo-room:<VERSION> published on 127.0.0.1 (empty-server timeout 5 s). The
client creates a room, lists it, joins it over ENet (RPC round trip, RAW echo, replicated character), leaves and
sees the room exit by itself and leave the list; the test then checks over HTTP and with `podman ps` that it is
gone. Error paths: wrong key, taken name and invalid name against the real API; timeout, refused connection,
non-API error pages and non-JSON answers from throwaway sockets (the real API cannot be made to misbehave).
Needs: scripts/build-game.sh (dist/) and `ansible-playbook build-room-image.yml` (the room image).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed import ROOT, extract_all

VERSION = (ROOT / "dist" / "VERSION").read_text().strip()
IMAGE = f"localhost/godot-fleet/demo-room:{VERSION}"
# helper "addon" ports: API 15400, throwaway sockets 15401-15409, rooms 15410-15499 (loopback only)
API_PORT = 15400
ROOM_PORTS = (15410, 15429)
API_ID = "gfaddonit"  # the local backend labels its room containers with it
KEY = secrets.token_urlsafe(24)
EMPTY_TIMEOUT = 5


@dataclass(frozen=True)
class Godot:
    launcher: Path
    pack: Path
    home: Path

    def run(self, *args: str, key: str | None = KEY, timeout: float = 120) -> tuple[int, str, str]:
        """Runs the demo pack headless with game arguments `args`; returns (exit code, stdout, stderr)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
        }
        if key is not None:
            env["ROOM_API_KEY"] = key
        proc = subprocess.run(
            [str(self.launcher), "--headless", "--main-pack", str(self.pack), "--", *args],
            env=env, capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr


@dataclass(frozen=True)
class Api:
    url: str
    log: list[str]

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, key: str = KEY) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    def room(self, name: str) -> dict[str, Any] | None:
        status, body = self.request("GET", f"/get_servers?name={name}")
        assert status == 200, body
        rooms: list[dict[str, Any]] = body["rooms"]
        return rooms[0] if rooms else None

    def wait_gone(self, name: str, limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while self.room(name) is not None:
            assert time.monotonic() < deadline, f"room {name} still listed after {limit} s\n" + "".join(self.log[-50:])
            time.sleep(0.5)


def podman(*args: str) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def room_containers(running_only: bool) -> list[str]:
    """Names of this API instance's room containers (godot-fleet-room-*, a label value equal to API_ID)."""
    listing = podman("ps", *([] if running_only else ["-a"]), "--filter", "name=^godot-fleet-room-", "--format", "json")
    return [
        name
        for c in json.loads(listing or "[]")
        if API_ID in (c.get("Labels") or {}).values()
        for name in c.get("Names", [])
    ]


def remove_room_containers() -> None:
    for name in room_containers(running_only=False):
        subprocess.run(["podman", "rm", "-f", "-t", "0", name],
                       capture_output=True, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def godot(tmp_path_factory: pytest.TempPathFactory) -> Godot:
    """The portable runtime (runs on this Debian 12 host) with the demo pack, unpacked from dist/."""
    archive = ROOT / "dist" / f"godot-fleet-demo-{VERSION}-portable-linux-x86_64.tar.gz"
    assert archive.exists(), f"{archive} is missing: run scripts/build-game.sh"
    base = tmp_path_factory.mktemp("godot")
    with tarfile.open(archive) as tar:
        extract_all(tar, base / "portable", "tar")
    (base / "home").mkdir()
    pack = base / "portable" / "godot-fleet-demo.pck"
    assert b"res://addons/godot_fleet_rooms/room_api_client.gd" in pack.read_bytes(), (
        "the demo pack in dist/ has no godot_fleet_rooms add-on: rebuild it with scripts/build-game.sh"
    )
    return Godot(base / "portable" / "godot", pack, base / "home")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The real local room API on 127.0.0.1:15400 with real podman rooms; stopped and cleaned up afterwards."""
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode:
        pytest.fail(f"image {IMAGE} is missing: run ansible-playbook build-room-image.yml")
    remove_room_containers()  # leftovers of an interrupted run
    db = tmp_path_factory.mktemp("room-api") / "rooms.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "room_api", "serve", "--backend", "local", "--host", "127.0.0.1",
         "--port", str(API_PORT), "--db", str(db), "--image", IMAGE, "--ports", f"{ROOM_PORTS[0]}-{ROOM_PORTS[1]}",
         "--max-rooms", "5", "--room-arg=--max-players=8", f"--room-arg=--empty-server-timeout={EMPTY_TIMEOUT}",
         "--api-id", API_ID],
        cwd=ROOT, env=dict(os.environ, ROOM_API_KEY=KEY),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    log: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if line.strip() == "READY":
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not ready.wait(0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.2)  # let the reader collect the last lines
                pytest.fail("the room API did not print READY:\n" + "".join(log))
        urls = [line.strip().split("=", 1)[1] for line in log if line.startswith("ROOM_API_URL=")]
        assert urls == [f"http://127.0.0.1:{API_PORT}"], "".join(log)
        yield Api(urls[0], log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        remove_room_containers()
    assert KEY not in "".join(log), "the API key appeared in the room API's output"


def steps(stdout: str) -> list[tuple[str, dict[str, str]]]:
    """The GODOT_FLEET_* lines as (tag, {key: value}) in order."""
    result = []
    for line in stdout.splitlines():
        m = re.match(r"GODOT_FLEET_(\w+)\s*(.*)$", line)
        if m:
            result.append((m.group(1), dict(re.findall(r"(\w+)=(\S+)", m.group(2)))))
    return result


def assert_clean(code: int, out: str, err: str, expected: int) -> None:
    text = out + err
    assert code == expected, text[-3000:]
    assert KEY not in text, "the API key appeared in the client's output"
    assert "SCRIPT ERROR" not in text and "ERROR:" not in text, text[-3000:]


def test_the_addon_has_one_source() -> None:
    """The add-on lives in the demo project (exported into its pack); godot/addons/godot_fleet_rooms, the path
    game developers copy from, is a link to it, so the two cannot drift apart."""
    published = ROOT / "godot" / "addons" / "godot_fleet_rooms"
    assert published.is_symlink(), "godot/addons/godot_fleet_rooms must stay a link to the demo's add-on"
    assert published.resolve() == (ROOT / "godot" / "demo" / "addons" / "godot_fleet_rooms").resolve()
    assert (published / "room_api_client.gd").is_file()


def test_create_join_leave_and_the_room_goes_away(api: Api, godot: Godot) -> None:
    code, out, err = godot.run("--rooms-client", f"--api={api.url}", "--room=addon-cycle", "--timeout=90")
    print(out)  # the client's step lines (pytest -s shows them)
    assert_clean(code, out, err, 0)
    seen = steps(out)
    tags = [tag for tag, _ in seen]
    assert tags == ["ROOMS_HEALTH", "ROOMS_CREATED", "ROOMS_LISTED", "ROOMS_JOINABLE", "CLIENT_OK", "ROOMS_LEFT",
                    "ROOMS_GONE", "ROOMS_CLIENT_OK"], out  # fmt: skip
    values = dict(seen)
    assert values["ROOMS_HEALTH"] == {"backend": "local", "build_version": VERSION}
    assert values["ROOMS_CREATED"]["name"] == "addon-cycle"
    assert ROOM_PORTS[0] <= int(values["ROOMS_CREATED"]["port"]) <= ROOM_PORTS[1]
    assert values["ROOMS_JOINABLE"]["address"] == f"127.0.0.1:{values['ROOMS_CREATED']['port']}"
    assert values["CLIENT_OK"]["server_version"] == VERSION
    # Independently of the add-on: the API forgot the room and no container of it runs.
    assert api.room("addon-cycle") is None
    assert room_containers(running_only=True) == []


def test_stop_a_room_through_the_addon(api: Api, godot: Godot) -> None:
    code, out, err = godot.run("--rooms-client", f"--api={api.url}", "--stop", "--timeout=90")
    assert_clean(code, out, err, 0)
    values = dict(steps(out))
    name = values["ROOMS_CREATED"]["name"]
    assert re.fullmatch(r"room-[a-z0-9]{8}", name), name  # no --room: the API picked a free random name
    assert values["ROOMS_STOPPING"] == {"name": name, "status": "stopping"}
    assert values["ROOMS_CLIENT_OK"] == {"name": name}
    assert api.room(name) is None
    assert room_containers(running_only=True) == []


def test_api_errors_reach_the_game_cleanly(api: Api, godot: Godot) -> None:
    code, out, err = godot.run("--rooms-client", f"--api={api.url}", "--room=addon-wrong-key", key="not-the-key")
    assert_clean(code, out, err, 1)
    fail = dict(steps(err))["ROOMS_FAIL"]
    assert (fail["step"], fail["status"], fail["error"]) == ("create", "401", "unauthorized"), err
    assert api.room("addon-wrong-key") is None

    code, out, err = godot.run("--rooms-client", f"--api={api.url}", "--room=Bad_Name")
    assert_clean(code, out, err, 1)
    assert "GODOT_FLEET_ROOMS_FAIL step=create status=400 error=invalid_name message=" in err

    status, body = api.request("POST", "/create_server", {"name": "addon-taken"})
    assert status == 201, body
    try:
        code, out, err = godot.run("--rooms-client", f"--api={api.url}", "--room=addon-taken")
        assert_clean(code, out, err, 1)
        assert "GODOT_FLEET_ROOMS_FAIL step=create status=409 error=name_taken message=" in err
    finally:
        status, body = api.request("POST", "/stop_server", {"name": "addon-taken"})
        assert status == 200, body
        api.wait_gone("addon-taken")


def serve_once(port: int, answer: bytes | None) -> threading.Thread:
    """A throwaway TCP listener on 127.0.0.1:port: answers the first request with `answer`, or (None) never."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(30)

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                if answer is None:
                    conn.settimeout(10)
                    with contextlib.suppress(OSError):
                        conn.recv(1)  # until the client gives up
                else:
                    conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def http_answer(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


JSON = "application/json"
TRANSPORT_CASES = {
    "timeout": (None, "status=0 error=timeout message=no complete answer from http://127.0.0.1:15401 within 1.0 s"),
    "refused": ("closed", "status=0 error=cant_connect message=cannot connect to http://127.0.0.1:15401"),
    "html-error-page": (
        http_answer("502 Bad Gateway", "text/html", b"<h1>502</h1>"),
        "status=502 error=http_502 message=HTTP 502: <h1>502</h1>",
    ),
    "gateway-json": (
        http_answer("503 Service Unavailable", JSON, b'{"message": "Service Unavailable"}'),
        "status=503 error=http_503 message=Service Unavailable",
    ),
    "not-json": (
        http_answer("200 OK", JSON, b"{not json"),
        "status=200 error=bad_response message=HTTP 200 with a body",
    ),
}


@pytest.mark.parametrize(("answer", "expected"), TRANSPORT_CASES.values(), ids=TRANSPORT_CASES.keys())
def test_transport_errors_are_reported(godot: Godot, answer: bytes | str | None, expected: str) -> None:
    thread = None if answer == "closed" else serve_once(15401, answer if isinstance(answer, bytes) else None)
    code, out, err = godot.run("--rooms-client", "--api=http://127.0.0.1:15401", "--http-timeout=1", timeout=60)
    assert_clean(code, out, err, 1)
    assert f"GODOT_FLEET_ROOMS_FAIL step=health {expected}" in err
    if thread is not None:
        thread.join(15)


def test_usage_errors(godot: Godot) -> None:
    """Bad rooms-client arguments are refused before any request (exit 2, a configuration error)."""
    for args, message in [
        (["--rooms-client", "--api=ftp://x"], "--rooms-client needs --api=http(s)://HOST:PORT, got 'ftp://x'"),
        (["--rooms-client", "--client", "--api=http://127.0.0.1:15401"], "--client and --rooms-client are mutually"),
        (["--rooms-client", "--api=http://127.0.0.1:15401", "--timeout=soon"], "--timeout must be a number"),
    ]:
        code, out, err = godot.run(*args)
        assert code == 2, out + err
        assert f"GODOT_FLEET_USAGE_ERROR {message}" in err
