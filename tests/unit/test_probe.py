"""Tests of tests/probe/enet_probe.py.

The pure parts (target parsing, packet building/parsing, output) always run. The integration tests start the
demo game server (godot/demo) in the godot image on 127.0.0.1 and skip when podman or the image is missing.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "probe"))

import enet_probe  # noqa: E402
from enet_probe import ProbeResult, Target, build_ping, is_pong, parse_target, raw_payload  # noqa: E402

# --- pure parts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:12077", Target("127.0.0.1", 12077)),
        (" 10.0.0.5:1 ", Target("10.0.0.5", 1)),
        ("game.example.org:65535", Target("game.example.org", 65535)),
        ("127.0.0.1", Target("127.0.0.1", enet_probe.DEFAULT_PORT)),
    ],
)
def test_parse_target(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


def test_parse_target_default_port_argument() -> None:
    assert parse_target("localhost", default_port=19000) == Target("localhost", 19000)


@pytest.mark.parametrize(
    "text", ["", ":12077", "host:", "host:abc", "host:-1", "host:0", "host:65536", "host:1.5", "::1", "[::1]:12077"]
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


def test_target_str_round_trips() -> None:
    assert str(parse_target("127.0.0.1:19001")) == "127.0.0.1:19001"


def test_build_ping_is_a_raw_packet() -> None:
    assert build_ping("abc123") == b"\x03ping:abc123"


def test_raw_payload() -> None:
    assert raw_payload(b"\x03pong:ping:1") == b"pong:ping:1"
    assert raw_payload(b"\x03") == b""
    assert raw_payload(b"") is None
    # SPAWN (4), SYNC (6), SYS (7) and REMOTE_CALL (0, with flag bits) are not RAW.
    for command in (b"\x04", b"\x06", b"\x07", b"\x40"):
        assert raw_payload(command + b"pong:ping:1") is None


def test_is_pong() -> None:
    assert is_pong(b"\x03pong:ping:n1", "n1")
    assert not is_pong(b"\x03pong:ping:n2", "n1")
    assert not is_pong(b"\x04pong:ping:n1", "n1")
    assert not is_pong(b"\x03ping:n1", "n1")
    assert not is_pong(b"", "n1")


def test_nonce_and_peer_id() -> None:
    assert enet_probe.make_nonce() != enet_probe.make_nonce()
    for _ in range(1000):
        assert enet_probe.MIN_PEER_ID <= enet_probe.random_peer_id() <= enet_probe.MAX_PEER_ID


def test_result_lines() -> None:
    ok = ProbeResult(ok=True, handshake_ms=3.25, rtt_ms=7.5, target="127.0.0.1:1")
    assert ok.line() == "OK 127.0.0.1:1 handshake_ms=3.2 rtt_ms=7.5"
    fail = ProbeResult(ok=False, error="timeout after 1 s waiting for the ENet handshake", target="127.0.0.1:2")
    assert fail.line() == "FAIL 127.0.0.1:2 timeout after 1 s waiting for the ENet handshake"


def test_probe_many_nothing() -> None:
    assert enet_probe.probe_many([]) == []


@pytest.mark.parametrize("argv", [[], ["127.0.0.1:0"], ["127.0.0.1:1", "--timeout", "0"], ["x:1", "--timeout", "-1"]])
def test_cli_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        enet_probe.main(argv)
    assert exc.value.code == 2


def test_unresolvable_host_fails_cleanly() -> None:
    [result] = enet_probe.probe_many(["nonexistent.invalid:19000"], timeout=1)
    assert not result.ok
    assert result.error is not None and "resolve" in result.error


# --- integration: the demo server in the godot image ---------------------------------------------------------

IMAGE = os.environ.get("GF_GODOT_IMAGE", "localhost/godot-fleet/godot:forky")


def _podman() -> list[str] | None:
    exe = shutil.which("podman")
    if exe is None:
        return None
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "scripts" / "containers.conf"))
    if subprocess.run([exe, "image", "exists", IMAGE], check=False).returncode != 0:
        return None
    return [exe]


def _free_udp_port() -> int:
    """A free UDP port on 127.0.0.1 in 19000-19999 (the range reserved for experiments and tests)."""
    for port in random.sample(range(19000, 20000), 1000):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port in 19000-19999")


def _run_godot(podman: list[str], name: str, game_args: list[str], detach: bool) -> subprocess.CompletedProcess[str]:
    # A copy of the read-only project: Godot writes .godot/ next to project.godot.
    script = 'cp -a /src /tmp/p && rm -rf /tmp/p/.godot && exec godot --headless --path /tmp/p -- "$@"'
    cmd = [*podman, "run", "--rm", "--init", "--network", "host", "--name", name]
    cmd += ["-d"] if detach else []
    cmd += ["-v", f"{ROOT / 'godot' / 'demo'}:/src:ro", IMAGE, "bash", "-c", script, "godot", *game_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[Target]:
    podman = _podman()
    if podman is None:
        pytest.skip(f"podman or the image {IMAGE} is missing (scripts/images.sh godot)")
    port = _free_udp_port()
    name = f"gf-probe-test-{os.getpid()}-{port}"
    # --empty-server-timeout: the server also goes away on its own if this test process dies.
    started = _run_godot(
        podman, name, ["--server", f"--port={port}", "--bind=127.0.0.1", "--empty-server-timeout=120"], True
    )
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 30
        logs = ""
        while "GODOT_FLEET_READY" not in logs:
            assert time.monotonic() < deadline, f"server not ready:\n{logs}"
            time.sleep(0.1)
            logs = subprocess.run([*podman, "logs", name], capture_output=True, text=True, check=False).stdout
        yield Target("127.0.0.1", port)
    finally:
        subprocess.run([*podman, "rm", "-f", "-t", "0", name], capture_output=True, check=False)


def test_probe_demo_server(server: Target) -> None:
    result = enet_probe.probe(server.host, server.port, timeout=5)
    assert result.ok, result.error
    assert result.handshake_ms is not None and 0 < result.handshake_ms < 5000
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 5000


def test_probe_many_mixed(server: Target) -> None:
    dead = Target("127.0.0.1", _free_udp_port())
    results = enet_probe.probe_many([server, str(server), dead], timeout=1.5)
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].target == str(dead)
    assert results[2].error is not None and "timeout" in results[2].error


def test_cli_json(server: Target, capsys: pytest.CaptureFixture[str]) -> None:
    assert enet_probe.main([str(server), "--json", "--timeout", "5"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    data = json.loads(line)
    assert data["ok"] is True and data["target"] == str(server) and data["rtt_ms"] > 0


def test_headless_godot_client(server: Target) -> None:
    """The game's own test client: RPC round trip, RAW echo, spawned character it owns, synced movement."""
    podman = _podman()
    assert podman is not None
    name = f"gf-client-test-{os.getpid()}-{server.port}"
    done = _run_godot(podman, name, ["--client", f"--connect={server}", "--timeout=20"], False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GODOT_FLEET_CLIENT_OK peer=" in done.stdout
    version = re.search(r'^config/version="(.*)"$', (ROOT / "godot/demo/project.godot").read_text(), re.M)
    assert version is not None
    assert f"server_version={version.group(1)}" in done.stdout
