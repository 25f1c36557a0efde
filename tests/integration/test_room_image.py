"""build-room-image.yml end to end: a fresh build of the room image with podman, re-run and check mode without
changes, what is in the image, real rooms from it (ENet probe, headless Godot client, idle exit, stop), bad input.

The test builds its own images (localhost/godot-fleet/gf-image-test:<VERSION> on its own runtime base
localhost/godot-fleet/gf-image-test-runtime) so that the shared demo-room image is never touched.
Ports: 127.0.0.1:15300-15399 only. Every container is named gf-image-test-... and removed afterwards.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed import playbook
from testbed.enet_probe import probe
from testbed.playbook import Result

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "dist" / "VERSION").read_text().strip() if (ROOT / "dist" / "VERSION").is_file() else ""
NAME = "localhost/godot-fleet/gf-image-test"
BASE_NAME = "localhost/godot-fleet/gf-image-test-runtime"
IMAGE = f"{NAME}:{VERSION}"
CONTAINER = "gf-image-test"
ROOM_PORT = 15301
EXPORTED_PORT = 15302
REGISTRY_PORT = 15310
EXPORTED_IMAGE = f"{NAME}-exported:{VERSION}"
GODOT_IMAGE = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/godot:forky"
ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_FORCE_COLOR="0",
)


@pytest.fixture(autouse=True)
def game_build() -> None:
    if not VERSION:
        pytest.fail("no game build in dist/: run `make game`")


def podman(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=ENV, timeout=timeout, check=check
    )  # fmt: skip


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref).returncode == 0


def remove_test_images() -> None:
    """The test's containers, the room image (a child of the base), every tag of the test base, and the untagged
    images the test left (earlier builds of its tags: they name the test base in a label).

    Never `rmi -f`: with the layer cache, a test image can be the same image as the shared demo-room one, and a
    forced removal would delete it under every tag. A plain rmi only untags an image that has other tags.
    """
    podman("rm", "-f", "-t", "0", *containers())
    podman("rmi", IMAGE)
    podman("rmi", EXPORTED_IMAGE)
    # `podman images NAME` lists every name of the matching images: keep the test base's own tags
    names = podman("images", "--format", "{{.Repository}}:{{.Tag}}", BASE_NAME).stdout.split()
    tags = [ref for ref in names if ref.startswith(f"{BASE_NAME}:")]
    for ref in [*tags, f"{NAME}:check"]:
        podman("rmi", ref)
    dangling = podman("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split()
    for image in dangling:
        labels = inspect(image)["Config"].get("Labels") or {}
        if (
            labels.get("org.opencontainers.image.base.name", "").startswith(f"{BASE_NAME}:")
            or labels.get("org.opencontainers.image.title") == "gf-image-test exported"
        ):
            podman("rmi", image)


def containers() -> list[str]:
    out = podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{CONTAINER}").stdout
    return out.split()


def build_values(build_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The demo build's inputs and the test's image names, building in `build_dir`."""
    values: dict[str, Any] = {
        **demo_inputs(),
        "rooms_image_name": NAME,
        "rooms_image_base_name": BASE_NAME,
        "rooms_image_build_dir": str(build_dir),
    }
    return values | overrides


@dataclass
class Build:
    build_dir: Path
    result: Result

    def values(self, **overrides: Any) -> dict[str, Any]:
        return build_values(self.build_dir, **overrides)


def changed_tasks(result: Result) -> list[str]:
    """The tasks that reported a change, by name (a role's tasks as `godot_fleet.fleet.ROLE : NAME`)."""
    return [t.task for t in result.tasks if t.changed]


def run_playbook(values: dict[str, Any], *args: str, installed: Path | None = None) -> Result:
    return playbook.run("build-room-image.yml", values, *args, env=ENV, installed=installed)


