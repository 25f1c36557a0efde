"""Your own game, as README.md's "Your own game" tells it, with a game this project did not write for itself:
tests/games/beacon (its own scenes, networking and command line; no export preset, no add-on of this project).

Every command of the guide's ```sh blocks runs verbatim from the installed collection in a directory holding the
game as `mygame/`, with the files the commands name (build.yml, deploy.yml, hosts.yml) written for this machine:
the engine is Debian testing's Godot in the godot image (godot_build_container_image) instead of the official
download the guide shows (no GitHub here), the artifact store is an HTTP server on 127.0.0.1, and the game host is a
local systemd container (Debian 12) reached with the podman connection. The guide's own YAML files are checked
against the roles' argument specs. Then: re-runs and check mode change nothing, the build is reproducible, the
engine also runs on the build host with a downloaded, checksum-verified export template (.tpz), an update, a
release that breaks the command-line contract (one clear failure, rolled back, removed, deployable again once
fixed), and the same game in the room image. Ports: 127.0.0.1:13460-13469.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import ROOT, extract_all, hosts, playbook, serve_files
from testbed.enet_probe import probe_many
from testbed.playbook import Result

GAME = ROOT / "tests" / "games" / "beacon"
HOST = "gf-own-game"
PORTS = [13461, 13462]
ARTIFACT_PORT = 13469
ROOM_PORT = 13465
GUIDE_PORT = 13466
IMAGES = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet")
GODOT_IMAGE = f"{IMAGES}/godot:forky"
ROOM_IMAGE = f"{IMAGES}/gf-own-game-room"
ENV = dict(os.environ)


def guide() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Your own game\n", 1)[1].split("\n## ", 1)[0]


def guide_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", guide(), re.M | re.S)


def guide_commands() -> list[str]:
    return [line for block in guide_blocks("sh") for line in block.splitlines() if line.strip()]


@dataclass
class User:
    """Where the user stands: their game as mygame/, the installed collection, no ansible.cfg."""

    cwd: Path
    installed: Path

    def playbook(self, command: str, *extra: str) -> Result:
        """The guide's `ansible-playbook [-i INVENTORY] PLAYBOOK ARG...` command as the user types it, run through
        testbed.playbook (the same ansible-playbook and arguments; the result read as JSON) with `extra` arguments."""
        argv = shlex.split(command)
        assert argv[0] == "ansible-playbook", command
        inventories: list[str] = []
        target, args = "", list[str]()
        words = iter(argv[1:])
        for word in words:
            if word in ("-i", "--inventory"):
                inventories.append(next(words))
            elif word in ("-e", "--extra-vars"):
                args += [word, next(words)]
            elif word.startswith("-") or target:
                args.append(word)
            else:
                target = word
        assert target.startswith("godot_fleet.fleet."), command
        return playbook.run(
            target, None, *args, *extra, inventory=inventories, env=ENV, installed=self.installed, cwd=self.cwd,
            timeout=1200,
        )  # fmt: skip

    def run(self, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """One of the guide's ad-hoc `ansible` commands, as the user types it."""
        env = {k: v for k, v in ENV.items() if not k.startswith("ANSIBLE_")}
        env["ANSIBLE_COLLECTIONS_PATH"] = str(self.installed)
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.default"
        argv = [*shlex.split(command), *extra]
        return subprocess.run(argv, cwd=self.cwd, env=env, capture_output=True, text=True, check=False, timeout=1200)

    def write(self, name: str, values: dict[str, Any]) -> None:
        (self.cwd / name).write_text(yaml.safe_dump(values))

    @property
    def dist(self) -> Path:
        return self.cwd / "dist"

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dist / "release.json").read_text())
        return data

    def set_version(self, version: str) -> None:
        project = self.cwd / "mygame" / "project.godot"
        project.write_text(re.sub(r'config/version="[^"]*"', f'config/version="{version}"', project.read_text()))


def command(prefix: str) -> str:
    """The guide's command, with the guide's room ports 12077/12078 as this test's (other tests and `make demo`
    use 12077 on this machine's loopback, which the game host container shares)."""
    found = [c for c in guide_commands() if c.startswith(prefix)]
    assert len(found) == 1, f"the guide should have one command starting with {prefix!r}: {guide_commands()}"
    return found[0].replace("12077", str(PORTS[0])).replace("12078", str(PORTS[1]))


