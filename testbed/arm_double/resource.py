"""What every emulated resource type shares: validation against the SDK model, the stored document, its views."""

from __future__ import annotations

import copy
import datetime
import importlib
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from . import ids
from .errors import ArmError
from .validation import Validator

if TYPE_CHECKING:
    from .arm import Arm

Json = dict[str, Any]

# Stored documents keep what ARM never returns (customData, the power state, ...) under this key.
INTERNAL = "_double"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]  # keys lower-cased (ARM query parameter names are case-insensitive)
    headers: dict[str, str]  # keys lower-cased
    body: Any = None

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def now() -> str:
    """ARM's timestamp format: seven fractional digits and a Z."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def public(doc: Json) -> Json:
    """A deep copy without the double's internal fields."""
    out = copy.deepcopy(doc)
    out.pop(INTERNAL, None)
    return out


def internal(doc: Json) -> Json:
    value: Json = doc.setdefault(INTERNAL, {})
    return value


_VERSION_DIR = re.compile(r"^v(\d{4})_(\d\d)_(\d\d)(_preview)?$")


@cache
def sdk_api_versions(package: str) -> tuple[str, ...]:
    """The api-versions a multi-API SDK package ships models for (`azure.mgmt.compute` -> 2015-06-15 ...)."""
    module = importlib.import_module(package)
    versions = []
    for path in module.__path__:
        for entry in Path(path).iterdir():
            match = _VERSION_DIR.match(entry.name)
            if match:
                versions.append("-".join(match.group(1, 2, 3)) + ("-preview" if match.group(4) else ""))
    return tuple(sorted(versions))


@cache
def models_for(package: str, api_version: str) -> ModuleType:
    """The models of `package` for `api_version`: that version's own, else the nearest older one, else the newest."""
    if package.endswith(".models"):
        return importlib.import_module(package)
    versions = sdk_api_versions(package)
    candidates = [v for v in versions if v <= api_version] or list(versions)
    chosen = api_version if api_version in versions else candidates[-1]
    return importlib.import_module(f"{package}.v{chosen.replace('-', '_')}.models")


class ResourceType:
    """One ARM resource type. Subclasses override build/view/check_delete/action."""

    type: ClassVar[str]  # "Microsoft.Network/networkSecurityGroups"
    models: ClassVar[str]  # "azure.mgmt.network.models" (one API) or "azure.mgmt.compute" (multi-API root)
    model: ClassVar[str]  # request body model of PUT
    patch_model: ClassVar[str | None] = None  # request body model of PATCH (None: PATCH not supported)
    tracked: ClassVar[bool] = True  # a top-level resource with a location
    put_lro: ClassVar[str] = "async"  # "async": 201/200 + Azure-AsyncOperation; "location": 202 + Location; "sync"
    delete_lro: ClassVar[str] = "async"  # "async": 202 + Azure-AsyncOperation + Location; "sync": 200
    inline_in: ClassVar[str | None] = None  # child kept inline in the parent's `properties.<inline_in>` list
    api_versions: ClassVar[tuple[str, ...]] = ()  # empty: the namespace's versions
    child_collections: ClassVar[tuple[str, ...]] = ()  # child types listed with GET <resource>/<child type>

    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    @property
    def namespace(self) -> str:
        return self.type.split("/")[0]

    @property
    def short_type(self) -> str:
        return self.type.split("/", 1)[1]

    def validator(self, api_version: str) -> Validator:
        return Validator(models_for(self.models, api_version))

    def clean(self, body: Any, api_version: str, *, patch: bool = False) -> Json:
        model = self.patch_model if patch else self.model
        assert model is not None
        return self.validator(api_version).clean(body, model, partial=patch)

    # --- hooks ---------------------------------------------------------------------------------------------------
    def build(self, rid: ids.ResourceId, body: Json, existing: Json | None, req: Request) -> Json:
        """The stored document for a PUT of `body` (already cleaned) over `existing`."""
        doc: Json = {"id": rid.id, "name": rid.name, "type": self.type}
        for member in ("location", "tags", "sku", "kind", "zones", "identity", "plan", "extendedLocation"):
            if member in body:
                doc[member] = body[member]
        properties = dict(body.get("properties", {}))
        properties["provisioningState"] = "Succeeded"
        doc["properties"] = properties
        return doc

    def patch(self, rid: ids.ResourceId, body: Json, existing: Json, req: Request) -> Json:
        merged = copy.deepcopy(existing)
        for member, value in body.items():
            if member == "properties":
                merged.setdefault("properties", {}).update(value)
            else:
                merged[member] = value
        return merged

    def view(self, doc: Json, req: Request | None = None) -> Json:
        """What GET returns: the stored document plus derived members (back-references, ...)."""
        return public(doc)

    def check_delete(self, rid: ids.ResourceId, doc: Json) -> None:
        """Raise ArmError when ARM would refuse to delete (still in use, ...)."""

    def deleted(self, rid: ids.ResourceId, doc: Json) -> None:
        """Side effects of a deletion (a VM's disks with deleteOption Delete, ...)."""

    def action(self, rid: ids.ResourceId, doc: Json, name: str, req: Request) -> Response:
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{self.short_type}/{name}' could not be found in the namespace "
            f"'{self.namespace}' for api version '{req.api_version}'.",
        )

    # --- helpers -------------------------------------------------------------------------------------------------
    def item_id(self, parent_id: str, name: str) -> str:
        return f"{parent_id}/{self.type.rsplit('/', 1)[1]}/{name}"
