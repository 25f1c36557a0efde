"""plugins/module_utils/elf.py reads architecture, interpreter and needed glibc from ELF files."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import elf


def objdump_glibc(path: str) -> str:
    """The newest GLIBC_ version objdump (binutils, declared in bindep.txt) finds in the dynamic symbols."""
    out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
    versions = {word.strip("()") for word in out.split() if word.strip("()").startswith("GLIBC_2")}
    return max((v.removeprefix("GLIBC_") for v in versions), key=elf.version_key)


@pytest.mark.parametrize("binary", ["/bin/ls", "/bin/sh", "/usr/bin/env"])
def test_system_binaries(binary: str) -> None:
    facts = elf.describe_executable(binary)
    assert facts["exists"] and facts["executable"] and facts["elf"]
    assert facts["architecture"] == "x86_64"
    assert facts["interpreter"].startswith("/lib")
    assert facts["glibc_required"] == objdump_glibc(str(Path(binary).resolve()))


def test_script_is_not_elf(tmp_path: Path) -> None:
    script = tmp_path / "launcher"
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(0o755)
    assert elf.describe_executable(str(script)) == {
        "exists": True,
        "executable": True,
        "elf": False,
        "architecture": "",
        "interpreter": "",
        "glibc_required": "",
    }


def test_missing_and_directory(tmp_path: Path) -> None:
    assert elf.describe_executable(str(tmp_path / "nope"))["exists"] is False
    assert elf.describe_executable(str(tmp_path))["exists"] is False


def test_not_executable(tmp_path: Path) -> None:
    copy = tmp_path / "ls"
    copy.write_bytes(Path("/bin/ls").read_bytes())
    copy.chmod(0o644)
    facts = elf.describe_executable(str(copy))
    assert facts["elf"] and not facts["executable"]


def test_truncated_elf_is_an_error() -> None:
    data = Path("/bin/ls").read_bytes()[:200]
    with pytest.raises(elf.ElfError):
        elf.inspect_elf(io.BytesIO(data))


def test_version_key_orders_numerically() -> None:
    assert elf.version_key("2.43") > elf.version_key("2.9") > elf.version_key("2.3.4")


def make_elf(is64: bool, big_endian: bool, machine: int, interpreter: str, needs: dict[str, list[str]]) -> bytes:
    """A minimal ELF file: one PT_INTERP program header, a string table and an SHT_GNU_verneed section that needs
    the given versions from each library ({"libc.so.6": ["GLIBC_2.17", ...]})."""
    end = ">" if big_endian else "<"
    ehsize, phentsize, shentsize = (64, 56, 64) if is64 else (52, 32, 40)
    strtab = bytearray(b"\0")

    def string(value: str) -> int:
        strtab.extend(value.encode() + b"\0")
        return len(strtab) - len(value) - 1

    verneed = bytearray()
    for index, (library, versions) in enumerate(needs.items()):
        last = index == len(needs) - 1
        file_name = string(library)
        verneed += struct.pack(end + "HHIII", 1, len(versions), file_name, 16, 0 if last else 16 + 16 * len(versions))
        for position, version in enumerate(versions):
            vna_next = 0 if position == len(versions) - 1 else 16
            verneed += struct.pack(end + "IHHII", 0, 0, 2 + position, string(version), vna_next)
    interp = interpreter.encode() + b"\0"
    phoff = ehsize
    interp_off = phoff + phentsize
    strtab_off = interp_off + len(interp)
    verneed_off = strtab_off + len(strtab)
    shoff = verneed_off + len(verneed)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if big_endian else 1, 1]) + bytes(9)
    if is64:
        header = ident + struct.pack(
            end + "HHIQQQIHHHHHH", 3, machine, 1, 0, phoff, shoff, 0, ehsize, phentsize, 1, shentsize, 3, 0
        )
        phdr = struct.pack(end + "IIQQQQQQ", 3, 4, interp_off, 0, 0, len(interp), len(interp), 1)
        sections = [
            struct.pack(end + "IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            struct.pack(end + "IIQQQQIIQQ", 0, 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0),
            struct.pack(end + "IIQQQQIIQQ", 0, 0x6FFFFFFE, 0, 0, verneed_off, len(verneed), 1, len(needs), 8, 0),
        ]
    else:
        header = ident + struct.pack(
            end + "HHIIIIIHHHHHH", 3, machine, 1, 0, phoff, shoff, 0, ehsize, phentsize, 1, shentsize, 3, 0
        )
        phdr = struct.pack(end + "IIIIIIII", 3, interp_off, 0, 0, len(interp), len(interp), 4, 1)
        sections = [
            struct.pack(end + "IIIIIIIIII", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            struct.pack(end + "IIIIIIIIII", 0, 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0),
            struct.pack(end + "IIIIIIIIII", 0, 0x6FFFFFFE, 0, 0, verneed_off, len(verneed), 1, len(needs), 4, 0),
        ]
    assert len(header) == ehsize and len(phdr) == phentsize
    return header + phdr + interp + bytes(strtab) + bytes(verneed) + b"".join(sections)


@pytest.mark.parametrize(
    ("is64", "big_endian", "machine", "architecture"),
    [
        (True, False, 183, "aarch64"),
        (False, False, 40, "arm"),
        (False, True, 8, "machine-8"),
        (True, True, 62, "x86_64"),
    ],
)
def test_every_elf_class_and_byte_order(is64: bool, big_endian: bool, machine: int, architecture: str) -> None:
    data = make_elf(
        is64,
        big_endian,
        machine,
        "/lib/ld-linux.so.3",
        {
            "libm.so.6": ["GLIBC_2.29", "GLIBC_2.4"],
            "libc.so.6": ["GLIBC_2.4", "GLIBC_2.34", "GLIBC_PRIVATE", "GLIBC_2.9"],
        },
    )
    assert elf.inspect_elf(io.BytesIO(data)) == {
        "architecture": architecture,
        "interpreter": "/lib/ld-linux.so.3",
        "glibc_required": "2.34",
    }


def test_static_elf_needs_no_glibc(tmp_path: Path) -> None:
    path = tmp_path / "server"
    path.write_bytes(make_elf(True, False, 62, "", {}))
    path.chmod(0o755)
    assert elf.describe_executable(str(path)) == {
        "exists": True,
        "executable": True,
        "elf": True,
        "architecture": "x86_64",
        "interpreter": "",
        "glibc_required": "",
    }
