# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for configure-awx.yml: AWX job templates and their surveys, generated from the roles' argument specs."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

#: AWX survey question types for argument spec types that a survey can ask (lists and dicts go in extra vars)
SURVEY_TYPES = {
    "str": "text",
    "path": "text",
    "raw": "text",
    "int": "integer",
    "float": "float",
    "bool": "multiplechoice",
}
#: AWX's length bounds of a text answer
TEXT_MAX = 1024
#: a role default that only names a play-level variable: "{{ godot_fleet_name | default('godot-fleet') }}"
PLAY_VARIABLE = re.compile(r"^\{\{\s*(?P<name>[a-z_][a-z0-9_]*)\s*\|\s*default\((?P<default>.*?)\)\s*\}\}$")


def _play_variable(default: Any) -> tuple[str, Any] | None:
    """('godot_fleet_name', 'godot-fleet') for "{{ godot_fleet_name | default('godot-fleet') }}", else None."""
    match = PLAY_VARIABLE.match(default) if isinstance(default, str) else None
    if not match:
        return None
    try:
        value = ast.literal_eval(match["default"] or "''")
    except (ValueError, SyntaxError):
        return None
    return match["name"], value


def _question(entry: dict[str, Any], specs: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, dict) or "." not in str(entry.get("option", "")):
        raise AnsibleFilterError(
            f"a survey entry needs option: ROLE.OPTION (e.g. godot_server.godot_server_version), got {entry!r}"
        )
    role, option = str(entry["option"]).split(".", maxsplit=1)
    if role not in specs:
        raise AnsibleFilterError(f"survey option {entry['option']}: no argument spec read for role {role!r}")
    spec = specs[role].get(option)
    if spec is None:
        raise AnsibleFilterError(f"survey option {entry['option']}: {role}'s main entry point has no option {option!r}")
    kind = spec.get("type", "str")
    if kind not in SURVEY_TYPES:
        raise AnsibleFilterError(
            f"survey option {entry['option']} is a {kind}: a survey asks only for str, path, int, float or bool "
            "options (give lists and dicts as extra variables)"
        )
    description = spec.get("description", "")
    if isinstance(description, list):
        description = " ".join(description)
    variable, default = option, spec.get("default")
    play = _play_variable(default)
    if play:
        variable, default = play
    elif isinstance(default, str) and "{{" in default:
        default = None  # a computed default: the role computes it when the answer is empty
    question: dict[str, Any] = {
        "question_name": variable,
        "question_description": " ".join(str(description).split()),
        "variable": variable,
        "type": SURVEY_TYPES[kind],
        "required": bool(entry.get("required", spec.get("required", False))),
    }
    if kind == "bool":
        question["choices"] = ["true", "false"]
    elif spec.get("choices"):
        question["type"] = "multiplechoice"
        question["choices"] = [str(choice) for choice in spec["choices"]]
    if question["type"] == "text":
        question["min"], question["max"] = 0, TEXT_MAX
    for bound in ("min", "max"):
        if bound in entry:
            if question["type"] not in ("integer", "float"):
                raise AnsibleFilterError(f"survey option {entry['option']}: {bound} bounds numbers only (it is {kind})")
            question[bound] = entry[bound]
    if default not in (None, "") or (default == "" and question["type"] == "text"):
        question["default"] = str(default).lower() if kind == "bool" else default
    return question


def awx_survey_spec(questions: list[dict[str, Any]], argument_specs: dict[str, Any], name: str = "") -> dict[str, Any]:
    """An AWX survey_spec from ROLE.OPTION entries and {role: options of its main entry point}."""
    spec = [_question(entry, argument_specs) for entry in questions or []]
    variables = [q["variable"] for q in spec]
    duplicates = sorted({v for v in variables if variables.count(v) > 1})
    if duplicates:
        raise AnsibleFilterError(f"survey {name!r} asks for {', '.join(duplicates)} more than once")
    return {"name": name, "description": "", "spec": spec}


