"""The ARM front door: routing, api-versions, resource groups, generic resource CRUD, long-running operations."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import catalog, ids
from .authorization import Authorization
from .compute import TYPES as COMPUTE_TYPES
from .compute import subscription_op as compute_op
from .entra import Tokens
from .errors import ArmError, group_not_found, not_found
from .network import TYPES as NETWORK_TYPES
from .resource import Json, Request, ResourceType, Response, models_for, public, sdk_api_versions
from .storage import TYPES as STORAGE_TYPES
from .storage import subscription_op as storage_op
from .store import State
from .validation import Validator

HOST = "https://management.azure.com"
DEFAULT_STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# Network's SDK ships one API version only; these are api-versions the real NRP serves (the modules and the
# inventory plugin pin 2024-01-01 / 2024-05-01, older collections older ones).
# fmt: off
NETWORK_API_VERSIONS = (
    "2017-03-01", "2017-10-01",
    "2018-01-01", "2018-04-01", "2018-08-01", "2018-10-01", "2018-11-01",
    "2019-02-01", "2019-04-01", "2019-06-01", "2019-09-01", "2019-11-01", "2019-12-01",
    "2020-03-01", "2020-04-01", "2020-05-01", "2020-06-01", "2020-07-01", "2020-08-01", "2020-11-01",
    "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01",
    "2022-01-01", "2022-05-01", "2022-07-01", "2022-09-01", "2022-11-01",
    "2023-02-01", "2023-04-01", "2023-05-01", "2023-06-01", "2023-09-01", "2023-11-01",
    "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01",
)
# fmt: on


@dataclass
class Config:
    blob_endpoint: str = "http://127.0.0.1:10000"
    storage_key: str = DEFAULT_STORAGE_KEY
    lro_seconds: float = 0.0  # how long long-running operations report InProgress
    retry_after: int = 1  # never 0: azure-core then falls back to its 30 s default


class Arm:
    def __init__(self, state: State, config: Config, tokens: Tokens) -> None:
        self.state = state
        self.config = config
        self.tokens = tokens
        self.tenant = "00000000-0000-0000-0000-000000000000"
        self.types: dict[str, ResourceType] = {}
        self.caller = ""  # object id of the service principal of the current request
        for cls in (*NETWORK_TYPES, *COMPUTE_TYPES, *STORAGE_TYPES):
            spec = cls(self)
            self.types[spec.type.lower()] = spec
        self.authorization = Authorization(self)
        self.subscription_ops: dict[str, Callable[[Arm, str, list[str], Request], Response]] = {
            "microsoft.compute": compute_op,
            "microsoft.storage": storage_op,
        }

    # --- entry point -----------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            claims = self.tokens.check_bearer(req.headers.get("authorization"))
            with self.state.lock:
                self.tenant = str(claims.get("tid", self.tenant))
                self.caller = str(claims.get("oid", ""))
                response = self.dispatch(req)
        except ArmError as exc:
            response = Response(exc.status, exc.body(), dict(exc.headers))
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-correlation-request-id", req.headers.get("x-ms-correlation-request-id", ""))
        return response

    def namespaces(self) -> dict[str, str]:
        spaces = {spec.namespace.lower(): spec.namespace for spec in self.types.values()}
        spaces.update(
            {"microsoft.authorization": "Microsoft.Authorization", "microsoft.resources": "Microsoft.Resources"}
        )
        return spaces

    def api_versions(self, namespace: str) -> tuple[str, ...]:
        ns = namespace.lower()
        if ns == "microsoft.network":
            return NETWORK_API_VERSIONS
        package = {
            "microsoft.compute": "azure.mgmt.compute",
            "microsoft.storage": "azure.mgmt.storage",
            "microsoft.authorization": "azure.mgmt.authorization",
            "microsoft.resources": "azure.mgmt.resource.resources",
        }.get(ns)
        if package is None:
            return ()
        versions = sdk_api_versions(package)
        if ns == "microsoft.resources":
            versions = (*versions, "2015-11-01", "2016-06-01", "2020-01-01", "2022-12-01")  # subscriptions, batch
        return versions

    def check_version(self, namespace: str, req: Request, type_name: str = "") -> None:
        version = req.api_version
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        supported = self.api_versions(namespace)
        if version in supported:
            return
        if namespace.lower() == "microsoft.resources" or not type_name:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{', '.join(supported[-8:])}'.",
            )
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location 'westeurope' and API version '{version}' for type "
            f"'{type_name.split('/', 1)[-1]}'. The supported api-versions are '{', '.join(supported[-8:])}'. "
            f"The supported locations are '{', '.join(catalog.REGIONS)}'.",
        )

    # --- routing ---------------------------------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        segs = [unquote(s) for s in req.path.split("/") if s]
        low = [s.lower() for s in segs]
        if low == ["batch"] and req.method == "POST":
            self.check_version("Microsoft.Resources", req)
            return self.batch(req)
        for i in range(len(low) - 1, -1, -1):
            if low[i] == "providers" and i + 1 < len(low) and low[i + 1] == "microsoft.authorization":
                self.check_version("Microsoft.Authorization", req, "Microsoft.Authorization/roleAssignments")
                scope = "/" + "/".join(segs[:i])
                if i >= 2:
                    self.check_subscription(segs[1])
                return self.authorization.handle(scope, segs[i + 2 :], req)
        if not low or low[0] != "subscriptions":
            raise ArmError(404, "NotFound", f"The requested path '{req.path}' is not served by ARM.")
        if len(low) == 1:
            self.check_version("Microsoft.Resources", req)
            return Response(200, {"value": [self.subscription_doc(self.tenant_subscription())]})
        sub = segs[1]
        self.check_subscription(sub)
        rest, rest_low = segs[2:], low[2:]
        if not rest:
            self.check_version("Microsoft.Resources", req)
            return Response(200, self.subscription_doc(sub))
        head = rest_low[0]
        if head == "locations" and len(rest) == 1:
            self.check_version("Microsoft.Resources", req)
            return Response(200, {"value": self.locations(sub)})
        if head == "operationresults" and len(rest) == 2:
            return self.operation_result(rest[1], req)
        if head == "resources" and len(rest) == 1:
            self.check_version("Microsoft.Resources", req)
            return Response(200, {"value": self.list_generic(sub, None)})
        if head == "resourcegroups":
            return self.resource_groups(sub, rest[1:], req)
        if head == "providers":
            return self.subscription_providers(sub, rest[1:], req)
        raise ArmError(404, "NotFound", f"The requested path '{req.path}' is not served by ARM.")

    def check_subscription(self, sub: str) -> None:
        if not ids.is_guid(sub):
            raise ArmError(
                400, "InvalidSubscriptionId", f"The provided subscription identifier '{sub}' is malformed or invalid."
            )

    def tenant_subscription(self) -> str:
        return "00000000-0000-0000-0000-000000000000"

    def subscription_doc(self, sub: str) -> Json:
        return {
            "id": f"/subscriptions/{sub}",
            "subscriptionId": sub,
            "tenantId": self.tenant,
            "displayName": "ARM test double subscription",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        }

    def locations(self, sub: str) -> list[Json]:
        return [
            {
                "id": f"/subscriptions/{sub}/locations/{name}",
                "name": name,
                "displayName": display,
                "regionalDisplayName": display,
            }
            for name, display in catalog.REGIONS.items()
        ]

    # --- subscription-level provider operations -----------------------------------------------------------------------
    def subscription_providers(self, sub: str, rest: list[str], req: Request) -> Response:
        spaces = self.namespaces()
        if not rest:
            self.check_version("Microsoft.Resources", req)
            return Response(200, {"value": [self.provider_doc(sub, ns) for ns in spaces.values()]})
        ns_low = rest[0].lower()
        if ns_low not in spaces:
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{rest[0]}' is invalid.")
        namespace = spaces[ns_low]
        more = rest[1:]
        if not more or (len(more) == 1 and more[0].lower() == "register" and req.method == "POST"):
            self.check_version("Microsoft.Resources", req)
            return Response(200, self.provider_doc(sub, namespace))
        more_low = [m.lower() for m in more]
        if (
            len(more) == 4
            and more_low[0] == "locations"
            and more_low[2] in {"operations", "operationresults", "asyncoperations"}
        ):
            if more_low[2] == "operations":
                return self.operation_status(more[3])
            return self.operation_result(more[3], req)
        self.check_version(namespace, req, f"{namespace}/{more[0]}")
        if len(more) == 1 and req.method == "GET":
            spec = self.types.get(f"{ns_low}/{more_low[0]}")
            if spec is not None and spec.tracked:
                return Response(200, {"value": self.list_type(spec, sub, None, req)})
        op = self.subscription_ops.get(ns_low)
        if op is not None:
            return op(self, sub, more, req)
        raise self.invalid_type(namespace, more[0], req)

    def provider_doc(self, sub: str, namespace: str) -> Json:
        types = [spec for spec in self.types.values() if spec.namespace == namespace]
        return {
            "id": f"/subscriptions/{sub}/providers/{namespace}",
            "namespace": namespace,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {
                    "resourceType": spec.short_type,
                    "locations": list(catalog.REGIONS.values()),
                    "apiVersions": sorted(self.api_versions(namespace), reverse=True),
                }
                for spec in types
            ],
        }

    def invalid_type(self, namespace: str, type_name: str, req: Request) -> ArmError:
        return ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{type_name}' could not be found in the namespace '{namespace}' "
            f"for api version '{req.api_version}'.",
        )

    # --- long-running operations -----------------------------------------------------------------------------------
    def lro_headers(
        self, namespace: str, location: str, sub: str, req: Request, *, location_header: bool
    ) -> dict[str, str]:
        op = self.state.new_operation(req.method, req.path, self.config.lro_seconds)
        base = f"{HOST}/subscriptions/{sub}/providers/{namespace}/locations/{location or 'westeurope'}"
        version = req.api_version
        headers = {"Retry-After": str(self.config.retry_after)}
        if namespace == "Microsoft.Storage":
            headers["Location"] = f"{base}/asyncoperations/{op}?monitor=true&api-version={version}"
            self.state.operations[op]["resultId"] = req.path
            return headers
        headers["Azure-AsyncOperation"] = f"{base}/operations/{op}?api-version={version}"
        if location_header:
            headers["Location"] = f"{base}/operationResults/{op}?api-version={version}"
        return headers

    def operation_status(self, op_id: str) -> Response:
        op = self.state.operation(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        done = time.time() >= op["doneAt"]
        body: Json = {
            "name": op_id,
            "status": "Succeeded" if done else "InProgress",
            "startTime": _iso(op["startTime"]),
        }
        if done:
            body["endTime"] = _iso(op["doneAt"])
        return Response(200, body)

    def operation_result(self, op_id: str, req: Request) -> Response:
        op = self.state.operation(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        if time.time() < op["doneAt"]:
            return Response(
                202,
                None,
                {"Location": HOST + req.path + "?" + _query(req), "Retry-After": str(self.config.retry_after)},
            )
        result_path = op.get("resultId")
        if result_path:  # storage: the finished operation answers with the resource
            inner = Request("GET", result_path, {"api-version": req.api_version}, req.headers)
            try:
                found = self.dispatch(inner)
            except ArmError:
                return Response(204)
            return Response(200, found.body)
        return Response(204) if op["kind"] == "DELETE" else Response(200)

    # --- resource groups ---------------------------------------------------------------------------------------------
    def resource_groups(self, sub: str, rest: list[str], req: Request) -> Response:
        if len(rest) >= 2 and rest[1].lower() == "providers":
            return self.resources(sub, rest[0], rest[2:], req)
        self.check_version("Microsoft.Resources", req)
        if not rest:
            groups = [
                copy.deepcopy(g) for k, g in self.state.groups.items() if k.startswith(f"/subscriptions/{sub.lower()}/")
            ]
            return Response(200, {"value": groups})
        name = rest[0]
        if len(rest) == 2 and rest[1].lower() == "resources" and req.method == "GET":
            if self.state.group(sub, name) is None:
                raise group_not_found(name)
            return Response(200, {"value": self.list_generic(sub, name)})
        if len(rest) == 2 and rest[1].lower() == "exporttemplate":
            raise ArmError(501, "NotImplemented", "The ARM test double does not export templates.")
        if len(rest) != 1:
            raise ArmError(404, "NotFound", f"The requested path '{req.path}' is not served by ARM.")
        group = self.state.group(sub, name)
        if req.method == "HEAD":
            return Response(204 if group else 404)
        if req.method == "GET":
            if group is None:
                raise group_not_found(name)
            return Response(200, copy.deepcopy(group))
        if req.method in {"PUT", "PATCH"}:
            return self.put_group(sub, name, group, req)
        if req.method == "DELETE":
            if group is None:
                raise group_not_found(name)
            self.state.delete_tree(group["id"])
            del self.state.groups[ids.key(group["id"])]
            self.state.save()
            op = self.state.new_operation("DELETE", group["id"], self.config.lro_seconds)
            location = f"{HOST}/subscriptions/{sub}/operationresults/{op}?api-version={req.api_version}"
            return Response(202, None, {"Location": location, "Retry-After": str(self.config.retry_after)})
        raise _method_not_allowed(req)

    def put_group(self, sub: str, name: str, group: Json | None, req: Request) -> Response:
        if not _valid_group_name(name):
            raise ArmError(
                400,
                "InvalidResourceGroup",
                f"The provided resource group name '{name}' has these invalid characters: '{name}'. The name can only "
                "be a letter, digit, '-', '.', '(', ')' or '_'.",
            )
        body = Validator(models_for("azure.mgmt.resource.resources", req.api_version)).clean(
            req.body,
            "ResourceGroup" if req.method == "PUT" else "ResourceGroupPatchable",
            partial=req.method == "PATCH",
        )
        if req.method == "PATCH":
            if group is None:
                raise group_not_found(name)
            if "tags" in body:
                group["tags"] = body["tags"]
            self.state.save()
            return Response(200, copy.deepcopy(group))
        location = self.region(body.get("location"), "Microsoft.Resources/resourceGroups")
        if group is not None and group["location"] != location:
            raise ArmError(
                400,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{location}'. The Resource group already exists in location "
                f"'{group['location']}'.",
            )
        doc: Json = {
            "id": ids.group_id(sub, group["name"] if group else name),
            "name": group["name"] if group else name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        }
        if "tags" in body:
            doc["tags"] = body["tags"]
        if "managedBy" in body:
            doc["managedBy"] = body["managedBy"]
        self.state.groups[ids.key(doc["id"])] = doc
        self.state.save()
        return Response(200 if group else 201, copy.deepcopy(doc))

    def region(self, value: Any, type_name: str) -> str:
        if not value:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        region = catalog.normalise_region(str(value))
        if region is None:
            raise ArmError(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{value}' is not available for resource type '{type_name}'. List of available "
                f"regions for the resource type is '{','.join(catalog.REGIONS)}'.",
            )
        return region

    def list_generic(self, sub: str, group: str | None) -> list[Json]:
        """GET .../resources: the top-level resources (generic shape), optionally of one group."""
        out = []
        for doc in self.state.resources.values():
            rid = ids.parse(doc["id"])
            if rid is None or len(rid.types) != 1 or rid.subscription.lower() != sub.lower():
                continue
            if group is not None and rid.group.lower() != group.lower():
                continue
            item: Json = {
                k: copy.deepcopy(doc[k])
                for k in ("id", "name", "type", "sku", "kind", "location", "tags", "identity", "zones")
                if k in doc
            }
            out.append(item)
        return sorted(out, key=lambda d: str(d["id"]).lower())

    # --- resources ----------------------------------------------------------------------------------------------------
    def resources(self, sub: str, group: str, rest: list[str], req: Request) -> Response:
        spaces = self.namespaces()
        if not rest or rest[0].lower() not in spaces:
            raise ArmError(
                404, "InvalidResourceNamespace", f"The resource namespace '{rest[0] if rest else ''}' is invalid."
            )
        namespace = spaces[rest[0].lower()]
        pairs = rest[1:]
        if not pairs:
            raise ArmError(404, "NotFound", f"The requested path '{req.path}' is not served by ARM.")
        type_name = (
            "/".join([namespace, *pairs[0::2]]) if len(pairs) % 2 == 0 else "/".join([namespace, *pairs[:-1][0::2]])
        )
        if len(pairs) % 2 == 1:
            if len(pairs) == 1:  # collection of a top-level type in the group
                spec = self.types.get(f"{namespace}/{pairs[0]}".lower())
                if spec is None:
                    raise self.invalid_type(namespace, pairs[0], req)
                self.check_version(namespace, req, spec.type)
                if req.method != "GET":
                    raise _method_not_allowed(req)
                self.need_group(sub, group)
                return Response(200, {"value": self.list_type(spec, sub, group, req)})
            base = ids.ResourceId(sub, group, namespace, tuple(pairs[:-1][0::2]), tuple(pairs[:-1][1::2]))
            base_spec = self.spec(base, req)
            self.check_version(namespace, req, base_spec.type)
            child_spec = self.types.get(f"{base_spec.type}/{pairs[-1]}".lower())
            self.need_group(sub, group)
            doc = self.find(base_spec, base)
            if doc is None:
                raise not_found(base_spec.short_type, base.name, group)
            if child_spec is not None and req.method == "GET":
                return Response(200, {"value": self.list_children(base_spec, base, child_spec, req)})
            return base_spec.action(base, doc, pairs[-1], req)
        rid = ids.ResourceId(sub, group, namespace, tuple(pairs[0::2]), tuple(pairs[1::2]))
        spec = self.spec(rid, req)
        self.check_version(namespace, req, type_name)
        self.need_group(sub, group)
        if req.method == "GET":
            return Response(200, self.get_view(spec, rid, req))
        if req.method == "HEAD":
            return Response(204 if self.find(spec, rid) is not None else 404)
        if req.method == "PUT":
            return self.put(spec, rid, req)
        if req.method == "PATCH":
            return self.patch(spec, rid, req)
        if req.method == "DELETE":
            return self.delete(spec, rid, req)
        raise _method_not_allowed(req)

    def spec(self, rid: ids.ResourceId, req: Request) -> ResourceType:
        spec = self.types.get(rid.type.lower())
        if spec is None:
            raise self.invalid_type(rid.namespace, "/".join(rid.types), req)
        return spec

    def need_group(self, sub: str, group: str) -> Json:
        doc = self.state.group(sub, group)
        if doc is None:
            raise group_not_found(group)
        return doc

    def find(self, spec: ResourceType, rid: ids.ResourceId) -> Json | None:
        """The stored document of a resource (for inline children: the item inside its parent)."""
        if spec.inline_in is None:
            return self.state.get(rid.id)
        parent = rid.parent
        assert parent is not None
        parent_doc = self.state.get(parent.id)
        if parent_doc is None:
            return None
        for item in parent_doc.get("properties", {}).get(spec.inline_in, []):
            if str(item.get("name", "")).lower() == rid.name.lower():
                found: Json = item
                return found
        return None

    def get_view(self, spec: ResourceType, rid: ids.ResourceId, req: Request | None) -> Json:
        doc = self.find(spec, rid)
        if doc is None:
            parent = rid.parent
            if parent is not None and self.find(self.types[parent.type.lower()], parent) is None:
                parent_spec = self.types[parent.type.lower()]
                raise not_found(parent_spec.short_type, parent.name, rid.group)
            if spec.inline_in is not None or parent is not None:
                raise ArmError(404, "NotFound", f"Resource {rid.id} not found.")
            raise not_found(spec.short_type, rid.name, rid.group)
        return spec.view(doc, req)

    def view_of(self, resource_id: str) -> Json | None:
        """The GET view of any stored resource by id (used by other types and by /_double/resources)."""
        rid = ids.parse(resource_id)
        if rid is None:
            return None
        spec = self.types.get(rid.type.lower())
        if spec is None:
            return None
        doc = self.find(spec, rid)
        return None if doc is None else spec.view(doc, None)

    def list_type(self, spec: ResourceType, sub: str, group: str | None, req: Request) -> list[Json]:
        out = []
        for doc in self.state.of_type(spec.type):
            rid = ids.parse(doc["id"])
            if rid is None or rid.subscription.lower() != sub.lower():
                continue
            if group is None or rid.group.lower() == group.lower():
                out.append(spec.view(doc, req))
        return out

    def list_children(
        self, base_spec: ResourceType, base: ids.ResourceId, child: ResourceType, req: Request
    ) -> list[Json]:
        if child.inline_in is not None:
            parent_view = self.get_view(base_spec, base, req)
            items: list[Json] = parent_view.get("properties", {}).get(child.inline_in, [])
            return items
        prefix = base.key() + "/"
        return [
            child.view(doc, req)
            for k, doc in self.state.resources.items()
            if k.startswith(prefix)
            and str(doc.get("type", "")).lower() == child.type.lower()
            and k.count("/") == prefix.count("/") + 1
        ]

    def put(self, spec: ResourceType, rid: ids.ResourceId, req: Request) -> Response:
        parent = rid.parent
        if parent is not None:
            parent_spec = self.types.get(parent.type.lower())
            if parent_spec is None or self.find(parent_spec, parent) is None:
                raise ArmError(
                    404,
                    "ParentResourceNotFound",
                    f"Can not perform requested operation on nested resource. Parent resource "
                    f"'{'/'.join(parent.names)}' not found.",
                )
        existing = self.find(spec, rid)
        body = spec.clean(req.body, req.api_version)
        if spec.tracked:
            body["location"] = self.region(body.get("location"), spec.type)
            if existing is not None and existing.get("location") != body["location"]:
                raise ArmError(
                    400,
                    "InvalidResourceLocation",
                    f"The resource '{rid.name}' already exists in location '{existing.get('location')}' in resource "
                    f"group '{rid.group}'. A resource with the same name cannot be created in location "
                    f"'{body['location']}'. Please select a new resource name.",
                )
        doc = spec.build(rid, body, copy.deepcopy(existing) if existing else None, req)
        self.store(spec, rid, doc)
        self.state.save()
        return self.put_response(spec, rid, existing is None, req)

    def patch(self, spec: ResourceType, rid: ids.ResourceId, req: Request) -> Response:
        if spec.patch_model is None:
            raise _method_not_allowed(req)
        existing = self.find(spec, rid)
        if existing is None:
            raise not_found(spec.short_type, rid.name, rid.group)
        body = spec.clean(req.body, req.api_version, patch=True)
        doc = spec.patch(rid, body, copy.deepcopy(existing), req)
        self.store(spec, rid, doc)
        self.state.save()
        return Response(200, self.get_view(spec, rid, req))

    def store(self, spec: ResourceType, rid: ids.ResourceId, doc: Json) -> None:
        if spec.inline_in is None:
            self.state.put(doc)
            return
        parent = rid.parent
        assert parent is not None
        parent_doc = self.state.get(parent.id)
        assert parent_doc is not None
        items: list[Json] = parent_doc.setdefault("properties", {}).setdefault(spec.inline_in, [])
        for i, item in enumerate(items):
            if str(item.get("name", "")).lower() == rid.name.lower():
                items[i] = doc
                break
        else:
            items.append(doc)

    def put_response(self, spec: ResourceType, rid: ids.ResourceId, created: bool, req: Request) -> Response:
        view = self.get_view(spec, rid, req)
        location = str(view.get("location") or self.location_of(rid))
        if spec.put_lro == "location":
            if not created:
                return Response(200, view)
            return Response(
                202, None, self.lro_headers(spec.namespace, location, rid.subscription, req, location_header=True)
            )
        if spec.put_lro == "async":
            view.setdefault("properties", {})["provisioningState"] = (
                ("Creating" if created else "Updating") if spec.namespace == "Microsoft.Compute" else "Updating"
            )
            headers = self.lro_headers(spec.namespace, location, rid.subscription, req, location_header=False)
            return Response(201 if created else 200, view, headers)
        return Response(201 if created else 200, view)

    def location_of(self, rid: ids.ResourceId) -> str:
        top = self.state.get(rid.top.id)
        return str(top.get("location", "westeurope")) if top else "westeurope"

    def delete(self, spec: ResourceType, rid: ids.ResourceId, req: Request) -> Response:
        doc = self.find(spec, rid)
        if doc is None:
            return Response(204)
        spec.check_delete(rid, doc)
        location = self.location_of(rid)
        if spec.inline_in is not None:
            parent = rid.parent
            assert parent is not None
            parent_doc = self.state.get(parent.id)
            assert parent_doc is not None
            items = parent_doc["properties"][spec.inline_in]
            parent_doc["properties"][spec.inline_in] = [i for i in items if i is not doc]
        else:
            self.state.delete_tree(rid.id)
        spec.deleted(rid, doc)
        self.state.save()
        if spec.delete_lro == "sync":
            return Response(200)
        return Response(
            202, None, self.lro_headers(spec.namespace, location, rid.subscription, req, location_header=True)
        )

    # --- references between resources -------------------------------------------------------------------------------
    def check_reference(self, referrer: str, target: Any, expected_type: str) -> Json:
        """A `{"id": ...}` reference as ARM stores it; 400 InvalidResourceReference when the target does not exist."""
        if not isinstance(target, dict) or not target.get("id"):
            raise ArmError(
                400, "InvalidRequestFormat", f"Cannot parse the request: a reference in {referrer} has no id."
            )
        target_id = str(target["id"])
        rid = ids.parse(target_id)
        found = None
        if rid is not None and rid.type.lower() == expected_type.lower():
            spec = self.types.get(rid.type.lower())
            found = self.find(spec, rid) if spec else None
        if found is None:
            raise ArmError(
                400,
                "InvalidResourceReference",
                f"Resource {target_id} referenced by resource {referrer} was not found. Please make sure that the "
                "referenced resource exists, and that both resources are in the same region.",
            )
        return {"id": found["id"]}

    # --- /batch (used by the azure_rm inventory plugin) ---------------------------------------------------------------
    def batch(self, req: Request) -> Response:
        requests = (req.body or {}).get("requests") if isinstance(req.body, dict) else None
        if not isinstance(requests, list):
            raise ArmError(400, "InvalidRequestContent", "The batch request must have a 'requests' array.")
        if len(requests) > 500:
            raise ArmError(400, "InvalidBatchRequest", "A batch may hold at most 500 requests.")
        responses = []
        for item in requests:
            url = urlsplit(str(item.get("url", "")))
            inner = Request(
                method=str(item.get("httpMethod", "GET")).upper(),
                path=url.path,
                query={k.lower(): v for k, v in parse_qsl(url.query)},
                headers=req.headers,
                body=item.get("content"),
            )
            try:
                result = self.dispatch(inner)
            except ArmError as exc:
                result = Response(exc.status, exc.body())
            entry: Json = {"time": round(time.time(), 3), "host": "management.azure.com", "method": inner.method}
            entry.update({"path": inner.path, "status": result.status, "apiVersion": inner.api_version, "batch": True})
            self.state.log(entry)
            content = result.body
            responses.append(
                {
                    "name": item.get("name"),
                    "httpStatusCode": result.status,
                    "headers": {"x-ms-request-id": str(uuid.uuid4()), **result.headers},
                    "content": content,
                    "contentLength": len(json.dumps(content)) if content is not None else 0,
                }
            )
        return Response(200, {"responses": responses})

    # --- inspection ---------------------------------------------------------------------------------------------------
    def all_views(self) -> list[Json]:
        with self.state.lock:
            out: list[Json] = [copy.deepcopy(g) for g in self.state.groups.values()]
            for doc in self.state.resources.values():
                view = self.view_of(doc["id"])
                out.append(view if view is not None else public(doc))
            out.extend(copy.deepcopy(a) for a in self.state.assignments.values())
        return out


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int((stamp % 1) * 10_000_000):07d}Z"


def _query(req: Request) -> str:
    return "&".join(f"{k}={v}" for k, v in req.query.items())


def _method_not_allowed(req: Request) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The HTTP method '{req.method}' is not supported at '{req.path}'.")


def _valid_group_name(name: str) -> bool:
    return bool(re.fullmatch(r"[-\w._()]{1,90}", name)) and not name.endswith(".")
