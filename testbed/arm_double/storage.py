"""Microsoft.Storage: storage accounts (202 + Location on create), blobServices/default, blob containers, keys, SAS.

The blob data plane is not emulated here: `primaryEndpoints.blob` points at the --blob-endpoint (Azurite) and
listKeys returns the --storage-key, so clients that go to the data plane end up at Azurite with a valid key.
SAS tokens from ListServiceSas / ListAccountSas are real ones, signed with that key, so Azurite accepts them.
"""

from __future__ import annotations

import datetime
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import ids
from .errors import ArmError, invalid_content
from .resource import Json, Request, ResourceType, Response, models_for, now, public
from .validation import Validator

if TYPE_CHECKING:
    from .arm import Arm

ACCOUNT = "Microsoft.Storage/storageAccounts"
BLOB_SERVICE = "Microsoft.Storage/storageAccounts/blobServices"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER_NAME = re.compile(r"^(\$root|[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9])$")


def _invalid_name_message(name: str) -> str:
    return (
        f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in "
        "length and use numbers and lower-case letters only."
    )


def _taken_message(name: str) -> str:
    return f"The storage account named {name} is already taken."


def _endpoints(blob_endpoint: str, name: str) -> Json:
    """Blob (and queue/table, on Azurite's neighbouring ports) path-style at the emulator; the rest as in Azure."""
    url = urlsplit(blob_endpoint.rstrip("/"))
    endpoints = {
        "blob": f"{blob_endpoint.rstrip('/')}/{name}/",
        "file": f"https://{name}.file.core.windows.net/",
        "dfs": f"https://{name}.dfs.core.windows.net/",
        "web": f"https://{name}.z6.web.core.windows.net/",
    }
    if url.port:
        endpoints["queue"] = f"{url.scheme}://{url.hostname}:{url.port + 1}/{name}/"
        endpoints["table"] = f"{url.scheme}://{url.hostname}:{url.port + 2}/{name}/"
    else:
        endpoints["queue"] = f"https://{name}.queue.core.windows.net/"
        endpoints["table"] = f"https://{name}.table.core.windows.net/"
    return endpoints


