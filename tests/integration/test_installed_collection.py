"""The collection as a Galaxy or AWX user gets it: the tarball `ansible-galaxy collection build` makes (what is in
it, what is not), installed with `ansible-galaxy collection install` and used from an empty directory with no
ansible.cfg: every plugin documented under its FQCN, and `godot_fleet.fleet.deploy_hosts` end to end into a local
systemd container with a client round trip, a re-run and a check-mode run without changes. The host is Debian 11:
its Python 3.9 is the Python of the oldest hosts the README supports (RHEL 9), so the collection's modules run on
it for real (Molecule, the demo and the cloud tests run the role on Debian 12 and Debian testing).

The other playbooks of the collection run from the installed collection in their own tests (the
`installed_collection` fixture: input validation and check mode against the local emulators in test_aws.py,
test_aws_rooms.py, test_azure.py, test_room_image.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed import ROOT, demo, hosts, playbook
from testbed.enet_probe import probe_many

ARTIFACT_PORT = 13379
IMAGES = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/host:"
# name, image, room ports, the Python the host runs the modules with
HOSTS = {
    "debian11-python3.9": ("gf-installed-debian11", IMAGES + "bullseye", [13387, 13388], "3.9"),
}
INSTALLED = Path("ansible_collections") / "godot_fleet" / "fleet"

# What a user gets, by top-level entry (anything else in the tarball is a build_ignore gap)
SHIPPED = {
    "MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.rst", "bindep.txt", "requirements.txt",
    "changelogs", "meta", "plugins", "roles", "playbooks", "inventories", "tests",
}  # fmt: skip
NOT_SHIPPED = ["godot/", "bench/", "room_api/", "molecule/", "scripts/", "testbed/", "dist/", "tests/integration/",
               "tests/games/", "inventories/local/", ".cache/", ".venv/", "Makefile", "ansible.cfg",
               "tests/conftest.py", "build-game.yml"]  # fmt: skip


def user_env(installed: Path) -> dict[str, str]:
    """The environment of a user of the installed collection: none of this checkout's ANSIBLE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return dict(env, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_FORCE_COLOR="0")


def run(installed: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=user_env(installed), capture_output=True, text=True, check=False)


@pytest.fixture()
def empty_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "empty"
    directory.mkdir()
    return directory