BUILD = "ansible-playbook godot_fleet.fleet.build_game"
DEPLOY = "ansible-playbook -i hosts.yml godot_fleet.fleet.deploy_hosts"
PROBE = "ansible -i hosts.yml godot_servers -m godot_fleet.fleet.room_probe"
LOGS = "ansible -i hosts.yml godot_servers -b -m ansible.builtin.command"


def ok(result: Result) -> Result:
    assert result.ok, str(result)
    return result


def ok_text(proc: subprocess.CompletedProcess[str]) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def user(installed_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    cwd = tmp_path_factory.mktemp("own-game")
    shutil.copytree(GAME, cwd / "mygame", ignore=shutil.ignore_patterns(".godot"))
    u = User(cwd, installed_collection)
    u.write(
        "build.yml",
        {
            "godot_build_container_image": GODOT_IMAGE,
            "godot_build_engine": "/usr/bin/godot",
            "godot_build_export_template": "/usr/bin/godot-template-release",
            # Debian 12 hosts: Debian testing's engine needs a newer glibc, so the portable runtime
            "godot_build_artifacts": ["pack", "exported", "portable"],
        },
    )
    u.write(
        "hosts.yml",
        {"godot_servers": {"hosts": {HOST: {"ansible_connection": "containers.podman.podman"}},
                           "vars": {"ansible_python_interpreter": "/usr/bin/python3"}}},
    )  # fmt: skip
    yield u


@pytest.fixture(scope="module")
def artifact_store(user: User) -> Iterator[str]:
    """dist/ over HTTP on 127.0.0.1: the user's artifact store."""
    user.dist.mkdir(exist_ok=True)
    with serve_files(user.dist, ARTIFACT_PORT) as url:
        yield url


@pytest.fixture(scope="module")
def game_host() -> Iterator[str]:
    hosts.start(HOST)
    try:
        yield HOST
    finally:
        hosts.remove(HOST)


def deploy_vars(user: User, store: str, **overrides: Any) -> dict[str, Any]:
    """deploy.yml as the guide shows it, for the portable artifact the build printed."""
    manifest = user.manifest()
    portable = manifest["files"]["portable"]
    return {
        "godot_server_version": manifest["release"],
        "godot_server_url": f"{store}/{portable['file']}",
        "godot_server_checksum": f"sha256:{store}/SHA256SUMS",
        **portable["deploy"],
        "godot_server_ports": PORTS,
        "godot_server_max_players": 4,
        "godot_server_bind": "127.0.0.1",
        **overrides,
    }


def current_release(host: str) -> str:
    link = subprocess.run(["podman", "exec", host, "readlink", "/opt/godot-server/current"], capture_output=True,
                          text=True, env=ENV, check=True)  # fmt: skip
    return Path(link.stdout.strip()).name


def game_client(pack: Path, port: int) -> subprocess.CompletedProcess[str]:
    """The game's own headless client, run from its exported pack in the godot image."""
    return subprocess.run(
        ["podman", "run", "--rm", "--network", "host", "-v", f"{pack}:/game.pck:ro", GODOT_IMAGE, "godot",
         "--headless", "--main-pack", "/game.pck", "--", f"--connect=127.0.0.1:{port}", "--timeout=20"],
        capture_output=True, text=True, check=False, timeout=180, env=ENV,
    )  # fmt: skip


def test_the_guide_yaml_uses_only_documented_variables() -> None:
    specs = {}
    for role in ("godot_build", "godot_server"):
        data = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        specs.update(data["argument_specs"]["main"]["options"])
    blocks = [yaml.safe_load(b) for b in guide_blocks("yaml")]
    assert len(blocks) == 2, "the guide shows build.yml and deploy.yml"
    for values in blocks:
        unknown = set(values) - set(specs)
        assert not unknown, unknown
        for name, value in values.items():
            if "choices" in specs[name]:
                assert set(value if isinstance(value, list) else [value]) <= set(specs[name]["choices"]), name
    assert {c.split(" -")[0] for c in guide_commands()} >= {BUILD, DEPLOY.split(" -")[0], "ansible"}


def test_the_guide_gdscript_serves_a_client(tmp_path: Path) -> None:
    """The guide's minimal server entry, as an autoload of an otherwise empty project, under the contract."""
    [script] = guide_blocks("gdscript")
    project = tmp_path / "minimal"
    project.mkdir()
    (project / "net.gd").write_text(script)
    (project / "main.tscn").write_text('[gd_scene format=3]\n\n[node name="Main" type="Node"]\n')
    (project / "project.godot").write_text(
        'config_version=5\n\n[application]\n\nconfig/name="minimal"\nrun/main_scene="res://main.tscn"\n'
        'run/flush_stdout_on_print=true\n\n[autoload]\n\nNet="*res://net.gd"\n'
    )
    name = "gf-own-game-minimal"
    args = ["--server", f"--port={GUIDE_PORT}", "--max-players=2", "--bind=127.0.0.1"]
    subprocess.run(["podman", "run", "-d", "--rm", "--init", "--network", "host", "--name", name, "-v",
                    f"{project}:/src:ro", GODOT_IMAGE, "sh", "-c",
                    'cp -a /src /tmp/p && exec godot --headless --path /tmp/p -- "$@"', "godot", *args],
                   env=ENV, check=True, capture_output=True)  # fmt: skip
    try:
        results = probe_many([f"127.0.0.1:{GUIDE_PORT}"], timeout=30, expect="connect")
        logs = subprocess.run(["podman", "logs", name], env=ENV, capture_output=True, text=True).stdout
        assert results[0].ok, (results, logs)
        assert f"listening on UDP port {GUIDE_PORT}" in logs, logs
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=ENV, capture_output=True, check=False)


