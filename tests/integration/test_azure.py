"""deploy-azure.yml / teardown-azure.yml end to end against the local Azure (testbed/azure.py).

ARM is the project's ARM test double (tests/arm_double), the Blob service is Azurite over HTTPS with bearer-token
checks, and the VM is a local systemd container. The unmodified azure.azcollection modules provision; the second
play runs godot_server on the container, which fetches the build from Azurite with a token of the VM's managed
identity, verifies it and starts the rooms; real clients complete a round trip. Then the ARM state is read back,
a re-run and a check-mode run change nothing, teardown removes everything, a second teardown changes nothing.
Bad input, and check mode on a new subscription, write nothing to ARM.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from testbed import ROOT, playbook
from testbed.arm_double.arm import DEFAULT_STORAGE_KEY
from testbed.azure import host_down, host_up, local_azure
from testbed.demo import PORTABLE_ROOMS, admin_public_key, assert_rooms_serve_clients, build, local_host_vars

NAME = "gf-az-it"
ACCOUNT = "gfazitbuilds"
HOST = "gf-az-it-0"
ADMIN_CIDR = "198.51.100.7/32"
PORTS = [13177, 13178, 13179]
WRITES = {"PUT", "PATCH", "DELETE"}
READER_ROLE = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"  # Storage Blob Data Reader


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with local_azure(tmp_path_factory.mktemp("local-azure"), [ACCOUNT, "gfazcheck"]) as env:
        yield env


@pytest.fixture()
def vm_host(azure: dict[str, str]) -> Iterator[str]:
    host_up(HOST, Path(azure["GF_AZURE_DIR"]))
    try:
        yield HOST
    finally:
        host_down(HOST)


def double(azure: dict[str, str], path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(azure["GF_AZURE_DOUBLE"] + path, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer) if answer.status != 204 else None


def arm_writes(azure: dict[str, str]) -> list[tuple[str, str]]:
    requests = double(azure, "/_double/requests")["value"]
    return [(r["method"], r["path"]) for r in requests if r["method"] in WRITES and r["host"] == "management.azure.com"]


def resources(azure: dict[str, str]) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = double(azure, "/_double/resources")["value"]
    return value


def extra_vars(azure: dict[str, str], tmp: Path, **overrides: Any) -> dict[str, Any]:
    archive, release = build()
    values: dict[str, Any] = {
        "godot_fleet_name": NAME,
        "godot_fleet_azure_storage_account": ACCOUNT,
        "godot_fleet_admin_cidr": ADMIN_CIDR,
        "godot_fleet_ssh_public_key": admin_public_key(tmp),
        "godot_fleet_build_file": str(archive),
        "godot_server_version": release,
        "godot_server_ports": PORTS,
        # the local stand-ins: VM 0 is the container HOST, its identity endpoint the harness's
        "godot_fleet_azure_host_overrides": [local_host_vars(HOST)],
        "godot_server_azure_identity_endpoint": (
            f"{azure['GF_AZURE_IMDS']}/instance/{NAME}-0/metadata/identity/oauth2/token"
        ),
        **PORTABLE_ROOMS,
    }
    values.update(overrides)
    return values


def run(name: str, values: dict[str, Any], azure: dict[str, str], *args: str, **kwargs: Any) -> playbook.Result:
    """Runs a playbook against the local Azure (its environment: the service principal, proxy, CA bundle)."""
    kwargs.setdefault("env", dict({k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, **azure))
    return playbook.run(name, values, *args, **kwargs)


@pytest.mark.parametrize(
    ("overrides", "drop_credentials", "expected"),
    [
        ({}, True, "No Azure credentials: set a service principal"),
        ({"godot_fleet_admin_cidr": "0.0.0.0/0"}, False, "0.0.0.0/0 only with azure_network_allow_ssh_from_anywhere"),
        ({"godot_fleet_admin_cidr": "*"}, False, "0.0.0.0/0 only with azure_network_allow_ssh_from_anywhere"),
        ({"godot_server_ports": [13177, 70000]}, False, "(godot_server_ports in the playbooks) must list the room"),
        ({"godot_server_ports": ["13177-13179"]}, False, "value for option 'azure_network_ports' is of type"),
        (
            {"godot_fleet_azure_storage_account": "Game_Builds-1"},
            False,
            "unique in all of Azure: 3-24",
        ),
        ({"godot_fleet_azure_storage_account": "gb"}, False, "unique in all of Azure: 3-24"),
        (
            {"godot_fleet_azure_vm_size": "large"},
            False,
            "_vm_size in the playbooks) must be a VM size",
        ),
        ({"godot_fleet_azure_admin_user": "admin"}, False, "a Linux user name Azure accepts"),
    ],
)
def test_bad_input_fails_before_any_arm_write(
    azure: dict[str, str],
    tmp_path: Path,
    overrides: dict[str, Any],
    drop_credentials: bool,
    expected: str,
    installed_collection: Path,
) -> None:
    double(azure, "/_double/requests", method="DELETE")
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, **azure, HOME=str(tmp_path))
    if drop_credentials:
        env = {k: v for k, v in env.items() if not k.startswith("AZURE_") or k == "AZURE_SUBSCRIPTION_ID"}
    values = extra_vars(azure, tmp_path, **overrides)
    result = run("deploy-azure.yml", values, azure, env=env, installed=installed_collection)
    assert not result.ok
    assert expected in result.text, str(result)
    assert double(azure, "/_double/requests")["value"] == []  # not even a read: refused before any Azure call


def test_check_mode_on_a_new_subscription_writes_nothing(
    azure: dict[str, str], tmp_path: Path, installed_collection: Path
) -> None:
    double(azure, "/_double/requests", method="DELETE")
    values = extra_vars(azure, tmp_path, godot_fleet_name="gf-az-check", godot_fleet_azure_storage_account="gfazcheck")
    result = run("deploy-azure.yml", values, azure, "--check", installed=installed_collection)
    assert result.ok, str(result)
    assert result.changed >= 2, str(result)  # the resource group, and the report of what goes into it
    assert "would create the resource group gf-az-check-rg and everything in it" in " ".join(result.text.split())
    assert arm_writes(azure) == []
    assert not [r for r in resources(azure) if "gf-az-check" in r["id"]]
    result = run("teardown-azure.yml", values, azure, "--check", installed=installed_collection)
    assert result.ok and result.changed == 0, result.changed_tasks() or str(result)
    assert arm_writes(azure) == []


def test_deploy_end_to_end_rerun_check_and_teardown(azure: dict[str, str], vm_host: str, tmp_path: Path) -> None:
    values = extra_vars(azure, tmp_path)
    result = run("deploy-azure.yml", values, azure)
    assert result.ok, str(result)
    counts = result.stats
    assert counts[f"{NAME}-0"]["failed"] == 0 and counts[f"{NAME}-0"]["changed"] > 0, str(result)

    assert_rooms_serve_clients(PORTS)

    # the ARM state
    docs = {r["id"].lower(): r for r in resources(azure)}

    def one(kind: str) -> dict[str, Any]:
        found = [d for d in docs.values() if str(d.get("type", "")).lower() == kind.lower()]
        assert len(found) == 1, (kind, [d["id"] for d in found])
        return found[0]

    nsg = one("Microsoft.Network/networkSecurityGroups")["properties"]
    rules = {
        (
            r["properties"]["protocol"],
            r["properties"]["destinationPortRange"],
            r["properties"]["sourceAddressPrefix"],
            r["properties"]["sourcePortRange"],
            r["properties"]["access"],
            r["properties"]["direction"],
        )
        for r in nsg["securityRules"]
    }
    assert rules == {
        ("Udp", "13177-13179", "*", "*", "Allow", "Inbound"),
        ("Tcp", "13177-13179", "*", "*", "Allow", "Inbound"),
        ("Tcp", "22", ADMIN_CIDR, "*", "Allow", "Inbound"),
    }
    account = one("Microsoft.Storage/storageAccounts")["properties"]
    assert account["supportsHttpsTrafficOnly"] is True and account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    # the blob data plane (Azurite): a private container holding the build with its SHA-256, no anonymous read
    blob_name = f"builds/{values['godot_server_version']}/{Path(values['godot_fleet_build_file']).name}"
    store = BlobServiceClient(
        f"{azure['GF_AZURE_BLOB']}/{ACCOUNT}",
        credential={"account_name": ACCOUNT, "account_key": DEFAULT_STORAGE_KEY},
        connection_verify=azure["REQUESTS_CA_BUNDLE"],
    )
    container = store.get_container_client("builds")
    assert container.get_container_properties().public_access is None
    sha256 = hashlib.sha256(Path(values["godot_fleet_build_file"]).read_bytes()).hexdigest()
    assert container.get_blob_client(blob_name).get_blob_properties().metadata["sha256"] == sha256
    anonymous = urllib.request.Request(f"{azure['GF_AZURE_BLOB']}/{ACCOUNT}/builds/{blob_name}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, context=ssl.create_default_context(cafile=azure["REQUESTS_CA_BUNDLE"]))
    assert refused.value.code in (401, 403, 404)
    vm = one("Microsoft.Compute/virtualMachines")
    linux = vm["properties"]["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert [k["keyData"] for k in linux["ssh"]["publicKeys"]] == [values["godot_fleet_ssh_public_key"]]
    assert "adminPassword" not in vm["properties"]["osProfile"]
    assert vm["identity"]["type"] == "SystemAssigned"
    principal = vm["identity"]["principalId"]
    assignments = [d for d in docs.values() if str(d.get("type", "")).endswith("roleAssignments")]
    assert len(assignments) == 1
    assignment = assignments[0]["properties"]
    assert assignment["principalId"] == principal and assignment["roleDefinitionId"].endswith(READER_ROLE)
    assert assignment["scope"].lower().endswith(f"storageaccounts/{ACCOUNT}/blobservices/default/containers/builds")
    ip = one("Microsoft.Network/publicIPAddresses")["properties"]
    assert ip["publicIPAllocationMethod"] == "Static" and ip["ipAddress"] in result.text  # the summary names it

    # later runs find the VMs by their tags: the azure_rm inventory of inventories/azure/
    inventory = playbook.inventory(ROOT / "inventories" / "azure" / "azure_rm.yml", dict(os.environ, **azure))
    assert inventory["godot_servers"]["hosts"] == [f"{NAME}-0"]
    assert inventory[f"fleet_{NAME.replace('-', '_')}"]["hosts"] == [f"{NAME}-0"]
    found = inventory["_meta"]["hostvars"][f"{NAME}-0"]
    assert found["ansible_host"] == ip["ipAddress"] and found["ansible_user"] == "azureuser"
    assert found["godot_fleet_build"] == values["godot_server_version"]

    # a re-run and a check-mode run change nothing
    again = run("deploy-azure.yml", values, azure)
    assert again.ok and again.changed == 0 and len(again.stats) == 2, again.changed_tasks() or str(again)
    double(azure, "/_double/requests", method="DELETE")
    again = run("deploy-azure.yml", values, azure, "--check", "--diff")
    assert again.ok and again.changed == 0 and len(again.stats) == 2, again.changed_tasks() or str(again)
    assert arm_writes(azure) == []

    # a new build through the SAS fallback: uploaded under its version, fetched by the host with a short-lived
    # read-only SAS for that one blob (ARM ListServiceSas), installed beside the old one and switched to
    update = dict(values, godot_fleet_azure_build_auth="sas")
    update["godot_server_version"] = values["godot_server_version"] + ".2"
    result = run("deploy-azure.yml", update, azure)
    assert result.ok, str(result)
    # the SAS never shows in the output, nor in any task's result (what AWX keeps as job events)
    assert "serviceSasToken" not in result.output and "sig=" not in result.output
    current = subprocess.run(
        ["podman", "exec", HOST, "readlink", "/opt/godot-server/current"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert current.endswith(update["godot_server_version"]), current
    assert_rooms_serve_clients(PORTS)

    result = run("teardown-azure.yml", values, azure)
    assert result.ok and result.changed > 0, str(result)
    assert resources(azure) == []
    result = run("teardown-azure.yml", values, azure)
    assert result.ok and result.changed == 0, result.changed_tasks() or str(result)
