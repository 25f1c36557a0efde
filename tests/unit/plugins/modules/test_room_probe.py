"""The room_probe module: main() with its arguments, against a stand-in ENet server or a stand-in probe.

The stand-in server (FakeGodot of the module_utils tests) answers on 127.0.0.1; the real Godot server is probed
in tests/unit/test_probe.py.
"""

from __future__ import annotations

import time

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import enet
from ansible_collections.godot_fleet.fleet.plugins.modules import room_probe
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.module_utils.test_enet import FakeGodot
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import fail_module, run_module


def test_a_server_that_accepts_players_passes() -> None:
    with FakeGodot() as server:
        result = run_module(room_probe.main, {"targets": [server.target]})
    assert result["changed"] is False
    [entry] = result["results"]
    assert entry["target"] == server.target and entry["ok"] is True and entry["error"] is None
    assert entry["handshake_ms"] > 0 and entry["rtt_ms"] is None and entry["attempts"] == 1


@pytest.mark.parametrize("expect", ["spawn", "echo"])
def test_expect(expect: str) -> None:
    with FakeGodot() as server:
        [entry] = run_module(room_probe.main, {"targets": [server.target], "expect": expect})["results"]
    assert entry["ok"] is True
    assert (entry["rtt_ms"] is not None) == (expect == "echo")


def test_runs_in_check_mode() -> None:
    with FakeGodot() as server:
        result = run_module(room_probe.main, {"targets": [server.target]}, check_mode=True)
    assert result["changed"] is False and result["results"][0]["ok"] is True


def test_the_failure_names_each_failing_target_and_its_error() -> None:
    with FakeGodot() as good, FakeGodot("silent") as dead, FakeGodot("reset") as refusing:
        started = time.monotonic()
        result = fail_module(room_probe.main, {"targets": [good.target, dead.target, refusing.target], "timeout": 1.5})
        assert time.monotonic() - started < 1.5 + 0.5
    msg = result["msg"]
    assert msg.startswith("2 of 3 targets failed the ENet probe (expect=connect): ")
    assert f"{dead.target}: {enet.ERROR_HANDSHAKE} within 1.5 s" in msg
    assert f"{refusing.target}: {enet.ERROR_DROPPED}" in msg
    assert good.target not in msg
    assert [r["ok"] for r in result["results"]] == [True, False, False]
    assert [r["target"] for r in result["results"]] == [good.target, dead.target, refusing.target]


def test_spawn_fails_for_a_game_that_spawns_nothing() -> None:
    with FakeGodot(spawn=False) as server:
        result = fail_module(room_probe.main, {"targets": [server.target], "expect": "spawn", "timeout": 1})
    assert result["msg"].endswith(
        f"{server.target}: timeout after 1 s waiting for a spawned node (a SceneMultiplayer SPAWN packet)"
    )


def test_wait_reprobes_the_failing_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_probe_many(targets: list[enet.Target], expect: str, timeout: float) -> list[enet.ProbeResult]:
        calls.append([str(t) for t in targets])
        up = len(calls) >= 3
        return [enet.ProbeResult(up or t.port == 1, 2.0, None, None if up else "down", str(t)) for t in targets]

    monkeypatch.setattr(enet, "probe_many", fake_probe_many)
    result = run_module(room_probe.main, {"targets": ["h:1", "h:2"], "wait": 5, "timeout": 2, "expect": "spawn"})
    assert calls == [["h:1", "h:2"], ["h:2"], ["h:2"]]
    assert [(r["target"], r["ok"], r["attempts"]) for r in result["results"]] == [("h:1", True, 1), ("h:2", True, 3)]


def test_wait_gives_up_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_probe_many(targets: list[enet.Target], expect: str, timeout: float) -> list[enet.ProbeResult]:
        return [enet.ProbeResult(False, error="down", target=str(t)) for t in targets]

    monkeypatch.setattr(enet, "probe_many", fake_probe_many)
    started = time.monotonic()
    result = fail_module(room_probe.main, {"targets": ["h:1"], "wait": 1.2})
    assert 1.2 <= time.monotonic() - started < 1.6
    assert (
        result["msg"] == "1 of 1 targets failed the ENet probe (expect=connect) (still failing after 1.2 s of "
        "re-probing): h:1: down"
    )
    assert result["results"][0]["attempts"] == 3  # at 0, 0.5 and 1.0 s


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required arguments: targets"),
        ({"targets": []}, "targets must name at least one HOST:PORT"),
        ({"targets": ["127.0.0.1"]}, "bad target: missing port in '127.0.0.1' (want HOST:PORT)"),
        ({"targets": ["127.0.0.1:0"]}, "bad target: port must be from 1 to 65535, got 0"),
        ({"targets": ["::1:5"]}, "bad target: an IPv6 address needs brackets"),
        ({"targets": ["h:1"], "expect": "pong"}, "value of expect must be one of: connect, spawn, echo, got: pong"),
        ({"targets": ["h:1"], "timeout": 0}, "timeout must be a positive number of seconds, got 0.0"),
        ({"targets": ["h:1"], "timeout": "inf"}, "timeout must be a positive number of seconds, got inf"),
        ({"targets": ["h:1"], "wait": -1}, "wait must be zero or a positive number of seconds, got -1.0"),
        ({"targets": ["h:1"], "timeout": "soon"}, "argument 'timeout' is of type"),
    ],
)
def test_bad_arguments(args: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe(*args: object, **kwargs: object) -> list[enet.ProbeResult]:
        raise AssertionError("nothing is probed when the arguments are wrong")

    monkeypatch.setattr(enet, "probe_many", no_probe)
    assert message in fail_module(room_probe.main, args)["msg"]
