"""deploy-aws.yml / teardown-aws.yml end to end against the local AWS (testbed/aws.py: moto on loopback).

The instance that deploy-aws.yml launches in moto is mapped to a local systemd container (Debian 12), so the
second play really runs: the godot_server role fetches the build from the emulated S3 with the instance role's
temporary credentials, verifies it and starts the rooms, and real clients complete a round trip. Then the
emulated AWS state is read back with boto3, a re-run and a check-mode run change nothing, teardown removes
everything and a second teardown changes nothing. Bad input and check mode on a new account create nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import ROOT, free_port_block, playbook
from testbed.aws import LocalAws, host_down, host_up, local_aws
from testbed.demo import PORTABLE_ROOMS, admin_public_key, assert_rooms_serve_clients, build, local_host_vars

REGION = "eu-west-1"
NAME = "gf-it"
BUCKET = "gf-it-builds"
HOST = "gf-it-aws-0"
ADMIN_CIDR = "198.51.100.7/32"
PORTS = [13077, 13078, 13079]


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(free_port_block(1)) as server:
        yield server


@pytest.fixture()
def instance_host(aws: LocalAws) -> Iterator[str]:
    """A local systemd container standing in for the first instance of the fleet."""
    host_up(HOST, aws.endpoint, NAME, 0, REGION)
    try:
        yield HOST
    finally:
        host_down(HOST)


def extra_vars(tmp: Path, **overrides: Any) -> dict[str, Any]:
    archive, release = build()
    values: dict[str, Any] = {
        "godot_fleet_name": NAME,
        "godot_fleet_aws_region": REGION,
        "godot_fleet_aws_bucket": BUCKET,
        "godot_fleet_aws_ami_id": "ami-12c6146b",
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": admin_public_key(tmp),
        "godot_fleet_build_file": str(archive),
        "godot_server_version": release,
        "godot_server_ports": PORTS,
        # the local stand-in: instance 0 is the container HOST
        "godot_fleet_aws_host_overrides": [local_host_vars(HOST)],
        **PORTABLE_ROOMS,
    }
    values.update(overrides)
    return values


def run(name: str, aws: LocalAws, values: dict[str, Any], *args: str, **kwargs: Any) -> playbook.Result:
    """Runs a playbook against the local AWS (AWS_ENDPOINT_URL, as a user points the AWS SDK at it)."""
    kwargs.setdefault("env", aws.environment())
    return playbook.run(name, values, *args, **kwargs)


def nothing_created(aws: LocalAws, name: str = NAME) -> bool:
    ec2, s3, iam = aws.client("ec2", REGION), aws.client("s3", REGION), aws.client("iam", REGION)
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
    aws: LocalAws, tmp_path: Path, overrides: dict[str, Any], env_drop: bool, expected: str, installed_collection: Path
) -> None:
    env = aws.environment()
    if env_drop:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    values = extra_vars(tmp_path, **overrides)
    result = run("deploy-aws.yml", aws, values, env=env, installed=installed_collection)
    assert not result.ok
    assert expected in result.text, str(result)
    assert nothing_created(aws)


def test_check_mode_on_a_new_account_previews_and_creates_nothing(
    aws: LocalAws, tmp_path: Path, installed_collection: Path
) -> None:
    values = extra_vars(tmp_path, godot_fleet_name="gf-check", godot_fleet_aws_bucket="gf-check-builds")
    result = run("deploy-aws.yml", aws, values, "--check", installed=installed_collection)
    assert result.ok, str(result)
    assert result.changed >= 4, str(result)  # VPC, bucket, policy, key pair, instances: all reported
    assert "would launch 1 t3.small instance(s)" in result.text
    assert nothing_created(aws, "gf-check")


def test_teardown_check_mode_on_a_new_account_changes_nothing(
    aws: LocalAws, tmp_path: Path, installed_collection: Path
) -> None:
    values = extra_vars(tmp_path, godot_fleet_name="gf-check", godot_fleet_aws_bucket="gf-check-builds")
    result = run("teardown-aws.yml", aws, values, "--check", installed=installed_collection)
    assert result.ok, str(result)
    assert result.changed == 0, str(result)


def test_deploy_end_to_end_rerun_check_and_teardown(aws: LocalAws, instance_host: str, tmp_path: Path) -> None:
    values = extra_vars(tmp_path)
    result = run("deploy-aws.yml", aws, values)
    assert result.ok, str(result)
    counts = result.stats
    assert counts["localhost"]["changed"] > 0
    instance_ids = [h for h in counts if h.startswith("i-")]
    assert len(instance_ids) == 1 and counts[instance_ids[0]]["failed"] == 0, str(result)

    assert_rooms_serve_clients(PORTS)

    # the host fetched the build with the instance role's temporary credentials, and holds no keys
    grants = aws.grants()
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
    inventory = playbook.inventory(ROOT / "inventories" / "aws" / "aws_ec2.yml", aws.environment())
    assert inventory["godot_servers"]["hosts"] == instance_ids
    assert inventory[f"fleet_{NAME.replace('-', '_')}"]["hosts"] == instance_ids

    s3, ec2, iam = aws.client("s3", REGION), aws.client("ec2", REGION), aws.client("iam", REGION)
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
    found = inventory["_meta"]["hostvars"][instance_ids[0]]
    assert found["ansible_host"] == instance["PublicIpAddress"] and found["ansible_user"] == "admin"
    assert found["godot_fleet_build"] == values["godot_server_version"]

    for args in ((), ("--check", "--diff")):
        again = run("deploy-aws.yml", aws, values, *args)
        assert again.ok and again.changed == 0 and len(again.stats) == 2, again.changed_tasks() or str(again)

    result = run("teardown-aws.yml", aws, values)
    assert result.ok, str(result)
    assert result.changed > 0
    assert nothing_created(aws)
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    assert not running["Reservations"]

    result = run("teardown-aws.yml", aws, values)
    assert result.ok and result.changed == 0, result.changed_tasks() or str(result)