def demo_inputs() -> dict[str, str]:
    """The build inputs by name (the playbook has no default: it knows no build)."""
    dist = ROOT / "dist"
    return {
        "godot_fleet_room_version": VERSION,
        "godot_fleet_room_pack": str(dist / f"godot-fleet-demo-{VERSION}.pck"),
        "godot_fleet_room_runtime_archive": str(dist / f"godot-fleet-demo-{VERSION}-portable-linux-x86_64.tar.gz"),
    }


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """A fresh build: the test images are removed first, and again at the end (also on failure)."""
    remove_test_images()
    build_dir = tmp_path_factory.mktemp("room-image")
    try:
        result = run_playbook(build_values(build_dir))
        assert result.ok, str(result)
        print(f"\nfresh build (base + room image): {result.seconds:.1f} s")
        yield Build(build_dir, result)
    finally:
        remove_test_images()


@pytest.fixture
def room_name() -> Iterator[str]:
    """A container name for one test; the container is removed afterwards."""
    name = f"{CONTAINER}-{os.getpid()}-{time.monotonic_ns()}"
    yield name
    podman("rm", "-f", "-t", "0", name)


def inspect(ref: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", ref, check=True).stdout)
    return data[0]


def wait_for_log(name: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        proc = podman("logs", name)
        logs = proc.stdout + proc.stderr
        if text in logs:
            return logs
        assert time.monotonic() < deadline, f"{name} did not print {text!r}: {logs[-3000:]}"
        time.sleep(0.1)


def test_fresh_build_builds_base_and_room(build: Build) -> None:
    assert build.result.changed > 0
    assert build.result.task("Show the image reference").message.startswith(f"room image: {IMAGE} (base {BASE_NAME}:")
    assert image_exists(IMAGE)
    labels = inspect(IMAGE)["Config"]["Labels"]
    assert image_exists(labels["org.opencontainers.image.base.name"])
    # the unpacked runtime is not kept once the base image holds it
    assert not list(build.build_dir.glob("base-*"))


def test_rerun_changes_nothing(build: Build) -> None:
    before = inspect(IMAGE)["Id"]
    result = run_playbook(build.values())
    print(f"\ncached re-run: {result.seconds:.1f} s")
    assert result.ok, str(result)
    assert result.changed == 0, changed_tasks(result)
    assert inspect(IMAGE)["Id"] == before


def test_check_mode_on_converged_state_changes_nothing(build: Build, installed_collection: Path) -> None:
    """From the installed collection (the build named explicitly): the same roles compute the same images."""
    result = run_playbook(build.values(), "--check", installed=installed_collection)
    assert result.ok, str(result)
    assert result.changed == 0, changed_tasks(result)


def test_no_build_is_refused_with_what_to_set(installed_collection: Path, tmp_path: Path) -> None:
    values = {"rooms_image_build_dir": str(tmp_path)}  # and no build: the installed collection has no dist/
    result = run_playbook(values, "--check", installed=installed_collection)
    assert not result.ok
    wanted = "rooms_image_version (godot_fleet_room_version in the playbooks, with godot_fleet_room_pack and"
    assert wanted in " ".join(result.text.split()), str(result)


def test_check_mode_reports_what_would_be_built_and_builds_nothing(build: Build) -> None:
    values = build.values(rooms_image_tag="check", rooms_image_base_name=f"{BASE_NAME}-check")
    result = run_playbook(values, "--check")
    assert result.ok, str(result)
    assert result.changed > 0
    assert f"would build the runtime base {BASE_NAME}-check:" in result.text, str(result)
    assert not image_exists(f"{NAME}:check")
    assert not podman("images", "-q", f"{BASE_NAME}-check").stdout.strip()


def test_a_changed_input_rebuilds_only_the_room_image(build: Build) -> None:
    """A new CMD default rebuilds the room image on the same base; the replaced image is removed."""
    before = inspect(IMAGE)
    base = before["Config"]["Labels"]["org.opencontainers.image.base.name"]
    try:
        result = run_playbook(build.values(rooms_image_max_players=4))
        assert result.ok, str(result)
        assert "godot_fleet.fleet.rooms_image : Build the runtime base image" not in changed_tasks(result)
        changed_image = inspect(IMAGE)
        assert changed_image["Config"]["Cmd"] == ["--max-players=4", "--empty-server-timeout=300"]
        assert changed_image["Config"]["Labels"]["org.opencontainers.image.base.name"] == base
        assert not image_exists(before["Id"])
    finally:
        restored = run_playbook(build.values())
        assert restored.ok, str(restored)
    assert inspect(IMAGE)["Config"]["Cmd"] == ["--max-players=8", "--empty-server-timeout=300"]
    assert not image_exists(changed_image["Id"])


def test_a_repacked_runtime_with_the_same_engine_rebuilds_nothing(build: Build, tmp_path: Path) -> None:
    """Every game build repacks the runtime (new dates, new tarball checksum): the base follows the engine's files."""
    runtime = ROOT / "dist" / f"godot-fleet-demo-{VERSION}-portable-linux-x86_64.tar.gz"
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(runtime), "-C", str(unpacked), "engine"], check=True)
    subprocess.run(["touch", "-d", "2001-01-01", *map(str, unpacked.rglob("*"))], check=True)
    repacked = tmp_path / "repacked.tar.gz"
    subprocess.run(["tar", "-C", str(unpacked), "-I", "gzip -1", "-cf", str(repacked), "engine"], check=True)
    result = run_playbook(build.values(godot_fleet_room_runtime_archive=str(repacked)))
    assert result.ok, str(result)
    assert result.changed == 0, changed_tasks(result)


