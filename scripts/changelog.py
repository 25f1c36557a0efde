"""CHANGELOG.rst from changelogs/ with antsibull-changelog (`make changelog`).

CHANGELOG.rst is what `antsibull-changelog release` writes for galaxy.yml's version: the released versions of
changelogs/changelog.yaml, the pending fragments of changelogs/fragments/ and the plugins whose version_added is
that version. antsibull-changelog renders pending fragments only while releasing, so this runs `release` on a
throwaway copy of the checkout (the files git does not ignore) and keeps only its CHANGELOG.rst: changelogs/ is
never touched. tests/unit/test_changelog.py renders the same way and compares.

    python scripts/changelog.py          lint the fragments, then rewrite CHANGELOG.rst
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def antsibull_changelog(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = BIN / "antsibull-changelog"
    if not tool.exists():
        raise SystemExit(f"{tool} is missing: run `make venv` (requirements-dev.txt)")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(tool), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def copy_checkout(dest: Path) -> None:
    """The files git does not ignore (tracked or new), as they are in the work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, dest / name
        if not os.path.lexists(source):  # deleted in the work tree, not yet in the index
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def render(scratch: Path) -> str:
    """The CHANGELOG.rst that `antsibull-changelog release` writes for a copy of the checkout in `scratch`."""
    copy_checkout(scratch)
    result = antsibull_changelog("release", "--ansible-doc-bin", str(BIN / "ansible-doc"), cwd=scratch)
    if result.returncode != 0:
        raise RuntimeError(
            "antsibull-changelog release failed on a copy of the checkout (every plugin's documentation must parse "
            f"with ansible-doc):\n{result.stdout}{result.stderr}"
        )
    generated = scratch / "CHANGELOG.rst"
    if not generated.exists():
        raise RuntimeError("antsibull-changelog wrote no CHANGELOG.rst: see `output` in changelogs/config.yaml")
    return generated.read_text()


def main() -> None:
    lint = antsibull_changelog("lint", cwd=ROOT)
    if lint.returncode != 0 or lint.stdout.strip():
        raise SystemExit(f"antsibull-changelog lint: fix changelogs/fragments/:\n{lint.stdout}{lint.stderr}")
    with tempfile.TemporaryDirectory() as scratch:
        (ROOT / "CHANGELOG.rst").write_text(render(Path(scratch)))
    print("CHANGELOG.rst regenerated from changelogs/")


if __name__ == "__main__":
    main()
