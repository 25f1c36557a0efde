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

    python tests/probe/enet_probe.py 127.0.0.1:12077 [127.0.0.1:12078 ...] [--expect echo] [--timeout 5] [--json]

Prints one line per target and exits 1 if any probe failed (2 for bad arguments). As a module:
``probe(host, port, timeout)`` and ``probe_many(targets, timeout)`` (all targets at once).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The checkout as the collection godot_fleet.fleet (collections/ansible_collections/godot_fleet/fleet links to it).
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.godot_fleet.fleet.plugins.module_utils import enet  # noqa: E402
from ansible_collections.godot_fleet.fleet.plugins.module_utils.enet import (  # noqa: E402
    EXPECT_CONNECT,
    EXPECT_ECHO,
    EXPECT_SPAWN,
    EXPECTS,
    MAX_PEER_ID,
    MIN_PEER_ID,
    ProbeResult,
    Target,
    build_ping,
    is_pong,
    make_nonce,
    random_peer_id,
    raw_payload,
)

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
