"""Helpers of the room API tests (imported as tests.room_api.roomtest): the room image, requests through the
handlers, the contract target of the local backend.

Ports (loopback only, this suite's share of 15000-15199): HTTP 15000-15009; room ports 15100-15139 (contract,
local backend), 15140-15159 (real-podman tests of test_local_registry.py), 15160-15179 (`python -m room_api serve`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import pytest

from room_api.handlers import Api, Request, Response
from room_api.local import LABEL_API, LocalBackend, LocalConfig
from testbed import ROOT, playbook
from testbed.enet_probe import probe

VERSION = (ROOT / "dist" / "VERSION").read_text().strip()
#: The shared room image (built by build-room-image.yml). GF_ROOM_IMAGE overrides it (e.g. a hand-built image).
ROOM_IMAGE = os.environ.get("GF_ROOM_IMAGE") or f"localhost/godot-fleet/demo-room:{VERSION}"
BUILD_PLAYBOOK = ROOT / "build-room-image.yml"

#: Game arguments of the test rooms (they replace the image's CMD): an empty room exits after 5 s.
IDLE_EXIT_SECONDS = 5
ROOM_ARGS = ("--max-players=8", f"--empty-server-timeout={IDLE_EXIT_SECONDS}")
CONTRACT_PORTS = (15100, 15139)
CONTRACT_MAX_ROOMS = 3
MISSING_IMAGE = "localhost/godot-fleet/gf-local-no-such-image:0"

_image_lock = threading.Lock()


def new_api_id(prefix: str) -> str:
    """A fresh API instance id per test backend: parallel runs never touch each other's rooms."""
    return f"{prefix}{secrets.token_hex(4)}"


def image_exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def ensure_room_image() -> str:
    """The room image every real-podman test runs (the one place its name comes from), built once if missing."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make bootstrap` (bindep.txt)")
    with _image_lock:
        if not image_exists(ROOM_IMAGE):
            if not BUILD_PLAYBOOK.exists():
                pytest.fail(f"room image {ROOM_IMAGE} is missing and {BUILD_PLAYBOOK} does not exist")
            result = playbook.run(
                BUILD_PLAYBOOK.name,
                None,
                "-e",
                "@inventories/local/demo-room.yml",
                env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **os.environ, "PWD": str(ROOT)},
            )
            if not result.ok or not image_exists(ROOM_IMAGE):
                pytest.fail(f"{BUILD_PLAYBOOK.name} did not build {ROOM_IMAGE}:\n{result}")
    return ROOM_IMAGE


def call(
    api: Api,
    method: str,
    path: str,
    body: bytes | None = None,
    query: dict[str, str] | None = None,
    key: str | None = None,
) -> Response:
    """One request through the handlers (`key`: sent as a Bearer token)."""
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return api.handle(Request(method, path, query or {}, headers, body or b""))


# -- contract targets -----------------------------------------------------------------------------------------------


class ContractTarget(Protocol):
    """What test_contract.py needs of a backend (conftest.py yields one per kind in BACKEND_KINDS)."""

    kind: str
    api: Api  # the handlers over the backend under test
    failing_api: Api  # the same kind of backend, but its rooms cannot start
    key: str
    max_rooms: int  # the backend's room limit
    idle_exit_seconds: int  # an empty room exits by itself after this long

    def answers(self, room: dict[str, Any], timeout: float = 10.0) -> bool:
        """A client reaches the room at its address (local: a real ENet client)."""
        ...

    def runtime_rooms(self) -> list[str]:
        """Names of the rooms the runtime is running, one entry per container/task."""
        ...

    def wait_gone(self, name: str, timeout: float) -> bool:
        """Waits until the API no longer lists `name` (removed through the runtime's cleanup path)."""
        ...

    def reset(self) -> None:
        """Removes every room (between tests)."""
        ...


class LocalTarget:
    """The local backend as test_contract.py sees it: real podman rooms from the room image."""

    kind = "local"
    max_rooms = CONTRACT_MAX_ROOMS
    idle_exit_seconds = IDLE_EXIT_SECONDS

    def __init__(self, image: str, directory: Path) -> None:
        self.key = secrets.token_urlsafe(24)
        self.backend = LocalBackend(
            LocalConfig(
                db_path=str(directory / "rooms.db"),
                image=image,
                ports=CONTRACT_PORTS,
                max_rooms=CONTRACT_MAX_ROOMS,
                room_args=ROOM_ARGS,
                api_id=new_api_id("c"),
            )
        )
        self.backend.start()
        self.api = Api(self.backend, lambda: self.key)
        self.failing_backend = LocalBackend(
            LocalConfig(
                db_path=str(directory / "failing.db"),
                image=MISSING_IMAGE,
                ports=CONTRACT_PORTS,
                max_rooms=CONTRACT_MAX_ROOMS,
                api_id=new_api_id("f"),
            )
        )
        #: An API over the same kind of backend whose rooms cannot start (its image does not exist).
        self.failing_api = Api(self.failing_backend, lambda: self.key)

    def answers(self, room: dict[str, Any], timeout: float = 10.0) -> bool:
        """A real ENet client gets the demo server's echo from the room's address."""
        return bool(probe(room["ip"], room["port"], timeout=timeout).ok)

    def runtime_rooms(self) -> list[str]:
        """Names of the rooms the runtime is running (one entry per container)."""
        return sorted(c.room for c in self.backend.runtime.containers() if c.state == "running")

    def wait_gone(self, name: str, timeout: float) -> bool:
        """Waits until the API no longer lists `name` (the runtime's cleanup path removed it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = call(self.api, "GET", "/get_servers", query={"name": name}, key=self.key)
            if response.status == 200 and response.body["rooms"] == []:
                return True
            time.sleep(0.2)
        return False

    def reset(self) -> None:
        """Between tests: no rooms left."""
        self.backend.stop_all()

    def close(self) -> None:
        self.backend.close()
        self.failing_backend.close()
        left = subprocess.run(
            ["podman", "ps", "-aq", "--filter", f"label={LABEL_API}={self.backend.config.api_id}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert left == [], f"containers left behind: {left}"
