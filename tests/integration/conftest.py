"""Fixtures of the integration tests: the collection as its users install it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding godot_fleet.fleet built from this checkout and installed with ansible-galaxy."""
    dest = tmp_path_factory.mktemp("collections")
    proc = subprocess.run(
        [str(ROOT / "scripts" / "collection.sh"), str(dest)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(proc.stdout.strip()) == dest / "ansible_collections" / "godot_fleet" / "fleet"
    return dest


@pytest.fixture(params=["checkout", "installed"])
def collection(request: pytest.FixtureRequest) -> Path | None:
    """Runs a test twice: with the playbooks of this checkout (None), then with the installed collection (its path)."""
    if request.param == "installed":
        path: Path = request.getfixturevalue("installed_collection")
        return path
    return None
