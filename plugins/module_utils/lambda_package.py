# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reproducible AWS Lambda deployment package (zip) of a Python package directory: same sources, same bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

EPOCH = (1980, 1, 1, 0, 0, 0)
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def members(src: Path) -> list[Path]:
    """Files of the package, sorted by archive name; no caches, compiled or hidden files."""
    found: list[Path] = []
    for directory, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
        found.extend(
            Path(directory) / f for f in filenames if not f.startswith(".") and not f.endswith(SKIPPED_SUFFIXES)
        )
    return sorted(found, key=lambda p: p.relative_to(src).as_posix())


def build(src: Path) -> tuple[bytes, list[str]]:
    """The archive bytes and member names: a pure function of the file names and contents."""
    buffer = io.BytesIO()
    names: list[str] = []
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in members(src):
            name = f"{src.name}/{path.relative_to(src).as_posix()}"
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr holds the mode
            info.external_attr = 0o100644 << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
            names.append(name)
    return buffer.getvalue(), names


def write(data: bytes, dest_dir: Path, name: str) -> Path:
    """Writes the archive under a name derived from its hash (atomically; kept if already there)."""
    digest = hashlib.sha256(data).hexdigest()
    path = dest_dir / f"{name}-{digest[:16]}.zip"
    if path.is_file() and path.read_bytes() == data:
        return path
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest_dir, prefix=f".{name}-", suffix=".zip", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)
    return path


def package(src: Path, dest_dir: Path) -> dict[str, Any]:
    if not (src / "__init__.py").is_file():
        raise ValueError(f"{src} is not a Python package (no __init__.py)")
    data, names = build(src)
    path = write(data, dest_dir, src.name)
    return {
        "path": str(path),
        "code_sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "files": names,
    }
