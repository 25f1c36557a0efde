#!/usr/bin/env python3
"""What the plumbing between the roles costs, counted in the source (no run): YAML lines in roles and playbooks,
lines that say where a cloud API lives, and per playbook the variables it hands to its roles and the variables a
user has to know to run it.

    python -m bench.plumbing [--root DIR]       # DIR: another checkout (e.g. a worktree of an older commit)

- **yaml lines**: non-blank, non-comment lines of every .yml under roles/ and playbooks/.
- **endpoint / region lines**: `endpoint_url:` and `region:` keys in those files.
- **handed over**: variables a playbook sets for its roles (play `vars:` and role parameters), i.e. re-mapping.
- **inputs**: the collection-level variables (`godot_fleet_*`) the playbook and its roles read, which a user sets
  for that playbook; plus `godot_server_*`, the settings of the game host role (deploy-hosts.yml and the configure
  play of the cloud playbooks). Role variables of the provisioning roles are not counted.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

INPUT = re.compile(r"\b(godot_fleet_[a-z0-9_]+|godot_server_[a-z0-9_]+)\b")
ROLE_REF = re.compile(r"godot_fleet\.fleet\.([a-z0-9_]+)")
FACTS_SET_BY_ROLES = re.compile(r"^godot_server_(probe|facts)\w*$")


def yaml_lines(path: Path) -> int:
    lines = path.read_text().splitlines()
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#") and line.strip() != "---")


def key_lines(path: Path, key: str) -> int:
    return len(re.findall(rf"^\s*{key}:", path.read_text(), flags=re.M))


def roles_of(text: str, root: Path, seen: set[str] | None = None) -> set[str]:
    """Roles a playbook runs, with the roles those include (by FQCN)."""
    seen = set() if seen is None else seen
    for role in ROLE_REF.findall(text):
        if role not in seen and (root / "roles" / role).is_dir():
            seen.add(role)
            for file in (root / "roles" / role).rglob("*.yml"):
                roles_of(file.read_text(), root, seen)
    return seen


def handed_over(playbook: Path) -> int:
    count = 0
    for play in yaml.safe_load(playbook.read_text()) or []:
        count += sum(1 for name in (play.get("vars") or {}) if name != "ansible_python_interpreter")
        for role in play.get("roles") or []:
            if isinstance(role, dict):
                count += sum(1 for name in role if name not in ("role", "name", "when", "tags", "vars"))
                count += len(role.get("vars") or {})
        for section in ("pre_tasks", "tasks", "post_tasks"):
            for task in play.get(section) or []:
                if any(key.endswith(("import_role", "include_role")) for key in task):
                    count += len(task.get("vars") or {})
    return count


def measure(root: Path) -> dict[str, object]:
    files = sorted([*root.glob("roles/*/**/*.yml"), *root.glob("playbooks/*.yml")])
    per_playbook = {}
    for playbook in sorted(root.glob("playbooks/*.yml")):
        text = playbook.read_text()
        roles = roles_of(text, root)
        sources = [text] + [f.read_text() for role in roles for f in (root / "roles" / role).rglob("*.yml")]
        inputs = {name for source in sources for name in INPUT.findall(source)}
        inputs = {name for name in inputs if not FACTS_SET_BY_ROLES.match(name)}
        per_playbook[playbook.stem] = {
            "roles": len(roles),
            "handed_over": handed_over(playbook),
            "godot_fleet_inputs": len({name for name in inputs if name.startswith("godot_fleet_")}),
            "godot_server_inputs": len({name for name in inputs if name.startswith("godot_server_")}),
        }
    return {
        "yaml_lines": sum(yaml_lines(f) for f in files),
        "yaml_lines_playbooks": sum(yaml_lines(f) for f in files if f.parent.name == "playbooks"),
        "endpoint_lines": sum(key_lines(f, "endpoint_url") for f in files),
        "region_lines": sum(key_lines(f, "region") for f in files),
        "endpoint_or_region_variables": len(
            {m for f in files for m in re.findall(r"\b\w+_(?:endpoint_url|region)\b", f.read_text())}
        ),
        "playbooks": per_playbook,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    result = measure(args.root)
    for key, value in result.items():
        if key != "playbooks":
            print(f"{key:32} {value}")
    print(f"\n{'playbook':20} {'roles':>6} {'handed over':>12} {'godot_fleet_*':>14} {'godot_server_*':>15}")
    playbooks: dict[str, dict[str, int]] = result["playbooks"]  # type: ignore[assignment]
    for name, f in playbooks.items():
        counts = f"{f['roles']:>6} {f['handed_over']:>12} {f['godot_fleet_inputs']:>14} {f['godot_server_inputs']:>15}"
        print(f"{name:20} {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
