"""Role variables, argument specs and README agree; the unit template composes the right command lines."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from testbed import role_defaults

ROLE = Path(__file__).resolve().parents[2] / "roles" / "godot_server"


ROLES = sorted(p.parent.parent for p in ROLE.parent.glob("*/meta/argument_specs.yml"))


def defaults(role: Path = ROLE) -> dict[str, Any]:
    return role_defaults(role)


def spec_options(role: Path = ROLE) -> dict[str, Any]:
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, Any] = data["argument_specs"]["main"]["options"]
    return options


def test_every_role_has_specs_and_a_readme() -> None:
    roles = {p.name for p in ROLE.parent.iterdir() if p.is_dir()}
    assert {r.name for r in ROLES} == roles
    assert all((r / "README.md").is_file() for r in ROLES)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_every_default_has_an_argument_spec_and_back(role: Path) -> None:
    """Every option has a default, except the required ones: those have none (in the spec or the role), so that
    leaving one out fails at the start of the role with Ansible's own message naming it."""
    options = spec_options(role)
    required = {name for name, spec in options.items() if spec.get("required")}
    assert set(defaults(role)) == set(options) - required
    assert not [name for name in required if "default" in options[name]]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_spec_defaults_match_role_defaults(role: Path) -> None:
    values = defaults(role)
    for name, spec in spec_options(role).items():
        if "default" in spec:
            assert spec["default"] == values[name], name
        assert len(str(spec.get("description", ""))) > 25, f"{name}: describe what it does"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_readme_documents_every_variable(role: Path) -> None:
    readme = (role / "README.md").read_text()
    missing = [name for name in spec_options(role) if f"`{name}`" not in readme]
    assert not missing, f"README.md of {role.name} does not document {missing}"


def render_exec_start(**overrides: Any) -> list[str]:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    values = defaults()
    values.update(overrides)
    values["godot_server_game_args"] = overrides.get("godot_server_game_args", ["--server", "--port=%i"])
    values["ansible_managed"] = "managed"
    text = env.get_template("godot-server@.service.j2").render(**values)
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_godot4_exported_server() -> None:
    assert render_exec_start() == ["/opt/godot-server/current/game.x86_64", "--headless", "--", "--server", "--port=%i"]


def test_godot4_runtime_with_main_pack() -> None:
    argv = render_exec_start(
        godot_server_style="runtime", godot_server_executable="godot", godot_server_main_pack="game.pck"
    )
    assert argv == [
        "/opt/godot-server/current/godot",
        "--headless",
        "--main-pack",
        "/opt/godot-server/current/game.pck",
        "--",
        "--server",
        "--port=%i",
    ]


def test_godot3_server_build_has_no_headless_and_no_separator() -> None:
    argv = render_exec_start(
        godot_server_engine_major=3,
        godot_server_style="runtime",
        godot_server_executable="Godot_v3.6-stable_linux_server.64",
        godot_server_main_pack="g.pck",
    )
    assert argv == [
        "/opt/godot-server/current/Godot_v3.6-stable_linux_server.64",
        "--main-pack",
        "/opt/godot-server/current/g.pck",
        "--server",
        "--port=%i",
    ]


@pytest.mark.parametrize(("ports", "caps"), [([12077], ""), ([80, 12077], "CAP_NET_BIND_SERVICE")])
def test_privileged_ports_get_only_bind_capability(ports: list[int], caps: str) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"))
    env.filters["quote"] = shlex.quote
    values = defaults() | {"godot_server_ports": ports, "godot_server_game_args": [], "ansible_managed": "m"}
    text = env.get_template("godot-server@.service.j2").render(**values)
    assert f"CapabilityBoundingSet={caps}\n" in text
