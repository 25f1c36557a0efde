"""module_utils/enet.py: the ENet 1.3 wire format, the client peer, and the probe, against a stand-in server.

The byte layouts below are written out from lsalzman/enet include/enet/protocol.h (packed structs, network byte
order) independently of the module's own tables. FakeServer is a small ENet server on 127.0.0.1 that behaves like
Godot 4's ENetMultiplayerPeer + SceneMultiplayer in the ways the probe cares about: it accepts, spawns, echoes RAW
packets, resets a refused peer silently, disconnects one, or stays silent (the real server: tests/unit/test_probe.py).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import enet

CONNECT_ID = b"\x11\x22\x33\x44"
SERVER_PEER_INDEX = 5  # the server's index for the client: the peer id of the client's header after the handshake
SERVER_SESSION = 1  # session bits of the server's headers (VERIFY_CONNECT incomingSessionID)
CLIENT_SESSION = 2  # session bits the client must use (VERIFY_CONNECT outgoingSessionID)


def header(peer_id: int, session: int = 0, sent_time: int | None = None) -> bytes:
    value = peer_id | (session << 12)
    if sent_time is None:
        return struct.pack(">H", value)
    return struct.pack(">HH", value | 0x8000, sent_time)


def verify_connect(
    connect_id: bytes = CONNECT_ID,
    sequence: int = 1,
    throttle: tuple[int, int, int] = (5000, 2, 2),
    peer_index: int = SERVER_PEER_INDEX,
    sessions: tuple[int, int] = (SERVER_SESSION, CLIENT_SESSION),
) -> bytes:
    # ENetProtocolVerifyConnect: header, outgoingPeerID u16, incomingSessionID u8, outgoingSessionID u8, mtu,
    # windowSize, channelCount, incomingBandwidth, outgoingBandwidth, packetThrottleInterval, ...Acceleration,
    # ...Deceleration (u32 each), connectID (4 bytes)
    return struct.pack(
        ">BBHHBBIIIIIIII4s",
        0x83,
        0xFF,
        sequence,
        peer_index,
        *sessions,
        1392,
        65536,
        2,
        0,
        0,
        *throttle,
        connect_id,
    )


def send_reliable(channel: int, sequence: int, data: bytes) -> bytes:
    return struct.pack(">BBHH", 0x86, channel, sequence, len(data)) + data


def send_unreliable(channel: int, sequence: int, data: bytes) -> bytes:
    return struct.pack(">BBHHH", 0x07, channel, 0, sequence, len(data)) + data


def send_fragment(
    channel: int, start: int, sequence: int, count: int, number: int, total: int, offset: int, data: bytes
) -> bytes:
    # ENetProtocolSendFragment: header, startSequenceNumber u16, dataLength u16, fragmentCount, fragmentNumber,
    # totalLength, fragmentOffset (u32 each)
    return struct.pack(">BBHHHIIII", 0x88, channel, sequence, start, len(data), count, number, total, offset) + data


def acknowledge(channel: int, sequence: int, sent_time: int) -> bytes:
    return struct.pack(">BBHHH", 0x01, channel, sequence, sequence, sent_time)


# --- wire format -------------------------------------------------------------------------------------------------


def test_command_sizes_are_those_of_protocol_h() -> None:
    # sizeof(ENetProtocolAcknowledge) ... sizeof(ENetProtocolSendFragment) for the unreliable fragment
    expected = [8, 48, 44, 8, 4, 6, 8, 24, 8, 12, 16, 24]
    assert [enet.COMMAND_SIZES[number] for number in range(1, 13)] == expected


def test_connect_layout() -> None:
    command = enet.encode_connect(0, CONNECT_ID, 123456789, channel_count=2, reliable_sequence=1)
    expected = struct.pack(
        ">BBHHBBIIIIIIII4sI", 0x82, 0xFF, 1, 0, 0xFF, 0xFF, 1392, 65536, 2, 0, 0, 5000, 2, 2, CONNECT_ID, 123456789
    )
    assert command == expected
    assert len(command) == 48


def test_header_before_the_handshake_has_peer_id_0xfff_and_no_session() -> None:
    assert enet.encode_header(0xFFF, session_id=3, sent_time=0x1234) == b"\x8f\xff\x12\x34"
    assert enet.encode_header(0xFFF) == b"\x0f\xff"


def test_header_after_the_handshake_carries_the_session_bits() -> None:
    assert enet.encode_header(5, session_id=2, sent_time=7) == struct.pack(">HH", 0x8000 | 0x2000 | 5, 7)
    assert enet.encode_header(5, session_id=3) == struct.pack(">H", 0x3005)


def test_small_command_layouts() -> None:
    assert enet.encode_acknowledge(0xFF, 1, 0xBEEF) == struct.pack(">BBHHH", 0x01, 0xFF, 1, 1, 0xBEEF)
    assert enet.encode_ping(2) == struct.pack(">BBH", 0x85, 0xFF, 2)
    assert enet.encode_disconnect(3) == struct.pack(">BBHI", 0x84, 0xFF, 3, 0)
    assert enet.encode_send_reliable(0, 1, b"\x03ping:x") == struct.pack(">BBHH", 0x86, 0, 1, 7) + b"\x03ping:x"


def test_sequence_and_time_wrap_at_16_bits() -> None:
    assert enet.encode_ping(0x10001) == struct.pack(">BBH", 0x85, 0xFF, 1)
    assert enet.encode_acknowledge(0, 2, 0x12345) == struct.pack(">BBHHH", 0x01, 0, 2, 2, 0x2345)


def test_parse_verify_connect() -> None:
    datagram = enet.parse_datagram(header(0, SERVER_SESSION, 0x0102) + verify_connect())
    assert (datagram.peer_id, datagram.session_id, datagram.sent_time, datagram.compressed) == (0, 1, 0x0102, False)
    [command] = datagram.commands
    assert (command.number, command.flags, command.channel_id, command.reliable_sequence) == (3, 0x80, 0xFF, 1)
    assert command.wants_ack
    assert command.fields[:3] == (SERVER_PEER_INDEX, SERVER_SESSION, CLIENT_SESSION)
    assert command.fields[8:] == (5000, 2, 2, CONNECT_ID)


def test_parse_several_commands_with_payloads() -> None:
    data = (
        header(0, 1, 9)
        + send_reliable(0, 4, b"\x04spawn")
        + send_unreliable(1, 2, b"\x06sync")
        + struct.pack(">BBHHH", 0x09 | 0x40, 1, 0, 7, 2)  # SEND_UNSEQUENCED with the unsequenced flag
        + b"\x03x"
        + struct.pack(">BBH", 0x85, 0xFF, 3)  # PING
    )
    commands = enet.parse_datagram(data).commands
    assert [(c.number, c.channel_id, c.reliable_sequence, c.data) for c in commands] == [
        (6, 0, 4, b"\x04spawn"),
        (7, 1, 0, b"\x06sync"),
        (9, 1, 0, b"\x03x"),
        (5, 0xFF, 3, b""),
    ]
    assert [c.wants_ack for c in commands] == [True, False, False, True]
    assert commands[2].flags == 0x40


def test_parse_header_without_sent_time() -> None:
    datagram = enet.parse_datagram(header(0x12, 2) + acknowledge(0xFF, 2, 77))
    assert (datagram.peer_id, datagram.session_id, datagram.sent_time) == (0x12, 2, None)
    assert datagram.commands[0].fields == (2, 77)


def test_parse_stops_at_truncated_or_unknown_commands() -> None:
    ping = struct.pack(">BBH", 0x85, 0xFF, 3)
    truncated = send_reliable(0, 1, b"abcdef")[:-2]
    assert [c.number for c in enet.parse_datagram(header(0, 0, 1) + ping + truncated).commands] == [5]
    unknown = struct.pack(">BBH", 0x0D, 0, 0)  # command 13 does not exist
    assert [c.number for c in enet.parse_datagram(header(0, 0, 1) + ping + unknown + ping).commands] == [5]
    assert enet.parse_datagram(header(0, 0, 1) + b"\x85\xff").commands == ()


def test_parse_rejects_short_datagrams_and_skips_compressed_ones() -> None:
    with pytest.raises(enet.EnetError):
        enet.parse_datagram(b"\x00")
    with pytest.raises(enet.EnetError):
        enet.parse_datagram(b"\x80\x00\x01")  # sentTime flag, no sentTime
    compressed = enet.parse_datagram(struct.pack(">HH", 0xC000, 5) + b"\xde\xad")
    assert compressed.compressed and compressed.commands == ()


# --- fragments ---------------------------------------------------------------------------------------------------


def fragment(number: int, count: int, total: int, offset: int, data: bytes, start: int = 10) -> enet.Command:
    raw = send_fragment(0, start, start + number, count, number, total, offset, data)
    [command] = enet.parse_datagram(header(0, 0, 1) + raw).commands
    return command


def test_fragment_layout_parses() -> None:
    command = fragment(1, 3, 9, 3, b"def")
    assert command.number == enet.COMMAND_SEND_FRAGMENT and command.wants_ack
    assert command.fields == (10, 3, 3, 1, 9, 3) and command.data == b"def"


def test_fragments_reassemble_in_any_order_and_ignore_duplicates() -> None:
    r = enet.Reassembler()
    assert r.add(fragment(2, 3, 9, 6, b"ghi")) is None
    assert r.add(fragment(0, 3, 9, 0, b"\x04bc")) is None
    assert r.add(fragment(2, 3, 9, 6, b"ghi")) is None  # retransmitted
    assert r.add(fragment(1, 3, 9, 3, b"def")) == b"\x04bcdefghi"
    # A new packet with the same start sequence starts over (the first one was delivered).
    assert r.add(fragment(0, 2, 4, 0, b"ab")) is None
    assert r.add(fragment(1, 2, 4, 2, b"cd")) == b"abcd"


def test_fragments_of_a_large_packet_give_the_first_fragment_only() -> None:
    r = enet.Reassembler(limit=8)
    assert r.add(fragment(1, 3, 9, 3, b"def")) is None
    assert r.add(fragment(0, 3, 9, 0, b"\x04bc")) == b"\x04bc"


@pytest.mark.parametrize(
    ("number", "count", "total", "offset", "data"),
    [
        (3, 3, 9, 0, b"abc"),  # fragmentNumber >= fragmentCount
        (0, 0, 9, 0, b"abc"),  # no fragments
        (0, 3, 9, 9, b"abc"),  # offset beyond the total
        (0, 3, 9, 7, b"abc"),  # runs past the total
        (0, 3, 9, 0, b""),  # empty
    ],
)
def test_bad_fragments_are_ignored(number: int, count: int, total: int, offset: int, data: bytes) -> None:
    assert enet.Reassembler().add(fragment(number, count, total, offset, data)) is None


# --- the client peer against a scripted server socket --------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def connected_peer(server: socket.socket) -> tuple[enet.Peer, tuple[str, int]]:
    """A Peer that completed the handshake with the scripted server; returns it and its address."""
    peer = enet.Peer(server.getsockname(), connect_data=4242, connect_id=CONNECT_ID)
    peer.start(time.monotonic())
    data, address = server.recvfrom(4096)
    datagram = enet.parse_datagram(data)
    assert datagram.peer_id == 0xFFF and datagram.session_id == 0 and datagram.sent_time is not None
    [connect] = datagram.commands
    assert connect.number == enet.COMMAND_CONNECT and connect.channel_id == 0xFF and connect.reliable_sequence == 1
    assert connect.fields[0] == 0 and connect.fields[5] == 2  # our peer index 0, two channels
    assert connect.fields[11:] == (CONNECT_ID, 4242)  # connectID and data (the Godot peer id)
    server.sendto(header(0, SERVER_SESSION, 0x0100) + verify_connect(), address)
    receive(peer)
    assert peer.state == enet.STATE_CONNECTED and peer.server_peer_id == SERVER_PEER_INDEX
    return peer, address


def receive(peer: enet.Peer, seconds: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    sock = peer.sock
    assert sock is not None
    sock.settimeout(seconds)
    try:
        data = sock.recv(65536, socket.MSG_PEEK)
    finally:
        sock.setblocking(False)
    assert data and time.monotonic() < deadline
    peer.receive(time.monotonic())


def next_datagram(server: socket.socket) -> enet.Datagram:
    data, _address = server.recvfrom(4096)
    return enet.parse_datagram(data)


def test_handshake_acknowledges_verify_connect_with_the_sessions(server: socket.socket) -> None:
    peer, _address = connected_peer(server)
    datagram = next_datagram(server)
    # The acknowledgement alone: no sentTime (nothing in it wants an acknowledgement), our index and session.
    assert (datagram.peer_id, datagram.session_id, datagram.sent_time) == (SERVER_PEER_INDEX, CLIENT_SESSION, None)
    [ack] = datagram.commands
    assert (ack.number, ack.channel_id, ack.reliable_sequence, ack.fields) == (1, 0xFF, 1, (1, 0x0100))
    peer.close()


def test_reliable_commands_are_acknowledged_unreliable_ones_not(server: socket.socket) -> None:
    peer, address = connected_peer(server)
    next_datagram(server)
    payload = (
        send_reliable(0, 1, b"\x04node")
        + send_unreliable(1, 1, b"\x06sync")
        + struct.pack(">BBH", 0x85, 0xFF, 2)  # the server's PING: reliable too
    )
    server.sendto(header(0, SERVER_SESSION, 0x0A0B) + payload, address)
    receive(peer)
    assert peer.inbox == [(0, b"\x04node"), (1, b"\x06sync")]
    acks = next_datagram(server).commands
    assert [(c.number, c.channel_id, c.fields) for c in acks] == [(1, 0, (1, 0x0A0B)), (1, 0xFF, (2, 0x0A0B))]
    peer.close()


def test_datagrams_of_another_session_are_ignored(server: socket.socket) -> None:
    peer, address = connected_peer(server)
    next_datagram(server)
    server.sendto(header(0, 3, 1) + send_reliable(0, 1, b"\x04x"), address)
    receive(peer)
    assert peer.inbox == []
    peer.close()


def test_verify_connect_for_another_connect_id_is_ignored(server: socket.socket) -> None:
    peer = enet.Peer(server.getsockname(), connect_data=7, connect_id=CONNECT_ID)
    peer.start(time.monotonic())
    _data, address = server.recvfrom(4096)
    server.sendto(header(0, 1, 1) + verify_connect(connect_id=b"\x00\x00\x00\x01"), address)
    receive(peer)
    assert peer.state == enet.STATE_CONNECTING and peer.foreign_datagrams == 1
    server.sendto(header(0, 1, 1) + verify_connect(throttle=(1000, 2, 2)), address)
    receive(peer)
    assert peer.state == enet.STATE_CONNECTING and peer.foreign_datagrams == 2
    peer.close()


def test_reliable_sequence_numbers(server: socket.socket) -> None:
    peer, _address = connected_peer(server)
    next_datagram(server)
    now = time.monotonic()
    # Channel 0 counts from 1; PING and DISCONNECT continue channel 0xFF after CONNECT (1).
    assert peer.send_reliable(0, b"\x03a", now) == (0, 1)
    assert peer.send_reliable(0, b"\x03b", now) == (0, 2)
    assert peer.ping(now) == (0xFF, 2)
    sent = [next_datagram(server) for _sent in range(3)]
    assert all(d.sent_time is not None and d.session_id == CLIENT_SESSION for d in sent)
    assert [(c.number, c.channel_id, c.reliable_sequence) for d in sent for c in d.commands] == [
        (6, 0, 1),
        (6, 0, 2),
        (5, 0xFF, 2),
    ]
    peer.disconnect(now)
    [disconnect] = next_datagram(server).commands
    assert (disconnect.number, disconnect.flags, disconnect.reliable_sequence) == (4, 0x80, 3)
    assert peer.state == enet.STATE_DISCONNECTING
    peer.close()


def test_acknowledgements_complete_commands_and_the_disconnect(server: socket.socket) -> None:
    peer, address = connected_peer(server)
    next_datagram(server)
    now = time.monotonic()
    key = peer.ping(now)
    next_datagram(server)
    server.sendto(header(0, SERVER_SESSION) + acknowledge(0xFF, 2, 0), address)
    receive(peer)
    assert key in peer.acknowledged and peer.next_wake() is None
    peer.disconnect(now)
    next_datagram(server)
    server.sendto(header(0, SERVER_SESSION) + acknowledge(0xFF, 3, 0), address)
    receive(peer)
    assert peer.state == enet.STATE_CLOSED


def test_unacknowledged_commands_are_retransmitted(server: socket.socket) -> None:
    peer = enet.Peer(server.getsockname(), connect_data=7, connect_id=CONNECT_ID)
    start = time.monotonic()
    peer.start(start)
    first = next_datagram(server)
    wake = peer.next_wake()
    assert wake is not None and wake == pytest.approx(start + enet.RTO_INITIAL)
    peer.tick(wake)
    again = next_datagram(server)
    assert again.commands == first.commands  # the same CONNECT, same sequence number
    assert peer.next_wake() == pytest.approx(wake + 2 * enet.RTO_INITIAL)  # the timeout doubles
    peer.close()


def test_disconnect_from_the_server(server: socket.socket) -> None:
    peer, address = connected_peer(server)
    next_datagram(server)
    server.sendto(header(0, SERVER_SESSION, 5) + struct.pack(">BBHI", 0x84, 0xFF, 2, 0), address)
    receive(peer)
    assert peer.server_disconnected
    [ack] = next_datagram(server).commands
    assert (ack.number, ack.channel_id, ack.fields) == (1, 0xFF, (2, 5))
    peer.close()


def test_icmp_port_unreachable_is_noted() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()
    peer = enet.Peer(closed, connect_data=7)
    peer.start(time.monotonic())
    time.sleep(0.1)
    peer.receive(time.monotonic())
    assert peer.icmp_refused
    peer.close()


# --- the probe against a stand-in Godot server --------------------------------------------------------------------


class FakeGodot(threading.Thread):
    """An ENet server on 127.0.0.1 that answers like a Godot 4 server, with a chosen behaviour after the handshake.

    accept: acknowledges, spawns a node (SPAWN, optionally in fragments), echoes RAW packets with "pong:".
    reset: drops the peer silently (Godot's refusal); disconnect: sends DISCONNECT; silent: never answers.
    ``stall``: after the first handshake, take no datagram for that many seconds (a long frame), then all of them.
    Like enet_protocol_handle_connect, a CONNECT from the address and connectID of a live slot is ignored and any
    other gets a new slot (with the next session ids); an unsequenced DISCONNECT frees a slot not yet connected.
    """

    def __init__(
        self,
        behaviour: str = "accept",
        spawn: bool = True,
        fragments: bool = False,
        stall: float = 0.0,
        family: int = socket.AF_INET,
    ) -> None:
        super().__init__(daemon=True)
        self.behaviour = behaviour
        self.spawn = spawn
        self.fragments = fragments
        self.stall = stall
        self.stall_until: float | None = None
        self.backlog: list[tuple[bytes, Any]] = []
        self.host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((self.host, 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.slots: dict[int, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.connect_data: list[int] = []  # of every CONNECT that got a slot
        self.ignored_connects = 0  # repeated CONNECTs of a live peer
        self.freed = 0  # slots freed by an unsequenced DISCONNECT before they connected
        self.disconnected = 0

    def __enter__(self) -> FakeGodot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(2)
        self.sock.close()
        assert not self.errors, self.errors

    @property
    def target(self) -> str:
        return str(enet.Target(self.host, self.port))

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.stall_until is not None and time.monotonic() >= self.stall_until:
                self.stall_until = None
                for data, address in self.backlog:
                    self.handle(data, address)
            try:
                data, address = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.behaviour == "silent":
                continue
            if self.stall_until is not None:
                self.backlog.append((data, address))
            else:
                self.handle(data, address)

    def handle(self, data: bytes, address: Any) -> None:
        datagram = enet.parse_datagram(data)
        if datagram.peer_id == 0xFFF:
            for command in datagram.commands:
                if command.number == enet.COMMAND_CONNECT:
                    self.on_connect_command(command, address)
            return
        slot = self.slots.get(datagram.peer_id)
        if slot is None or slot["state"] == "reset" or slot["address"] != address:
            return
        if datagram.session_id != slot["client_session"]:
            self.errors.append(f"slot {datagram.peer_id}: session {datagram.session_id}, not {slot['client_session']}")
            return
        out: list[bytes] = []
        for command in datagram.commands:
            if command.wants_ack:
                if datagram.sent_time is None:
                    self.errors.append("a reliable command without sentTime")
                    continue
                out.append(acknowledge(command.channel_id, command.reliable_sequence, datagram.sent_time))
            if command.number == enet.COMMAND_ACKNOWLEDGE and command.channel_id == 0xFF and slot["state"] == "new":
                slot["state"] = "connected"
                out += self.on_connected(slot)
                if slot["state"] == "reset":
                    out = []
                    break
            elif command.number == enet.COMMAND_SEND_RELIABLE and command.data[:1] == b"\x03":
                out.append(self.reliable(slot, b"\x03pong:" + command.data[1:]))
            elif command.number == enet.COMMAND_DISCONNECT:
                if command.flags & 0x40 and slot["state"] == "new":
                    slot["state"] = "reset"
                    self.freed += 1
                elif command.wants_ack:
                    self.disconnected += 1
                else:
                    self.errors.append("an unsequenced DISCONNECT of a connected peer")
        if out:
            self.send(slot, b"".join(out))

    def on_connect_command(self, command: enet.Command, address: Any) -> None:
        connect_id = command.fields[11]
        assert isinstance(connect_id, bytes)
        mine = [s for s in self.slots.values() if s["address"] == address]
        if any(s["connect_id"] == connect_id and s["state"] != "reset" for s in mine):
            self.ignored_connects += 1
            return
        generation = len(mine)
        slot = {
            "index": SERVER_PEER_INDEX + len(self.slots),
            "address": address,
            "connect_id": connect_id,
            "state": "new",
            "sequence": 0,
            "server_session": (SERVER_SESSION + generation) & 3,
            "client_session": (CLIENT_SESSION + generation) & 3,
        }
        self.slots[slot["index"]] = slot
        self.connect_data.append(command.int_field(12))
        verify = verify_connect(
            connect_id=connect_id,
            peer_index=slot["index"],
            sessions=(slot["server_session"], slot["client_session"]),
        )
        self.send(slot, verify)

    def send(self, slot: dict[str, Any], payload: bytes) -> None:
        now_ms = int(time.monotonic() * 1000) & 0xFFFF
        self.sock.sendto(header(0, slot["server_session"], now_ms) + payload, slot["address"])

    def reliable(self, slot: dict[str, Any], data: bytes) -> bytes:
        slot["sequence"] += 1
        return send_reliable(0, slot["sequence"], data)

    def on_connected(self, slot: dict[str, Any]) -> list[bytes]:
        if self.stall and self.stall_until is None and not self.backlog:
            self.stall_until = time.monotonic() + self.stall
        if self.behaviour == "reset":
            slot["state"] = "reset"
            return []
        if self.behaviour == "disconnect":
            return [struct.pack(">BBHI", 0x84, 0xFF, 2, 0)]
        out = [self.reliable(slot, b"\x07sys"), struct.pack(">BBH", 0x85, 0xFF, 2)]  # a SYS packet, a PING
        if self.spawn and self.fragments:
            slot["sequence"] += 2
            start = slot["sequence"] - 1
            out.append(send_fragment(0, start, start + 1, 2, 1, 6, 3, b"def"))
            out.append(send_fragment(0, start, start, 2, 0, 6, 0, b"\x04bc"))
        elif self.spawn:
            out.append(self.reliable(slot, b"\x04spawn"))
        return out


@pytest.mark.parametrize("expect", enet.EXPECTS)
def test_probe_passes_against_an_accepting_server(expect: str) -> None:
    with FakeGodot() as server:
        started = time.monotonic()
        [result] = enet.probe_many([server.target], expect, timeout=3)
        elapsed = time.monotonic() - started
        assert result.ok, result.error
        assert result.target == server.target and result.error is None
        assert result.handshake_ms is not None and 0 < result.handshake_ms < 1000
        assert (result.rtt_ms is not None) == (expect == enet.EXPECT_ECHO)
        # connect holds the peer before its PING; spawn and echo finish as soon as the packet is there
        assert elapsed < (1.0 if expect == enet.EXPECT_CONNECT else 0.5)
        assert len(server.connect_data) == 1 and enet.MIN_PEER_ID <= server.connect_data[0] <= enet.MAX_PEER_ID
        assert server.disconnected == 1  # and it left cleanly


def test_ipv6() -> None:
    """Godot's own ENet speaks IPv6 (Debian's build links the system libenet, IPv4 only: not testable there)."""
    with FakeGodot(family=socket.AF_INET6) as server:
        assert server.target.startswith("[::1]:")
        [result] = enet.probe_many([server.target], enet.EXPECT_ECHO, timeout=3)
        assert result.ok, result.error
        assert result.target == server.target


def test_spawn_in_fragments() -> None:
    with FakeGodot(fragments=True) as server:
        [result] = enet.probe_many([server.target], enet.EXPECT_SPAWN, timeout=3)
        assert result.ok, result.error


def test_spawn_times_out_when_the_game_spawns_nothing() -> None:
    with FakeGodot(spawn=False) as server:
        started = time.monotonic()
        [result] = enet.probe_many([server.target], enet.EXPECT_SPAWN, timeout=1.5)
        assert time.monotonic() - started < 1.5 + 0.5
        assert not result.ok and result.handshake_ms is not None
        assert result.error == "timeout after 1.5 s waiting for a spawned node (a SceneMultiplayer SPAWN packet)"


@pytest.mark.parametrize("expect", enet.EXPECTS)
def test_a_peer_reset_silently_is_dropped(expect: str) -> None:
    """The repeated CONNECT gets a new slot: the server no longer has the peer. The probe frees that slot."""
    with FakeGodot("reset") as server:
        started = time.monotonic()
        [result] = enet.probe_many([server.target], expect, timeout=5)
        assert time.monotonic() - started < enet.HOLD + 0.3
        assert not result.ok and result.handshake_ms is not None
        assert result.error == enet.ERROR_DROPPED + ": it no longer has this peer (it answered the same CONNECT again)"
        assert len(server.connect_data) == 2 and server.connect_data[0] == server.connect_data[1]
        deadline = time.monotonic() + 1
        while server.freed < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.freed == 1


def test_a_live_server_ignores_the_repeated_connect() -> None:
    with FakeGodot(stall=0.3) as server:
        [result] = enet.probe_many([server.target], enet.EXPECT_CONNECT, timeout=5)
        assert result.ok, result.error
        assert len(server.connect_data) == 1 and server.ignored_connects >= 1


def test_a_stalled_server_is_not_taken_for_one_that_dropped_the_peer() -> None:
    with FakeGodot(stall=1.2) as server:
        started = time.monotonic()
        [result] = enet.probe_many([server.target], enet.EXPECT_CONNECT, timeout=5)
        assert result.ok, result.error
        assert 1.2 <= time.monotonic() - started < 2.5
        assert len(server.connect_data) == 1 and server.ignored_connects >= 2  # repeated every RECHECK_INTERVAL
    with FakeGodot(stall=3) as server:
        [result] = enet.probe_many([server.target], enet.EXPECT_CONNECT, timeout=1)
        assert result.error == (
            "timeout after 1 s waiting for the server to acknowledge a ping after the handshake "
            "(it stalls, or it lost the connection)"
        )


def test_a_disconnect_after_the_handshake_is_dropped() -> None:
    with FakeGodot("disconnect") as server:
        [result] = enet.probe_many([server.target], enet.EXPECT_ECHO, timeout=5)
        assert not result.ok
        assert result.error == enet.ERROR_DROPPED + ": it sent a DISCONNECT"


def test_no_answer_is_the_handshake_error_within_the_timeout() -> None:
    with FakeGodot("silent") as server:
        started = time.monotonic()
        [result] = enet.probe_many([server.target], enet.EXPECT_CONNECT, timeout=0.8)
        assert 0.8 <= time.monotonic() - started < 1.2
        assert result.error == enet.ERROR_HANDSHAKE + " within 0.8 s"
        assert result.handshake_ms is None and result.rtt_ms is None


def test_many_targets_at_once_keep_their_order_and_distinct_peer_ids() -> None:
    with FakeGodot() as good, FakeGodot("silent") as dead:
        targets = [good.target if i % 3 else dead.target for i in range(30)]
        results = enet.probe_many(targets, enet.EXPECT_ECHO, timeout=1, max_active=7)
        assert [r.target for r in results] == targets
        assert [r.ok for r in results] == [bool(i % 3) for i in range(30)]
        assert len(set(good.connect_data)) == len(good.connect_data) == 20


def test_chosen_peer_ids() -> None:
    with FakeGodot() as server:
        enet.probe_many([server.target, server.target], timeout=2, peer_ids=[11, 12])
        assert sorted(server.connect_data) == [11, 12]
    with pytest.raises(ValueError, match="2 peer ids for 1 targets"):
        enet.probe_many(["127.0.0.1:1"], peer_ids=[11, 12])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="expect must be one of"):
        enet.probe_many(["127.0.0.1:1"], "pong")
    with pytest.raises(ValueError, match="timeout"):
        enet.probe_many(["127.0.0.1:1"], timeout=0)
    with pytest.raises(ValueError, match="missing port"):
        enet.probe_many(["127.0.0.1"])
    assert enet.probe_many([]) == []


def test_unresolvable_host() -> None:
    [result] = enet.probe_many([enet.Target("nonexistent.invalid", 1)], timeout=1)
    assert not result.ok and result.error is not None and result.error.startswith("cannot resolve nonexistent.invalid")


# --- targets, packets, messages, re-probing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:12077", enet.Target("127.0.0.1", 12077)),
        (" game.example.org:1 ", enet.Target("game.example.org", 1)),
        ("[::1]:19000", enet.Target("::1", 19000)),
        ("[2001:db8::1]:65535", enet.Target("2001:db8::1", 65535)),
    ],
)
def test_parse_target(text: str, expected: enet.Target) -> None:
    assert enet.parse_target(text) == expected
    assert str(enet.parse_target(text)) == text.strip()


@pytest.mark.parametrize(
    "text", ["", "host", ":1", "host:", "host:x", "host:0", "host:65536", "::1", "[::1", "[::1]x", "[]:1", "h:-1"]
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        enet.parse_target(text)


def test_parse_target_default_port() -> None:
    assert enet.parse_target("host", default_port=7) == enet.Target("host", 7)
    assert enet.parse_target("[::1]", default_port=7) == enet.Target("::1", 7)


def test_scene_packets() -> None:
    assert enet.build_ping("n1") == b"\x03ping:n1"
    assert enet.is_pong(b"\x03pong:ping:n1", "n1") and not enet.is_pong(b"\x04pong:ping:n1", "n1")
    assert enet.raw_payload(b"\x03abc") == b"abc" and enet.raw_payload(b"\x0babc") == b"abc"
    assert enet.raw_payload(b"") is None
    assert [enet.scene_command(bytes([b])) for b in (0x04, 0x0C, 0x40, 0x07)] == [4, 4, 0, 7]
    assert enet.scene_command(b"") is None


def test_result_line_and_dict() -> None:
    ok = enet.ProbeResult(True, 3.25, None, None, "h:1")
    assert ok.line() == "OK h:1 handshake_ms=3.2"
    assert enet.ProbeResult(True, 3.25, 7.5, None, "h:1").line() == "OK h:1 handshake_ms=3.2 rtt_ms=7.5"
    assert ok.as_dict() == {"target": "h:1", "ok": True, "handshake_ms": 3.25, "rtt_ms": None, "error": None}


def test_failure_message() -> None:
    results = [
        enet.ProbeResult(True, target="a:1"),
        enet.ProbeResult(False, error="e2", target="b:2"),
        enet.ProbeResult(False, error="e3", target="c:3"),
    ]
    assert enet.failure_message(results[:1], "connect") == ""
    assert enet.failure_message(results, "spawn") == (
        "2 of 3 targets failed the ENet probe (expect=spawn): b:2: e2; c:3: e3"
    )
    assert "(still failing after 30 s of re-probing)" in enet.failure_message(results, "connect", 30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_probe_until_reprobes_only_the_failing_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    rounds: list[list[str]] = []
    passes_from_round = {"a:1": 1, "b:2": 3}

    def fake_probe_many(targets: list[enet.Target], expect: str, timeout: float) -> list[enet.ProbeResult]:
        rounds.append([str(t) for t in targets])
        clock.now += 0.2  # each round takes 0.2 s
        return [
            enet.ProbeResult(len(rounds) >= passes_from_round[str(t)], error="down", target=str(t)) for t in targets
        ]

    monkeypatch.setattr(enet, "probe_many", fake_probe_many)
    targets = [enet.Target("a", 1), enet.Target("b", 2)]
    outcome = enet.probe_until(targets, "connect", 1.0, wait=10, clock=clock, sleep=clock.sleep)
    assert rounds == [["a:1", "b:2"], ["b:2"], ["b:2"]]
    assert [(r.ok, attempts) for r, attempts in outcome] == [(True, 1), (True, 3)]
    assert clock.sleeps == [0.3, 0.3]  # rounds start RETRY_INTERVAL apart


def test_probe_until_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    calls = []

    def fake_probe_many(targets: list[enet.Target], expect: str, timeout: float) -> list[enet.ProbeResult]:
        calls.append(clock.now)
        clock.now += 1.0
        return [enet.ProbeResult(False, error="down", target=str(t)) for t in targets]

    monkeypatch.setattr(enet, "probe_many", fake_probe_many)
    outcome = enet.probe_until([enet.Target("a", 1)], "connect", 1.0, wait=2.5, clock=clock, sleep=clock.sleep)
    assert calls == [100.0, 101.0, 102.0]  # the last round starts before the deadline (102.5)
    assert outcome[0][1] == 3
    calls.clear()
    clock.now = 100.0
    assert enet.probe_until([enet.Target("a", 1)], "connect", 1.0, wait=0, clock=clock, sleep=clock.sleep)[0][1] == 1
    assert calls == [100.0]