def test_build_the_game(user: User) -> None:
    result = ok(user.playbook(command(BUILD)))
    assert result.stats["localhost"]["changed"] == 1, str(result)
    manifest = user.manifest()
    assert manifest["name"] == "beacon" and manifest["version"] == "0.3.1"
    assert re.fullmatch(r"0\.3\.1\+[0-9a-f]{10}", manifest["release"])
    assert (user.dist / "RELEASE").read_text().strip() == manifest["release"]
    assert (user.dist / "VERSION").read_text().strip() == "0.3.1"
    # the project had no preset: the exported copy got one in Godot's dedicated-server mode
    assert manifest["dedicated_server"] is True and "dedicated server" in manifest["preset"]
    assert not (user.cwd / "mygame" / "export_presets.cfg").exists()
    assert not (user.cwd / "mygame" / ".godot").exists()
    # .uid files and scene ids present: nothing makes builds differ
    assert "two builds differ" not in " ".join(result.text.split()), str(result)
    for sums, algorithm in (("SHA256SUMS", "sha256"), ("SHA512SUMS", "sha512")):
        lines = (user.dist / sums).read_text().splitlines()
        assert len(lines) == 3
        for line in lines:
            digest, name = line.split("  ")
            assert hashlib.new(algorithm, (user.dist / name).read_bytes()).hexdigest() == digest
    with tarfile.open(user.dist / manifest["files"]["exported"]["file"]) as archive:
        assert archive.getnames() == ["beacon.x86_64", "beacon.pck"]
        assert {m.uid for m in archive.getmembers()} == {0}
    with tarfile.open(user.dist / manifest["files"]["portable"]["file"]) as archive:
        names = archive.getnames()
        assert {"godot", "beacon.pck", "engine/lib/ld-linux-x86-64.so.2", "engine/BUNDLE.txt"} <= set(names)
    assert manifest["files"]["exported"]["deploy"] == {"godot_server_style": "exported",
                                                       "godot_server_executable": "beacon.x86_64"}  # fmt: skip


def test_a_rebuild_changes_nothing_and_is_reproducible(user: User, tmp_path: Path) -> None:
    sums = (user.dist / "SHA256SUMS").read_text()
    again = ok(user.playbook(command(BUILD)))
    assert again.changed == 0, again.changed_tasks()
    check = ok(user.playbook(command(BUILD), "--check"))
    assert check.changed == 0, check.changed_tasks()
    other = tmp_path / "again"
    ok(user.playbook(command(BUILD), "-e", f"godot_build_dest={other}"))
    assert (other / "SHA256SUMS").read_text() == sums
    assert json.loads((other / "release.json").read_text())["release"] == user.manifest()["release"]


