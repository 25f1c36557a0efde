"""Helpers shared by the cloud end-to-end tests (test_aws.py, test_aws_rooms.py, test_azure.py): the local AWS,
playbook runs, recaps, clients."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from enet_probe import probe_many

ROOT = Path(__file__).resolve().parents[2]
PODMAN_ENV = {"CONTAINERS_CONF": str(ROOT / "scripts" / "containers.conf")}


@contextlib.contextmanager
def local_aws(port: int) -> Iterator[str]:
    """The local AWS (`scripts/aws_local.py serve`: moto + the instance credentials stand-in) on 127.0.0.1:port
    while the block runs; yields its endpoint URL."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "aws_local.py"), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[-1].strip() == "READY", lines
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def demo_build() -> tuple[Path, str]:
    """The portable demo build (runtime + pack, runs on Debian 12) and its release label."""
    version = (ROOT / "dist" / "VERSION").read_text().strip()
    release = (ROOT / "dist" / "RELEASE").read_text().strip()
    return ROOT / "dist" / f"godot-fleet-demo-{version}-portable-linux-x86_64.tar.gz", release


def admin_public_key(directory: Path) -> str:
    key = directory / "admin"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return (directory / "admin.pub").read_text().strip()


def local_host_vars(host: str) -> dict[str, Any]:
    """Variables mapping cloud host 0 to the local container `host` (the only difference from a real cloud)."""
    return {
        "ansible_host": host,
        "ansible_connection": "containers.podman.podman",
        "ansible_user": "root",
    }


# Debian 12 runs the portable bundle (runtime + main pack); the rooms listen on loopback only
PORTABLE_ROOMS = {
    "godot_server_bind": "127.0.0.1",
    "godot_server_style": "runtime",
    "godot_server_executable": "godot",
    "godot_server_main_pack": "godot-fleet-demo.pck",
}


def playbook(
    name: str, values: dict[str, Any], env: dict[str, str], *args: str, installed: Path | None = None
) -> tuple[int, str]:
    """ansible-playbook NAME (an entry point of this checkout, e.g. deploy-aws.yml) with VALUES as extra vars.

    With `installed` (a collections path holding the built collection, see the `installed_collection` fixture) the
    same playbook runs as a user of the installed collection runs it: `godot_fleet.fleet.deploy_aws` from an empty
    directory, without this checkout's ansible.cfg or any ANSIBLE_* setting of the caller.
    """
    command = ["ansible-playbook", "-i", "localhost,", name, "-e", json.dumps(values), *args]
    cwd = ROOT
    if installed is not None:
        command[3] = "godot_fleet.fleet." + name.removesuffix(".yml").replace("-", "_")
        env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
        env["ANSIBLE_COLLECTIONS_PATH"] = str(installed)
        cwd = installed.parent / "cwd"
        cwd.mkdir(exist_ok=True)
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output: str) -> dict[str, dict[str, int]]:
    hosts = {
        host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
        for host, counts in re.findall(r"^(\S+)\s*:\s*(ok=.*)$", output, re.M)
    }
    assert hosts, output[-3000:]
    return hosts


def unwrap(value: Any) -> Any:
    """ansible-inventory --list output without the {"__ansible_unsafe": ...} wrappers of ansible-core 2.19."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def changed(output: str) -> int:
    return sum(counts["changed"] for counts in recap(output).values())


def assert_rooms_serve_clients(ports: list[int]) -> None:
    """ENet round trips with every room, and a headless Godot client of the game with the first one."""
    results = probe_many([f"127.0.0.1:{p}" for p in ports], timeout=5.0)
    assert all(r.ok for r in results), results
    version = (ROOT / "dist" / "VERSION").read_text().strip()
    image = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/godot:forky"
    godot = subprocess.run(
        ["podman", "run", "--rm", "--network", "host", "-v", f"{ROOT / 'dist'}:/dist:ro", image, "godot",
         "--headless", "--main-pack", f"/dist/godot-fleet-demo-{version}.pck", "--", "--client",
         f"--connect=127.0.0.1:{ports[0]}", "--timeout=20"],
        capture_output=True, text=True, check=False, timeout=120, env=dict(os.environ, **PODMAN_ENV),
    )  # fmt: skip
    assert godot.returncode == 0 and "GODOT_FLEET_CLIENT_OK" in godot.stdout, godot.stdout[-3000:]
