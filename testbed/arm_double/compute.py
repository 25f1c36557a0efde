"""Microsoft.Compute: virtual machines (with their OS managed disk), disks, VM sizes, the marketplace catalogue."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from . import catalog, ids
from .errors import ArmError, invalid_parameter
from .resource import Json, Request, ResourceType, Response, internal, now, public

if TYPE_CHECKING:
    from .arm import Arm

VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
NIC = "Microsoft.Network/networkInterfaces"
IMAGE_DISK_GB = 30
_SSH_KEY = re.compile(r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-dss) [A-Za-z0-9+/=]+( .*)?$")


def _same(a: Any, b: Any) -> bool:
    return str(a or "").lower() == str(b or "").lower()


def _change_not_allowed(prop: str) -> ArmError:
    return ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{prop}' is not allowed.", target=prop)


def _resolve_image(image: Json) -> tuple[str, str, str, str, str]:
    """(publisher, offer, sku, version, hyper-V generation) of a marketplace image reference; `latest` resolved."""
    wanted = ":".join(str(image.get(k, "")) for k in ("publisher", "offer", "sku", "version"))
    missing = ArmError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{wanted}' is not available. Verify that all fields in the storage profile are correct. "
        "For more details about storage profile information, please refer to https://aka.ms/storageprofile",
    )
    publisher = catalog.lookup(catalog.IMAGES, str(image.get("publisher", "")))
    offer = catalog.lookup(publisher[1], str(image.get("offer", ""))) if publisher else None
    sku = catalog.lookup(offer[1], str(image.get("sku", ""))) if offer else None
    if publisher is None or offer is None or sku is None:
        raise missing
    generation, versions = sku[1]
    version = str(image.get("version") or "latest")
    if version.lower() == "latest":
        version = max(versions, key=catalog.version_key)
    elif version not in versions:
        raise missing
    return publisher[0], offer[0], sku[0], version, generation


def _premium_capable(size: str) -> bool:
    """Sizes with an `s` feature letter take premium disks (Standard_B1s, Standard_D2s_v5, ...)."""
    base = size.split("_")[1] if "_" in size else size
    return "s" in re.sub(r"^[A-Z]+\d+", "", base).lower() or base.lower().endswith("s")


class VirtualMachines(ResourceType):
    type = VM
    models = "azure.mgmt.compute"
    model = "VirtualMachine"
    patch_model = "VirtualMachineUpdate"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        props = dict(body.get("properties", {}))
        old = (existing or {}).get("properties", {})
        old_internal = internal(existing) if existing else {}
        doc: Json = {"id": existing["id"] if existing else rid.id, "name": existing["name"] if existing else rid.name}
        doc["type"] = VM
        for member in ("location", "tags", "zones", "plan", "extendedLocation"):
            if member in body:
                doc[member] = body[member]
        secrets: Json = {"powerState": old_internal.get("powerState", "running")}

        size = str(props.get("hardwareProfile", {}).get("vmSize") or "")
        known = catalog.lookup(catalog.VM_SIZES, size)
        if known is None:
            raise invalid_parameter(
                f"The value {size or 'null'} provided for the VM size is not valid. The valid sizes in the current "
                f"region are: {', '.join(catalog.VM_SIZES)}.",
                target="vmSize",
            )
        props["hardwareProfile"] = {**props["hardwareProfile"], "vmSize": known[0]}

        storage = props.get("storageProfile") or {}
        props["storageProfile"] = self._storage(rid, storage, old.get("storageProfile"), known[0], body["location"])
        props["osProfile"] = self._os_profile(rid, props.get("osProfile"), old.get("osProfile"), old_internal, secrets)
        props["networkProfile"] = self._network(doc["id"], props.get("networkProfile"))
        if "userData" in props:
            secrets["userData"] = props.pop("userData")
        elif "userData" in old_internal:
            secrets["userData"] = old_internal["userData"]

        identity = body.get("identity")
        if identity and str(identity.get("type", "None")) != "None":
            doc["identity"] = self._identity(identity, (existing or {}).get("identity") or {})
        props["vmId"] = old.get("vmId") or str(uuid.uuid4())
        props["timeCreated"] = old.get("timeCreated") or now()
        props["provisioningState"] = "Succeeded"
        doc["properties"] = props
        doc["_double"] = secrets
        return doc

    def _storage(self, rid: ids.ResourceId, storage: Json, old: Json | None, size: str, location: str) -> Json:
        image = storage.get("imageReference")
        os_disk = dict(storage.get("osDisk") or {})
        if old is not None:
            if image and old.get("imageReference"):
                old_image = old["imageReference"]
                for member in ("publisher", "offer", "sku"):
                    if not _same(image.get(member), old_image.get(member)):
                        raise _change_not_allowed("imageReference")
                if str(image.get("version", "latest")).lower() not in {
                    "latest",
                    str(old_image.get("exactVersion")).lower(),
                    str(old_image.get("version")).lower(),
                }:
                    raise _change_not_allowed("imageReference")
            kept = dict(old)
            old_disk = old["osDisk"]
            if os_disk.get("name") and not _same(os_disk["name"], old_disk["name"]):
                raise _change_not_allowed("osDisk.name")
            size_gb = os_disk.get("diskSizeGB")
            if size_gb is not None and int(size_gb) < int(old_disk.get("diskSizeGB", IMAGE_DISK_GB)):
                raise invalid_parameter(
                    "Disk size reduction is not supported. The requested size is smaller than the current size "
                    f"{old_disk.get('diskSizeGB')} GB.",
                    target="osDisk.diskSizeGB",
                )
            kept["osDisk"] = {
                **old_disk,
                **{k: v for k, v in os_disk.items() if k in {"caching", "diskSizeGB", "deleteOption"}},
            }
            kept["dataDisks"] = storage.get("dataDisks", old.get("dataDisks", []))
            self._disk_doc(rid, kept["osDisk"], location)
            return kept
        if not image:
            raise invalid_parameter("Required parameter 'imageReference' is missing (null).", target="imageReference")
        publisher, offer, sku, version, generation = _resolve_image(image)
        reference = {"publisher": publisher, "offer": offer, "sku": sku, "version": image.get("version") or "latest"}
        reference["exactVersion"] = version
        if str(os_disk.get("createOption", "FromImage")) != "FromImage":
            raise invalid_parameter(
                "Parameter 'osDisk.createOption' must be FromImage when an image reference is given.",
                target="osDisk.createOption",
            )
        size_gb = int(os_disk.get("diskSizeGB") or IMAGE_DISK_GB)
        if size_gb < IMAGE_DISK_GB:
            raise invalid_parameter(
                f"The specified disk size {size_gb} GB is smaller than the size of the corresponding disk in the VM "
                f"image: {IMAGE_DISK_GB} GB. This is not allowed. Please choose equal or greater size or do not "
                "specify "
                "an explicit size.",
                target="osDisk.diskSizeGB",
            )
        name = os_disk.get("name") or f"{rid.name}_OsDisk_1_{uuid.uuid4().hex}"
        managed = dict(os_disk.get("managedDisk") or {})
        managed.setdefault("storageAccountType", "Premium_LRS" if _premium_capable(size) else "Standard_LRS")
        managed["id"] = f"{rid.group_id}/providers/{DISK}/{name}"
        disk = {
            "osType": "Linux",
            "name": name,
            "createOption": "FromImage",
            "caching": os_disk.get("caching", "ReadWrite"),
            "managedDisk": managed,
            "deleteOption": os_disk.get("deleteOption", "Detach"),
            "diskSizeGB": size_gb,
        }
        self._disk_doc(rid, disk, location, image_ref=(publisher, offer, sku, version), generation=generation)
        return {"imageReference": reference, "osDisk": disk, "dataDisks": storage.get("dataDisks", [])}

    def _disk_doc(
        self,
        rid: ids.ResourceId,
        disk: Json,
        location: str,
        image_ref: tuple[str, ...] | None = None,
        generation: str = "V2",
    ) -> None:
        """Create or resize the OS managed disk resource, as the compute RP does."""
        disk_id = disk["managedDisk"]["id"]
        stored = self.arm.state.get(disk_id)
        if stored is not None:
            stored["properties"]["diskSizeGB"] = disk["diskSizeGB"]
            stored["properties"]["diskSizeBytes"] = disk["diskSizeGB"] * 1024**3
            return
        creation: Json = {"createOption": "FromImage"}
        if image_ref is not None:
            publisher, offer, sku, version = image_ref
            creation["imageReference"] = {
                "id": catalog.image_id(rid.subscription, location, publisher, offer, sku, version)
            }
        account = disk["managedDisk"]["storageAccountType"]
        self.arm.state.put(
            {
                "id": disk_id,
                "name": disk["name"],
                "type": DISK,
                "location": location,
                "sku": {"name": account, "tier": "Premium" if account.startswith("Premium") else "Standard"},
                "properties": {
                    "osType": "Linux",
                    "hyperVGeneration": generation,
                    "creationData": creation,
                    "diskSizeGB": disk["diskSizeGB"],
                    "diskSizeBytes": disk["diskSizeGB"] * 1024**3,
                    "uniqueId": str(uuid.uuid4()),
                    "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                    "networkAccessPolicy": "AllowAll",
                    "publicNetworkAccess": "Enabled",
                    "timeCreated": now(),
                    "provisioningState": "Succeeded",
                },
            }
        )

    def _os_profile(
        self, rid: ids.ResourceId, profile: Json | None, old: Json | None, old_internal: Json, secrets: Json
    ) -> Json:
        if old is not None and profile is None:
            secrets.update({k: v for k, v in old_internal.items() if k in {"customData", "adminPassword"}})
            return old
        if profile is None:
            raise invalid_parameter("Required parameter 'osProfile' is missing (null).", target="osProfile")
        profile = dict(profile)
        custom = profile.pop("customData", None)
        password = profile.pop("adminPassword", None)
        user = profile.get("adminUsername")
        if not user:
            raise invalid_parameter("Required parameter 'adminUsername' is missing (null).", target="adminUsername")
        if old is not None:
            for member in ("adminUsername", "computerName"):
                if member in profile and not _same(profile[member], old.get(member)):
                    raise _change_not_allowed(f"osProfile.{member}")
            if custom is not None and custom != old_internal.get("customData"):
                raise _change_not_allowed("osProfile.customData")
        linux = dict(profile.get("linuxConfiguration") or {})
        keys = (linux.get("ssh") or {}).get("publicKeys") or []
        for key in keys:
            if key.get("path") != f"/home/{user}/.ssh/authorized_keys":
                raise invalid_parameter(
                    "Destination path for SSH public keys is currently limited to its default value "
                    f"/home/{user}/.ssh/authorized_keys due to a known issue in Linux provisioning agent.",
                    target="linuxConfiguration.ssh.publicKeys.path",
                )
            if not _SSH_KEY.match(str(key.get("keyData", "")).strip()):
                raise invalid_parameter(
                    "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
                    target="linuxConfiguration.ssh.publicKeys.keyData",
                )
        disable_password = bool(linux.get("disablePasswordAuthentication", False))
        if old is None:
            if disable_password and not keys:
                raise invalid_parameter(
                    "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
                    target="linuxConfiguration",
                )
            if not disable_password and not password:
                raise invalid_parameter("Required parameter 'adminPassword' is missing (null).", target="adminPassword")
        linux["disablePasswordAuthentication"] = disable_password
        linux.setdefault("provisionVMAgent", True)
        linux.setdefault("patchSettings", {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"})
        linux.setdefault("enableVMAgentPlatformUpdates", False)
        profile["linuxConfiguration"] = linux
        profile.setdefault("computerName", (old or {}).get("computerName") or rid.name)
        profile.setdefault("secrets", [])
        profile.setdefault("allowExtensionOperations", True)
        profile.setdefault("requireGuestProvisionSignal", True)
        secrets["customData"] = custom if custom is not None else old_internal.get("customData")
        secrets["adminPassword"] = password if password is not None else old_internal.get("adminPassword")
        return profile

    def _network(self, vm_id: str, profile: Json | None) -> Json:
        refs = (profile or {}).get("networkInterfaces") or []
        if not refs:
            raise invalid_parameter("Required parameter 'networkProfile' is missing (null).", target="networkProfile")
        out = []
        for ref in refs:
            checked = self.arm.check_reference(vm_id, ref, NIC)
            owner = self.arm.types[NIC.lower()].vm_of_nic(checked["id"])  # type: ignore[attr-defined]
            if owner is not None and not _same(owner["id"], vm_id):
                raise ArmError(
                    400,
                    "NicInUse",
                    f"Network Interface {checked['id']} is used by existing resource {owner['id']}. In order to "
                    "attach it to another virtual machine, it must be dissociated from the resource first.",
                )
            item: Json = {"id": checked["id"]}
            if ref.get("properties"):
                item["properties"] = ref["properties"]
            out.append(item)
        if len(out) > 1 and sum(bool(r.get("properties", {}).get("primary")) for r in out) != 1:
            raise invalid_parameter(
                "Virtual machine must have exactly one network interface marked as primary.", target="networkInterfaces"
            )
        return {**(profile or {}), "networkInterfaces": out}

    def _identity(self, identity: Json, old: Json) -> Json:
        kind = str(identity["type"])
        out: Json = {"type": kind}
        if "SystemAssigned" in kind:
            out["principalId"] = old.get("principalId") or str(uuid.uuid4())
            out["tenantId"] = old.get("tenantId") or self.arm.tenant
        if "UserAssigned" in kind:
            old_users = {k.lower(): v for k, v in (old.get("userAssignedIdentities") or {}).items()}
            out["userAssignedIdentities"] = {
                k: old_users.get(k.lower()) or {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}
                for k in (identity.get("userAssignedIdentities") or {})
            }
        return out

    def patch(self, rid: ids.ResourceId, body: Json, existing: Json, req: Request) -> Json:
        merged = super().patch(rid, body, existing, req)
        if "identity" in body:
            if str(body["identity"].get("type", "None")) == "None":
                merged.pop("identity", None)
            else:
                merged["identity"] = self._identity(body["identity"], existing.get("identity") or {})
        return merged

    def instance_view(self, doc: Json) -> Json:
        state = internal(doc).get("powerState", "running")
        display = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}.get(state, state)
        stamp = now()
        disk = doc["properties"]["storageProfile"]["osDisk"]
        image = doc["properties"]["storageProfile"].get("imageReference", {})
        agent_ok = state == "running"
        view: Json = {
            "computerName": doc["properties"]["osProfile"].get("computerName"),
            "osName": "ubuntu" if str(image.get("publisher")) == "Canonical" else "debian",
            "osVersion": str(image.get("exactVersion", ""))[:5],
            "hyperVGeneration": "V2",
            "disks": [
                {
                    "name": disk["name"],
                    "statuses": [
                        {
                            "code": "ProvisioningState/succeeded",
                            "level": "Info",
                            "displayStatus": "Provisioning succeeded",
                            "time": stamp,
                        }
                    ],
                }
            ],
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "time": stamp,
                },
                {"code": f"PowerState/{state}", "level": "Info", "displayStatus": display},
            ],
        }
        if agent_ok:
            view["vmAgent"] = {
                "vmAgentVersion": "2.12.0.2",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                        "message": "Guest Agent is running",
                        "time": stamp,
                    }
                ],
                "extensionHandlers": [],
            }
        return view

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        expand = (req.query.get("$expand", "") if req else "").lower()
        if expand == "instanceview":
            out["properties"]["instanceView"] = self.instance_view(doc)
        if expand == "userdata" and internal(doc).get("userData") is not None:
            out["properties"]["userData"] = internal(doc)["userData"]
        return out

    def deleted(self, rid: ids.ResourceId, doc: Json) -> None:
        storage = doc["properties"]["storageProfile"]
        for disk in [storage["osDisk"], *storage.get("dataDisks", [])]:
            if disk.get("deleteOption") == "Delete" and disk.get("managedDisk", {}).get("id"):
                self.arm.state.delete_tree(disk["managedDisk"]["id"])
        for ref in doc["properties"]["networkProfile"]["networkInterfaces"]:
            if ref.get("properties", {}).get("deleteOption") == "Delete":
                self.arm.state.delete_tree(ref["id"])

    def action(self, rid: ids.ResourceId, doc: Json, name: str, req: Request) -> Response:
        action = name.lower()
        if action == "instanceview" and req.method == "GET":
            return Response(200, self.instance_view(doc))
        states = {
            "start": "running",
            "restart": "running",
            "poweroff": "stopped",
            "deallocate": "deallocated",
            "redeploy": None,
        }
        if req.method == "POST" and action in states:
            new_state = states[action]
            if new_state:
                internal(doc)["powerState"] = new_state
            self.arm.state.save()
            headers = self.arm.lro_headers(
                "Microsoft.Compute", doc["location"], rid.subscription, req, location_header=True
            )
            return Response(202, None, headers)
        if req.method == "POST" and action == "generalize":
            internal(doc)["powerState"] = "generalized"
            return Response(200)
        return super().action(rid, doc, name, req)


class Disks(ResourceType):
    type = DISK
    models = "azure.mgmt.compute"
    model = "Disk"
    patch_model = "DiskUpdate"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        doc = super().build(rid, body, existing, req)
        props = doc["properties"]
        old = (existing or {}).get("properties", {})
        creation = props.get("creationData", {})
        if existing is None and creation.get("createOption") == "Empty" and not props.get("diskSizeGB"):
            raise invalid_parameter("Required parameter 'diskSizeGB' is missing (null).", target="diskSizeGB")
        size = int(props.get("diskSizeGB") or old.get("diskSizeGB") or IMAGE_DISK_GB)
        props["diskSizeGB"] = size
        props["diskSizeBytes"] = size * 1024**3
        doc.setdefault("sku", {"name": "Standard_LRS", "tier": "Standard"})
        props.setdefault("encryption", {"type": "EncryptionAtRestWithPlatformKey"})
        props.setdefault("networkAccessPolicy", "AllowAll")
        props.setdefault("publicNetworkAccess", "Enabled")
        props["uniqueId"] = old.get("uniqueId") or str(uuid.uuid4())
        props["timeCreated"] = old.get("timeCreated") or now()
        return doc

    def attached_to(self, disk_id: str) -> Json | None:
        for vm in self.arm.state.of_type(VM):
            storage = vm["properties"]["storageProfile"]
            for disk in [storage["osDisk"], *storage.get("dataDisks", [])]:
                if _same(disk.get("managedDisk", {}).get("id"), disk_id):
                    return vm
        return None

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        vm = self.attached_to(doc["id"])
        if vm is not None:
            out["managedBy"] = vm["id"]
            out["properties"]["diskState"] = (
                "Reserved" if internal(vm).get("powerState") == "deallocated" else "Attached"
            )
        else:
            out["properties"]["diskState"] = "Unattached"
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        vm = self.attached_to(doc["id"])
        if vm is not None:
            raise ArmError(409, "OperationNotAllowed", f"Disk {doc['name']} is attached to VM {vm['id']}.")


# --- subscription-level operations: VM sizes and the marketplace catalogue --------------------------------------------
def subscription_op(arm: Arm, sub: str, more: list[str], req: Request) -> Response:
    low = [m.lower() for m in more]
    if len(low) < 3 or low[0] != "locations" or req.method != "GET":
        raise arm.invalid_type("Microsoft.Compute", more[0], req)
    location = catalog.normalise_region(more[1])
    if location is None:
        raise ArmError(
            404, "NoRegisteredProviderFound", f"No registered resource provider found for location '{more[1]}'."
        )
    rest, rest_low = more[2:], low[2:]
    if rest_low == ["vmsizes"]:
        return Response(200, {"value": catalog.vm_sizes()})
    if not rest_low or rest_low[0] != "publishers":
        raise arm.invalid_type("Microsoft.Compute", "/".join(more[:3]), req)
    not_found = ArmError(404, "NotFound", "Artifact: VMImage was not found.")
    if len(rest) == 1:
        return Response(200, [_artifact(sub, location, p, catalog.image_id(sub, location, p)) for p in catalog.IMAGES])
    publisher = catalog.lookup(catalog.IMAGES, rest[1])
    if publisher is None:
        raise not_found
    if len(rest) < 4 or rest_low[2:4] != ["artifacttypes", "vmimage"]:
        raise arm.invalid_type("Microsoft.Compute", "/".join(more), req)
    tail, tail_low = rest[4:], rest_low[4:]
    if tail_low == ["offers"]:
        return Response(
            200, [_artifact(sub, location, o, catalog.image_id(sub, location, publisher[0], o)) for o in publisher[1]]
        )
    offer = catalog.lookup(publisher[1], tail[1]) if len(tail) >= 2 else None
    if offer is None:
        raise not_found
    if tail_low[2:] == ["skus"]:
        return Response(
            200,
            [_artifact(sub, location, s, catalog.image_id(sub, location, publisher[0], offer[0], s)) for s in offer[1]],
        )
    sku = catalog.lookup(offer[1], tail[3]) if len(tail) >= 4 and tail_low[2] == "skus" else None
    if sku is None:
        raise not_found
    generation, versions = sku[1]
    ordered = sorted(versions, key=catalog.version_key)
    if tail_low[4:] == ["versions"]:
        top = req.query.get("$top")
        if top and top.isdigit():
            ordered = ordered[: int(top)]
        return Response(
            200,
            [
                _artifact(sub, location, v, catalog.image_id(sub, location, publisher[0], offer[0], sku[0], v))
                for v in ordered
            ],
        )
    if len(tail) == 6 and tail_low[4] == "versions" and tail[5] in versions:
        version = tail[5]
        item = _artifact(
            sub, location, version, catalog.image_id(sub, location, publisher[0], offer[0], sku[0], version)
        )
        item["properties"] = {
            "hyperVGeneration": generation,
            "architecture": "x64",
            "replicaType": "Managed",
            "disallowed": {"vmDiskType": "None"},
            "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
            "imageDeprecationStatus": {"imageState": "Active"},
            "features": [{"name": "IsAcceleratedNetworkSupported", "value": "True"}],
            "osDiskImage": {
                "operatingSystem": "Linux",
                "sizeInGb": IMAGE_DISK_GB,
                "sizeInBytes": IMAGE_DISK_GB * 1024**3,
            },
            "dataDiskImages": [],
        }
        return Response(200, item)
    raise not_found


def _artifact(sub: str, location: str, name: str, artifact_id: str) -> Json:
    return {"location": location, "name": name, "id": artifact_id}


TYPES: tuple[type[ResourceType], ...] = (VirtualMachines, Disks)
