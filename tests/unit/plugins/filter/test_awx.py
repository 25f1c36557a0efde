"""AWX filters (plugins/filter/awx.py): surveys generated from the roles' real argument specs, job templates and
workflows for configure-awx.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.godot_fleet.fleet.plugins.filter import awx

from testbed import role_defaults

ROLES = Path(awx.__file__).resolve().parents[2] / "roles"


def specs(*roles: str) -> dict[str, Any]:
    return {
        role: yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
            "options"
        ]
        for role in roles
    }


def catalogue() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = role_defaults("awx_configuration")["awx_configuration_job_templates"]
    return entries


def test_a_question_takes_its_type_default_choices_and_required_flag_from_the_spec() -> None:
    survey = awx.awx_survey_spec(
        [
            {"option": "godot_server.godot_server_version"},
            {"option": "godot_server.godot_server_max_players", "min": 1, "max": 4095},
            {"option": "godot_server.godot_server_source"},
            {"option": "godot_server.godot_server_check_glibc"},
        ],
        specs("godot_server"),
        "deploy",
    )
    version, players, source, glibc = survey["spec"]
    assert version == {
        "question_name": "godot_server_version",
        "question_description": "Release label of the build (directory name under releases/). Releases are immutable.",
        "variable": "godot_server_version",
        "type": "text",
        "required": True,
        "min": 0,
        "max": 1024,
    }
    assert (players["type"], players["default"], players["min"], players["max"], players["required"]) == (
        "integer", 8, 1, 4095, False,
    )  # fmt: skip
    assert (source["type"], source["choices"], source["default"]) == (
        "multiplechoice",
        ["url", "s3", "azure_blob"],
        "url",
    )
    assert (glibc["type"], glibc["choices"], glibc["default"]) == ("multiplechoice", ["true", "false"], "true")


def test_an_option_defaulting_to_a_play_variable_asks_for_that_variable() -> None:
    """aws_instances_count defaults to "{{ godot_fleet_aws_instance_count | default(1) }}": the survey sets the
    play-level variable, which every role of the play reads, with the literal default."""
    (count, name) = awx.awx_survey_spec(
        [{"option": "aws_instances.aws_instances_count"}, {"option": "aws_instances.aws_instances_name"}],
        specs("aws_instances"),
    )["spec"]
    assert (count["variable"], count["default"], count["type"]) == ("godot_fleet_aws_instance_count", 1, "integer")
    assert (name["variable"], name["default"]) == ("godot_fleet_name", "godot-fleet")


def test_a_computed_default_is_left_to_the_role() -> None:
    (group,) = awx.awx_survey_spec([{"option": "azure_resource_group.azure_resource_group_name"}],
                                   specs("azure_resource_group"))["spec"]  # fmt: skip
    assert group["variable"] == "azure_resource_group_name" and "default" not in group


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"option": "godot_server_version"}, "ROLE.OPTION"),
        ({"option": "nope.godot_server_version"}, "no argument spec read for role 'nope'"),
        ({"option": "godot_server.godot_server_nope"}, "has no option 'godot_server_nope'"),
        ({"option": "godot_server.godot_server_ports"}, "is a list"),
        ({"option": "godot_server.godot_server_version", "max": 3}, "bounds numbers only"),
    ],
)
def test_bad_survey_entries_say_what_to_fix(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        awx.awx_survey_spec([entry], specs("godot_server"))


def test_a_variable_asked_twice_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="asks for godot_fleet_name more than once"):
        name = {"option": "aws_instances.aws_instances_name"}
        awx.awx_survey_spec([name, name], specs("aws_instances"))


def test_the_catalogue_has_a_job_template_per_entry_playbook_and_valid_surveys() -> None:
    # the collection's playbooks (the checkout's entry playbooks import them: deploy-hosts.yml -> deploy_hosts)
    playbooks = {p.stem for p in (ROLES.parent / "playbooks").glob("*.yml")}
    playbooks.discard("configure_awx")  # it configures the controller; it is not run by it
    templates = awx.awx_job_templates(
        catalogue(), str(ROLES), "org", "proj", "ee",
        {"hosts": "H", "controller": "C", "build": "B"}, {"Machine": "ssh"}, "gf",
    )  # fmt: skip
    assert {t["playbook"].removesuffix(".yml").replace("-", "_") for t in templates} == playbooks
    deploy = next(t for t in templates if t["name"] == "gf deploy AWS")
    assert deploy["credentials"] == ["ssh"] and deploy["ask_credential_on_launch"] is True  # AWS is not named
    assert deploy["inventory"] == "C" and deploy["survey_enabled"] and deploy["ask_variables_on_launch"]
    teardown = next(t for t in templates if t["name"] == "gf teardown AWS rooms")
    assert not teardown["survey_enabled"] and "survey_spec" not in teardown


def test_a_workflow_chains_its_nodes_on_success_and_asks_the_first_survey() -> None:
    templates = awx.awx_job_templates(catalogue(), str(ROLES), "org", "proj", "ee",
                                      {"hosts": "H", "controller": "C", "build": "B"}, {}, "gf")  # fmt: skip
    (workflow,) = awx.awx_workflows(
        [{"name": "dv", "nodes": ["deploy hosts", "verify rooms"], "survey_from": "deploy hosts"}],
        templates,
        "org",
        "gf",
    )
    deploy, verify = workflow["workflow_nodes"]
    assert deploy["related"]["success_nodes"] == [{"identifier": "gf verify rooms"}]
    assert verify["related"]["success_nodes"] == []
    assert (
        workflow["survey_spec"]["spec"]
        == next(t for t in templates if t["name"] == "gf deploy hosts")["survey_spec"]["spec"]
    )
    with pytest.raises(AnsibleFilterError, match="no job template named gf nope"):
        awx.awx_workflows([{"name": "x", "nodes": ["nope"]}], templates, "org", "gf")


def test_an_unreadable_argument_spec_names_the_role() -> None:
    entry = {"name": "x", "playbook": "x.yml", "inventory": "hosts", "survey": [{"option": "no_such_role.x"}]}
    with pytest.raises(AnsibleFilterError, match="cannot read the argument spec of role 'no_such_role'"):
        awx.awx_job_templates([entry], str(ROLES), "org", "proj", "ee", {"hosts": "H"}, {})