def test_the_tarball_holds_the_collection_and_nothing_of_the_checkout(installed_collection: Path) -> None:
    tarball = next(installed_collection.glob("godot_fleet-fleet-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert tarball.name == f"godot_fleet-fleet-{version}.tar.gz"
    assert {name.split("/")[0] for name in names} == SHIPPED
    assert not [n for n in names for bad in NOT_SHIPPED if n == bad.rstrip("/") or n.startswith(bad)]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # of tests/, only what ansible-test runs in the installed tree
    ansible_test = ("tests/unit/plugins", "tests/sanity", "tests/config.yml", "tests/unit/requirements.txt")
    assert [n for n in names if n.startswith("tests/") and n != "tests/unit" and not n.startswith(ansible_test)] == []
    # the room API's Lambda artifact (the aws_rooms_api role's), the execution environment's inputs, the inventories
    wanted = ["roles/aws_rooms_api/files/room-api-lambda.zip", "bindep.txt", "requirements.txt", "LICENSE",
              "inventories/aws/aws_ec2.yml", "inventories/azure/azure_rm.yml", "meta/runtime.yml"]  # fmt: skip
    assert [w for w in wanted if w not in names] == []
    manifest = json.loads((installed_collection / INSTALLED / "MANIFEST.json").read_text())["collection_info"]
    assert manifest["license"] == ["GPL-3.0-or-later"]
    assert "example.invalid" not in json.dumps(manifest)
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert manifest["dependencies"] == galaxy["dependencies"]


def test_every_plugin_and_role_is_documented_by_its_fqcn(installed_collection: Path, empty_dir: Path) -> None:
    for kind, folder in [("module", "modules"), ("filter", "filter")]:
        listing = run(installed_collection, empty_dir, "ansible-doc", "-t", kind, "-l", "godot_fleet.fleet", "-j")
        assert listing.returncode == 0, listing.stderr
        documented = set(json.loads(listing.stdout))
        assert documented, f"no {kind} of godot_fleet.fleet documented"
        if kind == "module":
            shipped = {f"godot_fleet.fleet.{p.stem}" for p in (ROOT / "plugins" / folder).glob("*.py")}
            assert documented == shipped
        for name in sorted(documented):
            doc = run(installed_collection, empty_dir, "ansible-doc", "-t", kind, name)
            assert doc.returncode == 0 and "UNDOCUMENTED" not in doc.stdout, (name, doc.stdout[-500:], doc.stderr)
    roles = run(installed_collection, empty_dir, "ansible-doc", "-t", "role", "-l", "godot_fleet.fleet", "-j")
    assert roles.returncode == 0, roles.stderr
    listed = {name.removeprefix("godot_fleet.fleet.") for name in json.loads(roles.stdout)}
    assert listed == {p.name for p in (ROOT / "roles").iterdir()}


@pytest.fixture(scope="module")
def artifacts() -> Iterator[str]:
    """The demo build served over HTTP on 127.0.0.1 (a stand-in for the user's artifact store)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(ARTIFACT_PORT), "--bind", "127.0.0.1", "--directory",
         str(ROOT / "dist")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{ARTIFACT_PORT}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=sorted(HOSTS))
def game_host(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[int], str]]:
    """A local systemd container standing in for a game host (it shares this machine's loopback)."""
    name, image, ports, python = HOSTS[request.param]
    hosts.start(name, image)
    try:
        yield name, ports, python
    finally:
        hosts.remove(name)


def test_deploy_hosts_from_the_installed_collection(
    installed_collection: Path, artifacts: str, game_host: tuple[str, list[int], str], tmp_path: Path
) -> None:
    host, ports, python = game_host
    build, release = demo.build()
    base = artifacts
    inventory = tmp_path / "hosts.yml"  # what a user writes (inventories/hosts.example.yml), the host a container
    inventory.write_text(
        yaml.safe_dump(
            {
                "godot_servers": {
                    "hosts": {host: {"ansible_connection": "containers.podman.podman"}},
                    "vars": {
                        "ansible_python_interpreter": "/usr/bin/python3",
                        "godot_server_version": release,
                        "godot_server_url": f"{base}/{build.name}",
                        "godot_server_checksum": f"sha256:{base}/SHA256SUMS",
                        "godot_server_ports": ports,
                        **demo.PORTABLE_ROOMS,
                    },
                }
            }
        )
    )
    workdir = tmp_path / "work"
    workdir.mkdir()

    def deploy(*args: str) -> playbook.Result:
        """`ansible-playbook -i hosts.yml godot_fleet.fleet.deploy_hosts` from the installed collection in workdir."""
        return playbook.run(
            "godot_fleet.fleet.deploy_hosts", None, *args, inventory=inventory,
            installed=installed_collection, cwd=workdir,
        )  # fmt: skip

    first = deploy()
    assert first.ok, str(first)
    assert first.stats[host]["changed"] > 0, str(first)
    version = subprocess.run(["podman", "exec", host, "/usr/bin/python3", "-V"], capture_output=True, text=True)
    assert version.stdout.startswith(f"Python {python}."), version.stdout  # the Python the modules ran with
    assert str(installed_collection) in run(installed_collection, workdir, "ansible-galaxy", "collection", "list",
                                            "godot_fleet.fleet").stdout  # fmt: skip
    results = probe_many([f"127.0.0.1:{p}" for p in ports], timeout=5.0)
    assert all(r.ok for r in results), results

    again = deploy()
    assert again.ok and again.changed == 0, again.changed_tasks() or str(again)
    check = deploy("--check", "--diff")
    assert check.ok and check.changed == 0, check.changed_tasks() or str(check)
    assert list(workdir.iterdir()) == []  # nothing written where the user stands
