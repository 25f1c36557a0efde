# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for firewall rules: port ranges, AWS security group and Azure NSG rules, CIDR checks (stdlib only)."""

from __future__ import annotations

import ipaddress
from typing import Any


def port_ranges(ports: list[Any]) -> list[list[int]]:
    """[12077, 12078, 12079, 13000] -> [[12077, 12079], [13000, 13000]]."""
    ranges: list[list[int]] = []
    for port in sorted({int(p) for p in ports}):
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return ranges


def port_rules(ports: list[Any], protocols: list[str] | None = None) -> list[dict[str, Any]]:
    """One {proto, from_port, to_port} rule per port range and protocol (UDP first, then TCP)."""
    return [
        {"proto": proto, "from_port": first, "to_port": last}
        for first, last in port_ranges(ports)
        for proto in (protocols or ["udp", "tcp"])
    ]


def nsg_rules(ports: list[Any], priority: int = 200, prefix: str = "game") -> list[dict[str, Any]]:
    """Azure NSG rules admitting the room ports from anywhere: one rule per port range and protocol.

    The *destination* port is the room port; the source port is any (`*`): clients pick their own source ports.
    """
    rules: list[dict[str, Any]] = []
    for first, last in port_ranges(ports):
        for proto in ("Udp", "Tcp"):
            rules.append(
                {
                    "name": f"{prefix}-{proto.lower()}-{first}" + (f"-{last}" if last != first else ""),
                    "protocol": proto,
                    "direction": "Inbound",
                    "access": "Allow",
                    "priority": priority + len(rules),
                    "source_address_prefix": "*",
                    "source_port_range": "*",
                    "destination_address_prefix": "*",
                    "destination_port_range": str(first) if first == last else f"{first}-{last}",
                }
            )
    return rules


def cidr_prefix(value: Any) -> int:
    """Prefix length of an IPv4 network or address ('203.0.113.4/32' -> 32, '10.0.0.1' -> 32), -1 if invalid."""
    try:
        return ipaddress.IPv4Network(str(value), strict=False).prefixlen
    except ValueError:
        return -1


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "port_ranges": port_ranges,
            "port_rules": port_rules,
            "nsg_rules": nsg_rules,
            "cidr_prefix": cidr_prefix,
        }
