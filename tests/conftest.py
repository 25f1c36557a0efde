"""Shared pytest fixtures and paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.arm_double, tests.integration.cloud
sys.path.insert(0, str(ROOT / "tests" / "probe"))

# The checkout as the collection godot_fleet.fleet (collections/ansible_collections/godot_fleet/fleet links to it):
# tests import modules, module_utils and filters as ansible_collections.godot_fleet.fleet.plugins..., as ansible-test
# units does. ansible_collections is a namespace package: the collections the `ansible` package installs (amazon.aws,
# ...) stay importable beside it.
COLLECTIONS = ROOT / "collections"
sys.path.insert(0, str(COLLECTIONS))

# `make test` runs test modules side by side (pytest-xdist --dist loadfile hands out whole modules in collection
# order): the longest go first, or one of them would start last and run alone at the end.
LONGEST_FIRST = [
    "test_azure.py",
    "test_molecule.py",
    "test_aws.py",
    "test_own_game.py",
    "test_arm_double_modules.py",
    "test_aws_rooms.py",
    "test_room_image.py",
    "test_installed_collection.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
