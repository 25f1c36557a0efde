"""Azure resource ids: parsing and building. ARM compares ids case-insensitively; the double keys by `key()`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def key(resource_id: str) -> str:
    return resource_id.rstrip("/").lower()


@dataclass(frozen=True)
class ResourceId:
    """`/subscriptions/S/resourceGroups/G/providers/NS/t1/n1[/t2/n2...]`."""

    subscription: str
    group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def id(self) -> str:
        path = "/".join(f"{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.group}/providers/{self.namespace}/{path}"

    @property
    def type(self) -> str:
        """`Microsoft.Network/virtualNetworks/subnets`."""
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def group_id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.group}"

    @property
    def top(self) -> ResourceId:
        return ResourceId(self.subscription, self.group, self.namespace, self.types[:1], self.names[:1])

    @property
    def parent(self) -> ResourceId | None:
        if len(self.types) == 1:
            return None
        return ResourceId(self.subscription, self.group, self.namespace, self.types[:-1], self.names[:-1])

    def child(self, child_type: str, name: str) -> ResourceId:
        return ResourceId(self.subscription, self.group, self.namespace, (*self.types, child_type), (*self.names, name))

    def key(self) -> str:
        return key(self.id)


def parse(resource_id: str) -> ResourceId | None:
    """Parse a resource id in a resource group; None for anything else (ids of groups, subscriptions, ...)."""
    parts = [p for p in resource_id.strip().split("/") if p]
    if len(parts) < 8 or len(parts) % 2:
        return None
    if parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups" or parts[4].lower() != "providers":
        return None
    rest = parts[6:]
    return ResourceId(parts[1], parts[3], parts[5], tuple(rest[0::2]), tuple(rest[1::2]))


def group_id(subscription: str, group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}"
