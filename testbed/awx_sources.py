"""AWX's public sources (AWX, django-ansible-base, awx-plugins, awx_plugins.interfaces), which the AWX tiers of the
tests need and which no reachable index serves in a usable version.

They come as one tarball, named by `GF_AWX_SOURCES` (default: `../shared/awx/awx-src.tar.gz` beside the checkout,
or beside the repository a fresh clone was cloned from), unpacked once into `.cache/awx-src/<hash of the tarball>/`.
Without it the AWX tiers are reported as not run (a pytest skip whose reason says how to provide it); with `CI=true`
its absence fails them: it never passes silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from testbed import ROOT, extract_all

DEFAULT_TARBALL = ROOT.parent / "shared" / "awx" / "awx-src.tar.gz"
MEMBERS = ("awx", "django-ansible-base", "awx-plugins", "awx_plugins.interfaces")


class AwxSourcesMissing(RuntimeError):
    """The AWX sources tarball is not where GF_AWX_SOURCES (or the default path) says."""


def tarball() -> Path:
    if os.environ.get("GF_AWX_SOURCES"):
        return Path(os.environ["GF_AWX_SOURCES"])
    origin = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"],
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    beside_origin = Path(origin).parent / "shared" / "awx" / "awx-src.tar.gz" if origin.startswith("/") else None
    if not DEFAULT_TARBALL.is_file() and beside_origin and beside_origin.is_file():
        return beside_origin
    return DEFAULT_TARBALL


def sources() -> Path:
    """The unpacked sources' directory (holding awx/, django-ansible-base/, awx-plugins/, awx_plugins.interfaces/)."""
    path = tarball()
    if not path.is_file():
        raise AwxSourcesMissing(
            f"AWX's sources are not at {path}: set GF_AWX_SOURCES to a tarball holding {', '.join(MEMBERS)} "
            "(ansible/awx, ansible/django-ansible-base, ansible/awx-plugins, ansible/awx_plugins.interfaces sources; "
            "see README.md, 'AWX / Tower')"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    target = ROOT / ".cache" / "awx-src" / digest
    if not (target / ".complete").exists():
        partial = target.with_name(f"{digest}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(path) as archive:
            extract_all(archive, partial)
        missing = [m for m in MEMBERS if not (partial / m).is_dir()]
        if missing:
            shutil.rmtree(partial)
            raise AwxSourcesMissing(f"{path} lacks {', '.join(missing)} (it must hold {', '.join(MEMBERS)})")
        (partial / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        try:
            partial.rename(target)
        except OSError:  # another process unpacked it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return target


def sources_or_skip() -> Path:
    """sources() for a test: without them the test is reported as not run (skipped, saying how to provide them),
    or fails under CI=true."""
    try:
        return sources()
    except AwxSourcesMissing as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the AWX tier cannot run: {error}")
        pytest.skip(f"NOT RUN, AWX tier: {error}")
