#!/usr/bin/env python3
"""ENet probe for Godot 4 game servers: a command line over the collection's pure-Python ENet client.

The implementation is plugins/module_utils/enet.py (the godot_fleet.fleet.room_probe module uses the same); this
file keeps the names the tests and benchmarks import, with the echo check as their default.

Checks (``--expect``):
  echo     (default here, for compatibility) the demo game's RAW ping/pong: sends ``b"\\x03" + b"ping:<nonce>"``
           reliably on channel 0 and waits for the RAW echo ``pong:ping:<nonce>``; reports its round trip
  connect  works for any Godot 4 game: the ENet handshake completes and the server still acknowledges a PING
           after a short hold (Godot silently drops peers it refuses)
  spawn    as connect, then a MultiplayerSpawner replicates a node to the probe (a SceneMultiplayer SPAWN packet)
Every probe then disconnects cleanly. Much cheaper than a headless Godot client; needs only the standard library.

    python -m testbed.enet_probe 127.0.0.1:12077 [127.0.0.1:12078 ...] [--expect echo] [--timeout 5] [--json]

Prints one line per target and exits 1 if any probe failed (2 for bad arguments). As a module:
``probe(host, port, timeout)`` and ``probe_many(targets, timeout)`` (all targets at once).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from types import ModuleType
from typing import TYPE_CHECKING

from testbed import ROOT


def _collection_enet() -> ModuleType:
    """The collection's ENet client, plugins/module_utils/enet.py of this checkout (standard library only), loaded
    from its file under its collection name: outside Ansible and pytest no collection loader finds it."""
    name = "ansible_collections.godot_fleet.fleet.plugins.module_utils.enet"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "module_utils" / "enet.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before it runs: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


if TYPE_CHECKING:  # mypy reads the collection through collections/ (mypy_path)
    from ansible_collections.godot_fleet.fleet.plugins.module_utils import enet
else:
    enet = _collection_enet()

EXPECT_CONNECT = enet.EXPECT_CONNECT
EXPECT_ECHO = enet.EXPECT_ECHO
EXPECT_SPAWN = enet.EXPECT_SPAWN
EXPECTS = enet.EXPECTS
MAX_PEER_ID = enet.MAX_PEER_ID
MIN_PEER_ID = enet.MIN_PEER_ID
ProbeResult = enet.ProbeResult
Target = enet.Target
build_ping = enet.build_ping
is_pong = enet.is_pong
make_nonce = enet.make_nonce
random_peer_id = enet.random_peer_id
raw_payload = enet.raw_payload

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "EXPECTS",
    "EXPECT_CONNECT",
    "EXPECT_ECHO",
    "EXPECT_SPAWN",
    "MAX_PEER_ID",
    "MIN_PEER_ID",
    "ProbeResult",
    "Target",
    "build_ping",
    "is_pong",
    "main",
    "make_nonce",
    "parse_target",
    "probe",
    "probe_many",
    "random_peer_id",
    "raw_payload",
]

DEFAULT_PORT = 12077
DEFAULT_TIMEOUT = enet.DEFAULT_TIMEOUT


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> Target:
    """Parses ``HOST:PORT``, ``[IPV6]:PORT``, ``HOST`` or ``[IPV6]`` (default port). Raises ValueError."""
    return enet.parse_target(text, default_port)


def probe_many(
    targets: Iterable[Target | str], timeout: float = DEFAULT_TIMEOUT, expect: str = EXPECT_ECHO
) -> list[ProbeResult]:
    """Probes all targets concurrently; results are in target order.

    ``timeout`` bounds each probe (all run in parallel); the clean disconnect afterwards may take up to
    enet.DISCONNECT_GRACE more seconds. Strings without a port get DEFAULT_PORT.
    """
    parsed = [t if isinstance(t, Target) else parse_target(t) for t in targets]
    return enet.probe_many(parsed, expect, timeout)


def probe(host: str, port: int, timeout: float = DEFAULT_TIMEOUT, expect: str = EXPECT_ECHO) -> ProbeResult:
    """Probes one server (echo by default: ENet handshake, RAW ping, RAW echo, clean disconnect)."""
    return probe_many([Target(host, port)], timeout, expect)[0]


def _target_arg(text: str) -> Target:
    try:
        return parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Probe Godot 4 ENet game servers (pure Python ENet client).",
        epilog="connect works for any Godot 4 game; spawn needs a MultiplayerSpawner that replicates a node to new "
        "peers; echo needs a server that answers a RAW 'ping:<nonce>' with 'pong:ping:<nonce>' (the demo game).",
    )
    parser.add_argument(
        "targets", nargs="+", type=_target_arg, metavar="HOST:PORT", help=f"default port {DEFAULT_PORT}"
    )
    parser.add_argument(
        "--expect",
        choices=EXPECTS,
        default=EXPECT_ECHO,
        help="what proves the server works: connect (any game), spawn (a replicated node) or echo (the demo's "
        "RAW ping/pong); default echo, for compatibility with earlier versions of this probe",
    )
    parser.add_argument(
        "--timeout", type=_positive, default=DEFAULT_TIMEOUT, help="seconds per probe (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    results = probe_many(args.targets, args.timeout, args.expect)
    for r in results:
        print(json.dumps(asdict(r)) if args.json else r.line(), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
