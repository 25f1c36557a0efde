"""collections/requirements.yml must be satisfied by the collections the ansible package installed."""

from __future__ import annotations

import json
from pathlib import Path

import ansible_collections
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def installed_version(fqcn: str) -> Version:
    namespace, name = fqcn.split(".")
    base = Path(next(iter(ansible_collections.__path__)))
    manifest = json.loads((base / namespace / name / "MANIFEST.json").read_text())
    return Version(manifest["collection_info"]["version"])


def test_requirements_are_satisfied() -> None:
    wanted = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())["collections"]
    assert wanted, "collections/requirements.yml lists no collection"
    for entry in wanted:
        version = installed_version(entry["name"])
        assert version in SpecifierSet(entry["version"]), (
            f"{entry['name']} {version} does not satisfy {entry['version']}"
        )


def test_every_collection_used_is_listed() -> None:
    listed = {e["name"] for e in yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())["collections"]}
    used = set()
    for path in [*ROOT.glob("roles/**/*.yml"), *ROOT.glob("playbooks/*.yml"), *ROOT.glob("molecule/**/*.yml")]:
        for word in path.read_text().split():
            parts = word.rstrip(":").split(".")
            if (
                len(parts) == 3
                and parts[0] in {"amazon", "azure", "community", "containers", "ansible"}
                and parts[1] != "builtin"
            ):
                used.add(".".join(parts[:2]))
    assert used <= listed, f"used but not listed in collections/requirements.yml: {sorted(used - listed)}"
