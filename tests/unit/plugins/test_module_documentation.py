"""Every module's DOCUMENTATION agrees with its argument spec; EXAMPLES and RETURN are YAML; examples use FQCNs.

ansible-test sanity's validate-modules checks the same (and more); this keeps `pytest tests/unit` honest alone.
Controllers only (ansible-test units runs tests/unit/plugins/modules with ansible.module_utils alone): the doc
fragments are read from ansible.plugins and amazon.aws.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

# every module of the collection: a new one is checked without being listed here
MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[3] / "plugins" / "modules").glob("*.py"))
CHECKED = ("type", "required", "default", "choices", "elements", "aliases")


def load(name: str) -> ModuleType:
    return importlib.import_module(f"ansible_collections.godot_fleet.fleet.plugins.modules.{name}")


def fragment_options(fragment: str) -> dict[str, Any]:
    """The options a documentation fragment (namespace.collection.name[.variable]) adds."""
    namespace, collection, rest = fragment.split(".", 2)
    name, _dot, variable = rest.partition(".")
    if (namespace, collection) == ("ansible", "builtin"):
        path = f"ansible.plugins.doc_fragments.{name}"
    else:
        path = f"ansible_collections.{namespace}.{collection}.plugins.doc_fragments.{name}"
    text = getattr(importlib.import_module(path).ModuleDocFragment(), (variable or "documentation").upper())
    options: dict[str, Any] = (yaml.safe_load(text) or {}).get("options") or {}
    return options


def compare(spec: dict[str, Any], documented: dict[str, Any], where: str) -> None:
    assert set(spec) == set(documented), where
    for name, option in spec.items():
        doc = documented[name]
        for key in CHECKED:
            want = option.get(key)
            have = doc.get(key)
            if key == "type":
                want, have = want or "str", have or "str"
            elif key == "required":
                want, have = bool(want), bool(have)
            elif key == "aliases":
                want, have = sorted(want or []), sorted(have or [])
            assert want == have, f"{where}{name}: {key} {want!r} in the spec, {have!r} documented"
        compare(option.get("options") or {}, doc.get("suboptions") or {}, f"{where}{name}.")


@pytest.mark.parametrize("name", MODULES)
def test_argument_spec_matches_the_documentation(name: str) -> None:
    module = load(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    assert doc["version_added"] == "0.1.0" and re.search(r"\(@[\w-]+\)$", doc["author"])
    spec = module.argument_spec()
    documented = dict(doc.get("options") or {})
    for fragment in doc.get("extends_documentation_fragment", []):
        fragment_opts = fragment_options(fragment)
        # amazon.aws.common/region document what AnsibleAWSModule adds to every spec; amazon.aws.tags documents
        # tags and purge_tags, which a module with that fragment has in its own spec
        documented.update({k: v for k, v in fragment_opts.items() if k in spec})
    compare(spec, documented, f"{name}: ")


@pytest.mark.parametrize("name", MODULES)
def test_examples_and_return_are_yaml_and_examples_use_fqcns(name: str) -> None:
    module = load(name)
    examples = yaml.safe_load(module.EXAMPLES)
    assert isinstance(yaml.safe_load(module.RETURN), dict)
    uses = [key for task in examples for key in task if key not in ("name", "register", "when", "loop", "vars")]
    assert f"godot_fleet.fleet.{name}" in uses
    assert all(key.count(".") == 2 for key in uses), uses


@pytest.mark.parametrize("name", MODULES)
def test_modules_stay_thin(name: str) -> None:
    """A module holds its documentation, its argument spec and main(); the logic is in module_utils."""
    tree = ast.parse(Path(str(load(name).__file__)).read_text())
    assert [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))] == [
        "argument_spec",
        "main",
    ]
