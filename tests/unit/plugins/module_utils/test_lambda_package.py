"""plugins/module_utils/lambda_package.py: the same sources always give the same zip (hence the same CodeSha256)."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import lambda_package


def make_package(root: Path, name: str = "room_api") -> Path:
    src = root / name
    (src / "backends").mkdir(parents=True)
    (src / "__init__.py").write_text('"""The room API."""\n')
    (src / "handlers.py").write_text("def handle():\n    return 200\n")
    (src / "backends" / "aws.py").write_text("REGION = 'eu-west-1'\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "handlers.cpython-311.pyc").write_bytes(b"\0")
    (src / "handlers.pyc").write_bytes(b"\0")
    (src / ".hidden").write_text("secret\n")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref\n")
    return src


def test_members_are_sorted_and_leave_out_caches_compiled_and_hidden_files(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    assert [p.relative_to(src).as_posix() for p in lambda_package.members(src)] == [
        "__init__.py",
        "backends/aws.py",
        "handlers.py",
    ]


def test_archive_is_a_function_of_names_and_contents_only(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    first, names = lambda_package.build(src)
    for path in src.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    (src / "handlers.py").chmod(0o600)
    again, _names = lambda_package.build(src)
    assert first == again
    assert names == ["room_api/__init__.py", "room_api/backends/aws.py", "room_api/handlers.py"]
    (src / "handlers.py").write_text("def handle():\n    return 201\n")
    assert lambda_package.build(src)[0] != first


def test_archive_entries_have_fixed_dates_and_modes(tmp_path: Path) -> None:
    data, _names = lambda_package.build(make_package(tmp_path))
    archive = tmp_path / "a.zip"
    archive.write_bytes(data)
    with zipfile.ZipFile(archive) as z:
        infos = z.infolist()
        assert z.read("room_api/handlers.py") == b"def handle():\n    return 200\n"
    assert {i.date_time for i in infos} == {lambda_package.EPOCH}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_package_writes_the_archive_under_its_hash_once(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    dest = tmp_path / "out" / "cache"
    result = lambda_package.package(src, dest)
    path = Path(result["path"])
    data = path.read_bytes()
    digest = hashlib.sha256(data)
    assert path == dest / f"room_api-{digest.hexdigest()[:16]}.zip"
    assert result["code_sha256"] == base64.b64encode(digest.digest()).decode()
    assert result["files"] == ["room_api/__init__.py", "room_api/backends/aws.py", "room_api/handlers.py"]
    assert path.stat().st_mode & 0o777 == 0o644
    inode = path.stat().st_ino
    assert lambda_package.package(src, dest) == result
    assert path.stat().st_ino == inode  # kept, not rewritten
    assert [p.name for p in dest.iterdir()] == [path.name]  # no temporary file left


def test_a_directory_without_init_is_refused(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    with pytest.raises(ValueError, match="not a Python package"):
        lambda_package.package(tmp_path / "scripts", tmp_path / "out")