def test_image_configuration(build: Build) -> None:
    config = inspect(IMAGE)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == [
        "/opt/godot/engine/lib/ld-linux-x86-64.so.2", "--library-path", "/opt/godot/engine/lib",
        "/opt/godot/engine/godot", "--headless", "--main-pack", "/opt/game/game.pck", "--", "--server", "--port=12077",
    ]  # fmt: skip
    assert config["Cmd"] == ["--max-players=8", "--empty-server-timeout=300"]
    assert config["StopSignal"] == "SIGKILL"
    assert config["ExposedPorts"] == {"12077/udp": {}}
    assert config["WorkingDir"] == "/home/godot"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == "godot-fleet demo room"
    assert labels["godot-fleet.port"] == "12077"
    assert labels["godot-fleet.engine.version"].startswith("4.")  # inherited from the runtime base


def test_image_holds_only_the_runtime_and_the_game(build: Build, room_name: str) -> None:
    shell = podman("run", "--rm", "--name", room_name, "--entrypoint", "/bin/sh", IMAGE, "-c", "true")
    assert shell.returncode != 0
    assert "no such file or directory" in shell.stderr.lower(), shell.stderr
    podman("create", "--name", room_name, IMAGE, check=True)
    export = subprocess.run(["podman", "export", room_name], capture_output=True, env=ENV, check=True, timeout=120)
    with tarfile.open(fileobj=io.BytesIO(export.stdout)) as tar:
        members = {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}
    files = sorted(name for name, m in members.items() if m.isfile())
    outside_engine = [f for f in files if not f.startswith("opt/godot/engine/")]
    # podman adds empty mount points for /etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv
    runtime_mounts = {"etc/hosts", "etc/resolv.conf", "etc/hostname", "run/.containerenv"}
    assert set(outside_engine) - runtime_mounts == {
        "etc/passwd", "etc/group", "etc/fonts/fonts.conf", "opt/game/game.pck",
    }, outside_engine  # fmt: skip
    assert "opt/godot/engine/godot" in files and "opt/godot/engine/lib/ld-linux-x86-64.so.2" in files
    assert not any(f.startswith(("bin/", "sbin/", "usr/", "lib/", "lib64/")) for f in files)
    home, tmp = members["home/godot"], members["tmp"]
    assert (home.uid, home.gid) == (10001, 10001)
    assert tmp.mode & 0o1777 == 0o1777
    print(f"\n{len(files)} files, {sum(m.size for m in members.values()) / 2**20:.0f} MiB")


