"""The demo game as the tests and benchmarks deploy it: its build in dist/, the variables that map a cloud machine
to a local container, and real clients of its rooms (the ENet probe, a headless Godot client)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from testbed import ROOT
from testbed.enet_probe import probe_many

DIST = ROOT / "dist"

#: Debian 12 runs the portable bundle (runtime + main pack); the rooms listen on loopback only
PORTABLE_ROOMS = {
    "godot_server_bind": "127.0.0.1",
    "godot_server_style": "runtime",
    "godot_server_executable": "godot",
    "godot_server_main_pack": "godot-fleet-demo.pck",
}


def version() -> str:
    return (DIST / "VERSION").read_text().strip()


def build() -> tuple[Path, str]:
    """The portable demo build (runtime + pack, runs on Debian 12) and its release label."""
    release = (DIST / "RELEASE").read_text().strip()
    return DIST / f"godot-fleet-demo-{version()}-portable-linux-x86_64.tar.gz", release


def admin_public_key(directory: Path) -> str:
    """An SSH key pair in `directory` (made once); its public key."""
    key = directory / "admin"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return (directory / "admin.pub").read_text().strip()


def local_host_vars(container: str) -> dict[str, Any]:
    """The variables mapping a cloud machine to the local container `container` (the only difference from a real
    cloud): godot_fleet_aws_host_overrides / godot_fleet_azure_host_overrides entries."""
    return {"ansible_host": container, "ansible_connection": "containers.podman.podman", "ansible_user": "root"}


def godot_client(address: str, port: int, timeout: int = 20) -> subprocess.CompletedProcess[str]:
    """A headless Godot client of the demo (its --client mode) joining the room at address:port."""
    image = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/godot:forky"
    return subprocess.run(
        ["podman", "run", "--rm", "--network", "host", "-v", f"{DIST}:/dist:ro", image, "godot",
         "--headless", "--main-pack", f"/dist/godot-fleet-demo-{version()}.pck", "--", "--client",
         f"--connect={address}:{port}", f"--timeout={timeout}"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def assert_rooms_serve_clients(ports: list[int], address: str = "127.0.0.1") -> None:
    """ENet round trips with every room, and a headless Godot client of the game with the first one."""
    results = probe_many([f"{address}:{p}" for p in ports], timeout=5.0)
    assert all(r.ok for r in results), results
    godot = godot_client(address, ports[0])
    assert godot.returncode == 0 and "GODOT_FLEET_CLIENT_OK" in godot.stdout, godot.stdout[-3000:]