def test_the_engine_on_the_build_host_with_a_downloaded_template(
    user: User, artifact_store: str, tmp_path: Path
) -> None:
    """The other way to build: no container, the engine on the build host (here the portable engine of the first
    build, which runs on this Debian 12 machine) and the export template from a URL, checked against a sums file,
    in the official .tpz layout."""
    engine_dir = tmp_path / "engine"
    with tarfile.open(user.dist / user.manifest()["files"]["portable"]["file"]) as archive:
        extract_all(archive, engine_dir)
    with tarfile.open(user.dist / user.manifest()["files"]["exported"]["file"]) as archive:
        template = archive.extractfile("beacon.x86_64")
        assert template is not None
        template_bytes = template.read()
    templates = user.dist / "templates"  # served by the artifact store
    templates.mkdir()
    with zipfile.ZipFile(templates / "Godot_v4.6.3-stable_export_templates.tpz", "w") as tpz:
        tpz.writestr("templates/version.txt", "4.6.3.stable\n")
        tpz.writestr("templates/linux_release.x86_64", template_bytes)
    digest = hashlib.sha512((templates / "Godot_v4.6.3-stable_export_templates.tpz").read_bytes()).hexdigest()
    (templates / "SHA512-SUMS.txt").write_text(f"{digest}  Godot_v4.6.3-stable_export_templates.tpz\n")
    values = {
        "godot_build_project": "mygame",
        "godot_build_dest": str(tmp_path / "dist"),
        "godot_build_engine": str(engine_dir / "godot"),
        "godot_build_export_template": f"{artifact_store}/templates/Godot_v4.6.3-stable_export_templates.tpz",
        "godot_build_export_template_checksum": f"sha512:{artifact_store}/templates/SHA512-SUMS.txt",
        "godot_build_download_dir": str(tmp_path / "downloads"),
    }
    try:
        (tmp_path / "host-build.yml").write_text(yaml.safe_dump(values))
        result = ok(user.playbook(BUILD, "-e", f"@{tmp_path / 'host-build.yml'}"))
        download = result.task("godot_fleet.fleet.godot_build : Download and verify the checksum of the template")
        assert not download.result.get("skipped"), str(result)
        built = json.loads((tmp_path / "dist" / "release.json").read_text())
        assert set(built["files"]) == {"exported"}
        with tarfile.open(tmp_path / "dist" / built["files"]["exported"]["file"]) as archive:
            assert archive.getnames() == ["beacon.x86_64", "beacon.pck"]
        # a template that does not match its sums file is refused before anything is exported
        (templates / "SHA512-SUMS.txt").write_text(f"{'0' * 128}  Godot_v4.6.3-stable_export_templates.tpz\n")
        shutil.rmtree(tmp_path / "downloads")
        refused = user.playbook(
            BUILD, "-e", f"@{tmp_path / 'host-build.yml'}", "-e", f"godot_build_dest={tmp_path / 'x'}"
        )
        assert not refused.ok and "checksum" in " ".join(f.message for f in refused.failures).lower(), str(refused)
        assert not (tmp_path / "x" / "release.json").exists()
    finally:
        shutil.rmtree(templates)


def test_deploy_probe_and_play(user: User, artifact_store: str, game_host: str) -> None:
    user.write("deploy.yml", deploy_vars(user, artifact_store))
    result = ok(user.playbook(command(DEPLOY)))
    assert result.stats[game_host]["changed"] > 0, str(result)
    assert current_release(game_host) == user.manifest()["release"]
    probed = ok_text(user.run(command(PROBE)))
    assert f"{game_host} | SUCCESS" in probed and '"expect": "spawn"' in probed, probed
    logs = ok_text(user.run(command(LOGS)))
    assert "BEACON_SERVER_LISTENING port=12077" not in logs and "BEACON_SERVER_LISTENING port=13461" in logs, logs
    results = probe_many([f"127.0.0.1:{p}" for p in PORTS], timeout=5, expect="spawn")
    assert all(r.ok for r in results), results
    client = game_client(user.dist / user.manifest()["files"]["pack"]["file"], PORTS[0])
    assert client.returncode == 0 and "BEACON_CLIENT_OK" in client.stdout, client.stdout[-3000:] + client.stderr[-2000:]
    again = ok(user.playbook(command(DEPLOY)))
    assert again.changed == 0, again.changed_tasks()
    check = ok(user.playbook(command(DEPLOY), "--check", "--diff"))
    assert check.changed == 0, check.changed_tasks()


def test_update_to_a_new_version(user: User, artifact_store: str, game_host: str) -> None:
    user.set_version("0.3.2")
    ok(user.playbook(command(BUILD)))
    release = user.manifest()["release"]
    assert release.startswith("0.3.2+")
    user.write("deploy.yml", deploy_vars(user, artifact_store))
    check = ok(user.playbook(command(DEPLOY), "--check"))
    assert f"would switch to release {release}; would restart rooms {PORTS[0]}, {PORTS[1]}" in check.text, str(check)
    ok(user.playbook(command(DEPLOY)))
    assert current_release(game_host) == release
    assert all(r.ok for r in probe_many([f"127.0.0.1:{p}" for p in PORTS], timeout=5, expect="connect"))


