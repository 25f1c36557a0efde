"""Fixtures of the integration tests: the collection as its users install it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding godot_fleet.fleet built from this checkout and installed with ansible-galaxy.

    The end-to-end tests run this checkout's entry points; input validation and check mode run from here, as a
    Galaxy or AWX user runs the playbooks (testbed.playbook.run(..., installed=...)).
    """
    dest = tmp_path_factory.mktemp("collections")
    proc = subprocess.run(
        [str(ROOT / "scripts" / "collection.sh"), str(dest)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(proc.stdout.strip()) == dest / "ansible_collections" / "godot_fleet" / "fleet"
    return dest
