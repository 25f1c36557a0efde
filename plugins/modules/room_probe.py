#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: probe Godot 4 game servers (rooms) with a real ENet client, in pure Python."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: room_probe
short_description: Check that Godot 4 game servers accept players, with a real ENet client
description:
  - Connects to each target the way a Godot 4 client does (ENet over UDP, two channels, a random multiplayer peer
    id), checks what O(expect) asks for, and disconnects cleanly. All targets are probed at once.
  - O(expect=connect) works for any Godot 4 game that uses ENetMultiplayerPeer. The ENet handshake must complete
    and the server must still acknowledge the client after a short hold, because Godot refuses a peer (a bad peer
    id, or refused new connections) by dropping it silently after the handshake.
  - O(expect=spawn) also waits for a node replicated to the new peer by a MultiplayerSpawner (a SceneMultiplayer
    SPAWN packet), for games that spawn something for every player who joins.
  - O(expect=echo) is the demo game's check. It sends the SceneMultiplayer RAW packet C(ping:<nonce>) and waits for
    the RAW answer C(pong:ping:<nonce>). It reports the round trip.
  - With O(wait), the failing targets are probed again until every one passes or O(wait) seconds are over. This
    makes the module a health check right after rooms are (re)started.
  - Fails when any target fails, with one message naming each failing target and its error.
notes:
  - Runs where the task runs (delegate it to probe from elsewhere) with Python 3.9 or newer. It needs nothing beyond
    the standard library. It never changes anything, so it also runs in check mode.
  - A full server (no free ENet peer slot) does not answer the handshake at all. It fails like a port where nothing
    listens.
  - A server that dropped the peer right after the handshake is recognized at once (it answers the same ENet
    CONNECT again). A server that only stalls is waited for until O(timeout).
  - Servers that compress their ENet traffic (C(ENetConnection.compress)) or use DTLS are not supported.
  - Each target uses one UDP socket while it is being probed; at most 512 are open at a time.
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
options:
  targets:
    description:
      - Servers to probe, as C(HOST:PORT) (UDP), or C([ADDRESS]:PORT) for an IPv6 address.
    type: list
    elements: str
    required: true
  expect:
    description:
      - What proves that a server works. V(connect) checks the ENet handshake and that the server keeps the peer.
        V(spawn) also waits for a replicated node. V(echo) is the demo game's RAW ping/pong.
    type: str
    choices: [connect, spawn, echo]
    default: connect
  timeout:
    description:
      - Seconds one attempt at one target may take. The clean disconnect afterwards may add up to one second.
    type: float
    default: 5
  wait:
    description:
      - Keep probing the failing targets again, at most every half second, until every one passes or this many
        seconds are over. An attempt still running at the deadline is finished.
      - V(0) makes one attempt per target.
    type: float
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Check that a room accepts players (any Godot 4 game)
  godot_fleet.fleet.room_probe:
    targets: ["203.0.113.10:12077"]

- name: Health check after a restart, from the game host itself
  godot_fleet.fleet.room_probe:
    targets: "{{ godot_server_ports | map('regex_replace', '^', '127.0.0.1:') | list }}"
    expect: spawn
    timeout: 3
    wait: 30
  register: probe

- name: The demo game's RAW echo, with its round trip
  godot_fleet.fleet.room_probe:
    targets:
      - 203.0.113.10:12077
      - "[2001:db8::10]:12078"
    expect: echo
  register: echo

- name: Show the round trips
  ansible.builtin.debug:
    msg: "{{ echo.results | map(attribute='rtt_ms') | list }}"

# Ad hoc, from the command line:
#   ansible localhost -m godot_fleet.fleet.room_probe -a 'targets=203.0.113.10:12077'
#   ansible localhost -m godot_fleet.fleet.room_probe -a 'targets=203.0.113.10:12077,203.0.113.10:12078 wait=20'
"""

RETURN = r"""
expect:
  description: What every target was checked for (O(expect)).
  type: str
  returned: always
  sample: connect
results:
  description: One entry per target, in the order of O(targets), from its last attempt.
  type: list
  elements: dict
  returned: always
  contains:
    target:
      description: The target as C(HOST:PORT).
      type: str
      sample: 203.0.113.10:12077
    ok:
      description: Whether the target passed.
      type: bool
      sample: true
    handshake_ms:
      description: Milliseconds from the first CONNECT to the server's VERIFY_CONNECT; null without a handshake.
      type: float
      sample: 3.2
    rtt_ms:
      description: Round trip of the RAW echo in milliseconds (O(expect=echo) only, else null).
      type: float
      sample: 7.5
    error:
      description: Why the target failed; null when it passed.
      type: str
      sample: >-
        no answer to the ENet handshake (nothing listens, a firewall, a full server, or not an ENet server)
        within 5 s
    attempts:
      description: How many attempts the target took (more than 1 only with O(wait)).
      type: int
      sample: 1
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.enet import (
    EXPECT_CONNECT,
    EXPECTS,
    failure_message,
    parse_target,
    probe_until,
)


def argument_spec() -> dict[str, Any]:
    return {
        "targets": {"type": "list", "elements": "str", "required": True},
        "expect": {"type": "str", "choices": list(EXPECTS), "default": EXPECT_CONNECT},
        "timeout": {"type": "float", "default": 5},
        "wait": {"type": "float", "default": 0},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    if not p["targets"]:
        module.fail_json(msg="targets must name at least one HOST:PORT", results=[])
    if not 0 < p["timeout"] < float("inf"):
        module.fail_json(msg=f"timeout must be a positive number of seconds, got {p['timeout']}", results=[])
    if not 0 <= p["wait"] < float("inf"):
        module.fail_json(msg=f"wait must be zero or a positive number of seconds, got {p['wait']}", results=[])
    try:
        targets = [parse_target(text) for text in p["targets"]]
    except ValueError as exc:
        module.fail_json(msg=f"bad target: {exc}", results=[])
    outcome = probe_until(targets, p["expect"], p["timeout"], p["wait"])
    results = [dict(result.as_dict(), attempts=attempts) for result, attempts in outcome]
    message = failure_message([result for result, _attempts in outcome], p["expect"], p["wait"])
    if message:
        module.fail_json(msg=message, expect=p["expect"], results=results)
    module.exit_json(changed=False, expect=p["expect"], results=results)


if __name__ == "__main__":
    main()
