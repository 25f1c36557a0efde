"""Every AWX job template's playbook, run the way AWX runs a job: ansible-runner in the execution environment (the
image `make ee` builds), with AWX's private data dir, inventory script, extra vars and environment, the credentials
each template names injected by awx-plugins' own injectors (testbed/awx_job.py says what comes from which AWX
source), and the hosts reached over SSH with a Machine credential.

The job templates are the list of roles/awx_configuration/defaults/main.yml (awx_configuration_job_templates): each
has a proof here (test_every_job_template_has_a_proof) and each was launched successfully by the end
(test_every_job_template_was_launched). Against:
- deploy hosts / verify rooms: systemd containers with sshd on their own loopback port (the game hosts), the demo
  build (dist/) served over HTTP on 127.0.0.1; a real client round trip with every room;
- deploy / teardown AWS, deploy / teardown AWS rooms: the local AWS (moto, testbed.aws) of this module, the instance
  mapped to a container with sshd;
- deploy / teardown Azure: the local Azure (testbed.azure) of this module, the VM mapped to a container with sshd;
- build game / build room image: the build host is this machine, reached over SSH (an sshd of this test on a
  loopback port, with podman, the godot image and dist/).

What differs from a real AWX, and why: the emulators' addresses (AWS_ENDPOINT_URL; the ARM double's proxy and CA)
reach the job as extra environment (AWX would inject nothing of them), the job runs with the host network (AWX's
DEFAULT_CONTAINER_RUN_OPTIONS) so that loopback services are reachable, and a cloud machine is a local container.

Names: containers gf-awx-*, fleets gf-awx*, images localhost/godot-fleet/gf-awx-room*; ports: the rooms on
127.0.0.1:13581-13587, sshd and the emulators on ports the kernel picks.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import ROOT, demo, free_port_block, hosts, role_defaults, serve_files
from testbed.aws import CREDENTIALS as AWS_KEYS
from testbed.aws import LocalAws, local_aws
from testbed.aws import host_up as aws_host_up
from testbed.awx_job import (
    Credential,
    Group,
    Inventory,
    Job,
    JobResult,
    JobTemplate,
    SshHost,
    awx_code,
    ee_image,
    key_pair,
    local_sshd,
    machine,
    ssh_host,
)
from testbed.awx_sources import sources_or_skip
from testbed.azure import CREDENTIALS as AZURE_SP
from testbed.azure import host_up as azure_host_up
from testbed.azure import local_azure
from testbed.enet_probe import probe

DEFAULTS = ROOT / "roles" / "awx_configuration" / "defaults" / "main.yml"
CONFIGURATION = role_defaults("awx_configuration")
TEMPLATES: list[dict[str, Any]] = CONFIGURATION["awx_configuration_job_templates"]
DIST = ROOT / "dist"
REGION = "eu-west-1"
ADMIN_CIDR = "198.51.100.7/32"
# the game hosts: container, room ports
HOSTS_HOST, HOSTS_PORTS = "gf-awx-hosts-0", [13581, 13582]
AWS_NAME, AWS_HOST, AWS_PORTS = "gf-awx", "gf-awx-aws-0", [13583, 13584]
AZURE_NAME, AZURE_ACCOUNT, AZURE_PORTS = "gf-awx-az", "gfawxazbuilds", [13585, 13586]
AZURE_HOST = f"{AZURE_NAME}-0"
ROOMS_NAME = "gf-awx-rooms"
ROOM_IMAGE = "localhost/godot-fleet/gf-awx-room"
ROOM_BASE = "localhost/godot-fleet/gf-awx-room-runtime"
ROOM_CONTAINER, ROOM_PORT = "gf-awx-room", 13587
GODOT_IMAGE = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/godot:forky"
PROBE_TASK = "Check that every room answers a Godot client (ENet handshake), from the controller"
#: the job templates launched successfully, by name
LAUNCHED: set[str] = set()


def template(name: str) -> dict[str, Any]:
    found = [t for t in TEMPLATES if t["name"] == name]
    assert len(found) == 1, f"no job template {name!r} in {DEFAULTS}"
    return found[0]


def survey_variables(entry: dict[str, Any]) -> set[str]:
    """The variables a template's survey asks for: a ROLE.OPTION's play-level variable when the option defaults to
    one (`{{ godot_fleet_name | default(...) }}`), else the option (the rule of awx_configuration's surveys)."""
    found = set()
    for question in entry.get("survey") or []:
        role, option = question["option"].split(".", 1)
        specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        default = specs["argument_specs"]["main"]["options"][option].get("default")
        match = re.match(r"^\{\{\s*([a-z_][a-z0-9_]*)\s*\|\s*default\((.*?)\)\s*\}\}$", str(default))
        variable = option
        if match:
            try:
                ast.literal_eval(match[2] or "''")
                variable = match[1]
            except (ValueError, SyntaxError):
                pass
        found.add(variable)
    return found


@dataclass
class Awx:
    """What the jobs of this module share: the EE, the credentials by type, where the private data dirs go."""

    image: str
    credentials: dict[str, Credential]
    public_key: str
    base: Path
    #: the hosts deployed so far: name -> (the host, its room ports)
    deployed: dict[str, tuple[SshHost, list[int]]] = field(default_factory=dict)

    def launch(
        self,
        name: str,
        inventory: Inventory,
        values: dict[str, Any],
        *,
        extra_env: dict[str, str] | None = None,
        show_paths: list[Path] | None = None,
        private_files: dict[str, str] | None = None,
    ) -> tuple[Job, JobResult]:
        """Launches the job template `name`: its playbook, the credentials of the types it names, an inventory of its
        kind; `values` split into the template's extra vars and the survey's answers (the variables it asks for)."""
        entry = template(name)
        assert inventory.name == entry["inventory"], f"{name} runs on a {entry['inventory']} inventory"
        asked = survey_variables(entry)
        # the template's own extra vars (the list's, and this machine's settings of the ones not asked)
        own = {**(entry.get("extra_vars") or {}), **{k: v for k, v in values.items() if k not in asked}}
        job = Job(
            JobTemplate(name, entry["playbook"], own),
            inventory,
            [self.credentials[kind] for kind in entry["credential_types"]],
            launch_vars={k: v for k, v in values.items() if k in asked},
            show_paths=show_paths or [],
            image=self.image,
            base_dir=self.base,
        )
        env = dict(extra_env or {})
        for file_name, content in (private_files or {}).items():
            env = {k: v.replace(f"{{{file_name}}}", job.private_file(file_name, content)) for k, v in env.items()}
        job.extra_env = env
        result = job.run()
        # the job ran in the EE: podman run <image> ... ansible-playbook
        assert result.command[:2] == ["podman", "run"] and self.image in result.command, result.command
        assert_no_secret(job, result)
        if result.ok:
            LAUNCHED.add(name)
        return job, result


def assert_no_secret(job: Job, result: JobResult) -> None:
    """No secret of the job's credentials in its stdout or events (what AWX stores and shows)."""
    everything = result.everything()
    for secret in job.secrets():
        pieces = [secret] + [line for line in secret.splitlines() if len(line) >= 16 and not line.startswith("-----")]
        leaked = [piece[:6] + "..." for piece in pieces if piece in everything]
        assert not leaked, f"{job.template.name}: a credential's secret shows in the job output: {leaked}"


def job_env(job: Job) -> dict[str, str]:
    """The environment the job got (env/envvars)."""
    env: dict[str, str] = json.loads((job.private_data_dir / "env" / "envvars").read_text())
    return env


@pytest.fixture(scope="module")
def awx(tmp_path_factory: pytest.TempPathFactory) -> Awx:
    sources_or_skip()
    awx_code()
    image = ee_image()
    if hosts.podman("image", "exists", image, check=False).returncode != 0:
        pytest.fail(f"no execution environment image {image}: build it with `make ee`")
    if not (DIST / "VERSION").is_file():
        pytest.fail("no game build in dist/: run `make game`")
    private, public = key_pair(tmp_path_factory.mktemp("awx-keys"))
    credentials = {
        "Machine": machine("root", private),
        "Amazon Web Services": Credential(
            "Amazon Web Services",
            {"username": AWS_KEYS["AWS_ACCESS_KEY_ID"], "password": AWS_KEYS["AWS_SECRET_ACCESS_KEY"]},
        ),
        "Microsoft Azure Resource Manager": Credential(
            "Microsoft Azure Resource Manager",
            {
                "subscription": AZURE_SP["AZURE_SUBSCRIPTION_ID"],
                "client": AZURE_SP["AZURE_CLIENT_ID"],
                "secret": AZURE_SP["AZURE_SECRET"],
                "tenant": AZURE_SP["AZURE_TENANT"],
            },
        ),
    }
    return Awx(image, credentials, public, tmp_path_factory.mktemp("awx-jobs"))


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(free_port_block(1)) as server:
        yield server


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with local_azure(tmp_path_factory.mktemp("awx-local-azure"), [AZURE_ACCOUNT]) as env:
        yield env


@pytest.fixture(scope="module")
def artifacts() -> Iterator[str]:
    """dist/ over HTTP on 127.0.0.1: the artifact store the game hosts download the build from."""
    with serve_files(DIST) as url:
        yield url


@pytest.fixture(scope="module")
def containers() -> Iterator[list[str]]:
    """The names of the stand-in containers this module starts; all removed at the end."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            hosts.remove(name)


def game_host(name: str, awx: Awx, containers: list[str]) -> SshHost:
    """A fresh systemd container with sshd on a free loopback port, root login with the Machine credential's key."""
    hosts.remove(name)
    containers.append(name)
    return ssh_host(name, free_port_block(1), awx.public_key)


def controller_inventory(host: SshHost | None = None) -> Inventory:
    """The controller inventory of the cloud templates: its hosts as awx_configuration creates them (controller_hosts:
    localhost)."""
    entries = [h for h in CONFIGURATION["controller_hosts"] if str(h["inventory"]).endswith(" controller")]
    return Inventory("controller", hosts={h["name"]: dict(h.get("variables") or {}) for h in entries})


def rooms_inventory(deployed: dict[str, tuple[SshHost, list[int]]]) -> Inventory:
    """A hosts inventory of game hosts: godot_servers, each host with its sshd and its rooms' ports."""
    return Inventory(
        "hosts",
        hosts={
            name: {**host.hostvars(), "ansible_python_interpreter": "/usr/bin/python3", "godot_server_ports": ports}
            for name, (host, ports) in deployed.items()
        },
        groups={"godot_servers": Group(hosts=sorted(deployed))},
    )


def build_inventory(host: SshHost) -> Inventory:
    """The build inventory: the build host (this machine over SSH)."""
    return Inventory(
        "build", hosts={"build-host": {**host.hostvars(), "ansible_python_interpreter": "/usr/bin/python3"}}
    )


@pytest.fixture(scope="module")
def build_host(awx: Awx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    with local_sshd(tmp_path_factory.mktemp("awx-build-host-sshd"), awx.public_key, free_port_block(1)) as host:
        yield host


def test_every_job_template_has_a_proof() -> None:
    names = [t["name"] for t in TEMPLATES]
    assert sorted(names) == sorted(PROOFS), "a job template without a proof here (PROOFS), or a proof of none"
    sources_or_skip()
    known = set(awx_code().types)
    for entry in TEMPLATES:
        assert (ROOT / entry["playbook"]).is_file(), entry
        assert set(entry["credential_types"]) <= known, entry
        assert entry["inventory"] in ("hosts", "controller", "build"), entry
        assert PROOFS[entry["name"]].__doc__, f"the proof of {entry['name']} says what it proves"


def test_deploy_hosts(awx: Awx, artifacts: str, containers: list[str]) -> None:
    """deploy-hosts.yml over SSH with the Machine credential; a real client round trip with every room."""
    host = game_host(HOSTS_HOST, awx, containers)
    build, release = demo.build()
    inventory = rooms_inventory({HOSTS_HOST: (host, HOSTS_PORTS)})
    inventory.groups["godot_servers"].vars = dict(demo.PORTABLE_ROOMS)
    values = {
        "godot_server_version": release,
        "godot_server_url": f"{artifacts}/{build.name}",
        "godot_server_checksum": f"sha256:{artifacts}/SHA256SUMS",
        "godot_server_max_players": 8,
    }
    job, result = awx.launch("deploy hosts", inventory, values)
    assert result.ok, repr(result)
    assert result.stats[HOSTS_HOST]["changed"] > 0 and result.stats[HOSTS_HOST]["failed"] == 0, repr(result)
    # the answers came as survey answers (!unsafe), the user from the Machine credential
    extravars = (job.private_data_dir / "env" / "extravars").read_text()
    assert f"!unsafe 'godot_server_version': !unsafe '{release}'" in extravars
    assert (job.private_data_dir / "env" / "cmdline").read_text() == "-u root"
    demo.assert_rooms_serve_clients(HOSTS_PORTS)
    awx.deployed[HOSTS_HOST] = (host, HOSTS_PORTS)


def test_deploy_aws(awx: Awx, aws: LocalAws, containers: list[str]) -> None:
    """deploy-aws.yml with the AWS and Machine credentials against the local AWS; the instance (a container with
    sshd) fetches the build from S3 with its role's credentials; a real client round trip with every room."""
    host = game_host(AWS_HOST, awx, containers)
    aws_host_up(AWS_HOST, aws.endpoint, AWS_NAME, 0, REGION)
    archive, release = demo.build()
    values = {
        "godot_fleet_name": AWS_NAME,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_aws_bucket": f"{AWS_NAME}-builds",
        "godot_fleet_aws_ami_id": "ami-12c6146b",
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": awx.public_key,
        "godot_fleet_build_file": str(archive),
        "godot_server_version": release,
        "godot_server_ports": AWS_PORTS,
        # the local stand-in: instance 0 is the container, reached over SSH
        "godot_fleet_aws_host_overrides": [host.hostvars()],
        **demo.PORTABLE_ROOMS,
    }
    # the emulator's only difference: its address (AWX injects the credential's keys, nothing else)
    job, result = awx.launch(
        "deploy AWS", controller_inventory(host), values, extra_env={"AWS_ENDPOINT_URL": aws.endpoint},
        show_paths=[DIST],
    )  # fmt: skip
    assert result.ok, repr(result)
    # the credential's keys, as awx-plugins' aws injector names them, and the emulator's address: no other AWS_*
    assert sorted(k for k in job_env(job) if k.startswith("AWS_")) == [
        "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY"
    ]  # fmt: skip
    instances = [h for h in result.stats if h.startswith("i-")]
    assert len(instances) == 1 and result.stats[instances[0]]["changed"] > 0, repr(result)
    demo.assert_rooms_serve_clients(AWS_PORTS)
    grants = aws.grants()
    assert grants and {g["role"] for g in grants} == {f"arn:aws:iam::123456789012:role/{AWS_NAME}-host"}
    awx.deployed[AWS_HOST] = (host, AWS_PORTS)


def azure_emulator_env(azure: dict[str, str]) -> dict[str, str]:
    """What reaches the local Azure besides the service principal: the ARM double's proxy and its CA bundle (a file
    of the job's private data dir)."""
    env = {k: azure[k] for k in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")}
    return dict(env, REQUESTS_CA_BUNDLE="{local-azure-ca.pem}")


def test_deploy_azure(awx: Awx, azure: dict[str, str], containers: list[str]) -> None:
    """deploy-azure.yml with the Azure RM and Machine credentials against the local Azure; the VM (a container with
    sshd) fetches the build from Blob Storage with its managed identity; a real client round trip with every room."""
    host = game_host(AZURE_HOST, awx, containers)
    azure_host_up(AZURE_HOST, Path(azure["GF_AZURE_DIR"]))
    archive, release = demo.build()
    values = {
        "godot_fleet_name": AZURE_NAME,
        "godot_fleet_azure_storage_account": AZURE_ACCOUNT,
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": awx.public_key,
        "godot_fleet_build_file": str(archive),
        "godot_server_version": release,
        "godot_server_ports": AZURE_PORTS,
        "godot_fleet_azure_host_overrides": [host.hostvars()],
        "godot_server_azure_identity_endpoint": (
            f"{azure['GF_AZURE_IMDS']}/instance/{AZURE_HOST}/metadata/identity/oauth2/token"
        ),
        **demo.PORTABLE_ROOMS,
    }
    job, result = awx.launch(
        "deploy Azure", controller_inventory(host), values, extra_env=azure_emulator_env(azure), show_paths=[DIST],
        private_files={"local-azure-ca.pem": Path(azure["REQUESTS_CA_BUNDLE"]).read_text()},
    )  # fmt: skip
    assert result.ok, repr(result)
    # the service principal, as awx-plugins' azure_rm injector names it: no other AZURE_*
    assert sorted(k for k in job_env(job) if k.startswith("AZURE_")) == sorted(AZURE_SP)
    assert result.stats[AZURE_HOST]["changed"] > 0, repr(result)
    demo.assert_rooms_serve_clients(AZURE_PORTS)
    awx.deployed[AZURE_HOST] = (host, AZURE_PORTS)


def test_verify_rooms(awx: Awx) -> None:
    """verify-rooms.yml probes every room of every deployed host (own host, AWS instance, Azure VM) from the EE;
    a host whose rooms do not answer fails the job."""
    assert sorted(awx.deployed) == sorted([HOSTS_HOST, AWS_HOST, AZURE_HOST]), "a deploy before did not pass"
    _, result = awx.launch("verify rooms", rooms_inventory(awx.deployed), {})
    assert result.ok, repr(result)
    assert sorted(result.stats) == sorted(awx.deployed)
    for name, (_, ports) in awx.deployed.items():
        probed = result.task(PROBE_TASK, name)
        assert [(r["target"], r["ok"]) for r in probed.result["results"]] == [(f"127.0.0.1:{p}", True) for p in ports]
    # a host whose rooms do not answer: the job fails there
    dead = {HOSTS_HOST: (awx.deployed[HOSTS_HOST][0], [ROOM_PORT + 1])}  # no room listens there
    _, result = awx.launch("verify rooms", rooms_inventory(dead), {"godot_server_verify_wait": 2})
    assert not result.ok and result.stats[HOSTS_HOST]["failed"] == 1, repr(result)
    assert result.task(PROBE_TASK, HOSTS_HOST).failed


def test_teardown_aws(awx: Awx, aws: LocalAws) -> None:
    """teardown-aws.yml with the AWS credential removes everything deploy AWS created."""
    assert AWS_HOST in awx.deployed, "deploy AWS did not pass"
    host = awx.deployed[AWS_HOST][0]
    values = {
        "godot_fleet_name": AWS_NAME,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_aws_bucket": f"{AWS_NAME}-builds",
    }
    _, result = awx.launch(
        "teardown AWS", controller_inventory(host), values, extra_env={"AWS_ENDPOINT_URL": aws.endpoint}
    )
    assert result.ok and result.changed > 0, repr(result)
    ec2, s3, iam = aws.client("ec2", REGION), aws.client("s3", REGION), aws.client("iam", REGION)
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    assert not running["Reservations"]
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [AWS_NAME]}])["Vpcs"]
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(AWS_NAME)]
    assert not [p for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"].startswith(AWS_NAME)]


def test_teardown_azure(awx: Awx, azure: dict[str, str]) -> None:
    """teardown-azure.yml with the Azure RM credential removes everything deploy Azure created."""
    assert AZURE_HOST in awx.deployed, "deploy Azure did not pass"
    host = awx.deployed[AZURE_HOST][0]
    values = {"godot_fleet_name": AZURE_NAME, "godot_fleet_azure_storage_account": AZURE_ACCOUNT}
    _, result = awx.launch(
        "teardown Azure", controller_inventory(host), values, extra_env=azure_emulator_env(azure),
        private_files={"local-azure-ca.pem": Path(azure["REQUESTS_CA_BUNDLE"]).read_text()},
    )  # fmt: skip
    assert result.ok and result.changed > 0, repr(result)
    with urllib.request.urlopen(f"{azure['GF_AZURE_DOUBLE']}/_double/resources", timeout=10) as answer:
        assert json.load(answer)["value"] == []


def rooms_leftovers(aws: LocalAws) -> dict[str, list[str]]:
    ddb, lam, ecs = aws.client("dynamodb", REGION), aws.client("lambda", REGION), aws.client("ecs", REGION)
    apigw, ssm = aws.client("apigatewayv2", REGION), aws.client("ssm", REGION)
    clusters = ecs.describe_clusters(clusters=[f"{ROOMS_NAME}-rooms"])["clusters"]
    return {
        "tables": [t for t in ddb.list_tables()["TableNames"] if t.startswith(ROOMS_NAME)],
        "functions": [f["FunctionName"] for f in lam.list_functions()["Functions"]
                      if f["FunctionName"].startswith(ROOMS_NAME)],
        "clusters": [c["clusterArn"] for c in clusters if c["status"] == "ACTIVE"],
        "http apis": [a["Name"] for a in apigw.get_apis()["Items"] if a["Name"].startswith(ROOMS_NAME)],
        "parameters": [p["Name"] for p in ssm.describe_parameters()["Parameters"]
                       if p["Name"].startswith(f"/{ROOMS_NAME}/")],
    }  # fmt: skip


def rooms_values() -> dict[str, Any]:
    return {
        "godot_fleet_name": ROOMS_NAME,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_room_version": demo.version(),
        "aws_rooms_api_max_rooms": 5,
        # the room API's Lambda artifact: the job template's own extra variable names the execution environment's
    }


def test_deploy_aws_rooms(awx: Awx, aws: LocalAws) -> None:
    """deploy-aws-rooms.yml with the AWS credential against the local AWS: the room registry, cluster and API."""
    _, result = awx.launch(
        "deploy AWS rooms", controller_inventory(), rooms_values(), extra_env={"AWS_ENDPOINT_URL": aws.endpoint}
    )
    assert result.ok and result.changed > 0, repr(result)
    found = rooms_leftovers(aws)
    assert found["tables"] == [f"{ROOMS_NAME}-rooms"] and len(found["functions"]) == 2, found
    assert found["clusters"] and found["http apis"] and found["parameters"], found
    assert "ROOM_API_URL=" in result.text


def test_teardown_aws_rooms(awx: Awx, aws: LocalAws) -> None:
    """teardown-aws-rooms.yml with the AWS credential removes everything deploy AWS rooms created."""
    assert "deploy AWS rooms" in LAUNCHED, "deploy AWS rooms did not pass"
    values = {k: v for k, v in rooms_values().items() if k != "aws_rooms_api_max_rooms"}
    _, result = awx.launch(
        "teardown AWS rooms", controller_inventory(), values, extra_env={"AWS_ENDPOINT_URL": aws.endpoint}
    )
    assert result.ok and result.changed > 0, repr(result)
    assert not any(rooms_leftovers(aws).values()), rooms_leftovers(aws)


def test_build_game(awx: Awx, build_host: SshHost, tmp_path: Path) -> None:
    """build-game.yml on the build host over SSH: the demo project exported in the godot image there, a release with
    verified sums."""
    dest = tmp_path / "release"
    epoch = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct", "--", "godot/demo"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    values = {
        "godot_build_project": str(ROOT / "godot" / "demo"),
        "godot_build_dest": str(dest),
        "godot_build_name": "godot-fleet-demo",
        "godot_build_container_image": GODOT_IMAGE,
        "godot_build_engine": "/usr/bin/godot",
        "godot_build_export_template": "/usr/bin/godot-template-release",
        "godot_build_artifacts": ["pack", "portable"],
        "godot_build_source_date_epoch": int(epoch or 0),
    }
    _, result = awx.launch("build game", build_inventory(build_host), values)
    assert result.ok, repr(result)
    assert result.stats["build-host"]["changed"] > 0, repr(result)
    version = (dest / "VERSION").read_text().strip()
    assert version == demo.version()
    for line in (dest / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((dest / name.lstrip("*")).read_bytes()).hexdigest() == digest, name
    assert (dest / f"godot-fleet-demo-{version}.pck").is_file()
    assert (dest / f"godot-fleet-demo-{version}-portable-linux-x86_64.tar.gz").is_file()


@pytest.fixture()
def room_images() -> Iterator[None]:
    def clean() -> None:
        hosts.podman("rm", "-f", "-t", "0", ROOM_CONTAINER, check=False)
        # never rmi -f: a test image can be the same image as the shared demo-room one (the layer cache); a plain
        # rmi only untags an image that has other tags
        names = hosts.podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        for ref in names:
            if ref.startswith((f"{ROOM_IMAGE}:", f"{ROOM_BASE}:")):
                hosts.podman("rmi", ref, check=False)

    clean()
    try:
        yield
    finally:
        clean()


def test_build_room_image(awx: Awx, build_host: SshHost, tmp_path: Path, room_images: None) -> None:
    """build-room-image.yml on the build host over SSH from the demo build there; a room of the image answers a
    real client."""
    version = demo.version()
    values = {
        "godot_fleet_room_version": version,
        "godot_fleet_room_pack": str(DIST / f"godot-fleet-demo-{version}.pck"),
        "godot_fleet_room_runtime_archive": str(DIST / f"godot-fleet-demo-{version}-portable-linux-x86_64.tar.gz"),
        "rooms_image_name": ROOM_IMAGE,
        "rooms_image_base_name": ROOM_BASE,
        "rooms_image_build_dir": str(tmp_path / "room-image"),
    }
    # The files are on the build host (this machine). rooms_image's validate.yml tests them with `is file`, which
    # Jinja evaluates on the controller, the EE (it fails there: "... is not a file"): until the role checks them on
    # the build host, they are also shown to the job at the same path.
    # the role takes its inputs from the controller (the job's execution environment) and copies them to the build
    # host: dist/ is shown to the job at its path, as a project's files would be
    _, result = awx.launch("build room image", build_inventory(build_host), values, show_paths=[DIST])
    assert result.ok, repr(result)
    image = f"{ROOM_IMAGE}:{version}"
    assert hosts.podman("image", "exists", image, check=False).returncode == 0, repr(result)
    hosts.podman("run", "-d", "--name", ROOM_CONTAINER, "-p", f"127.0.0.1:{ROOM_PORT}:12077/udp", image)
    answer = probe("127.0.0.1", ROOM_PORT, timeout=10.0)
    assert answer.ok, answer


def test_every_job_template_was_launched() -> None:
    assert sorted(LAUNCHED) == sorted(t["name"] for t in TEMPLATES)


PROOFS = {
    "deploy hosts": test_deploy_hosts,
    "deploy AWS": test_deploy_aws,
    "teardown AWS": test_teardown_aws,
    "deploy Azure": test_deploy_azure,
    "teardown Azure": test_teardown_azure,
    "deploy AWS rooms": test_deploy_aws_rooms,
    "teardown AWS rooms": test_teardown_aws_rooms,
    "build room image": test_build_room_image,
    "build game": test_build_game,
    "verify rooms": test_verify_rooms,
}
