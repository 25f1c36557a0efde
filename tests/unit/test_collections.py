"""The collections godot_fleet.fleet depends on: galaxy.yml's `dependencies` name them, collections/requirements.yml
(for AWX project syncs) repeats them, the `ansible` package of requirements.txt bundles versions that satisfy
them, and every collection the roles, playbooks and plugins call is among them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import ansible_collections
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from testbed import playbook

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["roles", "playbooks", "plugins", "meta", "inventories/aws", "inventories/azure"]


def dependencies() -> dict[str, str]:
    deps: dict[str, str] = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    return deps


def installed_version(fqcn: str) -> Version:
    namespace, name = fqcn.split(".")
    for base in map(Path, ansible_collections.__path__):
        manifest = base / namespace / name / "MANIFEST.json"
        if manifest.is_file():
            return Version(json.loads(manifest.read_text())["collection_info"]["version"])
    raise AssertionError(f"{fqcn} is not installed: the ansible package of requirements.txt should bundle it")


def test_bundled_collections_satisfy_the_dependencies() -> None:
    assert dependencies(), "galaxy.yml declares no dependencies"
    for fqcn, wanted in dependencies().items():
        version = installed_version(fqcn)
        assert version in SpecifierSet(wanted), f"{fqcn} {version} does not satisfy galaxy.yml's {wanted}"


def test_requirements_yml_repeats_galaxy_yml() -> None:
    listed = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())["collections"]
    assert {e["name"]: e["version"] for e in listed} == dependencies(), (
        "collections/requirements.yml must list exactly galaxy.yml's dependencies, with the same versions"
    )


def test_every_collection_called_is_a_dependency() -> None:
    used: set[str] = set()
    pattern = re.compile(r"\b(amazon|azure|community|containers|ansible|kubernetes|google|cisco)\.([a-z0-9_]+)\.")
    for top in SHIPPED:
        for path in (ROOT / top).rglob("*"):
            if path.suffix in {".yml", ".yaml", ".py", ".j2"}:
                used.update(f"{ns}.{name}" for ns, name in pattern.findall(path.read_text()))
    used -= {"ansible.builtin", "ansible.module_utils", "ansible.plugins"}
    assert used <= set(dependencies()), (
        f"called but not in galaxy.yml's dependencies: {sorted(used - set(dependencies()))}"
    )


def test_the_collections_own_plugins_are_called_by_fqcn() -> None:
    """A short name resolves only through this checkout's configuration, never for users of the installed collection."""
    filters = {p.stem for p in (ROOT / "plugins" / "filter").glob("*.yml")}
    modules = {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py")}
    short = re.compile(r"(?<![\w.])(" + "|".join(sorted(filters | modules)) + r")\b(?!\.)")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for top in ["roles", "playbooks", "molecule", "inventories"]
        for path in sorted((ROOT / top).rglob("*.yml"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if short.search(line.split("#", 1)[0])
    ]
    assert not found, "call these by godot_fleet.fleet.<name>:\n" + "\n".join(found)


def test_the_entry_playbooks_find_the_collection_beside_them(tmp_path: Path) -> None:
    """As an AWX project sync checks this repository out: no ansible.cfg in effect and no setup step; the entry
    playbooks resolve godot_fleet.fleet (playbooks, roles, modules, filters) through the collections/ beside them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path)  # nothing there: only the playbook-adjacent collections/
    entry_points = sorted(ROOT.glob("*.yml"))
    entry_points = [p for p in entry_points if "import_playbook: godot_fleet.fleet." in p.read_text()]
    assert len(entry_points) == len(list((ROOT / "playbooks").glob("*.yml")))
    for entry_point in entry_points:
        result = playbook.run(entry_point, None, "--syntax-check", env=env, cwd=tmp_path)
        assert result.ok, str(result)
