"""The godot_build_info module reads architecture, interpreter and needed glibc from ELF files."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import godot_build_info as gbi
import pytest


def objdump_glibc(path: str) -> str:
    out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
    versions = {word.strip("()") for word in out.split() if word.strip("()").startswith("GLIBC_2")}
    return max((v.removeprefix("GLIBC_") for v in versions), key=gbi.version_key)


@pytest.mark.parametrize("binary", ["/bin/ls", "/bin/sh", "/usr/bin/env"])
def test_system_binaries(binary: str) -> None:
    facts = gbi.describe(binary)
    assert facts["exists"] and facts["executable"] and facts["elf"]
    assert facts["architecture"] == "x86_64"
    assert facts["interpreter"].startswith("/lib")
    if shutil.which("objdump"):
        assert facts["glibc_required"] == objdump_glibc(str(Path(binary).resolve()))
    else:
        assert facts["glibc_required"].startswith("2.")


def test_script_is_not_elf(tmp_path: Path) -> None:
    script = tmp_path / "launcher"
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(0o755)
    assert gbi.describe(str(script)) == {
        "exists": True,
        "executable": True,
        "elf": False,
        "architecture": "",
        "interpreter": "",
        "glibc_required": "",
    }


def test_missing_and_directory(tmp_path: Path) -> None:
    assert gbi.describe(str(tmp_path / "nope"))["exists"] is False
    assert gbi.describe(str(tmp_path))["exists"] is False


def test_not_executable(tmp_path: Path) -> None:
    copy = tmp_path / "ls"
    copy.write_bytes(Path("/bin/ls").read_bytes())
    copy.chmod(0o644)
    facts = gbi.describe(str(copy))
    assert facts["elf"] and not facts["executable"]


def test_truncated_elf_is_an_error() -> None:
    data = Path("/bin/ls").read_bytes()[:200]
    with pytest.raises(gbi.ElfError):
        gbi.inspect_elf(io.BytesIO(data))


def test_version_key_orders_numerically() -> None:
    assert gbi.version_key("2.43") > gbi.version_key("2.9") > gbi.version_key("2.3.4")