def read_argument_specs(roles_path: str, roles: list[str]) -> dict[str, Any]:
    """{role: the options of its main entry point} from ROLES_PATH/ROLE/meta/argument_specs.yml."""
    specs = {}
    for role in roles:
        path = Path(roles_path) / role / "meta" / "argument_specs.yml"
        try:
            specs[role] = yaml.safe_load(path.read_text())["argument_specs"]["main"].get("options", {})
        except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
            raise AnsibleFilterError(f"cannot read the argument spec of role {role!r} ({path}): {error}") from error
    return specs


def awx_job_templates(
    catalogue: list[dict[str, Any]],
    roles_path: str,
    organization: str,
    project: str,
    execution_environment: str,
    inventories: dict[str, str],
    credentials: dict[str, str],
    prefix: str = "godot-fleet",
) -> list[dict[str, Any]]:
    """controller_templates items (infra.aap_configuration's shape, awx.awx.job_template's options) for the
    catalogue of awx_configuration_job_templates: names prefixed, the inventory of its kind, the credentials of its
    types that are named in `credentials` (the others asked for at launch), the survey generated from the argument
    specs of the roles in `roles_path` (the collection's roles/)."""
    roles = sorted(
        {
            str(q.get("option", "")).split(".", maxsplit=1)[0]
            for e in catalogue
            for q in e.get("survey", [])
            if "." in str(q.get("option", ""))
        }
    )
    argument_specs = read_argument_specs(roles_path, roles)
    templates = []
    for entry in catalogue:
        name = f"{prefix} {entry['name']}" if prefix else entry["name"]
        if entry["inventory"] not in inventories:
            raise AnsibleFilterError(
                f"job template {name!r}: inventory kind {entry['inventory']!r} is none of {sorted(inventories)}"
            )
        types = entry.get("credential_types", [])
        survey = awx_survey_spec(entry.get("survey", []), argument_specs, name)
        template = {
            "name": name,
            "description": entry.get("description", ""),
            "organization": organization,
            "project": project,
            "playbook": entry["playbook"],
            "inventory": inventories[entry["inventory"]],
            "execution_environment": execution_environment,
            "credentials": [credentials[t] for t in types if credentials.get(t)],
            "ask_credential_on_launch": any(not credentials.get(t) for t in types),
            "ask_variables_on_launch": True,
            "survey_enabled": bool(survey["spec"]),
            "extra_vars": entry.get("extra_vars", {}),
        }
        if survey["spec"]:
            template["survey_spec"] = survey
        templates.append(template)
    return templates


def awx_workflows(
    workflows: list[dict[str, Any]], templates: list[dict[str, Any]], organization: str, prefix: str = "godot-fleet"
) -> list[dict[str, Any]]:
    """controller_workflows items (awx.awx.workflow_job_template's options) for awx_configuration_workflows: the
    job templates of `nodes` run one after the other, each only when the one before succeeded; the survey is the
    one of the job template named by `survey_from`."""

    def full(name: str) -> str:
        return f"{prefix} {name}" if prefix else name

    by_name = {t["name"]: t for t in templates}
    result = []
    for workflow in workflows:
        nodes = [full(n) for n in workflow["nodes"]]
        survey_from = full(workflow.get("survey_from", workflow["nodes"][0]))
        unknown = [n for n in [*nodes, survey_from] if n not in by_name]
        if unknown:
            raise AnsibleFilterError(f"workflow {workflow['name']!r}: no job template named {', '.join(unknown)}")
        survey = by_name[survey_from].get("survey_spec")
        item: dict[str, Any] = {
            "name": full(workflow["name"]),
            "description": workflow.get("description", ""),
            "organization": organization,
            "ask_variables_on_launch": True,
            "survey_enabled": bool(survey),
            "workflow_nodes": [
                {
                    "identifier": node,
                    "unified_job_template": {
                        "name": node,
                        "type": "job_template",
                        "organization": {"name": organization},
                    },
                    "related": {"success_nodes": [{"identifier": nodes[i + 1]}] if i + 1 < len(nodes) else []},
                }
                for i, node in enumerate(nodes)
            ],
        }
        if survey:
            item["survey_spec"] = dict(survey, name=item["name"])
        result.append(item)
    return result


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "awx_survey_spec": awx_survey_spec,
            "awx_job_templates": awx_job_templates,
            "awx_workflows": awx_workflows,
        }
