"""Microsoft.Authorization at any scope: built-in role definitions (read-only) and role assignments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from . import catalog, ids
from .errors import ArmError, group_not_found, not_found
from .resource import Json, Request, Response, models_for, now
from .validation import Validator

if TYPE_CHECKING:
    from .arm import Arm

ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
DEFINITION = "Microsoft.Authorization/roleDefinitions"
_FILTER = re.compile(r"(\w+)\s+eq\s+'([^']*)'", re.IGNORECASE)
_ASSIGNED_TO = re.compile(r"assignedTo\('([^']*)'\)", re.IGNORECASE)


def _normal_scope(scope: str) -> str:
    return "/" + scope.strip("/") if scope.strip("/") else "/"


def _subscription_prefix(scope: str) -> str:
    parts = [p for p in scope.split("/") if p]
    return f"/subscriptions/{parts[1]}" if len(parts) >= 2 and parts[0].lower() == "subscriptions" else ""


def _covers(outer: str, inner: str) -> bool:
    """Is `inner` at or below `outer`?"""
    a, b = outer.rstrip("/").lower(), inner.rstrip("/").lower()
    return a == "" or a == b or b.startswith(a + "/")


class Authorization:
    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def handle(self, scope: str, rest: list[str], req: Request) -> Response:
        scope = _normal_scope(scope)
        kind = rest[0].lower() if rest else ""
        if kind == "roledefinitions" and len(rest) in (1, 2):
            if req.method != "GET":
                raise ArmError(
                    501, "NotImplemented", "The ARM test double serves the built-in role definitions only (read-only)."
                )
            if len(rest) == 1:
                return Response(200, {"value": self.definitions(scope, req.query.get("$filter", ""))})
            return Response(200, self.definition(scope, rest[1]))
        if kind == "roleassignments" and len(rest) == 1 and req.method == "GET":
            return Response(200, {"value": self.list_assignments(scope, req.query.get("$filter", ""))})
        if kind == "roleassignments" and len(rest) == 2:
            return self.assignment(scope, rest[1], req)
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{'/'.join(rest[:1])}' could not be found in the namespace 'Microsoft.Authorization' "
            f"for api version '{req.api_version}'.",
        )

    # --- role definitions ---------------------------------------------------------------------------------------------
    def definition_doc(self, scope: str, role: Json) -> Json:
        return {
            "id": f"{_subscription_prefix(scope)}/providers/{DEFINITION}/{role['guid']}",
            "name": role["guid"],
            "type": DEFINITION,
            "properties": {
                "roleName": role["roleName"],
                "type": "BuiltInRole",
                "description": role["description"],
                "assignableScopes": ["/"],
                "permissions": role["permissions"],
                "createdOn": "2015-02-02T21:55:09.8806423Z",
                "updatedOn": "2024-01-01T00:00:00.0000000Z",
                "createdBy": None,
                "updatedBy": None,
            },
        }

    def definitions(self, scope: str, query: str) -> list[Json]:
        wanted = {k.lower(): v for k, v in _FILTER.findall(query)}
        unknown = set(wanted) - {"rolename", "type"}
        if unknown:
            raise ArmError(400, "InvalidFilter", f"The filter '{query}' is not supported for role definitions.")
        out = []
        for role in catalog.BUILTIN_ROLES:
            if "rolename" in wanted and role["roleName"].lower() != wanted["rolename"].lower():
                continue
            if "type" in wanted and wanted["type"].lower() != "builtinrole":
                continue
            out.append(self.definition_doc(scope, role))
        return out

    def find_role(self, guid: str) -> Json | None:
        return next((r for r in catalog.BUILTIN_ROLES if r["guid"] == guid.lower()), None)

    def definition(self, scope: str, guid: str) -> Json:
        role = self.find_role(guid)
        if role is None:
            raise ArmError(
                404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist."
            )
        return self.definition_doc(scope, role)

    # --- role assignments ---------------------------------------------------------------------------------------------
    def list_assignments(self, scope: str, query: str) -> list[Json]:
        at_scope = "atscope()" in query.lower()
        principal = {k.lower(): v for k, v in _FILTER.findall(query)}.get("principalid")
        assigned = _ASSIGNED_TO.search(query)
        out = []
        for doc in self.arm.state.assignments.values():
            target = doc["properties"]["scope"]
            related = _covers(target, scope) if at_scope else _covers(target, scope) or _covers(scope, target)
            if not related:
                continue
            who = doc["properties"]["principalId"].lower()
            if principal and who != principal.lower():
                continue
            if assigned and who != assigned.group(1).lower():
                continue
            out.append(dict(doc))
        return sorted(out, key=lambda d: str(d["id"]).lower())

    def check_scope(self, scope: str) -> None:
        parts = [p for p in scope.split("/") if p]
        if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
            if self.arm.state.group(parts[1], parts[3]) is None:
                raise group_not_found(parts[3])
            rid = ids.parse(scope)
            if len(parts) >= 8 and rid is not None and self.arm.state.get(rid.top.id) is None:
                raise not_found("/".join((rid.namespace, rid.types[0])), rid.names[0], rid.group)

    def assignment(self, scope: str, name: str, req: Request) -> Response:
        assignment_id = f"{scope.rstrip('/')}/providers/{ASSIGNMENT}/{name}"
        existing = self.arm.state.assignments.get(ids.key(assignment_id))
        if req.method == "GET":
            if existing is None:
                raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
            return Response(200, dict(existing))
        if req.method == "DELETE":
            if existing is None:
                return Response(204)
            del self.arm.state.assignments[ids.key(assignment_id)]
            self.arm.state.save()
            return Response(200, dict(existing))
        if req.method != "PUT":
            raise ArmError(405, "MethodNotAllowed", f"The HTTP method '{req.method}' is not supported.")
        if not ids.is_guid(name):
            raise ArmError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
            )
        self.check_scope(scope)
        body = Validator(models_for("azure.mgmt.authorization", req.api_version)).clean(
            req.body, "RoleAssignmentCreateParameters"
        )
        props = body.get("properties", {})
        guid = str(props.get("roleDefinitionId", "")).rstrip("/").rsplit("/", 1)[-1]
        if self.find_role(guid) is None:
            raise ArmError(
                400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist."
            )
        principal = str(props.get("principalId", ""))
        if not ids.is_guid(principal):
            raise ArmError(400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment.")
        for other in self.arm.state.assignments.values():
            o = other["properties"]
            same_triple = (
                o["principalId"].lower() == principal.lower()
                and o["roleDefinitionId"].rsplit("/", 1)[-1].lower() == guid.lower()
                and o["scope"].lower() == scope.lower()
            )
            if other is existing and not same_triple:
                raise ArmError(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            if same_triple:
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        stamp = now()
        caller = self.arm.caller
        doc: Json = {
            "id": assignment_id,
            "name": name,
            "type": ASSIGNMENT,
            "properties": {
                "roleDefinitionId": f"{_subscription_prefix(scope)}/providers/{DEFINITION}/{guid}",
                "principalId": principal,
                "principalType": props.get("principalType") or self.principal_type(principal),
                "scope": scope,
                "condition": props.get("condition"),
                "conditionVersion": props.get("conditionVersion"),
                "description": props.get("description"),
                "createdOn": stamp,
                "updatedOn": stamp,
                "createdBy": caller,
                "updatedBy": caller,
                "delegatedManagedIdentityResourceId": None,
            },
        }
        self.arm.state.assignments[ids.key(assignment_id)] = doc
        self.arm.state.save()
        return Response(201, dict(doc))

    def principal_type(self, principal: str) -> str:
        """Managed identities the double created are service principals; anything else is taken for a user."""
        for doc in self.arm.state.resources.values():
            if str((doc.get("identity") or {}).get("principalId", "")).lower() == principal.lower():
                return "ServicePrincipal"
        return "User"
