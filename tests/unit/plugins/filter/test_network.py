"""Firewall filters (plugins/filter/network.py): port ranges, security group and NSG rules, CIDR checks."""

from __future__ import annotations

from ansible_collections.godot_fleet.fleet.plugins.filter import network


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


def test_nsg_rules_admit_room_ports_from_any_source_port() -> None:
    rules = network.nsg_rules([12077, 12078, 14000])
    assert [(r["name"], r["protocol"], r["destination_port_range"], r["priority"]) for r in rules] == [
        ("game-udp-12077-12078", "Udp", "12077-12078", 200),
        ("game-tcp-12077-12078", "Tcp", "12077-12078", 201),
        ("game-udp-14000", "Udp", "14000", 202),
        ("game-tcp-14000", "Tcp", "14000", 203),
    ]
    assert {r["source_port_range"] for r in rules} == {"*"}
    assert {(r["direction"], r["access"]) for r in rules} == {("Inbound", "Allow")}
    assert network.nsg_rules([]) == []


def test_filter_module_exposes_every_filter() -> None:
    assert network.FilterModule().filters() == {
        "port_ranges": network.port_ranges,
        "port_rules": network.port_rules,
        "nsg_rules": network.nsg_rules,
        "cidr_prefix": network.cidr_prefix,
    }
