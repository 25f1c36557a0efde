"""Microsoft.Network: network security groups (+ securityRules), virtual networks (+ subnets), public IP
addresses, network interfaces. Back-references are derived at read time from the forward references."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from . import ids
from .errors import ArmError
from .resource import INTERNAL, Json, Request, ResourceType, etag, public

MODELS = "azure.mgmt.network.models"
NSG = "Microsoft.Network/networkSecurityGroups"
VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
PIP = "Microsoft.Network/publicIPAddresses"
NIC = "Microsoft.Network/networkInterfaces"
VM = "Microsoft.Compute/virtualMachines"
PUBLIC_RANGE = ipaddress.ip_network("203.0.113.0/24")  # TEST-NET-3: documentation addresses, never routed


def _same(a: Any, b: Any) -> bool:
    return str(a or "").lower() == str(b or "").lower()


def _bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


class _NetworkType(ResourceType):
    models = MODELS
    patch_model: ClassVar[str | None] = "TagsObject"

    def base(self, rid: ids.ResourceId, body: Json, existing: Json | None) -> Json:
        """The members every NRP resource has; resourceGuid survives updates, the etag changes on each write."""
        doc: Json = {"id": existing["id"] if existing else rid.id, "name": existing["name"] if existing else rid.name}
        doc["type"] = self.type
        doc["etag"] = etag()
        for member in ("location", "tags", "sku", "zones", "extendedLocation"):
            if member in body:
                doc[member] = body[member]
        old = existing.get("properties", {}) if existing else {}
        properties = dict(body.get("properties", {}))
        properties["provisioningState"] = "Succeeded"
        if self.tracked:
            properties["resourceGuid"] = old.get("resourceGuid") or str(uuid.uuid4())
        doc["properties"] = properties
        if existing and INTERNAL in existing:
            doc[INTERNAL] = existing[INTERNAL]
        return doc

    # scans over the stored network interfaces -------------------------------------------------------------------------
    def ip_configurations(self) -> Iterator[tuple[Json, Json]]:
        for nic in self.arm.state.of_type(NIC):
            for config in nic.get("properties", {}).get("ipConfigurations", []):
                yield nic, config

    def vm_of_nic(self, nic_id: str) -> Json | None:
        for vm in self.arm.state.of_type(VM):
            for ref in vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", []):
                if _same(ref.get("id"), nic_id):
                    return vm
        return None


# --- network security groups ------------------------------------------------------------------------------------------
def _default_rules(nsg_id: str) -> list[Json]:
    specs = [
        (
            "AllowVnetInBound",
            "Allow inbound traffic from all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Inbound",
        ),
        (
            "AllowAzureLoadBalancerInBound",
            "Allow inbound traffic from azure load balancer",
            "AzureLoadBalancer",
            "*",
            "Allow",
            65001,
            "Inbound",
        ),
        ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
        (
            "AllowVnetOutBound",
            "Allow outbound traffic from all VMs to all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Outbound",
        ),
        (
            "AllowInternetOutBound",
            "Allow outbound traffic from all VMs to Internet",
            "*",
            "Internet",
            "Allow",
            65001,
            "Outbound",
        ),
        ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
    ]
    return [
        {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": 'W/"00000000-0000-0000-0000-000000000000"',
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "provisioningState": "Succeeded",
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }
        for name, description, source, destination, access, priority, direction in specs
    ]


_PORTS = re.compile(r"^(\*|\d{1,5}(-\d{1,5})?)$")


def _check_port_range(value: str) -> None:
    ok = bool(_PORTS.match(value))
    if ok and value != "*":
        bounds = [int(p) for p in value.split("-")]
        ok = all(0 <= b <= 65535 for b in bounds) and bounds == sorted(bounds)
    if not ok:
        raise _bad_request(
            "SecurityRuleInvalidPortRange",
            f"Security rule has invalid Port range. Value provided: {value}. Value should be an integer OR integer "
            "range with '-' delimiter. Valid range 0-65535.",
        )


class NetworkSecurityGroups(_NetworkType):
    type = NSG
    model = "NetworkSecurityGroup"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        doc = self.base(rid, body, existing)
        rule_type = self.arm.types[RULE.lower()]
        rules = [
            rule_type.build(rid.child("securityRules", str(r.get("name", ""))), r, None, req)
            for r in body.get("properties", {}).get("securityRules", [])
        ]
        _check_rule_conflicts(rules)
        doc["properties"]["securityRules"] = rules
        doc["properties"]["defaultSecurityRules"] = _default_rules(doc["id"])
        doc["properties"].setdefault("flushConnection", False)
        return doc

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        nics = [
            {"id": n["id"]}
            for n in self.arm.state.of_type(NIC)
            if _same(n["properties"].get("networkSecurityGroup", {}).get("id"), doc["id"])
        ]
        subnets = [
            {"id": s["id"]}
            for _, s in _subnets(self.arm.state.of_type(VNET))
            if _same(s["properties"].get("networkSecurityGroup", {}).get("id"), doc["id"])
        ]
        if nics:
            out["properties"]["networkInterfaces"] = nics
        if subnets:
            out["properties"]["subnets"] = subnets
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        users = self.view(doc)["properties"]
        in_use = [r["id"] for r in users.get("networkInterfaces", []) + users.get("subnets", [])]
        if in_use:
            raise _bad_request(
                "InUseNetworkSecurityGroupCannotBeDeleted",
                f"Network security group {doc['id']} cannot be deleted because it is in use by the following "
                f"resources: {', '.join(in_use)}. In order to delete the Network security group, remove the "
                "association with the resource(s). To learn how to do this, see aka.ms/deletensg.",
            )


RULE = "Microsoft.Network/networkSecurityGroups/securityRules"


def _check_rule_conflicts(rules: list[Json]) -> None:
    seen: dict[tuple[str, int], str] = {}
    names: set[str] = set()
    for rule in rules:
        if rule["name"].lower() in names:
            raise _bad_request(
                "InvalidRequestFormat", f"Cannot parse the request: duplicate security rule name '{rule['name']}'."
            )
        names.add(rule["name"].lower())
        props = rule["properties"]
        slot = (str(props["direction"]), int(props["priority"]))
        if slot in seen:
            raise _bad_request(
                "SecurityRuleConflict",
                f"Security rule {rule['name']} conflicts with rule {seen[slot]}. Rules cannot have the same Priority "
                "and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[slot] = rule["name"]


class SecurityRules(_NetworkType):
    type = RULE
    model = "SecurityRule"
    patch_model = None
    tracked = False
    inline_in = "securityRules"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        name = rid.name
        if not name:
            raise _bad_request("InvalidRequestFormat", "Cannot parse the request: a security rule has no name.")
        props = dict(body.get("properties", {}))
        for member in ("protocol", "access", "direction", "priority"):
            if member not in props:
                raise _bad_request(
                    "InvalidRequestFormat",
                    f"Cannot parse the request: security rule '{name}' misses the required property '{member}'.",
                )
        if not 100 <= int(props["priority"]) <= 4096:
            raise _bad_request(
                "SecurityRuleInvalidPriority",
                f"Security rule has invalid Priority. Value provided: {props['priority']} Allowed range 100-4096.",
            )
        for side in ("source", "destination"):
            single, plural = props.get(f"{side}PortRange"), props.get(f"{side}PortRanges") or []
            for value in ([single] if single else []) + list(plural):
                _check_port_range(str(value))
            if not single and not plural:
                raise _bad_request(
                    "InvalidRequestFormat",
                    f"Cannot parse the request: security rule '{name}' has no {side}PortRange(s).",
                )
            prefix, prefixes = props.get(f"{side}AddressPrefix"), props.get(f"{side}AddressPrefixes")
            groups = props.get(f"{side}ApplicationSecurityGroups")
            if not prefix and not prefixes and not groups:
                raise _bad_request(
                    "InvalidRequestFormat",
                    f"Cannot parse the request: security rule '{name}' has no {side}AddressPrefix(es).",
                )
            for plural_name in (f"{side}PortRanges", f"{side}AddressPrefixes"):
                props.setdefault(plural_name, [])
        props["provisioningState"] = "Succeeded"
        parent = rid.parent
        assert parent is not None
        if existing is None and self.arm.state.get(parent.id) is not None and req.path.lower().endswith(rid.id.lower()):
            # PUT of one rule: it must not conflict with its siblings.
            parent_doc = self.arm.state.get(parent.id) or {}
            siblings = [r for r in parent_doc["properties"]["securityRules"] if not _same(r["name"], name)]
            _check_rule_conflicts([*siblings, {"name": name, "properties": props}])
        return {"name": name, "id": rid.id, "etag": etag(), "type": self.type, "properties": props}


# --- virtual networks and subnets -------------------------------------------------------------------------------------
def _subnets(vnets: list[Json]) -> Iterator[tuple[Json, Json]]:
    for vnet in vnets:
        for subnet in vnet.get("properties", {}).get("subnets", []):
            yield vnet, subnet


def _prefixes(props: Json) -> list[str]:
    values = props.get("addressPrefixes") or ([props["addressPrefix"]] if props.get("addressPrefix") else [])
    return [str(v) for v in values]


def _network(value: str, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise _bad_request(
            "InvalidAddressPrefixFormat", f"Address prefix {value} of {what} is not in a valid format."
        ) from exc


def _check_subnets(vnet_name: str, space: list[str], subnets: list[Json]) -> None:
    networks = [_network(p, f"virtual network {vnet_name}") for p in space]
    placed: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for subnet in subnets:
        for prefix in _prefixes(subnet["properties"]):
            net = _network(prefix, f"subnet {subnet['name']}")
            if not any(net.version == n.version and net.subnet_of(n) for n in networks):  # type: ignore[arg-type]
                raise _bad_request(
                    "NetcfgInvalidSubnet", f"Subnet '{subnet['name']}' is not valid in virtual network '{vnet_name}'."
                )
            for other_name, other in placed:
                if other_name != subnet["name"] and net.overlaps(other):
                    raise _bad_request(
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{subnet['name']}' is not valid because its IP address range overlaps with that of "
                        f"an existing subnet '{other_name}' in virtual network '{vnet_name}'.",
                    )
            placed.append((subnet["name"], net))


class VirtualNetworks(_NetworkType):
    type = VNET
    model = "VirtualNetwork"
    child_collections = ("subnets",)

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        doc = self.base(rid, body, existing)
        props = doc["properties"]
        space = props.get("addressSpace", {}).get("addressPrefixes", [])
        if not space:
            raise _bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request: the virtual network has no addressSpace.addressPrefixes.",
            )
        subnet_type = self.arm.types[SUBNET.lower()]
        old = {s["name"].lower(): s for s in (existing or {}).get("properties", {}).get("subnets", [])}
        subnets = [
            subnet_type.build(
                rid.child("subnets", str(s.get("name", ""))), s, old.get(str(s.get("name", "")).lower()), req
            )
            for s in props.get("subnets", [])
        ]
        kept = {s["name"].lower() for s in subnets}
        for name, subnet in old.items():
            if name not in kept:
                subnet_type.check_delete(rid.child("subnets", subnet["name"]), subnet)
        _check_subnets(rid.name, space, subnets)
        props["subnets"] = subnets
        props.setdefault("virtualNetworkPeerings", [])
        props.setdefault("enableDdosProtection", False)
        return doc

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        subnet_type = self.arm.types[SUBNET.lower()]
        out["properties"]["subnets"] = [subnet_type.view(s, req) for s in doc["properties"].get("subnets", [])]
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        subnet_type = self.arm.types[SUBNET.lower()]
        for subnet in doc["properties"].get("subnets", []):
            subnet_type.check_delete(rid.child("subnets", subnet["name"]), subnet)


class Subnets(_NetworkType):
    type = SUBNET
    model = "Subnet"
    patch_model = None
    tracked = False
    inline_in = "subnets"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        if not rid.name:
            raise _bad_request("InvalidRequestFormat", "Cannot parse the request: a subnet has no name.")
        props = dict(body.get("properties", {}))
        if not _prefixes(props):
            raise _bad_request(
                "NetcfgInvalidSubnet", f"Subnet '{rid.name}' is not valid: it has no addressPrefix or addressPrefixes."
            )
        if props.get("networkSecurityGroup"):
            props["networkSecurityGroup"] = self.arm.check_reference(rid.id, props["networkSecurityGroup"], NSG)
        for member in ("routeTable", "natGateway"):
            if props.get(member):
                props[member] = {"id": props[member].get("id")}
        props.setdefault("delegations", [])
        props.setdefault("privateEndpointNetworkPolicies", "Disabled")
        props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
        props["provisioningState"] = "Succeeded"
        doc = {"name": rid.name, "id": rid.id, "etag": etag(), "type": self.type, "properties": props}
        vnet = rid.parent
        assert vnet is not None
        vnet_doc = self.arm.state.get(vnet.id)
        if vnet_doc is not None and req.path.lower().endswith(rid.id.lower()):  # PUT of the subnet itself
            siblings = [s for s in vnet_doc["properties"].get("subnets", []) if not _same(s["name"], rid.name)]
            _check_subnets(vnet.name, vnet_doc["properties"]["addressSpace"]["addressPrefixes"], [*siblings, doc])
        return doc

    def users(self, subnet_id: str) -> list[str]:
        return [
            c["id"]
            for _, c in self.ip_configurations()
            if _same(c["properties"].get("subnet", {}).get("id"), subnet_id)
        ]

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        users = self.users(doc["id"])
        if users:
            out["properties"]["ipConfigurations"] = [{"id": u} for u in users]
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        users = self.users(doc["id"])
        if users:
            raise _bad_request(
                "InUseSubnetCannotBeDeleted",
                f"Subnet {doc['name']} is in use by {users[0]} and cannot be deleted. In order to delete the subnet, "
                "delete all the resources within the subnet. See aka.ms/deletesubnet.",
            )


# --- public IP addresses ---------------------------------------------------------------------------------------------
class PublicIPAddresses(_NetworkType):
    type = PIP
    model = "PublicIPAddress"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        doc = self.base(rid, body, existing)
        props = doc["properties"]
        sku = doc.setdefault("sku", {"name": "Basic", "tier": "Regional"})
        sku.setdefault("tier", "Regional")
        standard = str(sku.get("name")) == "Standard"
        props.setdefault("publicIPAllocationMethod", "Static" if standard else "Dynamic")
        if standard and props["publicIPAllocationMethod"] != "Static":
            raise _bad_request(
                "StandardSkuPublicIPAddressesCannotUseDynamicAllocation",
                f"Standard sku publicIp /subscriptions/.../{rid.name} must have AllocationMethod set to Static.",
            )
        props.setdefault("publicIPAddressVersion", "IPv4")
        props.setdefault("idleTimeoutInMinutes", 4)
        props.setdefault("ipTags", [])
        if standard:
            props.setdefault("ddosSettings", {"protectionMode": "VirtualNetworkInherited"})
        old_ip = (existing or {}).get("properties", {}).get("ipAddress")
        if props["publicIPAllocationMethod"] == "Static":
            props["ipAddress"] = old_ip or self.allocate()
        else:
            props.pop("ipAddress", None)
        dns = props.get("dnsSettings")
        if dns and dns.get("domainNameLabel"):
            dns["fqdn"] = f"{dns['domainNameLabel']}.{doc.get('location')}.cloudapp.azure.com"
        return doc

    def allocate(self) -> str:
        used = {p["properties"].get("ipAddress") for p in self.arm.state.of_type(PIP)}
        for host in PUBLIC_RANGE.hosts():
            if str(host) not in used:
                return str(host)
        raise ArmError(
            400, "PublicIPCountLimitReached", "Cannot create more than 254 public IP addresses in the ARM test double."
        )

    def users(self, pip_id: str) -> list[str]:
        return [
            c["id"]
            for _, c in self.ip_configurations()
            if _same(c["properties"].get("publicIPAddress", {}).get("id"), pip_id)
        ]

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        users = self.users(doc["id"])
        if users:
            out["properties"]["ipConfiguration"] = {"id": users[0]}
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        users = self.users(doc["id"])
        if users:
            raise _bad_request(
                "PublicIPAddressCannotBeDeleted",
                f"Public IP address {doc['id']} can not be deleted since it is still allocated to resource {users[0]}. "
                "In order to delete the public IP, disassociate/detach the Public IP address from the resource. "
                "To learn how to do this, see aka.ms/deletepublicip.",
            )


# --- network interfaces -----------------------------------------------------------------------------------------------
def _mac(nic_id: str) -> str:
    digest = hashlib.sha256(nic_id.lower().encode()).hexdigest().upper()
    return "00-0D-3A-" + "-".join(digest[i : i + 2] for i in range(0, 6, 2))


class NetworkInterfaces(_NetworkType):
    type = NIC
    model = "NetworkInterface"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        doc = self.base(rid, body, existing)
        props = doc["properties"]
        configs = props.get("ipConfigurations") or []
        if not configs:
            raise _bad_request(
                "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
                f"Network interface {rid.id} must have at least one IP configuration.",
            )
        if props.get("networkSecurityGroup"):
            props["networkSecurityGroup"] = self.arm.check_reference(rid.id, props["networkSecurityGroup"], NSG)
        old_configs = {c["name"].lower(): c for c in (existing or {}).get("properties", {}).get("ipConfigurations", [])}
        explicit_primary = any(c.get("properties", {}).get("primary") for c in configs)
        built = []
        for index, config in enumerate(configs):
            name = str(config.get("name") or "")
            if not name:
                raise _bad_request("InvalidRequestFormat", "Cannot parse the request: an IP configuration has no name.")
            config_id = f"{doc['id']}/ipConfigurations/{name}"
            cprops = dict(config.get("properties", {}))
            if not cprops.get("subnet"):
                raise _bad_request(
                    "InvalidRequestFormat", f"Cannot parse the request: IP configuration {config_id} has no subnet."
                )
            cprops["subnet"] = self.arm.check_reference(config_id, cprops["subnet"], SUBNET)
            if cprops.get("publicIPAddress"):
                cprops["publicIPAddress"] = self.arm.check_reference(config_id, cprops["publicIPAddress"], PIP)
                self._check_pip_free(cprops["publicIPAddress"]["id"], doc["id"])
            cprops.setdefault("privateIPAllocationMethod", "Dynamic")
            cprops.setdefault("privateIPAddressVersion", "IPv4")
            cprops["primary"] = bool(cprops.get("primary")) if explicit_primary else index == 0
            old = old_configs.get(name.lower(), {}).get("properties", {})
            cprops["privateIPAddress"] = self._private_ip(doc["id"], cprops, old)
            cprops["provisioningState"] = "Succeeded"
            built.append(
                {
                    "name": name,
                    "id": config_id,
                    "etag": doc["etag"],
                    "type": f"{NIC}/ipConfigurations",
                    "properties": cprops,
                }
            )
        props["ipConfigurations"] = built
        old_dns = (existing or {}).get("properties", {}).get("dnsSettings", {})
        dns = props.get("dnsSettings", {})
        props["dnsSettings"] = {
            "dnsServers": dns.get("dnsServers", []),
            "appliedDnsServers": dns.get("dnsServers", []),
            "internalDomainNameSuffix": old_dns.get("internalDomainNameSuffix")
            or f"{uuid.uuid4().hex[:26]}.ax.internal.cloudapp.net",
        }
        if dns.get("internalDnsNameLabel"):
            props["dnsSettings"]["internalDnsNameLabel"] = dns["internalDnsNameLabel"]
        for member, default in (
            ("enableAcceleratedNetworking", False),
            ("enableIPForwarding", False),
            ("disableTcpStateTracking", False),
            ("nicType", "Standard"),
            ("auxiliaryMode", "None"),
            ("auxiliarySku", "None"),
        ):
            props.setdefault(member, default)
        props["hostedWorkloads"] = []
        props["tapConfigurations"] = []
        props["vnetEncryptionSupported"] = False
        return doc

    def _check_pip_free(self, pip_id: str, nic_id: str) -> None:
        for nic, config in self.ip_configurations():
            if not _same(nic["id"], nic_id) and _same(
                config["properties"].get("publicIPAddress", {}).get("id"), pip_id
            ):
                raise _bad_request(
                    "PublicIPAddressInUse",
                    f"Resource {pip_id} is referenced by resource {config['id']}. A public IP address can be "
                    "associated with one IP configuration only.",
                )

    def _private_ip(self, nic_id: str, cprops: Json, old: Json) -> str:
        subnet_id = cprops["subnet"]["id"]
        subnet_rid = ids.parse(subnet_id)
        assert subnet_rid is not None
        subnet = self.arm.find(self.arm.types[SUBNET.lower()], subnet_rid)
        assert subnet is not None
        network = ipaddress.ip_network(_prefixes(subnet["properties"])[0])
        used = {
            c["properties"].get("privateIPAddress")
            for nic, c in self.ip_configurations()
            if not _same(nic["id"], nic_id) and _same(c["properties"]["subnet"]["id"], subnet_id)
        }
        if cprops["privateIPAllocationMethod"] == "Static":
            wanted = cprops.get("privateIPAddress")
            if not wanted or ipaddress.ip_address(wanted) not in network:
                raise _bad_request(
                    "PrivateIPAddressNotInSubnet",
                    f"IP configuration {nic_id} has a private IP address {wanted} that does not belong to subnet "
                    f"{subnet_id}.",
                )
            if wanted in used:
                raise _bad_request(
                    "PrivateIPAddressInUse",
                    f"IP configuration {nic_id} is using the private IP address {wanted} which is already allocated.",
                )
            return str(wanted)
        if old.get("privateIPAddress") and _same(old.get("subnet", {}).get("id"), subnet_id):
            return str(old["privateIPAddress"])
        for offset, host in enumerate(network.hosts()):
            if offset >= 3 and str(host) not in used:  # Azure reserves .1-.3 of every subnet
                return str(host)
        raise _bad_request("SubnetIsFull", f"Subnet {subnet_id} has no free private IP address.")

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        vm = self.vm_of_nic(doc["id"])
        if vm is not None:
            out["properties"]["virtualMachine"] = {"id": vm["id"]}
            out["properties"]["macAddress"] = _mac(doc["id"])
            refs: list[Json] = vm["properties"]["networkProfile"]["networkInterfaces"]
            mine: Json = next((r for r in refs if _same(r.get("id"), doc["id"])), {})
            primary = mine.get("properties", {}).get("primary")
            out["properties"]["primary"] = bool(primary) if len(refs) > 1 else True
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        vm = self.vm_of_nic(doc["id"])
        if vm is not None:
            raise _bad_request(
                "NicInUse",
                f"Network Interface {doc['id']} is used by existing resource {vm['id']}. In order to delete the "
                "network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
            )


TYPES: tuple[type[ResourceType], ...] = (
    NetworkSecurityGroups,
    SecurityRules,
    VirtualNetworks,
    Subnets,
    PublicIPAddresses,
    NetworkInterfaces,
)
