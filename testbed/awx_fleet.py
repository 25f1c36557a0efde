"""godot-fleet on the local AWX (testbed.awx), set up as an AWX admin would: used by tests/integration/test_awx.py
and bench/awx.py.

- `Fleet.prepare(awx, key_dir, aws_endpoint)`: a manual project (a copy of the repository's tracked files under
  PROJECTS_ROOT, as a project sync leaves them, plus the demo build), an SSH key pair for the Machine credential,
  and the local AWS's address for every job through AWX's own setting for it (AWX_TASK_ENV, "Extra Environment
  Variables": the emulator's only difference; AWX injects nothing but the credential's keys).
- `fleet.configure(*args, installed=None, **more)`: configure-awx.yml (from the checkout, or from the collection
  installed in `installed`) with those settings, the credentials' secrets in a private vars file (never on a
  command line), checked absent from its output.
- `fleet.add_game_host(name)`: a systemd container with sshd on a free loopback port, added to the `godot-fleet
  hosts` inventory's godot_servers group (as an admin adds own hosts).
- `hosts_answers(served, ports)`: the deploy hosts survey's answers for the demo build served at `served`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import demo, free_port_block, hosts, playbook
from testbed.aws import CREDENTIALS as AWS_KEYS
from testbed.awx import LocalAwx
from testbed.awx_job import SshHost, copy_project, key_pair, ssh_host

#: the objects configure-awx.yml creates are named with this prefix (the role's default)
PREFIX = "godot-fleet"
#: the project directory under PROJECTS_ROOT, and where the demo build is inside a job
PROJECT = "godot_fleet"
JOB_DIST = "/runner/project/dist"


@dataclass
class Fleet:
    awx: LocalAwx
    values: dict[str, Any] = field(repr=False)
    secrets: list[str] = field(repr=False)
    public_key: str
    hosts: list[str] = field(default_factory=list)

    @classmethod
    def prepare(cls, awx: LocalAwx, key_dir: Path, aws_endpoint: str | None = None) -> Fleet:
        project = awx.projects_root / PROJECT
        copy_project(project)
        archive, _ = demo.build()
        (project / "dist").mkdir(exist_ok=True)
        shutil.copy2(archive, project / "dist" / archive.name)
        private, public = key_pair(key_dir)
        if aws_endpoint:
            awx.api("settings/jobs/", {"AWX_TASK_ENV": {"AWS_ENDPOINT_URL": aws_endpoint}}, method="PATCH")
        values = {
            "awx_configuration_project_local_path": PROJECT,
            "awx_configuration_execution_environment_image": awx.ee_image,
            "awx_configuration_execution_environment_pull": "never",
            "awx_configuration_validate_certs": False,
            "awx_configuration_credentials": {"Machine": "gf-hosts-ssh", "Amazon Web Services": "gf-aws"},
            "controller_credentials": [
                {"name": "gf-hosts-ssh", "credential_type": "Machine",
                 "inputs": {"username": "root", "ssh_key_data": private}},
                {"name": "gf-aws", "credential_type": "Amazon Web Services",
                 "inputs": {"username": AWS_KEYS["AWS_ACCESS_KEY_ID"], "password": AWS_KEYS["AWS_SECRET_ACCESS_KEY"]}},
            ],
        }  # fmt: skip
        return cls(awx, values, [private.strip(), AWS_KEYS["AWS_SECRET_ACCESS_KEY"]], public)

    def configure(self, *args: str, installed: Path | None = None, **more: Any) -> playbook.Result:
        """configure-awx.yml (from the checkout, or as godot_fleet.fleet.configure_awx from the collection installed
        in the collections path `installed`)."""
        settings = self.awx.projects_root / "gf-awx-settings.json"
        settings.touch(mode=0o600)
        settings.write_text(json.dumps(self.values))
        try:
            result = playbook.run("configure-awx.yml", more, "-e", f"@{settings}", *args,
                                  env=self.awx.environment(), installed=installed, timeout=900)  # fmt: skip
        finally:
            settings.unlink()
        if any(secret in result.output for secret in self.secrets):
            raise AssertionError("configure-awx.yml printed a credential's secret")
        return result

    def add_game_host(self, name: str) -> SshHost:
        hosts.remove(name)
        self.hosts.append(name)
        host = ssh_host(name, free_port_block(1), self.public_key)
        inventory = self.awx.find("inventories", f"{PREFIX} hosts")
        variables = {**host.hostvars(), "ansible_python_interpreter": "/usr/bin/python3"}
        added = self.awx.api(
            f"inventories/{inventory['id']}/hosts/", {"name": name, "variables": json.dumps(variables)}
        )
        groups = self.awx.api(f"inventories/{inventory['id']}/groups/?name=godot_servers")["results"]
        group = (
            groups[0] if groups else self.awx.api(f"inventories/{inventory['id']}/groups/", {"name": "godot_servers"})
        )
        self.awx.api(f"groups/{group['id']}/hosts/", {"id": added["id"]})
        return host

    def remove_hosts(self) -> None:
        for name in self.hosts:
            hosts.remove(name)


def hosts_answers(served: str, ports: list[int]) -> dict[str, Any]:
    """The deploy hosts survey's answers (and extra variables: the demo's portable build, rooms on loopback) for
    the demo build in dist/ served over HTTP at `served`."""
    archive, release = demo.build()
    return {
        "godot_server_version": release,
        "godot_server_checksum": f"sha256:{served}/SHA256SUMS",
        "godot_server_url": f"{served}/{archive.name}",
        "godot_server_max_players": 8,
        "godot_server_ports": ports,
        **demo.PORTABLE_ROOMS,
    }
