"""The rooms_lambda_package module: main() with its arguments."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.godot_fleet.fleet.plugins.modules import rooms_lambda_package
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import fail_module, run_module


def test_packages_a_python_package_unchanged_in_every_run(tmp_path: Path) -> None:
    src = tmp_path / "src" / "room_api"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "handlers.py").write_text("X = 1\n")
    args = {"src": str(tmp_path / "src" / "." / "room_api"), "dest_dir": str(tmp_path / "dist")}
    result = run_module(rooms_lambda_package.main, args)
    assert result["changed"] is False
    assert result["files"] == ["room_api/__init__.py", "room_api/handlers.py"]
    assert Path(result["path"]).parent == tmp_path / "dist" and Path(result["path"]).is_file()
    assert run_module(rooms_lambda_package.main, args, check_mode=True) == result


def test_a_directory_that_is_not_a_package_fails(tmp_path: Path) -> None:
    result = fail_module(rooms_lambda_package.main, {"src": str(tmp_path), "dest_dir": str(tmp_path / "dist")})
    assert result["msg"] == f"cannot package {tmp_path}: {tmp_path} is not a Python package (no __init__.py)"
