# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal ENet 1.3 client in pure Python, and a probe of Godot 4 game servers built on it.

Runs on game hosts and controllers alike: Python 3.9 and the standard library only (socket, struct, selectors).

The wire format is stock ENet 1.3 (lsalzman/enet include/enet/protocol.h, protocol.c), which Godot 4's
ENetMultiplayerPeer speaks without a checksum and without a compressor:

- Every datagram starts with a header: ``peerID`` (uint16, big endian: the receiver's peer index in the low 12 bits,
  the session id in bits 12-13, bit 14 "compressed", bit 15 "sentTime present"), then ``sentTime`` (uint16, the
  sender's clock in ms) when bit 15 is set. Then commands, each starting with ``command`` (uint8: number in the low
  4 bits, 0x80 "acknowledge me", 0x40 "unsequenced"), ``channelID`` (uint8, 0xFF for connection commands) and
  ``reliableSequenceNumber`` (uint16), followed by a fixed body per command (COMMAND_SIZES) and, for the SEND
  commands, ``dataLength`` bytes of payload.
- Handshake: the client sends CONNECT (peer id 0xFFF in the header, channel 0xFF, reliable sequence 1) with a random
  ``connectID`` and ``data`` (Godot: the client's multiplayer peer id); the server answers VERIFY_CONNECT with its
  peer index for us (``outgoingPeerID``) and the session ids; the client acknowledges it, and only then does the
  server's ENet report the connection to Godot.
- Every command with the 0x80 flag must be acknowledged (ACKNOWLEDGE echoes its channel, sequence number and the
  ``sentTime`` of the datagram that carried it), or the sender retransmits and finally drops the peer.
- Reliable sequence numbers count per channel; the connection commands on channel 0xFF (CONNECT, PING, DISCONNECT)
  share one counter per peer.

Godot 4 payloads are bare SceneMultiplayer packets: ``byte0 & 7`` is the command (3 RAW, 4 SPAWN, ...).

Godot refuses a peer (a connect ``data`` that is not an unused id >= 2, refused new connections) by resetting it
silently after the handshake, without a DISCONNECT: the server's ENet then ignores everything the peer sends. A
server with no free peer slot (ENet peerCount, Godot's max_clients) does not answer the CONNECT at all. So the
probe checks, after a short hold, that the server still acknowledges a PING. A server that stalls (a long frame)
does not acknowledge either, for a while: to tell the two apart, the probe repeats its CONNECT (same connectID,
peer id 0xFFF). enet_protocol_handle_connect ignores a CONNECT from the address and connectID of a live peer, but
answers it with a new VERIFY_CONNECT when that peer is gone: then the server dropped us (the probe frees the new
slot at once with an unsequenced DISCONNECT, which ENet accepts without telling Godot). A stalled server answers
neither until it runs again.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import secrets
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# --- protocol.h ------------------------------------------------------------------------------------------------

PROTOCOL_MINIMUM_MTU = 576
PROTOCOL_MAXIMUM_MTU = 4096
PROTOCOL_MAXIMUM_WINDOW_SIZE = 65536
PROTOCOL_MAXIMUM_PEER_ID = 0xFFF
PROTOCOL_MAXIMUM_FRAGMENT_COUNT = 1024 * 1024

COMMAND_NONE = 0
COMMAND_ACKNOWLEDGE = 1
COMMAND_CONNECT = 2
COMMAND_VERIFY_CONNECT = 3
COMMAND_DISCONNECT = 4
COMMAND_PING = 5
COMMAND_SEND_RELIABLE = 6
COMMAND_SEND_UNRELIABLE = 7
COMMAND_SEND_FRAGMENT = 8
COMMAND_SEND_UNSEQUENCED = 9
COMMAND_BANDWIDTH_LIMIT = 10
COMMAND_THROTTLE_CONFIGURE = 11
COMMAND_SEND_UNRELIABLE_FRAGMENT = 12
COMMAND_MASK = 0x0F

COMMAND_FLAG_ACKNOWLEDGE = 1 << 7
COMMAND_FLAG_UNSEQUENCED = 1 << 6
HEADER_FLAG_COMPRESSED = 1 << 14
HEADER_FLAG_SENT_TIME = 1 << 15
HEADER_SESSION_MASK = 3 << 12
HEADER_SESSION_SHIFT = 12
CONNECTION_CHANNEL = 0xFF

# Layout of each command after its 4-byte command header (command, channelID, reliableSequenceNumber), big endian.
# The 4 bytes of connectID are kept raw: ENet copies them without byte swapping.
COMMAND_BODIES = {
    COMMAND_ACKNOWLEDGE: "HH",  # receivedReliableSequenceNumber, receivedSentTime
    # outgoingPeerID, incomingSessionID, outgoingSessionID, mtu, windowSize, channelCount, incomingBandwidth,
    # outgoingBandwidth, packetThrottleInterval, packetThrottleAcceleration, packetThrottleDeceleration,
    # connectID, data
    COMMAND_CONNECT: "HBBIIIIIIII4sI",
    COMMAND_VERIFY_CONNECT: "HBBIIIIIIII4s",  # the same without data
    COMMAND_DISCONNECT: "I",  # data
    COMMAND_PING: "",
    COMMAND_SEND_RELIABLE: "H",  # dataLength
    COMMAND_SEND_UNRELIABLE: "HH",  # unreliableSequenceNumber, dataLength
    # startSequenceNumber, dataLength, fragmentCount, fragmentNumber, totalLength, fragmentOffset
    COMMAND_SEND_FRAGMENT: "HHIIII",
    COMMAND_SEND_UNSEQUENCED: "HH",  # unsequencedGroup, dataLength
    COMMAND_BANDWIDTH_LIMIT: "II",  # incomingBandwidth, outgoingBandwidth
    COMMAND_THROTTLE_CONFIGURE: "III",  # packetThrottleInterval, packetThrottleAcceleration, ...Deceleration
    COMMAND_SEND_UNRELIABLE_FRAGMENT: "HHIIII",
}
COMMAND_HEADER = struct.Struct(">BBH")
COMMAND_STRUCTS = {number: struct.Struct(">BBH" + body) for number, body in COMMAND_BODIES.items()}
# sizeof each ENetProtocol* struct (protocol.c commandSizes): 8, 48, 44, 8, 4, 6, 8, 24, 8, 12, 16, 24
COMMAND_SIZES = {number: s.size for number, s in COMMAND_STRUCTS.items()}
# Where dataLength sits in the body of the commands that carry a payload.
_DATA_LENGTH_FIELD = {
    COMMAND_SEND_RELIABLE: 0,
    COMMAND_SEND_UNRELIABLE: 1,
    COMMAND_SEND_UNSEQUENCED: 1,
    COMMAND_SEND_FRAGMENT: 1,
    COMMAND_SEND_UNRELIABLE_FRAGMENT: 1,
}
_FRAGMENTS = (COMMAND_SEND_FRAGMENT, COMMAND_SEND_UNRELIABLE_FRAGMENT)

# enet.h defaults of a client host: what ENet's own client puts into CONNECT (the server echoes the throttle
# values in VERIFY_CONNECT and a client must check them).
HOST_DEFAULT_MTU = 1392
PEER_PACKET_THROTTLE_INTERVAL = 5000
PEER_PACKET_THROTTLE_ACCELERATION = 2
PEER_PACKET_THROTTLE_DECELERATION = 2
# Our only peer slot: the peer index the server puts into the header of what it sends us.
CLIENT_PEER_INDEX = 0

# --- Godot 4 ---------------------------------------------------------------------------------------------------

# ENetMultiplayerPeer: reliable traffic on channel 0, unreliable on channel 1: a client asks for both.
GODOT_CHANNELS = 2
GODOT_RELIABLE_CHANNEL = 0
# Godot resets a peer whose connect data is not an unused id in 2..2^31-1.
MIN_PEER_ID = 2
MAX_PEER_ID = 2**31 - 1
# SceneMultiplayer packets: byte0 & 7 is the command.
SCENE_COMMAND_MASK = 0x07
SCENE_COMMAND_REMOTE_CALL = 0
SCENE_COMMAND_SIMPLIFY_PATH = 1
SCENE_COMMAND_CONFIRM_PATH = 2
SCENE_COMMAND_RAW = 3
SCENE_COMMAND_SPAWN = 4
SCENE_COMMAND_DESPAWN = 5
SCENE_COMMAND_SYNC = 6
SCENE_COMMAND_SYS = 7

# --- the probe -------------------------------------------------------------------------------------------------

EXPECT_CONNECT = "connect"
EXPECT_SPAWN = "spawn"
EXPECT_ECHO = "echo"
EXPECTS = (EXPECT_CONNECT, EXPECT_SPAWN, EXPECT_ECHO)
DEFAULT_TIMEOUT = 5.0
# After the handshake: how long the peer stays connected before the PING that proves the server still accepts it
# (capped at a quarter of the timeout).
HOLD = 0.2
# While the PING after the hold is not acknowledged: how often the CONNECT is repeated (see the module docstring).
RECHECK_INTERVAL = 0.5
# After the verdict: how long to wait for the server to acknowledge our DISCONNECT.
DISCONNECT_GRACE = 1.0
# Retransmission of unacknowledged reliable commands: first timeout before the handshake (ENet: 500 ms; shorter
# here, so that a server that starts listening during an attempt answers quickly), doubling up to the maximum.
RTO_INITIAL = 0.25
RTO_MINIMUM = 0.05
RTO_MAXIMUM = 1.0
# Reassemble fragmented packets up to this size; of a larger one only the first fragment is looked at.
MAX_REASSEMBLY = 64 * 1024
# Between rounds of re-probing (probe_until): at least this long from the start of one round to the next.
RETRY_INTERVAL = 0.5
# Open sockets at most (one per target being probed): the others wait for a free slot.
MAX_ACTIVE = 512

ERROR_HANDSHAKE = "no answer to the ENet handshake (nothing listens, a firewall, a full server, or not an ENet server)"
ERROR_DROPPED = (
    "the server dropped the connection after the handshake (refused the peer: full, kicked, or an authentication step)"
)


class EnetError(Exception):
    """A datagram that does not parse as ENet."""


# --- wire format -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command of a datagram. ``fields`` follow COMMAND_BODIES; ``data`` is the payload of the SEND commands."""

    number: int
    flags: int
    channel_id: int
    reliable_sequence: int
    fields: tuple[int | bytes, ...] = ()
    data: bytes = b""

    @property
    def wants_ack(self) -> bool:
        return bool(self.flags & COMMAND_FLAG_ACKNOWLEDGE)

    def int_field(self, index: int) -> int:
        value = self.fields[index]
        if not isinstance(value, int):
            raise EnetError(f"field {index} of command {self.number} is not a number")
        return value


@dataclass(frozen=True)
class Datagram:
    """A parsed datagram. ``peer_id`` is the receiver's peer index (0xFFF: none yet)."""

    peer_id: int
    session_id: int
    sent_time: int | None
    compressed: bool
    commands: tuple[Command, ...]


def encode_header(peer_id: int, session_id: int = 0, sent_time: int | None = None) -> bytes:
    """The datagram header. ENet adds the session id only for a real peer index (not 0xFFF)."""
    value = peer_id & PROTOCOL_MAXIMUM_PEER_ID
    if value < PROTOCOL_MAXIMUM_PEER_ID:
        value |= (session_id << HEADER_SESSION_SHIFT) & HEADER_SESSION_MASK
    if sent_time is None:
        return struct.pack(">H", value)
    return struct.pack(">HH", value | HEADER_FLAG_SENT_TIME, sent_time & 0xFFFF)


def encode_command(number: int, flags: int, channel_id: int, reliable_sequence: int, *fields: int | bytes) -> bytes:
    return COMMAND_STRUCTS[number].pack(number | flags, channel_id, reliable_sequence & 0xFFFF, *fields)


def encode_connect(
    outgoing_peer_id: int,
    connect_id: bytes,
    data: int,
    channel_count: int = GODOT_CHANNELS,
    reliable_sequence: int = 1,
    incoming_session_id: int = 0xFF,
    outgoing_session_id: int = 0xFF,
    mtu: int = HOST_DEFAULT_MTU,
    window_size: int = PROTOCOL_MAXIMUM_WINDOW_SIZE,
) -> bytes:
    """CONNECT as enet_host_connect builds it (session ids 0xFF: let the server choose; no bandwidth limits)."""
    return encode_command(
        COMMAND_CONNECT,
        COMMAND_FLAG_ACKNOWLEDGE,
        CONNECTION_CHANNEL,
        reliable_sequence,
        outgoing_peer_id,
        incoming_session_id,
        outgoing_session_id,
        mtu,
        window_size,
        channel_count,
        0,
        0,
        PEER_PACKET_THROTTLE_INTERVAL,
        PEER_PACKET_THROTTLE_ACCELERATION,
        PEER_PACKET_THROTTLE_DECELERATION,
        connect_id,
        data & 0xFFFFFFFF,
    )


def encode_acknowledge(channel_id: int, reliable_sequence: int, sent_time: int) -> bytes:
    """ACKNOWLEDGE of a reliable command (enet_protocol_send_acknowledgements): its header carries the sequence too."""
    return encode_command(COMMAND_ACKNOWLEDGE, 0, channel_id, reliable_sequence, reliable_sequence, sent_time & 0xFFFF)


def encode_ping(reliable_sequence: int) -> bytes:
    return encode_command(COMMAND_PING, COMMAND_FLAG_ACKNOWLEDGE, CONNECTION_CHANNEL, reliable_sequence)


def encode_disconnect(reliable_sequence: int, data: int = 0) -> bytes:
    """DISCONNECT of a connected peer: reliable, so the server acknowledges it."""
    return encode_command(COMMAND_DISCONNECT, COMMAND_FLAG_ACKNOWLEDGE, CONNECTION_CHANNEL, reliable_sequence, data)


def encode_send_reliable(channel_id: int, reliable_sequence: int, data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("a single SEND_RELIABLE carries at most 65535 bytes")
    head = encode_command(COMMAND_SEND_RELIABLE, COMMAND_FLAG_ACKNOWLEDGE, channel_id, reliable_sequence, len(data))
    return head + data


def parse_datagram(data: bytes) -> Datagram:
    """Parses a datagram like enet_protocol_handle_incoming_commands: stops at an unknown or truncated command.

    Raises EnetError when not even the header is there. A compressed datagram is returned without commands.
    """
    if len(data) < 2:
        raise EnetError(f"datagram of {len(data)} bytes: shorter than an ENet header")
    (value,) = struct.unpack_from(">H", data)
    peer_id = value & ~(HEADER_FLAG_COMPRESSED | HEADER_FLAG_SENT_TIME | HEADER_SESSION_MASK)
    session_id = (value & HEADER_SESSION_MASK) >> HEADER_SESSION_SHIFT
    sent_time = None
    offset = 2
    if value & HEADER_FLAG_SENT_TIME:
        if len(data) < 4:
            raise EnetError("datagram too short for its sentTime")
        (sent_time,) = struct.unpack_from(">H", data, 2)
        offset = 4
    if value & HEADER_FLAG_COMPRESSED:
        return Datagram(peer_id, session_id, sent_time, True, ())
    commands: list[Command] = []
    while offset + COMMAND_HEADER.size <= len(data):
        command, channel_id, sequence = COMMAND_HEADER.unpack_from(data, offset)
        number = command & COMMAND_MASK
        layout = COMMAND_STRUCTS.get(number)
        if layout is None or offset + layout.size > len(data):
            break
        fields = layout.unpack_from(data, offset)[3:]
        offset += layout.size
        payload = b""
        if number in _DATA_LENGTH_FIELD:
            length = int(fields[_DATA_LENGTH_FIELD[number]])
            if offset + length > len(data):
                break
            payload = data[offset : offset + length]
            offset += length
        flags = command & (COMMAND_FLAG_ACKNOWLEDGE | COMMAND_FLAG_UNSEQUENCED)
        commands.append(Command(number, flags, channel_id, sequence, tuple(fields), payload))
    return Datagram(peer_id, session_id, sent_time, False, tuple(commands))


class Reassembler:
    """Collects SEND_FRAGMENT / SEND_UNRELIABLE_FRAGMENT pieces into packets.

    ``add`` returns the whole packet once every fragment arrived, or, for a packet larger than ``limit``, its first
    fragment alone (enough to read the SceneMultiplayer command in byte 0); otherwise None.
    """

    def __init__(self, limit: int = MAX_REASSEMBLY) -> None:
        self.limit = limit
        self._pending: dict[tuple[int, int, int], tuple[bytearray, set[int], int]] = {}

    def add(self, command: Command) -> bytes | None:
        start, _length, count, number, total, offset = (command.int_field(i) for i in range(6))
        data = command.data
        if (
            not data
            or count == 0
            or count > PROTOCOL_MAXIMUM_FRAGMENT_COUNT
            or number >= count
            or offset >= total
            or len(data) > total - offset
        ):
            return None
        if total > self.limit:
            return data if offset == 0 else None
        key = (command.number, command.channel_id, start)
        buffer, received, expected_count = self._pending.setdefault(key, (bytearray(total), set(), count))
        if len(buffer) != total or expected_count != count:
            return None
        if number not in received:
            received.add(number)
            buffer[offset : offset + len(data)] = data
        if len(received) < count:
            return None
        del self._pending[key]
        return bytes(buffer)


# --- one ENet client peer --------------------------------------------------------------------------------------

STATE_NEW = "new"
STATE_CONNECTING = "connecting"
STATE_CONNECTED = "connected"
STATE_DISCONNECTING = "disconnecting"
STATE_CLOSED = "closed"


@dataclass
class _Outgoing:
    """A reliable command waiting for its acknowledgement."""

    command: bytes
    number: int
    sent_at: float
    rto: float


def _sent_time(now: float) -> int:
    return int(now * 1000.0) & 0xFFFF


class Peer:
    """An ENet client with one peer, on its own connected UDP socket, driven by its owner.

    The owner calls ``start`` once, ``receive`` when the socket is readable (``fileno``), ``tick`` at ``next_wake``.
    What happened is in the attributes: ``state``, ``verified_at``, ``server_disconnected``, ``inbox`` (payloads as
    (channel, bytes), whole or first fragments), ``icmp_refused`` (the host said nothing listens on the port),
    ``compressed_seen``/``foreign_datagrams`` (answers this client does not understand).
    """

    def __init__(
        self,
        sockaddr: tuple[str, int] | tuple[str, int, int, int],
        family: int = socket.AF_INET,
        connect_data: int = 0,
        channels: int = GODOT_CHANNELS,
        connect_id: bytes | None = None,
    ) -> None:
        self.sockaddr = sockaddr
        self.family = family
        self.connect_data = connect_data
        self.channels = channels
        self.connect_id = connect_id if connect_id is not None else secrets.token_bytes(4)
        self.state = STATE_NEW
        self.sock: socket.socket | None = None
        # From VERIFY_CONNECT: the server's index for us (our header's peer id) and the session ids.
        self.server_peer_id = PROTOCOL_MAXIMUM_PEER_ID
        self.outgoing_session_id = 0
        self.incoming_session_id = 0
        self.connect_sent_at: float | None = None
        self.connect_last_sent_at: float | None = None
        self.verified_at: float | None = None
        self.server_disconnected = False
        # The server answered a repeated CONNECT (recheck) with a new VERIFY_CONNECT: it no longer has our peer.
        self.lost = False
        self.icmp_refused = False
        self.compressed_seen = False
        self.foreign_datagrams = 0
        self.send_error: str | None = None
        self.inbox: list[tuple[int, bytes]] = []
        self.acknowledged: set[tuple[int, int]] = set()
        self._connection_sequence = 0  # channel 0xFF: CONNECT, PING, DISCONNECT
        self._channel_sequence: dict[int, int] = {}
        self._unacked: dict[tuple[int, int], _Outgoing] = {}
        self._acks: list[bytes] = []
        self._sends: list[bytes] = []
        self._rto = RTO_INITIAL
        self._reassembler = Reassembler()

    # -- driving ---------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Creates the socket. Raises OSError (e.g. no route to the address family)."""
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(self.sockaddr)  # only the server's datagrams reach us; ICMP errors are reported
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.state != STATE_NEW:
            self.state = STATE_CLOSED

    def start(self, now: float) -> None:
        """Sends CONNECT (opens the socket first if needed)."""
        if self.sock is None:
            self.open()
        self.state = STATE_CONNECTING
        self.connect_sent_at = self.connect_last_sent_at = now
        sequence = self._next_sequence(CONNECTION_CHANNEL)
        command = encode_connect(CLIENT_PEER_INDEX, self.connect_id, self.connect_data, self.channels, sequence)
        self._queue_reliable(CONNECTION_CHANNEL, sequence, command, now)
        self._flush(now)

    def next_wake(self) -> float | None:
        """When ``tick`` has a retransmission to do, None when nothing waits for an acknowledgement."""
        if self.state in (STATE_NEW, STATE_CLOSED) or not self._unacked:
            return None
        return min(o.sent_at + o.rto for o in self._unacked.values())

    def tick(self, now: float) -> None:
        """Retransmits the reliable commands whose acknowledgement is overdue (the timeout doubles each time)."""
        if self.state in (STATE_NEW, STATE_CLOSED):
            return
        due = [o for o in self._unacked.values() if o.sent_at + o.rto <= now]
        for outgoing in due:
            outgoing.sent_at = now
            outgoing.rto = min(outgoing.rto * 2, RTO_MAXIMUM)
            if outgoing.number == COMMAND_CONNECT:
                self.connect_last_sent_at = now
        if due:
            self._flush(now, [o.command for o in due])

    def receive(self, now: float) -> None:
        """Reads every waiting datagram, handles it, and sends the acknowledgements in one datagram."""
        while self.sock is not None:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:
                self.icmp_refused = True  # ICMP port unreachable for something we sent
                continue
            except OSError:
                break
            self._handle_datagram(data, now)
        self._flush(now)

    def service(self, duration: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Drives this peer alone for ``duration`` seconds (blocking): e.g. to hold a connection open."""
        if self.sock is None:
            return
        end = clock() + duration
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while self.sock is not None and (now := clock()) < end:
                wake = self.next_wake()
                selector.select(max(0.0, min(end, wake if wake is not None else end) - now))
                self.receive(clock())
                self.tick(clock())

    # -- sending ---------------------------------------------------------------------------------------------

    def send_reliable(self, channel_id: int, data: bytes, now: float) -> tuple[int, int]:
        """Sends a reliable packet on a channel; returns its (channel, sequence) as in ``acknowledged``."""
        sequence = self._next_sequence(channel_id)
        self._queue_reliable(channel_id, sequence, encode_send_reliable(channel_id, sequence, data), now)
        self._flush(now)
        return (channel_id, sequence)

    def ping(self, now: float) -> tuple[int, int]:
        """Sends a PING (reliable, channel 0xFF); returns the key its acknowledgement will have."""
        sequence = self._next_sequence(CONNECTION_CHANNEL)
        self._queue_reliable(CONNECTION_CHANNEL, sequence, encode_ping(sequence), now)
        self._flush(now)
        return (CONNECTION_CHANNEL, sequence)

    def recheck(self, now: float) -> None:
        """Repeats the CONNECT (same connectID and data, peer id 0xFFF): ``lost`` becomes true if the server answers.

        A server that still has this peer ignores it (enet_protocol_handle_connect: same address, port and
        connectID); one that dropped the peer answers VERIFY_CONNECT for a new slot, which _handle_verify frees.
        """
        if self.state != STATE_CONNECTED or self.sock is None:
            return
        command = encode_connect(CLIENT_PEER_INDEX, self.connect_id, self.connect_data, self.channels, 1)
        self._send_datagram(encode_header(PROTOCOL_MAXIMUM_PEER_ID, 0, _sent_time(now)) + command)

    def disconnect(self, now: float) -> None:
        """Sends DISCONNECT; the peer is closed once the server acknowledged it (or by ``close``)."""
        if self.state != STATE_CONNECTED:
            self.close()
            return
        self._unacked.clear()
        self.state = STATE_DISCONNECTING
        sequence = self._next_sequence(CONNECTION_CHANNEL)
        self._queue_reliable(CONNECTION_CHANNEL, sequence, encode_disconnect(sequence), now)
        self._flush(now)

    def _next_sequence(self, channel_id: int) -> int:
        if channel_id == CONNECTION_CHANNEL:
            self._connection_sequence = (self._connection_sequence + 1) & 0xFFFF
            return self._connection_sequence
        value = (self._channel_sequence.get(channel_id, 0) + 1) & 0xFFFF
        self._channel_sequence[channel_id] = value
        return value

    def _queue_reliable(self, channel_id: int, sequence: int, command: bytes, now: float) -> None:
        outgoing = _Outgoing(command, command[0] & COMMAND_MASK, now, self._rto)
        self._unacked[(channel_id, sequence)] = outgoing
        self._sends.append(command)

    def _flush(self, now: float, extra: Sequence[bytes] = ()) -> None:
        """Sends the queued acknowledgements and commands in one datagram (or none when there is nothing)."""
        commands = self._acks + self._sends + list(extra)
        self._acks = []
        self._sends = []
        if not commands or self.sock is None:
            return
        reliable = any(c[0] & COMMAND_FLAG_ACKNOWLEDGE for c in commands)
        header = encode_header(self.server_peer_id, self.outgoing_session_id, _sent_time(now) if reliable else None)
        self._send_datagram(header + b"".join(commands))

    def _send_datagram(self, datagram: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.send(datagram)
        except ConnectionRefusedError:
            self.icmp_refused = True
        except (BlockingIOError, InterruptedError):
            pass  # a full send buffer: the retransmission sends it again
        except OSError as exc:
            self.send_error = exc.strerror or str(exc)

    # -- receiving -------------------------------------------------------------------------------------------

    def _handle_datagram(self, data: bytes, now: float) -> None:
        try:
            datagram = parse_datagram(data)
        except EnetError:
            self.foreign_datagrams += 1
            return
        if datagram.compressed:
            self.compressed_seen = True
            return
        if datagram.peer_id not in (CLIENT_PEER_INDEX, PROTOCOL_MAXIMUM_PEER_ID) or not datagram.commands:
            self.foreign_datagrams += 1
            return
        # Another session's datagram is dropped (like ENet does), except the answer to a repeated CONNECT.
        other_session = self.verified_at is not None and datagram.session_id != self.incoming_session_id
        for command in datagram.commands:
            if self.state == STATE_CLOSED:
                return
            if other_session and command.number != COMMAND_VERIFY_CONNECT:
                continue
            handled = self._handle_command(command, now)
            if handled and command.wants_ack and datagram.sent_time is not None and self._acknowledges(command):
                self._acks.append(encode_acknowledge(command.channel_id, command.reliable_sequence, datagram.sent_time))

    def _acknowledges(self, command: Command) -> bool:
        """Like ENet: a connected peer acknowledges every reliable command, a disconnecting one only DISCONNECT."""
        if self.state == STATE_DISCONNECTING:
            return command.number == COMMAND_DISCONNECT
        return self.state == STATE_CONNECTED

    def _handle_command(self, command: Command, now: float) -> bool:
        """Handles one command; returns False when a reliable one must not be acknowledged."""
        number = command.number
        if number == COMMAND_ACKNOWLEDGE:
            key = (command.channel_id, command.int_field(0))
            outgoing = self._unacked.pop(key, None)
            if outgoing is not None:
                self.acknowledged.add(key)
                if outgoing.number == COMMAND_DISCONNECT:
                    self.close()
        elif number == COMMAND_VERIFY_CONNECT:
            return self._handle_verify(command, now)
        elif number == COMMAND_DISCONNECT:
            if self.state in (STATE_CONNECTING, STATE_CONNECTED):
                self.server_disconnected = True
                self._unacked.clear()
                # Acknowledge it (when it asks for it), then stop: like ENet's ACKNOWLEDGING_DISCONNECT state.
                if command.wants_ack:
                    self.state = STATE_DISCONNECTING
                else:
                    self.close()
        elif self.state not in (STATE_CONNECTED, STATE_DISCONNECTING) or self.server_disconnected:
            pass  # ENet takes no more data from a peer that is not connected or that the server disconnected
        elif number in (COMMAND_SEND_RELIABLE, COMMAND_SEND_UNRELIABLE, COMMAND_SEND_UNSEQUENCED):
            self.inbox.append((command.channel_id, command.data))
        elif number in _FRAGMENTS:
            packet = self._reassembler.add(command)
            if packet is not None:
                self.inbox.append((command.channel_id, packet))
        # PING, BANDWIDTH_LIMIT, THROTTLE_CONFIGURE: nothing to do but the acknowledgement.
        return True

    def _handle_verify(self, command: Command, now: float) -> bool:
        fields = command.fields
        throttle = tuple(fields[8:11])
        expected = (PEER_PACKET_THROTTLE_INTERVAL, PEER_PACKET_THROTTLE_ACCELERATION, PEER_PACKET_THROTTLE_DECELERATION)
        if fields[11] != self.connect_id or throttle != expected:
            self.foreign_datagrams += 1  # not the answer to our CONNECT (ENet zombies the peer; we ignore it)
            return False
        peer_id = command.int_field(0) & PROTOCOL_MAXIMUM_PEER_ID
        sessions = (command.int_field(1), command.int_field(2))
        if self.state != STATE_CONNECTING:
            if (peer_id, sessions) == (self.server_peer_id, (self.incoming_session_id, self.outgoing_session_id)):
                return True  # the server retransmitted it (our acknowledgement was lost): acknowledge it again
            # The answer to a repeated CONNECT: the server has no peer for us any more. Free the slot it just
            # set up (ACKNOWLEDGING_CONNECT): an unsequenced DISCONNECT resets it without telling the game.
            self.lost = True
            disconnect = encode_command(
                COMMAND_DISCONNECT, COMMAND_FLAG_UNSEQUENCED, CONNECTION_CHANNEL, command.reliable_sequence + 1, 0
            )
            self._send_datagram(encode_header(peer_id, sessions[1]) + disconnect)
            return False
        self._unacked.pop((CONNECTION_CHANNEL, 1), None)
        self.server_peer_id = peer_id
        self.incoming_session_id, self.outgoing_session_id = sessions
        self.verified_at = now
        self.state = STATE_CONNECTED
        # Retransmit later commands after a few handshake round trips (at least RTO_MINIMUM).
        rtt = now - (self.connect_last_sent_at if self.connect_last_sent_at is not None else now)
        self._rto = min(max(RTO_MINIMUM, 3 * rtt), RTO_MAXIMUM)
        return True


# --- targets, results, Godot packets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A server address. IPv6 hosts print in brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class ProbeResult:
    """Outcome of one probe. Times are in milliseconds; rtt_ms is the RAW echo's round trip (echo only)."""

    ok: bool
    handshake_ms: float | None = None
    rtt_ms: float | None = None
    error: str | None = None
    target: str = ""

    def line(self) -> str:
        if not self.ok:
            return f"FAIL {self.target} {self.error}"
        text = f"OK {self.target}"
        if self.handshake_ms is not None:
            text += f" handshake_ms={self.handshake_ms:.1f}"
        if self.rtt_ms is not None:
            text += f" rtt_ms={self.rtt_ms:.1f}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "ok": self.ok,
            "handshake_ms": self.handshake_ms,
            "rtt_ms": self.rtt_ms,
            "error": self.error,
        }


def parse_target(text: str, default_port: int | None = None) -> Target:
    """Parses ``HOST:PORT``, ``[IPV6]:PORT``, or (with a default port) ``HOST`` / ``[IPV6]``. Raises ValueError."""
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"missing ']' in {text!r}")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"want [ADDRESS]:PORT, got {text!r}")
        has_port, port_text = bool(rest), rest[1:]
    elif text.count(":") > 1:
        raise ValueError(f"an IPv6 address needs brackets, as in [::1]:12077: {text!r}")
    else:
        host, sep, port_text = text.partition(":")
        has_port = bool(sep)
    if not host:
        raise ValueError(f"missing host in {text!r}")
    if has_port:
        if not port_text.isdecimal():
            raise ValueError(f"port must be a number, got {port_text!r} in {text!r}")
        port = int(port_text)
    elif default_port is None:
        raise ValueError(f"missing port in {text!r} (want HOST:PORT)")
    else:
        port = default_port
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be from 1 to 65535, got {port}")
    return Target(host, port)


def make_nonce() -> str:
    return secrets.token_hex(8)


def random_peer_id() -> int:
    return random.randint(MIN_PEER_ID, MAX_PEER_ID)


def build_ping(nonce: str) -> bytes:
    """The RAW packet of the echo probe: SceneMultiplayer command byte + ``ping:<nonce>``."""
    return bytes([SCENE_COMMAND_RAW]) + f"ping:{nonce}".encode()


def raw_payload(packet: bytes) -> bytes | None:
    """The data of a SceneMultiplayer RAW packet, or None for any other command (SPAWN, SYNC, ...)."""
    if not packet or packet[0] & SCENE_COMMAND_MASK != SCENE_COMMAND_RAW:
        return None
    return packet[1:]


def is_pong(packet: bytes, nonce: str) -> bool:
    """True for the demo server's RAW echo of our ping."""
    data = raw_payload(packet)
    return data is not None and f"pong:ping:{nonce}".encode() in data


def scene_command(packet: bytes) -> int | None:
    """The SceneMultiplayer command of a Godot 4 packet (byte0 & 7), None for an empty one."""
    return packet[0] & SCENE_COMMAND_MASK if packet else None


def resolve(target: Target) -> tuple[int, tuple[str, int] | tuple[str, int, int, int]]:
    """(family, sockaddr) of a target, IPv4 first. Raises OSError."""
    infos = socket.getaddrinfo(target.host, target.port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _type, _proto, _name, sockaddr = infos[0]
    return int(family), sockaddr  # type: ignore[return-value]


# --- the probe of one target -----------------------------------------------------------------------------------


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 3)


class _Probe:
    """The checks of one target over a Peer: the handshake, then per ``expect``, then a clean disconnect."""

    def __init__(self, target: Target, expect: str, timeout: float, hold: float, peer_id: int) -> None:
        self.target = target
        self.expect = expect
        self.timeout = timeout
        self.hold = min(hold, timeout / 4)
        self.peer_id = peer_id
        self.nonce = make_nonce()
        self.peer: Peer | None = None
        self.result: ProbeResult | None = None
        self.started = 0.0
        self.deadline = 0.0
        self.handshake_ms: float | None = None
        self.raw_sent_at: float | None = None
        self.pong_at: float | None = None
        self.spawned = False
        self.ping_key: tuple[int, int] | None = None
        self.ping_sent_at = 0.0
        self.recheck_at: float | None = None
        self.accepted = False
        self.leave_by: float | None = None  # the disconnect grace ends
        self.scheduled: float | None = None  # for the loop's timer heap

    @property
    def done(self) -> bool:
        return self.result is not None and (self.peer is None or self.peer.state == STATE_CLOSED)

    def start(self, now: float) -> None:
        self.started = now
        self.deadline = now + self.timeout
        try:
            family, sockaddr = resolve(self.target)
        except (OSError, UnicodeError) as exc:
            self._finish(now, False, f"cannot resolve {self.target.host}: {exc}")
            return
        self.peer = Peer(sockaddr, family, self.peer_id)
        try:
            self.peer.start(now)
        except OSError as exc:
            self._finish(now, False, f"cannot send to {self.target}: {exc.strerror or exc}")

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()

    def wake_at(self) -> float | None:
        if self.done or self.peer is None:
            return None
        times = [self.peer.next_wake()]
        if self.result is None:
            times.append(self.deadline)
            if self.peer.state == STATE_CONNECTED and self.verified_at is not None:
                if self.ping_key is None:
                    times.append(self.verified_at + self.hold)
                elif not self.accepted:
                    times.append(self.recheck_at)
        else:
            times.append(self.leave_by)
        return min(t for t in times if t is not None)

    @property
    def verified_at(self) -> float | None:
        return self.peer.verified_at if self.peer is not None else None

    def on_readable(self, now: float) -> None:
        if self.peer is not None:
            self.peer.receive(now)
            self._advance(now)

    def tick(self, now: float) -> None:
        if self.peer is not None:
            self.peer.tick(now)
            self._advance(now)

    def _advance(self, now: float) -> None:
        peer = self.peer
        if peer is None:
            return
        if self.result is not None:
            if self.leave_by is not None and now >= self.leave_by:
                peer.close()
            return
        if peer.server_disconnected:
            if self.handshake_ms is None:
                self._finish(now, False, "the server refused the connection during the ENet handshake (DISCONNECT)")
            else:
                self._finish(now, False, ERROR_DROPPED + ": it sent a DISCONNECT")
            return
        if peer.verified_at is None:
            if now >= self.deadline:
                self._finish(now, False, self._handshake_error())
            return
        if self.handshake_ms is None:
            self.handshake_ms = _ms(self.started, peer.verified_at)
            if self.expect == EXPECT_ECHO:
                self.raw_sent_at = now
                peer.send_reliable(GODOT_RELIABLE_CHANNEL, build_ping(self.nonce), now)
        for _channel, packet in peer.inbox:
            if scene_command(packet) == SCENE_COMMAND_SPAWN:
                self.spawned = True
            if self.expect == EXPECT_ECHO and self.pong_at is None and is_pong(packet, self.nonce):
                self.pong_at = now
        peer.inbox.clear()
        if self.ping_key is None and now >= peer.verified_at + self.hold:
            self.ping_sent_at = now
            self.ping_key = peer.ping(now)
        if self.ping_key is not None and self.ping_key in peer.acknowledged:
            self.accepted = True
        elif self.ping_key is not None and (self.recheck_at is None or now >= self.recheck_at):
            peer.recheck(now)  # with the PING, then every RECHECK_INTERVAL until it is acknowledged
            self.recheck_at = now + RECHECK_INTERVAL
        if (self.expect == EXPECT_CONNECT and self.accepted) or (self.expect == EXPECT_SPAWN and self.spawned):
            self._finish(now, True)
        elif self.expect == EXPECT_ECHO and self.pong_at is not None and self.raw_sent_at is not None:
            self._finish(now, True, rtt_ms=_ms(self.raw_sent_at, self.pong_at))
        elif peer.lost:
            # The server has no peer for us: a DISCONNECT would not be acknowledged either.
            self._finish(
                now,
                False,
                ERROR_DROPPED + ": it no longer has this peer (it answered the same CONNECT again)",
                linger=False,
            )
        elif now >= self.deadline:
            self._finish(now, False, f"timeout after {self.timeout:g} s waiting for {self._waiting_for()}")

    def _waiting_for(self) -> str:
        if self.ping_key is not None and not self.accepted:
            return "the server to acknowledge a ping after the handshake (it stalls, or it lost the connection)"
        if self.expect == EXPECT_SPAWN:
            return "a spawned node (a SceneMultiplayer SPAWN packet)"
        if self.expect == EXPECT_ECHO:
            return "the echo (pong)"
        return "the server to acknowledge a ping"

    def _handshake_error(self) -> str:
        text = f"{ERROR_HANDSHAKE} within {self.timeout:g} s"
        peer = self.peer
        if peer is None:
            return text
        if peer.compressed_seen:
            text += "; the server answers with compressed ENet datagrams, which this probe does not decompress"
        elif peer.foreign_datagrams:
            text += f"; {peer.foreign_datagrams} answers were not ENet 1.3 datagrams for this connection"
        elif peer.icmp_refused:
            text += "; the host reported the UDP port closed (ICMP port unreachable)"
        if peer.send_error:
            text += f"; sending failed: {peer.send_error}"
        return text

    def _finish(
        self, now: float, ok: bool, error: str | None = None, rtt_ms: float | None = None, linger: bool = True
    ) -> None:
        """Records the verdict and disconnects: waits up to DISCONNECT_GRACE for the acknowledgement if ``linger``."""
        self.result = ProbeResult(ok, self.handshake_ms, rtt_ms, error, str(self.target))
        if self.peer is not None:
            self.peer.disconnect(now)
            self.leave_by = now + DISCONNECT_GRACE
            if not linger:
                self.peer.close()


class _Loop:
    """One selector over the probes' sockets and a timer heap; at most ``max_active`` sockets open at a time."""

    def __init__(self, probes: Sequence[_Probe], max_active: int, clock: Callable[[], float]) -> None:
        self.waiting = deque(probes)
        self.max_active = max(1, max_active)
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        # The probes with an open socket, and that socket: a peer may close it itself (its DISCONNECT was
        # acknowledged) and the selector must forget it before the descriptor number is reused.
        self.active: dict[_Probe, socket.socket] = {}
        self.timers: list[tuple[float, int, _Probe]] = []
        self.counter = itertools.count()

    def run(self) -> None:
        try:
            self._start_more()
            while self.active or self.waiting:
                now = self.clock()
                timeout = max(0.0, self.timers[0][0] - now) if self.timers else None
                for key, _events in self.selector.select(timeout):
                    probe: _Probe = key.data
                    probe.on_readable(self.clock())
                    self._after(probe)
                now = self.clock()
                while self.timers and self.timers[0][0] <= now:
                    when, _n, probe = heapq.heappop(self.timers)
                    if probe in self.active and probe.scheduled == when:
                        probe.scheduled = None
                        probe.tick(now)
                        self._after(probe)
                self._start_more()
        finally:
            for probe in self.active:
                probe.close()
            self.selector.close()

    def _start_more(self) -> None:
        while self.waiting and len(self.active) < self.max_active:
            probe = self.waiting.popleft()
            probe.start(self.clock())
            if probe.peer is None or probe.peer.sock is None:
                probe.close()
                continue
            self.selector.register(probe.peer.sock, selectors.EVENT_READ, probe)
            self.active[probe] = probe.peer.sock
            self._after(probe)

    def _after(self, probe: _Probe) -> None:
        if probe.done:
            sock = self.active.pop(probe, None)
            if sock is not None:
                self.selector.unregister(sock)
            probe.close()
            return
        # A lazy heap: an entry counts only while it is the probe's latest (``scheduled``); older ones are skipped.
        when = probe.wake_at()
        if when is None:
            probe.scheduled = None
        elif when != probe.scheduled:
            probe.scheduled = when
            heapq.heappush(self.timers, (when, next(self.counter), probe))


# --- public API ------------------------------------------------------------------------------------------------


def probe_many(
    targets: Iterable[Target | str],
    expect: str = EXPECT_CONNECT,
    timeout: float = DEFAULT_TIMEOUT,
    hold: float = HOLD,
    peer_ids: Sequence[int] | None = None,
    max_active: int = MAX_ACTIVE,
    clock: Callable[[], float] = time.monotonic,
) -> list[ProbeResult]:
    """Probes all targets concurrently (one UDP socket each, one selector); results in target order.

    ``expect``: ``connect`` (the handshake, then the server still acknowledges a PING after ``hold`` seconds),
    ``spawn`` (a SceneMultiplayer SPAWN packet arrives) or ``echo`` (the demo's RAW ping/pong). ``timeout`` bounds
    each probe from its start; the clean disconnect afterwards may take up to DISCONNECT_GRACE more seconds.
    ``peer_ids``: the Godot peer id of each probe (default: random, distinct). Strings are parsed with
    parse_target (a port is required).
    """
    if expect not in EXPECTS:
        raise ValueError(f"expect must be one of {', '.join(EXPECTS)}, got {expect!r}")
    if math.isnan(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    parsed = [t if isinstance(t, Target) else parse_target(t) for t in targets]
    if peer_ids is None:
        chosen: set[int] = set()
        ids = []
        for _target in parsed:
            peer_id = random_peer_id()
            while peer_id in chosen:
                peer_id = random_peer_id()
            chosen.add(peer_id)
            ids.append(peer_id)
    else:
        ids = list(peer_ids)
        if len(ids) != len(parsed):
            raise ValueError(f"{len(ids)} peer ids for {len(parsed)} targets")
    probes = [_Probe(t, expect, timeout, hold, i) for t, i in zip(parsed, ids)]
    _Loop(probes, max_active, clock).run()
    return [
        p.result if p.result is not None else ProbeResult(False, error="not probed", target=str(p.target))
        for p in probes
    ]


def probe(host: str, port: int, expect: str = EXPECT_CONNECT, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Probes one server (see probe_many)."""
    return probe_many([Target(host, port)], expect, timeout)[0]


def probe_until(
    targets: Sequence[Target],
    expect: str = EXPECT_CONNECT,
    timeout: float = DEFAULT_TIMEOUT,
    wait: float = 0.0,
    retry_interval: float = RETRY_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[ProbeResult, int]]:
    """Probes all targets, then re-probes the failing ones until every one passed or ``wait`` seconds are over.

    A new round starts only before the deadline, at least ``retry_interval`` after the previous one started.
    Returns (last result, attempts) per target, in target order.
    """
    deadline = clock() + max(0.0, wait)
    round_started = clock()
    results = probe_many(targets, expect, timeout)
    attempts = [1] * len(results)
    while True:
        failing = [i for i, r in enumerate(results) if not r.ok]
        if not failing or clock() >= deadline:
            break
        pause = min(round_started + retry_interval, deadline) - clock()
        if pause > 0:
            sleep(pause)
        if clock() >= deadline:
            break
        round_started = clock()
        again = probe_many([targets[i] for i in failing], expect, timeout)
        for i, result in zip(failing, again):
            results[i] = result
            attempts[i] += 1
    return list(zip(results, attempts))


def failure_message(results: Sequence[ProbeResult], expect: str, wait: float = 0.0) -> str:
    """One message naming every failing target and its error (empty when all passed)."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return ""
    after = f" (still failing after {wait:g} s of re-probing)" if wait > 0 else ""
    details = "; ".join(f"{r.target}: {r.error}" for r in failed)
    return f"{len(failed)} of {len(results)} targets failed the ENet probe (expect={expect}){after}: {details}"
