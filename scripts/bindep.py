#!/usr/bin/env python3
"""The packages bindep.txt asks for on this machine: the subset of bindep's format the project uses, read with the
standard library only (it runs before any venv exists; tests/unit/test_bindep.py checks it agrees with bindep).

    scripts/bindep.py [--missing] [PROFILE ...]

Prints one package per line: those selected for this platform and these profiles (bindep's rules: a line without
selectors always; platform and profile selectors must each match when present; `!x` excludes). With --missing,
only those dpkg does not have installed, counting a package as present when an installed package provides it
(as apt does: NodeSource's nodejs provides npm, and Debian's npm would conflict with it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BINDEP = Path(__file__).resolve().parent.parent / "bindep.txt"
LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9.+_-]+)\s*(?:\[(?P<selectors>[^\]()]*)\])?$")


@dataclass(frozen=True)
class Requirement:
    name: str
    selectors: tuple[str, ...]

    def wanted(self, platforms: set[str], profiles: set[str]) -> bool:
        return all(
            _matches([s for s in self.selectors if s.lstrip("!").startswith("platform:") == is_platform], active)
            for is_platform, active in ((True, platforms), (False, profiles))
        )


def _matches(selectors: list[str], active: set[str]) -> bool:
    negative = {s[1:] for s in selectors if s.startswith("!")}
    positive = {s for s in selectors if not s.startswith("!")}
    return not (negative & active) and (not positive or bool(positive & active))


def parse(text: str, source: str = "bindep.txt") -> list[Requirement]:
    requirements = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = LINE.match(line)
        if not match:
            raise SystemExit(
                f"{source}:{number}: '{line}' is not 'package [selectors]' (groups and version constraints are not "
                "used by this project: scripts/bindep.py does not read them)"
            )
        requirements.append(Requirement(match["name"], tuple((match["selectors"] or "").split())))
    return requirements


def platforms() -> set[str]:
    found = {f"platform:{tool}" for tool in ("dpkg", "rpm") if shutil.which(tool)}
    os_release = Path("/etc/os-release")
    if os_release.exists():
        fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
        found.add(f"platform:{fields.get('ID', '').strip(chr(34))}")
    return found


def installed() -> set[str]:
    """Installed package names and the names they provide (dpkg)."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Provides}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names: set[str] = set()
    for status, package, provides in (line.split("\t") for line in out.splitlines()):
        if status.startswith("ii"):
            names.add(package)
            names.update(p.split()[0] for p in provides.split(",") if p.strip())
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--missing", action="store_true", help="only the packages that are not installed (dpkg)")
    parser.add_argument("--file", type=Path, default=BINDEP, help="the bindep file (default: the project's)")
    parser.add_argument("profiles", nargs="*", help="profiles to select besides the default (e.g. test)")
    args = parser.parse_args()
    wanted = [
        r.name
        for r in parse(args.file.read_text(), str(args.file))
        if r.wanted(platforms(), set(args.profiles) or {"default"})
    ]
    if args.missing:
        present = installed()
        wanted = [name for name in wanted if name not in present]
    sys.stdout.write("".join(f"{name}\n" for name in wanted))


if __name__ == "__main__":
    main()
