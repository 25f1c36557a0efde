"""Shared pytest hooks."""

from __future__ import annotations

import pytest

# Imports need no path here: pytest's `pythonpath` (pyproject.toml) puts the checkout (tests.room_api.roomtest) and
# collections/ (ansible_collections.godot_fleet.fleet...) on sys.path, and the test bed (testbed) and the room API
# (room_api) are installed in the project venv.

# `make test` runs test modules side by side (pytest-xdist --dist loadfile hands out whole modules in collection
# order): the longest go first, or one of them would start last and run alone at the end.
LONGEST_FIRST = [
    "test_azure.py",
    "test_awx_jobs.py",
    "test_awx.py",
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
