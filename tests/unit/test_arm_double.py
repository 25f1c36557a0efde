"""The ARM test double (testbed/arm_double), driven by the real Azure SDK clients and by raw HTTP through its proxy."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient

from testbed.arm_double import ArmDouble

SUB = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
ARM = "https://management.azure.com"
LOGIN = "https://login.microsoftonline.com"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3Yd1u0SGnwQ4KqhEfhxT4k9y1qW0uV2rsN0i2e8dQh test@example"


class Clients:
    def __init__(self, double: ArmDouble) -> None:
        assert double.tls is not None
        self.double = double
        self.kw: dict[str, Any] = {
            "proxies": {"https": double.proxy_url},
            "connection_verify": str(double.tls.ca_bundle),
        }
        cred = ClientSecretCredential(TENANT, "22222222-2222-2222-2222-222222222222", "not-a-secret", **self.kw)
        # Typed as Any: the tests feed the SDK plain dicts and poke at optional members freely.
        self.rm: Any = ResourceManagementClient(cred, SUB, **self.kw)
        self.net: Any = NetworkManagementClient(cred, SUB, **self.kw)
        self.compute: Any = ComputeManagementClient(cred, SUB, **self.kw)
        self.storage: Any = StorageManagementClient(cred, SUB, **self.kw)
        self.auth: Any = AuthorizationManagementClient(cred, SUB, **self.kw)
        self.http = requests.Session()
        self.http.trust_env = False  # this machine exports REQUESTS_CA_BUNDLE, which would win over `verify`
        self.http.proxies = {"https": double.proxy_url}
        self.http.verify = str(double.tls.ca_bundle)
        token = self.http.post(
            f"{LOGIN}/{TENANT}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "c",
                "client_secret": "s",
                "scope": f"{ARM}/.default",
            },
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def raw(self, method: str, path: str, body: Any = None, version: str = "2024-01-01") -> requests.Response:
        params = {"api-version": version} if version else {}
        return self.http.request(method, ARM + path, params=params, json=body)

    def inspect(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"{self.double.proxy_url}/_double/{path}", method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmDouble]:
    with ArmDouble(tmp_path_factory.mktemp("arm-ca")) as running:
        yield running


@pytest.fixture(scope="module")
def az(double: ArmDouble) -> Clients:
    return Clients(double)


def group(az: Clients, name: str) -> str:
    az.rm.resource_groups.create_or_update(name, {"location": "westeurope"})
    return f"/subscriptions/{SUB}/resourceGroups/{name}"


def code(exc: HttpResponseError) -> str:
    assert exc.error is not None
    return str(exc.error.code)


def network(az: Clients, rg: str) -> dict[str, Any]:
    """NSG + vnet + subnet (with the NSG) + static public IP + NIC: the network of one game host."""
    nsg = az.net.network_security_groups.begin_create_or_update(
        rg,
        "nsg",
        {
            "location": "westeurope",
            "security_rules": [
                {
                    "name": "ssh",
                    "protocol": "Tcp",
                    "access": "Allow",
                    "direction": "Inbound",
                    "priority": 100,
                    "source_port_range": "*",
                    "destination_port_range": "22",
                    "source_address_prefix": "198.51.100.7/32",
                    "destination_address_prefix": "*",
                }
            ],
        },
    ).result()
    az.net.virtual_networks.begin_create_or_update(
        rg, "vnet", {"location": "westeurope", "address_space": {"address_prefixes": ["10.1.0.0/16"]}}
    ).result()
    subnet = az.net.subnets.begin_create_or_update(
        rg, "vnet", "game", {"address_prefix": "10.1.2.0/24", "network_security_group": {"id": nsg.id}}
    ).result()
    pip = az.net.public_ip_addresses.begin_create_or_update(
        rg, "pip", {"location": "westeurope", "sku": {"name": "Standard"}, "public_ip_allocation_method": "Static"}
    ).result()
    nic = az.net.network_interfaces.begin_create_or_update(
        rg,
        "nic",
        {
            "location": "westeurope",
            "network_security_group": {"id": nsg.id},
            "ip_configurations": [
                {"name": "primary", "subnet": {"id": subnet.id}, "public_ip_address": {"id": pip.id}}
            ],
        },
    ).result()
    return {"nsg": nsg, "subnet": subnet, "pip": pip, "nic": nic}


def vm_body(nic_id: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "hardware_profile": {"vm_size": "Standard_B1s"},
        "storage_profile": {
            "image_reference": {
                "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts-gen2",
                "version": "latest",
            },
            "os_disk": {
                "create_option": "FromImage",
                "disk_size_gb": 32,
                "managed_disk": {"storage_account_type": "Standard_LRS"},
            },
        },
        "os_profile": {
            "computer_name": "game1",
            "admin_username": "godot",
            "custom_data": base64.b64encode(b"#cloud-config\n").decode(),
            "linux_configuration": {
                "disable_password_authentication": True,
                "ssh": {"public_keys": [{"path": "/home/godot/.ssh/authorized_keys", "key_data": SSH_KEY}]},
            },
        },
        "network_profile": {"network_interfaces": [{"id": nic_id}]},
        "user_data": base64.b64encode(b"None").decode(),
    }
    body.update(extra)
    return body


# --- Entra ID, authentication, the proxy ----------------------------------------------------------------------------
def test_token_endpoint_and_401_without_a_token(az: Clients) -> None:
    config = az.http.get(f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"{LOGIN}/{TENANT}/oauth2/v2.0/token"
    bad = az.http.post(config["token_endpoint"], data={"grant_type": "password", "client_id": "c"})
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"
    path = f"{ARM}/subscriptions/{SUB}/resourcegroups?api-version=2022-09-01"
    anonymous = requests.Session()
    anonymous.trust_env = False
    anonymous.proxies, anonymous.verify = az.http.proxies, az.http.verify
    unauthenticated = anonymous.get(path, timeout=10)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in unauthenticated.headers
    forged = anonymous.get(path, headers={"Authorization": "Bearer a.b.c"}, timeout=10)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_connect_to_any_other_host_is_refused(az: Clients) -> None:
    for target in ("example.com:443", "management.azure.com:80", "127.0.0.1:22"):
        with socket.create_connection(("127.0.0.1", az.double.port), timeout=5) as sock:
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 403")
    with socket.create_connection(("127.0.0.1", az.double.port), timeout=5) as sock:
        sock.sendall(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 403")
    refused = [r for r in az.inspect("requests")["value"] if r["status"] == 403]
    assert {r["host"] for r in refused} >= {"example.com", "127.0.0.1"}


def test_certificate_is_for_the_azure_names_only(az: Clients) -> None:
    with socket.create_connection(("127.0.0.1", az.double.port), timeout=5) as sock:
        sock.sendall(b"CONNECT management.azure.com:443 HTTP/1.1\r\nHost: management.azure.com:443\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        ctx = ssl.create_default_context(cafile=str(az.http.verify))
        with pytest.raises(ssl.SSLCertVerificationError), ctx.wrap_socket(sock, server_hostname="evil.example.com"):
            pass


# --- resource groups --------------------------------------------------------------------------------------------------
def test_resource_group_lifecycle(az: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        az.rm.resource_groups.get("rg-life")
    assert code(missing.value) == "ResourceGroupNotFound"
    assert az.rm.resource_groups.check_existence("rg-life") is False
    created = az.raw("PUT", f"/subscriptions/{SUB}/resourcegroups/rg-life", {"location": "West Europe"}, "2022-09-01")
    assert created.status_code == 201 and created.json()["location"] == "westeurope"
    again = az.raw("PUT", f"/subscriptions/{SUB}/resourcegroups/rg-life", {"location": "westeurope"}, "2022-09-01")
    assert again.status_code == 200
    moved = az.raw("PUT", f"/subscriptions/{SUB}/resourcegroups/rg-life", {"location": "eastus"}, "2022-09-01")
    assert moved.status_code == 400 and moved.json()["error"]["code"] == "InvalidResourceGroupLocation"
    assert az.rm.resource_groups.check_existence("rg-life") is True
    tagged = az.rm.resource_groups.update("rg-life", {"tags": {"app": "godot"}})
    assert tagged.tags == {"app": "godot"}
    assert list(az.rm.resources.list_by_resource_group("rg-life")) == []
    deleting = az.raw("DELETE", f"/subscriptions/{SUB}/resourcegroups/rg-life", version="2022-09-01")
    assert deleting.status_code == 202 and deleting.headers["Retry-After"] == "1"
    poll = az.http.get(deleting.headers["Location"])
    assert poll.status_code == 204
    assert az.rm.resource_groups.check_existence("rg-life") is False


def test_deleting_a_group_deletes_everything_in_it(az: Clients) -> None:
    rg_id = group(az, "rg-cascade")
    parts = network(az, "rg-cascade")
    az.compute.virtual_machines.begin_create_or_update("rg-cascade", "vm", vm_body(parts["nic"].id)).result()
    listed = {r.type for r in az.rm.resources.list_by_resource_group("rg-cascade")}
    assert listed >= {
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/disks",
        "Microsoft.Network/publicIPAddresses",
    }
    az.rm.resource_groups.begin_delete("rg-cascade").result()
    left = [r["id"] for r in az.inspect("resources")["value"] if r["id"].lower().startswith(rg_id.lower())]
    assert left == []


# --- network ----------------------------------------------------------------------------------------------------------
def test_network_shapes_and_back_references(az: Clients) -> None:
    group(az, "rg-net")
    parts = network(az, "rg-net")
    nsg = az.net.network_security_groups.get("rg-net", "nsg")
    assert nsg.security_rules[0].id == f"{nsg.id}/securityRules/ssh"
    assert [r.name for r in nsg.default_security_rules][:3] == [
        "AllowVnetInBound",
        "AllowAzureLoadBalancerInBound",
        "DenyAllInBound",
    ]
    nic = az.net.network_interfaces.get("rg-net", "nic")
    config = nic.ip_configurations[0]
    assert config.private_ip_address == "10.1.2.4" and config.primary is True
    assert config.id == f"{nic.id}/ipConfigurations/primary"
    assert nic.dns_settings.internal_domain_name_suffix.endswith(".internal.cloudapp.net")
    assert parts["pip"].ip_address.startswith("203.0.113.")

    # Re-PUT every referenced resource the way the modules do: the back-references must survive.
    az.net.public_ip_addresses.begin_create_or_update(
        "rg-net",
        "pip",
        {"location": "westeurope", "sku": {"name": "Standard"}, "public_ip_allocation_method": "Static"},
    ).result()
    az.net.subnets.begin_create_or_update(
        "rg-net", "vnet", "game", {"address_prefix": "10.1.2.0/24", "network_security_group": {"id": nsg.id}}
    ).result()
    az.net.network_security_groups.begin_create_or_update("rg-net", "nsg", nsg).result()
    vnet = az.net.virtual_networks.get("rg-net", "vnet")
    vnet.tags = {"tier": "game"}  # azure_rm_virtualnetwork updates by re-sending the subnets it read
    az.net.virtual_networks.begin_create_or_update("rg-net", "vnet", vnet).result()
    pip = az.net.public_ip_addresses.get("rg-net", "pip")
    assert pip.ip_configuration.id == config.id and pip.ip_address == parts["pip"].ip_address
    assert [c.id for c in az.net.subnets.get("rg-net", "vnet", "game").ip_configurations] == [config.id]
    nsg = az.net.network_security_groups.get("rg-net", "nsg")
    assert [n.id for n in nsg.network_interfaces] == [nic.id]
    assert [s.id for s in nsg.subnets] == [parts["subnet"].id]
    vnet = az.net.virtual_networks.get("rg-net", "vnet")
    assert vnet.subnets[0].ip_configurations[0].id == config.id

    az.compute.virtual_machines.begin_create_or_update("rg-net", "vm", vm_body(nic.id)).result()
    attached = az.net.network_interfaces.get("rg-net", "nic")
    assert attached.virtual_machine.id.endswith("/virtualMachines/vm") and attached.mac_address

    in_use = [
        (az.net.network_interfaces.begin_delete, ("rg-net", "nic"), "NicInUse"),
        (az.net.subnets.begin_delete, ("rg-net", "vnet", "game"), "InUseSubnetCannotBeDeleted"),
        (az.net.public_ip_addresses.begin_delete, ("rg-net", "pip"), "PublicIPAddressCannotBeDeleted"),
        (az.net.network_security_groups.begin_delete, ("rg-net", "nsg"), "InUseNetworkSecurityGroupCannotBeDeleted"),
        (az.net.virtual_networks.begin_delete, ("rg-net", "vnet"), "InUseSubnetCannotBeDeleted"),
    ]
    for delete, args, expected in in_use:
        with pytest.raises(HttpResponseError) as refused:
            delete(*args).result()
        assert refused.value.status_code == 400 and code(refused.value) == expected

    az.compute.virtual_machines.begin_delete("rg-net", "vm").result()
    az.net.network_interfaces.begin_delete("rg-net", "nic").result()
    az.net.public_ip_addresses.begin_delete("rg-net", "pip").result()
    assert az.net.subnets.get("rg-net", "vnet", "game").ip_configurations is None
    az.net.subnets.begin_delete("rg-net", "vnet", "game").result()
    with pytest.raises(ResourceNotFoundError):
        az.net.subnets.get("rg-net", "vnet", "game")
    az.net.network_security_groups.begin_delete("rg-net", "nsg").result()
    az.rm.resource_groups.begin_delete("rg-net").result()


def test_network_lro_protocol_and_rules(az: Clients) -> None:
    rg = group(az, "rg-lro")
    body = {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.2.0.0/16"]}}}
    created = az.raw("PUT", f"{rg}/providers/Microsoft.Network/virtualNetworks/v", body)
    assert created.status_code == 201 and created.headers["Retry-After"] == "1"
    assert created.json()["properties"]["provisioningState"] == "Updating"
    status = az.http.get(created.headers["Azure-AsyncOperation"]).json()
    assert status["status"] == "Succeeded"
    assert az.raw("PUT", f"{rg}/providers/Microsoft.Network/virtualNetworks/v", body).status_code == 200
    outside = az.raw(
        "PUT",
        f"{rg}/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
        {"properties": {"addressPrefix": "10.9.0.0/24"}},
    )
    assert outside.json()["error"]["code"] == "NetcfgInvalidSubnet"
    orphan = az.raw("PUT", f"{rg}/providers/Microsoft.Network/virtualNetworks/nope/subnets/s", {"properties": {}})
    assert orphan.status_code == 404 and orphan.json()["error"]["code"] == "ParentResourceNotFound"
    rule = {
        "protocol": "Udp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 200,
        "sourcePortRange": "*",
        "destinationPortRange": "12077-12079",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*",
    }
    nsg = {"location": "westeurope", "properties": {"securityRules": [{"name": "a", "properties": rule}]}}
    assert az.raw("PUT", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n", nsg).status_code == 201
    clash = az.raw(
        "PUT", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/b", {"properties": rule}
    )
    assert clash.json()["error"]["code"] == "SecurityRuleConflict"
    bad_ports = {"properties": {**rule, "priority": 300, "destinationPortRange": "70000"}}
    refused = az.raw("PUT", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/b", bad_ports)
    assert refused.json()["error"]["code"] == "SecurityRuleInvalidPortRange"
    ok = az.raw(
        "PUT",
        f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/b",
        {"properties": {**rule, "priority": 300}},
    )
    assert ok.status_code == 201 and ok.json()["properties"]["destinationPortRanges"] == []
    names = [
        r["name"]
        for r in az.raw("GET", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n").json()["properties"][
            "securityRules"
        ]
    ]
    assert names == ["a", "b"]
    deleting = az.raw("DELETE", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n")
    assert deleting.status_code == 202 and "Azure-AsyncOperation" in deleting.headers and "Location" in deleting.headers
    assert az.raw("DELETE", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n").status_code == 204
    missing = az.raw("GET", f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_long_running_operation_reports_in_progress(az: Clients) -> None:
    rg = group(az, "rg-slow")
    az.double.arm.config.lro_seconds = 30
    try:
        created = az.raw("PUT", f"{rg}/providers/Microsoft.Network/publicIPAddresses/p", {"location": "westeurope"})
        assert az.http.get(created.headers["Azure-AsyncOperation"]).json()["status"] == "InProgress"
        account = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
        accepted = az.raw("PUT", f"{rg}/providers/Microsoft.Storage/storageAccounts/gfslowacct", account, "2023-05-01")
        poll = az.http.get(accepted.headers["Location"])
        assert poll.status_code == 202 and poll.headers["Retry-After"] == "1"
    finally:
        az.double.arm.config.lro_seconds = 0


# --- validation -------------------------------------------------------------------------------------------------------
def test_request_validation_errors(az: Clients) -> None:
    rg = group(az, "rg-valid")
    nsg = f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n"
    unknown = az.raw("PUT", nsg, {"location": "westeurope", "colour": "blue"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "InvalidRequestContent"
    assert "colour" in unknown.json()["error"]["message"]
    nested = az.raw("PUT", nsg, {"location": "westeurope", "properties": {"securityRulez": []}})
    assert nested.json()["error"]["code"] == "InvalidRequestContent"
    wrong_type = az.raw("PUT", nsg, {"location": "westeurope", "properties": {"securityRules": "all"}})
    assert wrong_type.json()["error"]["code"] == "InvalidRequestContent"
    rule = {"name": "r", "properties": {"protocol": "Carrier-Pigeon", "access": "Allow", "direction": "Inbound"}}
    bad_enum = az.raw("PUT", nsg, {"location": "westeurope", "properties": {"securityRules": [rule]}})
    assert (
        bad_enum.json()["error"]["code"] == "InvalidParameter"
        and "Carrier-Pigeon" in bad_enum.json()["error"]["message"]
    )
    no_location = az.raw("PUT", nsg, {})
    assert no_location.json()["error"]["code"] == "LocationRequired"
    nowhere = az.raw("PUT", nsg, {"location": "atlantis"})
    assert nowhere.json()["error"]["code"] == "LocationNotAvailableForResourceType"
    read_only = az.raw(
        "PUT",
        nsg,
        {"location": "westeurope", "etag": "x", "properties": {"provisioningState": "Failed", "resourceGuid": "mine"}},
    )
    assert read_only.status_code == 201
    assert read_only.json()["properties"]["resourceGuid"] != "mine" and read_only.json()["etag"] != "x"
    account = f"{rg}/providers/Microsoft.Storage/storageAccounts/gfvalidacct"
    no_sku = az.raw("PUT", account, {"location": "westeurope", "kind": "StorageV2"}, "2023-05-01")
    assert no_sku.status_code == 400 and no_sku.json()["error"]["code"] == "InvalidParameter"
    bad_case = az.raw(
        "PUT", account, {"location": "westeurope", "kind": "storagev2", "sku": {"name": "standard_lrs"}}, "2023-05-01"
    )
    assert bad_case.status_code == 202
    stored = az.storage.storage_accounts.get_properties("rg-valid", "gfvalidacct")
    assert stored.kind == "StorageV2" and stored.sku.name == "Standard_LRS"


def test_api_versions_types_and_namespaces(az: Clients) -> None:
    rg = group(az, "rg-versions")
    nsg = f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n"
    missing = az.raw("GET", nsg, version="")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MissingApiVersionParameter"
    future = az.raw("GET", nsg, version="2099-01-01")
    assert future.status_code == 400 and future.json()["error"]["code"] == "NoRegisteredProviderFound"
    bad_rg_version = az.raw("GET", rg, version="2099-01-01")
    assert bad_rg_version.json()["error"]["code"] == "InvalidApiVersionParameter"
    no_type = az.raw("GET", f"{rg}/providers/Microsoft.Network/flyingCarpets/c")
    assert no_type.status_code == 404 and no_type.json()["error"]["code"] == "InvalidResourceType"
    no_namespace = az.raw("GET", f"{rg}/providers/Microsoft.Magic/wands/w")
    assert no_namespace.json()["error"]["code"] == "InvalidResourceNamespace"
    no_group = az.raw(
        "GET", f"/subscriptions/{SUB}/resourceGroups/nope/providers/Microsoft.Network/networkSecurityGroups/n"
    )
    assert no_group.status_code == 404 and no_group.json()["error"]["code"] == "ResourceGroupNotFound"
    provider = az.rm.providers.get("Microsoft.Compute")
    assert provider.registration_state == "Registered"


# --- compute ----------------------------------------------------------------------------------------------------------
def test_vm_sizes_and_marketplace_images(az: Clients) -> None:
    sizes = {s.name for s in az.compute.virtual_machine_sizes.list("westeurope")}
    assert "Standard_B1s" in sizes
    ubuntu = az.compute.virtual_machine_images.list(
        "westeurope", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", orderby="name"
    )
    debian = az.compute.virtual_machine_images.list("westeurope", "Debian", "debian-12", "12-gen2")
    assert ubuntu[-1].name == "22.04.202502060" and debian
    image = az.compute.virtual_machine_images.get("westeurope", "Debian", "debian-12", "12-gen2", debian[-1].name)
    assert image.hyper_v_generation == "V2" and image.os_disk_image.operating_system == "Linux"
    with pytest.raises(ResourceNotFoundError):
        az.compute.virtual_machine_images.list("westeurope", "Canonical", "no-such-offer", "x")


def test_vm_lifecycle_with_disk_identity_and_power(az: Clients) -> None:
    group(az, "rg-vm")
    parts = network(az, "rg-vm")
    vm = az.compute.virtual_machines.begin_create_or_update("rg-vm", "vm", vm_body(parts["nic"].id)).result()
    assert vm.vm_id and vm.storage_profile.data_disks == []
    assert vm.storage_profile.image_reference.exact_version == "22.04.202502060"
    assert vm.os_profile.custom_data is None and vm.os_profile.admin_password is None and vm.user_data is None
    assert vm.os_profile.linux_configuration.disable_password_authentication is True
    assert uuid.UUID(vm.identity.principal_id) and vm.identity.tenant_id == TENANT
    disk_id = vm.storage_profile.os_disk.managed_disk.id
    disk = az.compute.disks.get("rg-vm", disk_id.rsplit("/", 1)[1])
    assert disk.managed_by == vm.id and disk.disk_state == "Attached" and disk.disk_size_gb == 32

    expanded = az.compute.virtual_machines.get("rg-vm", "vm", expand="instanceView")
    assert "PowerState/running" in [s.code for s in expanded.instance_view.statuses]
    again = az.compute.virtual_machines.begin_create_or_update("rg-vm", "vm", vm_body(parts["nic"].id)).result()
    assert again.vm_id == vm.vm_id and again.identity.principal_id == vm.identity.principal_id
    changed_image = vm_body(parts["nic"].id)
    changed_image["storage_profile"]["image_reference"]["offer"] = "debian-12"
    with pytest.raises(HttpResponseError) as refused:
        az.compute.virtual_machines.begin_create_or_update("rg-vm", "vm", changed_image).result()
    assert code(refused.value) == "PropertyChangeNotAllowed"

    az.compute.virtual_machines.begin_power_off("rg-vm", "vm").result()
    view = az.compute.virtual_machines.instance_view("rg-vm", "vm")
    assert "PowerState/stopped" in [s.code for s in view.statuses]
    az.compute.virtual_machines.begin_start("rg-vm", "vm").result()

    with pytest.raises(HttpResponseError) as attached:
        az.rm.resources.begin_delete_by_id(disk_id, "2017-03-30").result()
    assert attached.value.status_code == 409
    az.compute.virtual_machines.begin_delete("rg-vm", "vm").result()
    assert az.compute.disks.get("rg-vm", disk.name).disk_state == "Unattached"
    az.rm.resources.begin_delete_by_id(disk_id, "2017-03-30").result()
    with pytest.raises(ResourceNotFoundError):
        az.compute.disks.get("rg-vm", disk.name)


def test_vm_request_errors(az: Clients) -> None:
    group(az, "rg-vmbad")
    nic = network(az, "rg-vmbad")["nic"].id
    bad_key = vm_body(nic)
    bad_key["os_profile"]["linux_configuration"]["ssh"]["public_keys"][0]["path"] = "/root/.ssh/authorized_keys"
    bad_size = vm_body(nic, hardware_profile={"vm_size": "Standard_Imaginary"})
    bad_image = vm_body(nic)
    bad_image["storage_profile"]["image_reference"]["sku"] = "99_99"
    no_nic = vm_body(f"/subscriptions/{SUB}/resourceGroups/rg-vmbad/providers/Microsoft.Network/networkInterfaces/x")
    for body, expected in (
        (bad_key, "InvalidParameter"),
        (bad_size, "InvalidParameter"),
        (bad_image, "PlatformImageNotFound"),
        (no_nic, "InvalidResourceReference"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            az.compute.virtual_machines.begin_create_or_update("rg-vmbad", "vm", body).result()
        assert code(refused.value) == expected
    az.rm.resource_groups.begin_delete("rg-vmbad").result()


# --- storage ----------------------------------------------------------------------------------------------------------
def test_storage_account_containers_keys_and_sas(az: Clients) -> None:
    rg = group(az, "rg-store")
    names = az.storage.storage_accounts
    assert names.check_name_availability({"name": "Bad_Name"}).reason == "AccountNameInvalid"
    assert names.check_name_availability({"name": "gfstoreacct"}).name_available is True
    account_path = f"{rg}/providers/Microsoft.Storage/storageAccounts/gfstoreacct"
    body = {
        "location": "westeurope",
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        "properties": {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False},
    }
    accepted = az.raw("PUT", account_path, body, "2023-05-01")
    assert accepted.status_code == 202 and accepted.headers["Retry-After"] == "1" and not accepted.content
    done = az.http.get(accepted.headers["Location"])
    assert done.status_code == 200 and done.json()["properties"]["provisioningState"] == "Succeeded"
    account = names.get_properties("rg-store", "gfstoreacct")
    assert account.primary_endpoints.blob == "http://127.0.0.1:10000/gfstoreacct/"
    assert account.minimum_tls_version == "TLS1_2" and account.allow_blob_public_access is False
    assert names.check_name_availability({"name": "gfstoreacct"}).reason == "AlreadyExists"
    group(az, "rg-store2")
    with pytest.raises(HttpResponseError) as taken:
        names.begin_create("rg-store2", "gfstoreacct", body).result()
    assert code(taken.value) == "StorageAccountAlreadyTaken"
    keys = names.list_keys("rg-store", "gfstoreacct").keys
    assert keys[0].value == az.double.arm.config.storage_key

    containers = az.storage.blob_containers
    created = containers.create("rg-store", "gfstoreacct", "builds", {})
    assert created.public_access == "None"
    assert [c.name for c in containers.list("rg-store", "gfstoreacct")] == ["builds"]
    with pytest.raises(HttpResponseError) as public:
        containers.create("rg-store", "gfstoreacct", "open", {"public_access": "Container"})
    assert public.value.status_code == 409
    service = az.storage.blob_services.get_service_properties("rg-store", "gfstoreacct")
    assert service.name == "default"

    sas = names.list_service_sas(
        "rg-store",
        "gfstoreacct",
        {
            "canonicalized_resource": "/blob/gfstoreacct/builds",
            "resource": "c",
            "permissions": "r",
            "shared_access_expiry_time": "2035-01-01T00:00:00Z",
        },
    ).service_sas_token
    assert "sig=" in sas and "sr=c" in sas and "sp=r" in sas
    containers.delete("rg-store", "gfstoreacct", "builds")
    with pytest.raises(ResourceNotFoundError):
        containers.get("rg-store", "gfstoreacct", "builds")
    assert az.raw("DELETE", account_path, version="2023-05-01").status_code == 200
    assert az.raw("DELETE", account_path, version="2023-05-01").status_code == 204


# --- authorization ----------------------------------------------------------------------------------------------------
def test_role_definitions_and_assignments(az: Clients) -> None:
    rg = group(az, "rg-rbac")
    roles = list(
        az.auth.role_definitions.list(f"/subscriptions/{SUB}", filter="roleName eq 'Storage Blob Data Reader'")
    )
    assert [r.name for r in roles] == [BLOB_READER]
    assert roles[0].id == f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}"
    assert [r.role_name for r in az.auth.role_definitions.list("/", filter="roleName eq 'Reader'")] == ["Reader"]

    principal = str(uuid.uuid4())
    params = {"role_definition_id": roles[0].id, "principal_id": principal}
    name = str(uuid.uuid4())
    created = az.auth.role_assignments.create(rg, name, params)
    assert created.scope == rg and created.principal_id == principal
    assert az.auth.role_assignments.get(rg, name).scope == rg
    with pytest.raises(ResourceExistsError) as duplicate:
        az.auth.role_assignments.create(rg, str(uuid.uuid4()), params)
    assert code(duplicate.value) == "RoleAssignmentExists"
    listed = [a.id for a in az.auth.role_assignments.list_for_subscription()]
    assert created.id in listed
    unknown_role = {
        "role_definition_id": roles[0].id.replace(BLOB_READER, str(uuid.uuid4())),
        "principal_id": principal,
    }
    with pytest.raises(HttpResponseError) as bad:
        az.auth.role_assignments.create(rg, str(uuid.uuid4()), unknown_role)
    assert code(bad.value) == "RoleDefinitionDoesNotExist"
    az.auth.role_assignments.delete_by_id(created.id)
    with pytest.raises(ResourceNotFoundError):
        az.auth.role_assignments.get(rg, name)


# --- batch, inspection, persistence, command line ---------------------------------------------------------------------
def test_batch_endpoint(az: Clients) -> None:
    group(az, "rg-batch")
    body = {
        "requests": [
            {
                "httpMethod": "GET",
                "name": "one",
                "url": f"{ARM}/subscriptions/{SUB}/resourceGroups/rg-batch?api-version=2022-09-01",
            },
            {
                "httpMethod": "GET",
                "name": "two",
                "url": f"/subscriptions/{SUB}/resourceGroups/nope?api-version=2022-09-01",
            },
        ]
    }
    answer = az.raw("POST", "/batch", body, "2015-11-01")
    assert answer.status_code == 200
    responses = {r["name"]: r for r in answer.json()["responses"]}
    assert responses["one"]["httpStatusCode"] == 200 and responses["one"]["content"]["name"] == "rg-batch"
    assert responses["two"]["httpStatusCode"] == 404


def test_request_log_and_reset(az: Clients) -> None:
    az.inspect("requests", "DELETE")
    az.rm.resource_groups.get("rg-batch")
    log = az.inspect("requests")["value"]
    assert [(r["method"], r["status"]) for r in log if r["host"] == "management.azure.com"] == [("GET", 200)]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with ArmDouble(tmp_path / "ca", state_file=state) as first:
        Clients(first).rm.resource_groups.create_or_update("kept", {"location": "westeurope"})
    with ArmDouble(tmp_path / "ca", state_file=state) as second:
        assert Clients(second).rm.resource_groups.get("kept").location == "westeurope"


def test_command_line_prints_env_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.arm_double", "--port", "0", "--ca-dir", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line.strip())
            if line.startswith("READY") or not line:
                break
        values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("READY"))
        assert values["HTTPS_PROXY"].startswith("http://127.0.0.1:")
        assert Path(values["REQUESTS_CA_BUNDLE"]).read_text().count("BEGIN CERTIFICATE") > 10
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
