"""Firewall filters of the aws_network role: port ranges, rules per protocol, CIDR checks."""

from __future__ import annotations

import network


def test_port_ranges_collapse_consecutive_ports() -> None:
    assert network.port_ranges([12079, 12077, "12078", 13000, 12077]) == [[12077, 12079], [13000, 13000]]
    assert network.port_ranges([]) == []


def test_port_rules_one_per_range_and_protocol() -> None:
    assert network.port_rules([12077, 12078, 14000]) == [
        {"proto": "udp", "from_port": 12077, "to_port": 12078},
        {"proto": "tcp", "from_port": 12077, "to_port": 12078},
        {"proto": "udp", "from_port": 14000, "to_port": 14000},
        {"proto": "tcp", "from_port": 14000, "to_port": 14000},
    ]


def test_cidr_prefix() -> None:
    assert network.cidr_prefix("203.0.113.4/32") == 32
    assert network.cidr_prefix("203.0.113.4") == 32
    assert network.cidr_prefix("10.0.0.0/8") == 8
    assert network.cidr_prefix("0.0.0.0/0") == 0
    assert network.cidr_prefix("not-a-cidr") == -1
    assert network.cidr_prefix("") == -1