def _expiry(value: Any, what: str) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ArmError(
            400, "InvalidValuesForRequestParameters", f"Values for request parameters are invalid: {what}."
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


class StorageAccounts(ResourceType):
    type = ACCOUNT
    models = "azure.mgmt.storage"
    model = "StorageAccountCreateParameters"
    patch_model = "StorageAccountUpdateParameters"
    put_lro = "location"
    delete_lro = "sync"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        self.check_name(rid)
        sku_name = str(body["sku"]["name"])
        old = dict((existing or {}).get("properties", {}))
        props = {**old, **body.get("properties", {})}
        stamp = now()
        kind = str(body["kind"])
        if kind in {"StorageV2", "BlobStorage"} and not sku_name.startswith("Premium"):
            props.setdefault("accessTier", "Hot")
        props.setdefault("supportsHttpsTrafficOnly", True)
        props.setdefault("minimumTlsVersion", "TLS1_2")
        props.setdefault("allowBlobPublicAccess", False)
        props.setdefault(
            "networkAcls",
            {"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Allow"},
        )
        props.setdefault(
            "encryption",
            {
                "services": {
                    "file": {"keyType": "Account", "enabled": True, "lastEnabledTime": stamp},
                    "blob": {"keyType": "Account", "enabled": True, "lastEnabledTime": stamp},
                },
                "keySource": "Microsoft.Storage",
            },
        )
        props.setdefault("keyCreationTime", {"key1": stamp, "key2": stamp})
        props.setdefault("creationTime", stamp)
        props.setdefault("privateEndpointConnections", [])
        props["primaryEndpoints"] = _endpoints(self.arm.config.blob_endpoint, rid.name)
        props["primaryLocation"] = body["location"]
        props["statusOfPrimary"] = "available"
        props["provisioningState"] = "Succeeded"
        doc: Json = {
            "id": existing["id"] if existing else rid.id,
            "name": existing["name"] if existing else rid.name,
            "type": ACCOUNT,
            "location": body["location"],
            "sku": {"name": sku_name, "tier": "Premium" if sku_name.startswith("Premium") else "Standard"},
            "kind": kind,
            "properties": props,
        }
        for member in ("tags", "identity", "extendedLocation"):
            if member in body:
                doc[member] = body[member]
            elif existing and member in existing:
                doc[member] = existing[member]
        if existing is None:
            service_id = f"{rid.id}/blobServices/default"
            self.arm.state.put(
                {
                    "id": service_id,
                    "name": "default",
                    "type": BLOB_SERVICE,
                    "properties": {
                        "cors": {"corsRules": []},
                        "deleteRetentionPolicy": {"allowPermanentDelete": False, "enabled": False},
                    },
                }
            )
        return doc

    def check_name(self, rid: ids.ResourceId) -> None:
        if not _ACCOUNT_NAME.match(rid.name):
            raise ArmError(400, "AccountNameInvalid", _invalid_name_message(rid.name))
        for other in self.arm.state.of_type(ACCOUNT):
            if other["name"] == rid.name and ids.key(other["id"]) != rid.key():
                raise ArmError(409, "StorageAccountAlreadyTaken", _taken_message(rid.name))

    def patch(self, rid: ids.ResourceId, body: Json, existing: Json, req: Request) -> Json:
        merged = super().patch(rid, body, existing, req)
        if "sku" in body:
            name = str(body["sku"]["name"])
            merged["sku"] = {"name": name, "tier": "Premium" if name.startswith("Premium") else "Standard"}
        return merged

    def keys(self) -> list[Json]:
        key = self.arm.config.storage_key
        stamp = now()
        return [
            {"creationTime": stamp, "keyName": "key1", "value": key, "permissions": "FULL"},
            {"creationTime": stamp, "keyName": "key2", "value": key[::-1], "permissions": "FULL"},
        ]

    def action(self, rid: ids.ResourceId, doc: Json, name: str, req: Request) -> Response:
        action = name.lower()
        if req.method == "POST" and action in {"listkeys", "regeneratekey"}:
            return Response(200, {"keys": self.keys()})
        if req.method == "POST" and action == "listservicesas":
            return Response(200, {"serviceSasToken": self.service_sas(rid, req)})
        if req.method == "POST" and action == "listaccountsas":
            return Response(200, {"accountSasToken": self.account_sas(rid, req)})
        return super().action(rid, doc, name, req)

    def _sas_body(self, req: Request, model: str) -> Json:
        return Validator(models_for("azure.mgmt.storage", req.api_version)).clean(req.body, model)

    def _key(self, body: Json) -> str:
        return (
            self.arm.config.storage_key
            if body.get("keyToSign", "key1") == "key1"
            else self.arm.config.storage_key[::-1]
        )

    def service_sas(self, rid: ids.ResourceId, req: Request) -> str:
        from azure.storage.blob import generate_blob_sas, generate_container_sas

        body = self._sas_body(req, "ServiceSasParameters")
        parts = str(body["canonicalizedResource"]).strip("/").split("/", 3)
        if len(parts) < 3 or parts[0] != "blob" or parts[1] != rid.name:
            raise ArmError(
                400,
                "InvalidValuesForRequestParameters",
                "Values for request parameters are invalid: canonicalizedResource (the double signs only "
                f"/blob/{rid.name}/<container>[/<blob>]).",
            )
        options: dict[str, Any] = {
            "permission": body.get("signedPermission"),
            "expiry": _expiry(body.get("signedExpiry"), "signedExpiry"),
            "start": _expiry(body.get("signedStart"), "signedStart"),
            "policy_id": body.get("signedIdentifier"),
            "ip": body.get("signedIp"),
            "protocol": body.get("signedProtocol"),
            "cache_control": body.get("rscc"),
            "content_disposition": body.get("rscd"),
            "content_encoding": body.get("rsce"),
            "content_language": body.get("rscl"),
            "content_type": body.get("rsct"),
        }
        if options["expiry"] is None and options["policy_id"] is None:
            raise ArmError(
                400, "InvalidValuesForRequestParameters", "Values for request parameters are invalid: signedExpiry."
            )
        options = {k: v for k, v in options.items() if v is not None}
        resource = str(body.get("signedResource", "c"))
        if resource == "b" and len(parts) == 4:
            return str(generate_blob_sas(rid.name, parts[2], parts[3], account_key=self._key(body), **options))
        if resource == "c" and len(parts) == 3:
            return str(generate_container_sas(rid.name, parts[2], account_key=self._key(body), **options))
        raise ArmError(
            400,
            "InvalidValuesForRequestParameters",
            "Values for request parameters are invalid: signedResource (the double signs c and b).",
        )

    def account_sas(self, rid: ids.ResourceId, req: Request) -> str:
        from azure.storage.blob import generate_account_sas

        body = self._sas_body(req, "AccountSasParameters")
        expiry = _expiry(body["signedExpiry"], "signedExpiry")
        assert expiry is not None
        options: dict[str, Any] = {
            "start": _expiry(body.get("signedStart"), "signedStart"),
            "ip": body.get("signedIp"),
            "protocol": body.get("signedProtocol"),
        }
        return str(
            generate_account_sas(
                rid.name,
                self._key(body),
                resource_types=str(body["signedResourceTypes"]),
                permission=str(body["signedPermission"]),
                expiry=expiry,
                services=str(body["signedServices"]),
                **{k: v for k, v in options.items() if v is not None},
            )
        )


class BlobServices(ResourceType):
    type = BLOB_SERVICE
    models = "azure.mgmt.storage"
    model = "BlobServiceProperties"
    tracked = False
    put_lro = "sync"
    delete_lro = "sync"
    child_collections = ("containers",)

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        if rid.name != "default":
            raise ArmError(400, "InvalidResourceName", "The blob service of a storage account is named 'default'.")
        props = {**(existing or {}).get("properties", {}), **body.get("properties", {})}
        return {"id": rid.id, "name": "default", "type": BLOB_SERVICE, "properties": props}

    def view(self, doc: Json, req: Request | None = None) -> Json:
        out = public(doc)
        account = self.arm.state.get(doc["id"].rsplit("/blobServices/", 1)[0])
        if account is not None:
            out["sku"] = account["sku"]
        return out

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        raise ArmError(405, "MethodNotAllowed", "The blob service of a storage account cannot be deleted.")


class Containers(ResourceType):
    type = CONTAINER
    models = "azure.mgmt.storage"
    model = "BlobContainer"
    patch_model = "BlobContainer"
    tracked = False
    put_lro = "sync"
    delete_lro = "sync"

    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        if not _CONTAINER_NAME.match(rid.name):
            raise ArmError(400, "ContainerOperationFailure", "The specified resource name contains invalid characters.")
        account = self.arm.state.get(rid.top.id)
        assert account is not None
        props = {**(existing or {}).get("properties", {}), **body.get("properties", {})}
        props.setdefault("publicAccess", "None")
        if props["publicAccess"] != "None" and not account["properties"].get("allowBlobPublicAccess"):
            raise ArmError(409, "PublicAccessNotPermitted", "Public access is not permitted on this storage account.")
        props.update(
            {
                "leaseStatus": "Unlocked",
                "leaseState": "Available",
                "hasImmutabilityPolicy": False,
                "hasLegalHold": False,
                "deleted": False,
                "remainingRetentionDays": 0,
                "lastModifiedTime": now(),
            }
        )
        props.setdefault("defaultEncryptionScope", "$account-encryption-key")
        props.setdefault("denyEncryptionScopeOverride", False)
        return {
            "id": rid.id,
            "name": rid.name,
            "type": CONTAINER,
            "etag": f'"0x8DD{uuid.uuid4().hex[:12].upper()}"',
            "properties": props,
        }

    def patch(self, rid: ids.ResourceId, body: Json, existing: Json, req: Request) -> Json:
        return self.build(rid, {"properties": {**existing["properties"], **body.get("properties", {})}}, existing, req)


# --- subscription level: checkNameAvailability ------------------------------------------------------------------------
def subscription_op(arm: Arm, sub: str, more: list[str], req: Request) -> Response:
    if [m.lower() for m in more] == ["checknameavailability"] and req.method == "POST":
        body = Validator(models_for("azure.mgmt.storage", req.api_version)).clean(
            req.body, "StorageAccountCheckNameAvailabilityParameters"
        )
        if str(body.get("type", "")).lower() != ACCOUNT.lower():
            raise invalid_content(f"The type '{body.get('type')}' is not supported by checkNameAvailability.")
        name = str(body["name"])
        if not _ACCOUNT_NAME.match(name):
            return Response(
                200, {"nameAvailable": False, "reason": "AccountNameInvalid", "message": _invalid_name_message(name)}
            )
        if any(doc["name"] == name for doc in arm.state.of_type(ACCOUNT)):
            return Response(200, {"nameAvailable": False, "reason": "AlreadyExists", "message": _taken_message(name)})
        return Response(200, {"nameAvailable": True})
    raise arm.invalid_type("Microsoft.Storage", more[0], req)


TYPES: tuple[type[ResourceType], ...] = (StorageAccounts, BlobServices, Containers)
