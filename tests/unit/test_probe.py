"""Tests of testbed/enet_probe.py (`python -m testbed.enet_probe`) and of the pure-Python ENet client under it
(plugins/module_utils/enet.py).

The pure parts (target parsing, packet building/parsing, output) need nothing. The integration tests start the
demo game server (godot/demo) in the godot image on 127.0.0.1 and prove every check against real Godot: connect,
spawn, echo, nothing listening, a refused peer, a full server, 50 targets at once, the CLI and the room_probe
module. They fail, not skip, when podman or the image is missing: `make images` builds it.
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
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import enet

from testbed import ROOT, enet_probe
from testbed.enet_probe import ProbeResult, Target, build_ping, is_pong, parse_target, raw_payload

# --- pure parts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:12077", Target("127.0.0.1", 12077)),
        (" 10.0.0.5:1 ", Target("10.0.0.5", 1)),
        ("game.example.org:65535", Target("game.example.org", 65535)),
        ("127.0.0.1", Target("127.0.0.1", enet_probe.DEFAULT_PORT)),
        ("[::1]:12078", Target("::1", 12078)),
        ("[::1]", Target("::1", enet_probe.DEFAULT_PORT)),
    ],
)
def test_parse_target(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


def test_parse_target_default_port_argument() -> None:
    assert parse_target("localhost", default_port=19000) == Target("localhost", 19000)


@pytest.mark.parametrize(
    "text", ["", ":12077", "host:", "host:abc", "host:-1", "host:0", "host:65536", "host:1.5", "::1", "[::1"]
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


def test_target_str_round_trips() -> None:
    assert str(parse_target("127.0.0.1:19001")) == "127.0.0.1:19001"
    assert str(parse_target("[::1]:19001")) == "[::1]:19001"


def test_one_implementation() -> None:
    """The CLI's names are the collection's module_utils (the room_probe module runs the same code)."""
    assert enet_probe.ProbeResult is enet.ProbeResult and enet_probe.Target is enet.Target
    assert enet_probe.build_ping is enet.build_ping and enet_probe.MAX_PEER_ID == enet.MAX_PEER_ID


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
    connect = ProbeResult(ok=True, handshake_ms=3.25, target="127.0.0.1:1")
    assert connect.line() == "OK 127.0.0.1:1 handshake_ms=3.2"
    fail = ProbeResult(ok=False, error="timeout after 1 s waiting for the echo (pong)", target="127.0.0.1:2")
    assert fail.line() == "FAIL 127.0.0.1:2 timeout after 1 s waiting for the echo (pong)"


def test_probe_many_nothing() -> None:
    assert enet_probe.probe_many([]) == []


@pytest.mark.parametrize(
    "argv",
    [[], ["127.0.0.1:0"], ["127.0.0.1:1", "--timeout", "0"], ["x:1", "--timeout", "-1"], ["x:1", "--expect", "pong"]],
)
def test_cli_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        enet_probe.main(argv)
    assert exc.value.code == 2


def test_cli_help_names_the_checks_and_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        enet_probe.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{connect,spawn,echo}" in text and "default echo, for compatibility" in text


def test_unresolvable_host_fails_cleanly() -> None:
    [result] = enet_probe.probe_many(["nonexistent.invalid:19000"], timeout=1)
    assert not result.ok
    assert result.error is not None and "resolve" in result.error


# --- integration: the demo server in the godot image ---------------------------------------------------------

IMAGE = os.environ.get("GF_GODOT_IMAGE", "localhost/godot-fleet/godot:forky")


def _podman() -> list[str]:
    """The podman command; fails (never skips) when podman or the image is missing."""
    exe = shutil.which("podman")
    if exe is None:
        pytest.fail(f"podman is missing: `make bootstrap` installs it and `make images` builds the image {IMAGE}")
    if subprocess.run([exe, "image", "exists", IMAGE], check=False).returncode != 0:
        pytest.fail(f"the image {IMAGE} is missing: `make images` builds it")
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
def podman() -> list[str]:
    return _podman()


def _demo_server(podman: list[str], label: str, max_players: int) -> Iterator[Target]:
    port = _free_udp_port()
    name = f"gf-probe-{label}-{os.getpid()}-{port}"
    # --empty-server-timeout: the server also goes away on its own if this test process dies.
    args = ["--server", f"--port={port}", "--bind=127.0.0.1", f"--max-players={max_players}"]
    started = _run_godot(podman, name, [*args, "--empty-server-timeout=120"], True)
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


@pytest.fixture(scope="module")
def server(podman: list[str]) -> Iterator[Target]:
    """The demo server, room for 64 players (the 50-at-once test)."""
    yield from _demo_server(podman, "test", 64)


@pytest.fixture(scope="module")
def full_server(podman: list[str]) -> Iterator[Target]:
    """The demo server with --max-players=1."""
    yield from _demo_server(podman, "full", 1)


def test_probe_demo_server(server: Target) -> None:
    """The callers' default: the echo."""
    result = enet_probe.probe(server.host, server.port, timeout=5)
    assert result.ok, result.error
    assert result.handshake_ms is not None and 0 < result.handshake_ms < 5000
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 5000


