#!/usr/bin/env python3
"""ENet probe for godot-fleet game servers (Godot 4 ENetMultiplayerPeer + SceneMultiplayer).

Connects like a Godot client would at the ENet level (>= 2 channels, connect data = a random peer id >= 2),
sends a SceneMultiplayer RAW packet ``b"\\x03" + b"ping:<nonce>"`` reliably on channel 0 and waits for the
demo server's RAW echo ``pong:ping:<nonce>``, ignoring every other packet (SPAWN, SYNC, SYS, ...). Then it
disconnects cleanly. Much cheaper than a headless Godot client, but it does not exercise replication.

    python tests/probe/enet_probe.py 127.0.0.1:12077 [127.0.0.1:12078 ...] [--timeout 5] [--json]

Prints one line per target and exits 1 if any probe failed (2 for bad arguments). As a module:
``probe(host, port, timeout)`` and ``probe_many(targets, timeout)`` (all targets at once, one ENet host).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import enet  # pyenet: no type information

DEFAULT_PORT = 12077
DEFAULT_TIMEOUT = 5.0
# Godot 4 sends reliable traffic on channel 0 and unreliable sync on channel 1.
CHANNELS = 2
# SceneMultiplayer: the low 3 bits of the first byte are the command; RAW = 3 (send_bytes / peer_packet).
COMMAND_MASK = 0x07
COMMAND_RAW = 3
# Godot rejects (silently resets) peers whose connect data is not an unused id in 2..2^31-1.
MIN_PEER_ID = 2
MAX_PEER_ID = 2**31 - 1
# After the echo: how long to wait for the server to acknowledge the disconnect.
DISCONNECT_GRACE = 1.0
# Longest single wait in the event loop (ms): keeps deadlines precise.
SERVICE_SLICE_MS = 50


@dataclass(frozen=True)
class Target:
    """A server address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ProbeResult:
    """Outcome of one probe. Times are in milliseconds."""

    ok: bool
    handshake_ms: float | None = None
    rtt_ms: float | None = None
    error: str | None = None
    target: str = ""

    def line(self) -> str:
        if self.ok:
            return f"OK {self.target} handshake_ms={self.handshake_ms:.1f} rtt_ms={self.rtt_ms:.1f}"
        return f"FAIL {self.target} {self.error}"


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> Target:
    """Parses ``HOST:PORT`` or ``HOST`` (default port). Raises ValueError.

    IPv4 only: pyenet wraps ENet 1.3, which has no IPv6 support.
    """
    text = text.strip()
    host, sep, port_text = text.partition(":")
    if ":" in port_text or text.startswith("["):
        raise ValueError(f"IPv6 is not supported (pyenet/ENet 1.3 is IPv4-only): {text!r}")
    if not host:
        raise ValueError(f"missing host in {text!r}")
    port = default_port
    if sep:
        if not port_text.isdecimal():
            raise ValueError(f"port must be a number, got {port_text!r}")
        port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be from 1 to 65535, got {port}")
    return Target(host, port)


def make_nonce() -> str:
    return secrets.token_hex(8)


def random_peer_id() -> int:
    return random.randint(MIN_PEER_ID, MAX_PEER_ID)


def build_ping(nonce: str) -> bytes:
    """The RAW packet the probe sends: SceneMultiplayer command byte + ``ping:<nonce>``."""
    return bytes([COMMAND_RAW]) + f"ping:{nonce}".encode()


def raw_payload(packet: bytes) -> bytes | None:
    """The data of a SceneMultiplayer RAW packet, or None for any other command (SPAWN, SYNC, ...)."""
    if not packet or packet[0] & COMMAND_MASK != COMMAND_RAW:
        return None
    return packet[1:]


def is_pong(packet: bytes, nonce: str) -> bool:
    """True for the server's RAW echo of our ping."""
    data = raw_payload(packet)
    return data is not None and f"pong:ping:{nonce}".encode() in data


@dataclass
class _Probe:
    target: Target
    nonce: str = field(default_factory=make_nonce)
    peer_id: int = field(default_factory=random_peer_id)
    peer: Any = None  # enet.Peer
    started: float = 0.0
    ping_sent: float = 0.0
    result: ProbeResult | None = None
    connected: bool = False
    closing: bool = False  # disconnect requested, waiting for the acknowledgement

    def finish(
        self, ok: bool, error: str | None = None, handshake_ms: float | None = None, rtt_ms: float | None = None
    ) -> None:
        if self.result is None:
            self.result = ProbeResult(ok, handshake_ms, rtt_ms, error, str(self.target))


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 3)


