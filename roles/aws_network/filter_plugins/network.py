# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for firewall rules: port ranges and CIDR checks (standard library only, no netaddr)."""

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


def cidr_prefix(value: Any) -> int:
    """Prefix length of an IPv4 network or address ('203.0.113.4/32' -> 32, '10.0.0.1' -> 32), -1 if invalid."""
    try:
        return ipaddress.IPv4Network(str(value), strict=False).prefixlen
    except ValueError:
        return -1


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"port_ranges": port_ranges, "port_rules": port_rules, "cidr_prefix": cidr_prefix}