@pytest.mark.parametrize("expect", [enet.EXPECT_CONNECT, enet.EXPECT_SPAWN])
def test_connect_and_spawn(server: Target, expect: str) -> None:
    started = time.monotonic()
    result = enet_probe.probe(server.host, server.port, timeout=5, expect=expect)
    assert result.ok, result.error
    assert result.handshake_ms is not None and 0 < result.handshake_ms < 5000 and result.rtt_ms is None
    # connect holds the peer (enet.HOLD) before its PING; the demo spawns a player for every peer at once
    assert time.monotonic() - started < (2.0 if expect == enet.EXPECT_CONNECT else 1.5)


def test_probe_many_mixed(server: Target) -> None:
    dead = Target("127.0.0.1", _free_udp_port())
    started = time.monotonic()
    results = enet_probe.probe_many([server, str(server), dead], timeout=1.5)
    assert time.monotonic() - started < 1.5 + 1.0
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].target == str(dead)
    assert results[2].error is not None and results[2].error.startswith(enet.ERROR_HANDSHAKE + " within 1.5 s")


@pytest.mark.parametrize("expect", enet.EXPECTS)
def test_nothing_listening_fails_with_the_handshake_error_within_the_timeout(expect: str) -> None:
    dead = Target("127.0.0.1", _free_udp_port())
    started = time.monotonic()
    [result] = enet.probe_many([dead], expect, timeout=1.0)
    assert 1.0 <= time.monotonic() - started < 1.3
    assert not result.ok and result.handshake_ms is None
    assert (
        result.error
        == f"{enet.ERROR_HANDSHAKE} within 1 s; the host reported the UDP port closed (ICMP port unreachable)"
    )


DROPPED = enet.ERROR_DROPPED + ": it no longer has this peer (it answered the same CONNECT again)"


def test_a_refused_peer_is_dropped(server: Target) -> None:
    """Godot resets a peer whose id is taken or below 2, silently: the probe notices the server ignores it."""
    taken = enet.random_peer_id()
    # Both connect with the same peer id: the server takes the first and refuses the second.
    results = enet.probe_many([server, server], enet.EXPECT_CONNECT, timeout=5, peer_ids=[taken, taken])
    assert sorted(r.ok for r in results) == [False, True]
    [refused] = [r for r in results if not r.ok]
    assert refused.handshake_ms is not None  # the ENet handshake itself completed
    assert refused.error == DROPPED
    for expect in enet.EXPECTS:
        started = time.monotonic()
        [result] = enet.probe_many([server], expect, timeout=5, peer_ids=[1])
        assert time.monotonic() - started < enet.HOLD + 0.5  # at once: the server answers the repeated CONNECT
        assert result.error == DROPPED, expect
    assert enet.probe_many([server])[0].ok  # and the server still takes players