def test_a_build_that_breaks_the_contract_is_rolled_back_and_removed(
    user: User, artifact_store: str, game_host: str
) -> None:
    serving = current_release(game_host)
    net = user.cwd / "mygame" / "net.gd"
    original = net.read_text()
    # a game that wants an argument the contract does not give: it refuses to start (exit 2)
    start = "func _start_server(opts: Dictionary) -> void:\n"
    assert start in original, "tests/games/beacon/net.gd changed: adapt this test"
    net.write_text(
        original.replace(
            start, start + '\tif not opts.has("region"):\n\t\t_bad_args("missing --region=NAME")\n\t\treturn\n'
        )
    )
    user.set_version("0.3.3")
    ok(user.playbook(command(BUILD)))
    user.write("deploy.yml", deploy_vars(user, artifact_store, godot_server_version="0.3.3"))
    failed = user.playbook(command(DEPLOY))
    assert not failed.ok, str(failed)
    # one failure: the message, no raw module failure before it (not even a rescued or ignored one)
    assert len(failed.failures) == 1, str(failed)
    [failure] = failed.failures
    assert failure.task == "godot_fleet.fleet.godot_server : Stop with the reason", str(failed)
    message = failure.message
    # (the wait for the rooms ends with "non-zero return code": registered, not shown, and not in the message)
    assert "non-zero return code" not in message, message
    assert "release 0.3.3 did not come up on gf-own-game" in message
    assert f"Rolled back: the rooms run {serving} again." in message
    assert "Release 0.3.3 was removed from the host" in message
    assert f"--server --port={PORTS[0]} --max-players=4 --bind=127.0.0.1" in message
    log = message.split("since the switch:", 1)[1]
    assert "missing --region=NAME" in log, log
    assert "BEACON_SERVER_LISTENING" not in log, log  # the new release's lines only
    assert current_release(game_host) == serving
    assert all(r.ok for r in probe_many([f"127.0.0.1:{p}" for p in PORTS], timeout=5, expect="connect"))
    gone = subprocess.run(["podman", "exec", game_host, "test", "-e", "/opt/godot-server/releases/0.3.3"], env=ENV)
    assert gone.returncode == 1

    # fixed, the same label deploys
    net.write_text(original)
    ok(user.playbook(command(BUILD)))
    user.write("deploy.yml", deploy_vars(user, artifact_store, godot_server_version="0.3.3"))
    ok(user.playbook(command(DEPLOY)))
    assert current_release(game_host) == "0.3.3"
    assert all(r.ok for r in probe_many([f"127.0.0.1:{p}" for p in PORTS], timeout=5, expect="spawn"))


def test_the_same_game_in_the_room_image(user: User) -> None:
    manifest = user.manifest()
    values = {
        "godot_fleet_room_version": manifest["version"],
        "godot_fleet_room_pack": str(user.dist / manifest["files"]["pack"]["file"]),
        "godot_fleet_room_runtime_archive": str(user.dist / manifest["files"]["portable"]["file"]),
        "rooms_image_name": ROOM_IMAGE,
        "rooms_image_base_name": f"{ROOM_IMAGE}-runtime",
        "rooms_image_build_dir": str(user.cwd / "room-image"),
        "rooms_image_title": "beacon room",
    }
    name = "gf-own-game-room"
    try:
        result = playbook.run("build-room-image.yml", values, env=ENV)
        assert result.ok, str(result)
        subprocess.run(["podman", "run", "-d", "--name", name, "-p", f"127.0.0.1:{ROOM_PORT}:12077/udp",
                        f"{ROOM_IMAGE}:{manifest['version']}"], env=ENV, check=True, capture_output=True)  # fmt: skip
        results = probe_many([f"127.0.0.1:{ROOM_PORT}"], timeout=10, expect="spawn")
        assert results[0].ok, results
        client = game_client(user.dist / manifest["files"]["pack"]["file"], ROOM_PORT)
        assert client.returncode == 0 and "BEACON_CLIENT_OK" in client.stdout, client.stdout[-3000:]
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=ENV, capture_output=True, check=False)
        subprocess.run(["podman", "rmi", f"{ROOM_IMAGE}:{manifest['version']}"], env=ENV, capture_output=True,
                       check=False)  # fmt: skip
        bases = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{ROOM_IMAGE}-runtime"],
                               env=ENV, capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
        for base in bases:
            subprocess.run(["podman", "rmi", base], env=ENV, capture_output=True, check=False)