def test_room_serves_enet_and_godot_clients_as_non_root(build: Build, room_name: str) -> None:
    start = time.monotonic()
    podman("run", "-d", "--name", room_name, "-p", f"127.0.0.1:{ROOM_PORT}:12077/udp", IMAGE, check=True)
    logs = wait_for_log(room_name, "GODOT_FLEET_READY")
    print(f"\nroom start -> GODOT_FLEET_READY: {time.monotonic() - start:.2f} s")
    assert f"version={VERSION}" in logs

    pid = podman("inspect", "--format", "{{.State.Pid}}", room_name, check=True).stdout.strip()
    status = Path(f"/proc/{pid}/status").read_text()
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines() if line.startswith(("Uid", "Gid"))}
    assert ids == {"Uid": ["10001"] * 4, "Gid": ["10001"] * 4}, ids

    result = probe("127.0.0.1", ROOM_PORT, timeout=10)
    assert result.ok, str(result)
    pck = ROOT / "dist" / f"godot-fleet-demo-{VERSION}.pck"
    client = podman(
        "run", "--rm", "--network", "host", "--name", f"{room_name}-client", "-v", f"{pck}:/game.pck:ro",
        GODOT_IMAGE, "godot", "--headless", "--main-pack", "/game.pck", "--", "--client",
        f"--connect=127.0.0.1:{ROOM_PORT}", "--timeout=20",
        timeout=180,
    )  # fmt: skip
    assert client.returncode == 0 and "GODOT_FLEET_CLIENT_OK" in client.stdout, client.stdout[-3000:]

    # STOPSIGNAL SIGKILL: the stop does not wait for the (long) stop timeout, Godot being deaf to SIGTERM as PID 1
    stop = podman("stop", "--time", "300", room_name, timeout=120)
    assert stop.returncode == 0, stop.stderr
    state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", room_name).stdout.split()
    assert state == ["exited", "137"]