def probe_many(targets: Iterable[Target | str], timeout: float = DEFAULT_TIMEOUT) -> list[ProbeResult]:
    """Probes all targets concurrently (one ENet host, one peer per target); results are in target order.

    ``timeout`` bounds the handshake and the echo of each probe (all run in parallel); the clean disconnect
    afterwards may take up to DISCONNECT_GRACE more seconds.
    """
    probes = [_Probe(t if isinstance(t, Target) else parse_target(t)) for t in targets]
    if not probes:
        return []
    host = enet.Host(None, len(probes), CHANNELS, 0, 0)
    by_slot: dict[int, _Probe] = {}
    used_ids: set[int] = set()
    for p in probes:
        while p.peer_id in used_ids:
            p.peer_id = random_peer_id()
        used_ids.add(p.peer_id)
        try:
            address = enet.Address(p.target.host.encode(), p.target.port)
        except OSError as exc:
            p.finish(ok=False, error=f"cannot resolve {p.target.host}: {exc}")
            continue
        p.started = time.perf_counter()
        p.peer = host.connect(address, CHANNELS, p.peer_id)
        by_slot[p.peer.incomingPeerID] = p

    def handle(event: Any) -> None:  # enet.Event
        now = time.perf_counter()
        p = by_slot.get(event.peer.incomingPeerID)
        if p is None:
            return
        kind = event.type
        if kind == enet.EVENT_TYPE_CONNECT:
            p.connected = True
            p.ping_sent = now
            event.peer.send(0, enet.Packet(build_ping(p.nonce), enet.PACKET_FLAG_RELIABLE))
        elif kind == enet.EVENT_TYPE_RECEIVE:
            if p.result is None and is_pong(event.packet.data, p.nonce):
                p.finish(ok=True, handshake_ms=_ms(p.started, p.ping_sent), rtt_ms=_ms(p.ping_sent, now))
                p.closing = True
                event.peer.disconnect()
        elif kind == enet.EVENT_TYPE_DISCONNECT:
            if p.closing:
                p.closing = False
            elif p.connected:
                # Godot resets peers it refuses (bad peer id, server full) right after the handshake.
                p.finish(ok=False, error="the server dropped the connection before the echo")
            else:
                p.finish(ok=False, error="connection refused or failed")
            by_slot.pop(event.peer.incomingPeerID, None)

    def pump(until: float, done: Callable[[], bool]) -> None:
        while not done() and (now := time.perf_counter()) < until:
            wait_ms = max(0, min(SERVICE_SLICE_MS, int((until - now) * 1000)))
            event = host.service(wait_ms)
            while event is not None and event.type != enet.EVENT_TYPE_NONE:
                handle(event)
                event = host.check_events()

    deadline = time.perf_counter() + timeout
    try:
        pump(deadline, lambda: all(p.result is not None for p in probes))
        for p in probes:
            if p.result is None:
                waiting = "the echo (pong)" if p.connected else "the ENet handshake"
                p.finish(ok=False, error=f"timeout after {timeout:g} s waiting for {waiting}")
                if p.peer is not None:
                    if p.connected:
                        p.closing = True
                        p.peer.disconnect()
                    else:
                        p.peer.reset()
                        by_slot.pop(p.peer.incomingPeerID, None)
        pump(time.perf_counter() + DISCONNECT_GRACE, lambda: not any(p.closing for p in by_slot.values()))
    finally:
        for p in by_slot.values():
            if p.closing and p.peer is not None:
                p.peer.disconnect_now()
        host.flush()
    return [p.result for p in probes if p.result is not None]


def probe(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Probes one server: ENet handshake, RAW ping, RAW echo, clean disconnect."""
    return probe_many([Target(host, port)], timeout)[0]


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
    parser = argparse.ArgumentParser(description="Probe godot-fleet ENet game servers (RAW ping/pong).")
    parser.add_argument(
        "targets", nargs="+", type=_target_arg, metavar="HOST:PORT", help=f"default port {DEFAULT_PORT}"
    )
    parser.add_argument(
        "--timeout", type=_positive, default=DEFAULT_TIMEOUT, help="seconds per probe (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    results = probe_many(args.targets, args.timeout)
    for r in results:
        print(json.dumps(asdict(r)) if args.json else r.line(), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
