# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading an executable without running it: ELF class, architecture, interpreter and the glibc it needs.

Runs on game hosts: Python 3.9 and the standard library only.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from typing import Any, BinaryIO

MACHINES = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv64"}
SHT_GNU_VERNEED = 0x6FFFFFFE
PT_INTERP = 3
GLIBC_RE = re.compile(rb"^GLIBC_(\d+(?:\.\d+)+)$")
ELF_MAGIC = b"\x7fELF"


class ElfError(ValueError):
    """The file claims to be ELF but is malformed."""


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ElfError(f"truncated file at offset {offset}")
    return data


def _cstring(table: bytes, offset: int) -> bytes:
    end = table.find(b"\0", offset)
    return table[offset:] if end < 0 else table[offset:end]


def version_key(version: str) -> tuple[int, ...]:
    """'2.43' -> (2, 43): glibc versions in numeric order."""
    return tuple(int(part) for part in version.split("."))


def inspect_elf(f: BinaryIO) -> dict[str, str]:
    """Return architecture, interpreter and glibc_required of an open ELF file."""
    ident = _read(f, 0, 16)
    if ident[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    is64 = ident[4] == 2
    end = "<" if ident[5] == 1 else ">"
    (e_machine,) = struct.unpack(end + "H", _read(f, 18, 2))
    if is64:
        e_phoff, e_shoff = struct.unpack(end + "QQ", _read(f, 0x20, 16))
        e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack(end + "HHHH", _read(f, 0x36, 8))
    else:
        e_phoff, e_shoff = struct.unpack(end + "II", _read(f, 0x1C, 8))
        e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack(end + "HHHH", _read(f, 0x2A, 8))

    interpreter = ""
    for i in range(e_phnum):
        base = e_phoff + i * e_phentsize
        if is64:
            p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack(end + "IIQQQQ", _read(f, base, 40))
        else:
            p_type, p_offset, _va, _pa, p_filesz = struct.unpack(end + "IIIII", _read(f, base, 20))
        if p_type == PT_INTERP:
            interpreter = _read(f, p_offset, p_filesz).rstrip(b"\0").decode("utf-8", "replace")

    sections = []
    for i in range(e_shnum):
        base = e_shoff + i * e_shentsize
        if is64:
            _n, sh_type, _fl, _ad, sh_offset, sh_size, sh_link, sh_info = struct.unpack(
                end + "IIQQQQII", _read(f, base, 48)
            )
        else:
            _n, sh_type, _fl, _ad, sh_offset, sh_size, sh_link, sh_info = struct.unpack(
                end + "IIIIIIII", _read(f, base, 32)
            )
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_info))

    newest = ""
    for sh_type, sh_offset, _size, sh_link, sh_info in sections:
        if sh_type != SHT_GNU_VERNEED or sh_link >= len(sections):
            continue
        _t, str_offset, str_size, _l, _i = sections[sh_link]
        strtab = _read(f, str_offset, str_size)
        entry = sh_offset
        for _need in range(sh_info):
            _ver, vn_cnt, _file, vn_aux, vn_next = struct.unpack(end + "HHIII", _read(f, entry, 16))
            aux = entry + vn_aux
            for _aux in range(vn_cnt):
                _hash, _flags, _other, vna_name, vna_next = struct.unpack(end + "IHHII", _read(f, aux, 16))
                match = GLIBC_RE.match(_cstring(strtab, vna_name))
                if match:
                    found = match.group(1).decode()
                    if not newest or version_key(found) > version_key(newest):
                        newest = found
                if not vna_next:
                    break
                aux += vna_next
            if not vn_next:
                break
            entry += vn_next
    return {
        "architecture": MACHINES.get(e_machine, f"machine-{e_machine}"),
        "interpreter": interpreter,
        "glibc_required": newest,
    }


def describe_executable(path: str) -> dict[str, Any]:
    """Facts about the file at path: exists, executable, elf, architecture, interpreter, glibc_required.

    A missing path or one that is not a regular file reports exists=false; a file that is not ELF (a launcher
    script) elf=false. Raises ElfError (malformed ELF), struct.error or OSError when the file cannot be read.
    """
    result: dict[str, Any] = {
        "exists": False,
        "executable": False,
        "elf": False,
        "architecture": "",
        "interpreter": "",
        "glibc_required": "",
    }
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return result
    if not stat.S_ISREG(st.st_mode):
        return result
    result["exists"] = True
    result["executable"] = bool(st.st_mode & 0o111)
    with open(path, "rb") as f:
        if f.read(4) != ELF_MAGIC:
            return result
        result["elf"] = True
        result.update(inspect_elf(f))
    return result
