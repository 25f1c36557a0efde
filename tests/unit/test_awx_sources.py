"""The AWX tiers never pass silently without AWX's sources: reported as not run (a skip saying how to provide them),
or failed under CI=true (testbed/awx_sources.py)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from testbed import awx_sources


def test_missing_sources_are_reported_as_not_run_with_how_to_provide_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GF_AWX_SOURCES", str(tmp_path / "absent.tar.gz"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"NOT RUN, AWX tier: .*absent\.tar\.gz: set GF_AWX_SOURCES"):
        awx_sources.sources_or_skip()


def test_missing_sources_fail_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GF_AWX_SOURCES", str(tmp_path / "absent.tar.gz"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and the AWX tier cannot run"):
        awx_sources.sources_or_skip()


def test_a_tarball_without_the_expected_directories_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "awx").mkdir()
    tarball = tmp_path / "partial.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "awx", arcname="awx")
    monkeypatch.setenv("GF_AWX_SOURCES", str(tarball))
    monkeypatch.setattr(awx_sources, "ROOT", tmp_path)
    with pytest.raises(awx_sources.AwxSourcesMissing, match="lacks django-ansible-base, awx-plugins"):
        awx_sources.sources()