def test_a_full_server_does_not_answer(full_server: Target) -> None:
    """--max-players=1 with one player in: ENet has no free peer slot and ignores the CONNECT."""
    family, sockaddr = enet.resolve(full_server)
    holder = enet.Peer(sockaddr, family, enet.random_peer_id())
    holder.start(time.monotonic())
    holder.service(0.3)
    assert holder.state == enet.STATE_CONNECTED
    stop = threading.Event()

    def hold() -> None:  # acknowledges the server's PINGs, or the server would time the player out
        while not stop.is_set():
            holder.service(0.05)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        [result] = enet.probe_many([full_server], enet.EXPECT_CONNECT, timeout=1.5)
        assert result.error == f"{enet.ERROR_HANDSHAKE} within 1.5 s"
        assert holder.state == enet.STATE_CONNECTED
    finally:
        stop.set()
        thread.join(5)
    holder.disconnect(time.monotonic())
    holder.service(1.0)
    assert holder.state == enet.STATE_CLOSED  # the server acknowledged the DISCONNECT
    assert enet.probe_many([full_server], enet.EXPECT_CONNECT, timeout=3)[0].ok  # the slot is free again


@pytest.mark.parametrize("expect", enet.EXPECTS)
def test_fifty_targets_at_once(server: Target, expect: str) -> None:
    started = time.monotonic()
    results = enet.probe_many([server] * 50, expect, timeout=10)
    elapsed = time.monotonic() - started
    assert [r.error for r in results if not r.ok] == []
    assert elapsed < 5.0, f"50 probes took {elapsed:.2f} s"


def test_cli_json(server: Target, capsys: pytest.CaptureFixture[str]) -> None:
    assert enet_probe.main([str(server), "--json", "--timeout", "5"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    data = json.loads(line)
    assert data["ok"] is True and data["target"] == str(server) and data["rtt_ms"] > 0


def test_cli_as_a_module(server: Target, tmp_path: Path) -> None:
    """`python -m testbed.enet_probe` from anywhere (molecule, scripts/demo-lib.sh): the installed test bed finds the
    collection's ENet client by itself; --expect works."""
    dead = Target("127.0.0.1", _free_udp_port())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "testbed.enet_probe",
            "--expect",
            "spawn",
            "--timeout",
            "1",
            str(server),
            str(dead),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 1, done.stderr
    ok, fail = done.stdout.splitlines()
    assert re.fullmatch(rf"OK {re.escape(str(server))} handshake_ms=[\d.]+", ok)
    assert fail.startswith(f"FAIL {dead} {enet.ERROR_HANDSHAKE}")


def test_room_probe_module(server: Target) -> None:
    from ansible_collections.godot_fleet.fleet.plugins.modules import room_probe
    from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import fail_module, run_module

    result = run_module(room_probe.main, {"targets": [str(server)], "expect": "spawn"}, check_mode=True)
    assert result["changed"] is False and result["results"][0]["ok"] is True
    dead = Target("127.0.0.1", _free_udp_port())
    failed = fail_module(room_probe.main, {"targets": [str(server), str(dead)], "timeout": 1})
    assert failed["msg"].startswith(f"1 of 2 targets failed the ENet probe (expect=connect): {dead}: ")


def test_headless_godot_client(podman: list[str], server: Target) -> None:
    """The game's own test client: RPC round trip, RAW echo, spawned character it owns, synced movement."""
    name = f"gf-client-test-{os.getpid()}-{server.port}"
    done = _run_godot(podman, name, ["--client", f"--connect={server}", "--timeout=20"], False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GODOT_FLEET_CLIENT_OK peer=" in done.stdout
    version = re.search(r'^config/version="(.*)"$', (ROOT / "godot/demo/project.godot").read_text(), re.M)
    assert version is not None
    assert f"server_version={version.group(1)}" in done.stdout
