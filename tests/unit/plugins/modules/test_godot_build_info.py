"""The godot_build_info module: main() with its arguments, as Ansible runs it on a game host."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils.elf import describe_executable
from ansible_collections.godot_fleet.fleet.plugins.modules import godot_build_info
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import fail_module, run_module


def test_reports_the_facts_of_an_executable() -> None:
    result = run_module(godot_build_info.main, {"path": "/bin/ls"})
    assert result == {"changed": False, **describe_executable("/bin/ls")}
    assert result["elf"] and result["architecture"] == "x86_64" and result["glibc_required"].startswith("2.")


def test_runs_in_check_mode() -> None:
    assert run_module(godot_build_info.main, {"path": "/bin/ls"}, check_mode=True)["elf"] is True


def test_a_missing_file_is_reported_not_failed(tmp_path: Path) -> None:
    result = run_module(godot_build_info.main, {"path": str(tmp_path / "missing")})
    assert result["changed"] is False and result["exists"] is False and result["elf"] is False


def test_the_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "game.x86_64").write_bytes(Path("/bin/true").read_bytes())
    monkeypatch.setenv("GF_TEST_BUILD_DIR", str(tmp_path))
    assert run_module(godot_build_info.main, {"path": "$GF_TEST_BUILD_DIR/game.x86_64"})["elf"] is True


def test_a_malformed_elf_fails_with_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_bytes(Path("/bin/ls").read_bytes()[:200])
    result = fail_module(godot_build_info.main, {"path": str(broken)})
    assert result["msg"].startswith(f"cannot read {broken}: truncated file")


def test_path_is_required() -> None:
    assert "missing required arguments: path" in fail_module(godot_build_info.main, {})["msg"]
