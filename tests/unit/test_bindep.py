"""bindep.txt and scripts/bindep.py, the reader the bootstrap uses before any venv exists: it selects exactly what
bindep itself selects, refuses what it does not understand, and counts a package provided by another as present.

The reader is a command (scripts/bootstrap.sh runs `python3 scripts/bindep.py --missing test`): it is tested as one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READER = ROOT / "scripts" / "bindep.py"
BINDEP = Path(sys.executable).parent / "bindep"


def bindep_lists(*profiles: str, path: Path = ROOT / "bindep.txt") -> list[str]:
    out = subprocess.run(
        [str(BINDEP), "-f", str(path), "-l", "newline", *profiles], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def reader_lists(*args: str, path: Path = ROOT / "bindep.txt") -> list[str]:
    out = subprocess.run(
        [sys.executable, str(READER), "--file", str(path), *args], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.parametrize("profiles", [(), ("test",)], ids=["default", "test"])
def test_the_reader_selects_what_bindep_selects(profiles: tuple[str, ...]) -> None:
    assert reader_lists(*profiles) == bindep_lists(*profiles)


def test_the_selection_rules_on_every_kind_of_line(tmp_path: Path) -> None:
    rules = tmp_path / "bindep.txt"
    rules.write_text(
        "# comment\nplain\nprofiled [test]\nboth [platform:dpkg test]\nrpmonly [platform:rpm test]\n"
        "dpkgonly [platform:dpkg]\nnotdpkg [!platform:dpkg]\nnotrpm [test !platform:rpm]  # why\n"
        "either [platform:dpkg platform:rpm]\n"
    )
    for profiles in [(), ("test",), ("other",)]:
        assert reader_lists(*profiles, path=rules) == bindep_lists(*profiles, path=rules), profiles


def test_lines_the_reader_cannot_read_are_refused(tmp_path: Path) -> None:
    rules = tmp_path / "bindep.txt"
    rules.write_text("grouped [(platform:dpkg test)]\n")
    proc = subprocess.run([sys.executable, str(READER), "--file", str(rules)], capture_output=True, text=True)
    assert proc.returncode != 0 and "bindep.txt:1: 'grouped [(platform:dpkg test)]'" in proc.stderr


def test_every_package_says_why_it_is_there() -> None:
    lines = [line for line in (ROOT / "bindep.txt").read_text().splitlines() if line and not line.startswith("#")]
    packages = [line for line in lines if not line.lstrip().startswith("#")]
    assert packages and all("#" in line for line in packages), [line for line in packages if "#" not in line]


def test_a_provided_package_counts_as_installed(tmp_path: Path) -> None:
    provided = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Provides}\n"], capture_output=True, text=True, check=True
    ).stdout
    names = {
        p.split()[0]
        for line in provided.splitlines()
        if line.startswith("ii")
        for p in line.split("\t")[1].split(",")
        if p.strip()
    }
    assert names
    rules = tmp_path / "bindep.txt"
    # an installed package by its name, every name an installed package provides, and one nothing provides
    rules.write_text("".join(f"{name}\n" for name in ["dpkg", *sorted(names), "gf-no-such-package"]))
    assert reader_lists("--missing", path=rules) == ["gf-no-such-package"]