def test_empty_room_exits_by_itself_with_code_0(build: Build, room_name: str) -> None:
    podman("run", "-d", "--name", room_name, IMAGE, "--max-players=8", "--empty-server-timeout=3", check=True)
    waited = podman("wait", room_name, timeout=60)
    assert waited.stdout.strip() == "0", waited
    logs = podman("logs", room_name).stdout
    assert "GODOT_FLEET_READY" in logs and "GODOT_FLEET_EMPTY_TIMEOUT" in logs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"godot_fleet_room_pack": "/nonexistent/game.pck"}, "needs rooms_image_pack, the game pack (.pck)"),
        ({"godot_fleet_room_runtime_archive": "/nonexistent/rt.tar.gz"}, "built from rooms_image_runtime_archive"),
        ({"rooms_image_port": 70000}, "rooms_image_port must be a port number"),
        ({"rooms_image_empty_server_timeout": "-1"}, "rooms_image_empty_server_timeout must be"),
        ({"rooms_image_name": "Not/An/Image"}, "rooms_image_name must be a lower-case image name"),
        ({"rooms_image_tag": "bad tag"}, "(got 'bad tag')"),
        ({"rooms_image_uid": 0}, "rooms_image_uid must be a non-root user id"),
    ],
    ids=["missing-pack", "missing-runtime", "port-70000", "negative-timeout", "bad-name", "bad-tag", "root"],
)
def test_bad_input_fails_before_anything_is_built(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    values = build_values(tmp_path / "build", **({"rooms_image_tag": "bad"} | overrides))
    result = run_playbook(values)
    assert not result.ok
    assert message in " ".join(result.text.split()), str(result)
    assert result.stats and result.changed == 0, str(result)
    assert not (tmp_path / "build").exists()
    assert not image_exists(f"{NAME}:bad")


def test_exported_style_on_an_os_base(build: Build, room_name: str) -> None:
    """The exported server (Debian's release template: it needs Debian testing's glibc) on the Godot forky image."""
    archive = ROOT / "dist" / f"godot-fleet-demo-{VERSION}-linux-x86_64.tar.gz"
    values = build.values(
        rooms_image_name=f"{NAME}-exported",
        rooms_image_title="gf-image-test exported",
        rooms_image_style="exported",
        rooms_image_base=GODOT_IMAGE,
        rooms_image_exported_archive=str(archive),
    )
    first = run_playbook(values)
    assert first.ok, str(first)
    again = run_playbook(values)
    assert again.ok and again.changed == 0, changed_tasks(again) or str(again)
    config = inspect(EXPORTED_IMAGE)["Config"]
    assert config["Entrypoint"] == [
        "/opt/game/godot-fleet-demo.x86_64", "--headless", "--", "--server", "--port=12077",
    ]  # fmt: skip
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["--max-players=8", "--empty-server-timeout=300"]

    podman("run", "-d", "--name", room_name, "-p", f"127.0.0.1:{EXPORTED_PORT}:12077/udp", EXPORTED_IMAGE,
           "--max-players=2", "--empty-server-timeout=3", check=True)  # fmt: skip
    assert "max_players=2" in wait_for_log(room_name, "GODOT_FLEET_READY")
    result = probe("127.0.0.1", EXPORTED_PORT, timeout=10)
    assert result.ok, str(result)
    # empty again after the probe: the room ends itself
    waited = podman("wait", room_name, timeout=60)
    assert waited.stdout.strip() == "0", waited


def registry_binary() -> Path | None:
    """Debian's docker-registry (the CNCF distribution registry): from PATH, or unpacked (not installed, so no
    service is started) into .cache/registry with `apt-get download`."""
    found = shutil.which("docker-registry")
    if found:
        return Path(found)
    cache = ROOT / ".cache" / "registry"
    binary = cache / "usr" / "bin" / "docker-registry"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        download = subprocess.run(
            ["apt-get", "download", "docker-registry"], cwd=cache, capture_output=True, text=True, check=False
        )
        debs = sorted(cache.glob("docker-registry_*.deb"))
        if download.returncode != 0 or not debs:
            return None
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(cache)], check=True)
    return binary


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A plain-HTTP registry on 127.0.0.1:REGISTRY_PORT with its storage in tmp_path; stopped afterwards."""
    binary = registry_binary()
    if binary is None:
        pytest.fail("no docker-registry binary: `apt-get download docker-registry` failed (apt lists: apt-get update)")
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'storage'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{REGISTRY_PORT}'}}\n"
        "log: {level: warn}\n"
    )
    log = (tmp_path / "registry.log").open("w")
    proc = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{REGISTRY_PORT}/v2/"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "registry.log").read_text()
                time.sleep(0.1)
        yield f"127.0.0.1:{REGISTRY_PORT}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_push_to_a_registry_once(build: Build, registry: str) -> None:
    repository = f"{registry}/godot-fleet/gf-image-test"
    values = build.values(rooms_image_push_to=repository, rooms_image_push_tls_verify=False)
    result = run_playbook(values)
    assert result.ok, str(result)
    assert changed_tasks(result) == [
        "godot_fleet.fleet.rooms_image : Push the room image (credentials from podman login or the auth file of the "
        "environment)",
        "godot_fleet.fleet.rooms_image : Remember what was pushed",
    ]
    with urllib.request.urlopen(f"http://{registry}/v2/godot-fleet/gf-image-test/tags/list", timeout=10) as answer:
        assert json.load(answer) == {"name": "godot-fleet/gf-image-test", "tags": [VERSION]}
    # pushed already: neither a re-run nor check mode pushes again
    for args in [(), ("--check",)]:
        again = run_playbook(values, *args)
        assert again.ok and again.changed == 0, changed_tasks(again) or str(again)
