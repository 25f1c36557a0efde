#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: a reproducible Lambda deployment package (zip) of a Python package directory."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

DOCUMENTATION = r"""
---
module: rooms_lambda_package
short_description: Build a reproducible zip of a Python package for AWS Lambda
description:
  - Zips the Python package directory O(src) (as C(<basename of src>/...) inside the archive) so that the same
    sources always give the same bytes, hence the same C(CodeSha256) on Lambda, and amazon.aws.lambda reports no
    change for unchanged code. Entries are sorted, every timestamp is 1980-01-01 00:00:00, every file mode is
    0644, and C(__pycache__) directories, compiled files and hidden files are left out.
  - Writes the archive as C(<dest_dir>/<name>-<first 16 hex digits of its sha256>.zip) unless that file exists.
  - This is a build step on the controller: it always reports C(changed=false) and also runs in check mode (the
    Lambda task that uploads the archive reports the change).
version_added: "0.1.0"
author: godot-fleet contributors
options:
  src:
    description: The package directory (it must contain C(__init__.py)).
    type: path
    required: true
  dest_dir:
    description: Directory the archive is written to (created if missing).
    type: path
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Package the room API
  rooms_lambda_package:
    src: "{{ playbook_dir }}/../room_api"
    dest_dir: "{{ playbook_dir }}/../.cache/room-api"
  register: package
"""

RETURN = r"""
path:
  description: Path of the archive.
  type: str
  returned: always
code_sha256:
  description: Base64 SHA-256 of the archive, as Lambda reports it (CodeSha256).
  type: str
  returned: always
files:
  description: The archive members, in order.
  type: list
  elements: str
  returned: always
"""

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


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        result = package(Path(module.params["src"]).resolve(), Path(module.params["dest_dir"]))
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot package {module.params['src']}: {exc}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
