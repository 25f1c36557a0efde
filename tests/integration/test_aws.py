"""deploy-aws.yml / teardown-aws.yml end to end against the local AWS (scripts/aws_local.py: moto on loopback).

The instance that deploy-aws.yml launches in moto is mapped to a local systemd container (Debian 12), so the
second play really runs: the godot_server role fetches the build from the emulated S3 with the instance role's
temporary credentials, verifies it and starts the rooms, and real clients complete a round trip. Then the
emulated AWS state is read back with boto3, a re-run and a check-mode run change nothing, teardown removes
everything and a second teardown changes nothing. Bad input and check mode on a new account create nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import aws_local  # noqa: E402

from tests.integration import cloud  # noqa: E402
from tests.integration.cloud import (  # noqa: E402
    PODMAN_ENV,
    PORTABLE_ROOMS,
    admin_public_key,
    assert_rooms_serve_clients,
    changed,
    demo_build,
    local_host_vars,
    recap,
    unwrap,
)

REGION = "eu-west-1"
NAME = "gf-it"
BUCKET = "gf-it-builds"
HOST = "gf-it-aws-0"
ADMIN_CIDR = "198.51.100.7/32"
PORTS = [13077, 13078, 13079]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-access-key", "AWS_SECRET_ACCESS_KEY": "testing-secret-key"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    port = free_port()
    with cloud.local_aws(port) as url:
        yield url


@pytest.fixture()
def instance_host(moto: str) -> Iterator[str]:
    """A local systemd container standing in for the first instance of the fleet."""
    os.environ.update(PODMAN_ENV)
    aws_local.host_up(HOST, moto, NAME, 0, REGION)
    try:
        yield HOST
    finally:
        aws_local.host_down(HOST)


def client(service: str, url: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="x" * 16, aws_secret_access_key="y" * 16
    )


def extra_vars(tmp: Path, **overrides: Any) -> dict[str, Any]:
    build, release = demo_build()
    values: dict[str, Any] = {
        "godot_fleet_name": NAME,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_aws_bucket": BUCKET,
        "godot_fleet_aws_ami_id": "ami-12c6146b",
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": admin_public_key(tmp),
        "godot_fleet_build_file": str(build),
        "godot_server_version": release,
        "godot_server_ports": PORTS,
        # the local stand-in: instance 0 is the container HOST
        "godot_fleet_aws_host_overrides": [local_host_vars(HOST)],
        **PORTABLE_ROOMS,
    }
    values.update(overrides)
    return values


def playbook(
    name: str,
    url: str,
    values: dict[str, Any],
    *args: str,
    env: dict[str, str] | None = None,
    installed: Path | None = None,
) -> tuple[int, str]:
    """Runs a playbook against the local AWS at `url` (AWS_ENDPOINT_URL, as a user points the AWS SDK at it)."""
    env = env if env is not None else dict(os.environ, **CREDENTIALS, **PODMAN_ENV)
    return cloud.playbook(name, values, env | {"AWS_ENDPOINT_URL": url}, *args, installed=installed)


def nothing_created(url: str, name: str = NAME) -> bool:
    ec2, s3, iam = client("ec2", url), client("s3", url), client("iam", url)
    return (
        not ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
        and not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(name)]
        and not [p for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"].startswith(name)]
        and not [k for k in ec2.describe_key_pairs()["KeyPairs"] if k["KeyName"].startswith(name)]
        and not ec2.describe_instances(
            Filters=[{"Name": "tag:Name", "Values": [name]}, {"Name": "instance-state-name", "Values": ["running"]}]
        )["Reservations"]
    )


@pytest.mark.parametrize(
    ("overrides", "env_drop", "expected"),
    [
        ({"godot_fleet_admin_cidr": "0.0.0.0/0"}, False, "0.0.0.0/0 only with"),
        ({"godot_fleet_admin_cidr": "not-a-cidr"}, False, "aws_network_admin_cidr"),
        ({"godot_server_ports": [13077, 70000]}, False, "aws_network_ports"),
        ({"godot_fleet_aws_instance_type": "large"}, False, "EC2 instance type"),
        ({"godot_fleet_build_file": "/nonexistent/build.tar.gz"}, False, "godot_fleet_build_file"),
        ({}, True, "AWS credentials"),
    ],
)
def test_bad_input_fails_before_any_aws_call(
    moto: str, tmp_path: Path, overrides: dict[str, Any], env_drop: bool, expected: str, installed_collection: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if not env_drop:
        env.update(CREDENTIALS)
    values = extra_vars(tmp_path, **overrides)
    rc, out = playbook("deploy-aws.yml", moto, values, env=env, installed=installed_collection)
    assert rc != 0
    assert expected in out, out[-3000:]
    assert nothing_created(moto)


def test_check_mode_on_a_new_account_previews_and_creates_nothing(
    moto: str, tmp_path: Path, installed_collection: Path
) -> None:
    values = extra_vars(tmp_path, godot_fleet_name="gf-check", godot_fleet_aws_bucket="gf-check-builds")
    rc, out = playbook("deploy-aws.yml", moto, values, "--check", installed=installed_collection)
    assert rc == 0, out[-5000:]
    assert changed(out) >= 4, out[-5000:]  # VPC, bucket, policy, key pair, instances: all reported
    assert "would launch 1 t3.small instance(s)" in out
    assert nothing_created(moto, "gf-check")


def test_teardown_check_mode_on_a_new_account_changes_nothing(
    moto: str, tmp_path: Path, installed_collection: Path
) -> None:
    values = extra_vars(tmp_path, godot_fleet_name="gf-check", godot_fleet_aws_bucket="gf-check-builds")
    rc, out = playbook("teardown-aws.yml", moto, values, "--check", installed=installed_collection)
    assert rc == 0, out[-5000:]
    assert changed(out) == 0, out[-5000:]


def test_deploy_end_to_end_rerun_check_and_teardown(moto: str, instance_host: str, tmp_path: Path) -> None:
    values = extra_vars(tmp_path)
    rc, out = playbook("deploy-aws.yml", moto, values)
    assert rc == 0, out[-5000:]
    counts = recap(out)
    assert counts["localhost"]["changed"] > 0
    instance_ids = [h for h in counts if h.startswith("i-")]
    assert len(instance_ids) == 1 and counts[instance_ids[0]]["failed"] == 0, out[-5000:]

    assert_rooms_serve_clients(PORTS)

    # the host fetched the build with the instance role's temporary credentials, and holds no keys
    with urllib.request.urlopen(f"{moto}/_godot_fleet/grants") as answer:
        grants = json.load(answer)
    assert grants and {g["role"] for g in grants} == {f"arn:aws:iam::123456789012:role/{NAME}-host"}
    aws_dir = subprocess.run(
        ["podman", "exec", HOST, "sh", "-c", "cat /root/.aws/*"], capture_output=True, text=True, check=True
    ).stdout
    assert "credential_process" in aws_dir and "aws_secret_access_key" not in aws_dir
    current = subprocess.run(
        ["podman", "exec", HOST, "readlink", "/opt/godot-server/current"], capture_output=True, text=True, check=True
    ).stdout
    assert current.strip().endswith(values["godot_server_version"])

    # later runs find the hosts by their tags: the aws_ec2 inventory of inventories/aws/
    listing = subprocess.run(
        ["ansible-inventory", "-i", "inventories/aws/aws_ec2.yml", "--list"],
        cwd=ROOT, env=dict(os.environ, AWS_ENDPOINT_URL=moto, **CREDENTIALS), capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    inventory = json.loads(listing.stdout)
    assert inventory["godot_servers"]["hosts"] == instance_ids
    assert inventory[f"fleet_{NAME.replace('-', '_')}"]["hosts"] == instance_ids
    hostvars = unwrap(inventory)

    s3, ec2, iam = client("s3", moto), client("ec2", moto), client("iam", moto)
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"builds/{values['godot_server_version']}/{Path(values['godot_fleet_build_file']).name}"]
    policy = next(p for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"] == f"{NAME}-read-builds")
    document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    statements = document["PolicyVersion"]["Document"]["Statement"]
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in statements] == [
        ("Allow", ["s3:GetObject"], [f"arn:aws:s3:::{BUCKET}/builds/*"])
    ]
    role = iam.get_role(RoleName=f"{NAME}-host")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName=f"{NAME}-host")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [policy["Arn"]]

    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{NAME}-game"]}])
    rules = {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], tuple(r["CidrIp"] for r in p["IpRanges"]))
        for p in group["SecurityGroups"][0]["IpPermissions"]
    }
    assert rules == {
        ("udp", 13077, 13079, ("0.0.0.0/0",)),
        ("tcp", 13077, 13079, ("0.0.0.0/0",)),
        ("tcp", 22, 22, (ADMIN_CIDR,)),
    }

    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:Name", "Values": [NAME]}, {"Name": "instance-state-name", "Values": ["running"]}]
    )["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1
    instance = instances[0]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{NAME}-host")
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["project"] == NAME and tags["godot-fleet:build"] == values["godot_server_version"]
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}])
    assert volumes["Volumes"] and all(v["Encrypted"] for v in volumes["Volumes"])

    assert instance["InstanceId"] == instance_ids[0]
    found = hostvars["_meta"]["hostvars"][instance_ids[0]]
    assert found["ansible_host"] == instance["PublicIpAddress"] and found["ansible_user"] == "admin"
    assert found["godot_fleet_build"] == values["godot_server_version"]

    rc, out = playbook("deploy-aws.yml", moto, values)
    assert rc == 0, out[-5000:]
    assert changed(out) == 0 and len(recap(out)) == 2, out[-5000:]
    rc, out = playbook("deploy-aws.yml", moto, values, "--check", "--diff")
    assert rc == 0, out[-5000:]
    assert changed(out) == 0 and len(recap(out)) == 2, out[-5000:]

    rc, out = playbook("teardown-aws.yml", moto, values)
    assert rc == 0, out[-5000:]
    assert changed(out) > 0
    assert nothing_created(moto)
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    assert not running["Reservations"]

    rc, out = playbook("teardown-aws.yml", moto, values)
    assert rc == 0, out[-5000:]
    assert changed(out) == 0, out[-5000:]
