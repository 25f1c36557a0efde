"""room_api/build_lambda.py: the Lambda artifact is reproducible, holds what the functions run and nothing else, and
the functions' entry points import from it alone (with the boto3 the Lambda runtime provides)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from testbed import ROOT

BUILD = ROOT / "room_api" / "build_lambda.py"


def build(dest: Path) -> str:
    proc = subprocess.run([sys.executable, str(BUILD), str(dest)], capture_output=True, text=True, check=True)
    return proc.stdout


def test_the_same_sources_give_the_same_bytes_and_an_unchanged_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "room-api-lambda.zip", tmp_path / "b" / "room-api-lambda.zip"
    assert "written" in build(first)
    assert "written" in build(second)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    mtime = first.stat().st_mtime_ns
    assert "unchanged" in build(first)
    assert first.stat().st_mtime_ns == mtime


def test_it_holds_the_aws_side_only_with_fixed_times_and_modes(tmp_path: Path) -> None:
    artifact = tmp_path / "room-api-lambda.zip"
    build(artifact)
    with zipfile.ZipFile(artifact) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert names == [f"room_api/{m}.py" for m in
                     ("__init__", "auth", "aws", "aws_lambda", "backend", "handlers", "model")]  # fmt: skip
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {((1980, 1, 1, 0, 0, 0), 0o100644)}


def test_the_entry_points_import_from_the_artifact_alone(tmp_path: Path) -> None:
    artifact = tmp_path / "room-api-lambda.zip"
    build(artifact)
    code = (
        f"import sys; sys.path.insert(0, {str(artifact)!r}); import room_api.aws_lambda as f; "
        "assert f.__file__.startswith(sys.path[0]), f.__file__; f.api_handler, f.cleanup_handler"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
