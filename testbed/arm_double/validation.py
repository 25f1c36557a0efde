"""Request-body validation driven by the Azure SDK's own msrest models.

Each SDK model class carries `_attribute_map` (python name -> JSON key, possibly flattened like
`properties.securityRules`, and a type such as `[SecurityRule]`) and `_validation` (`readonly`, `required`,
length/range/pattern constraints). Walking a request body against these gives what ARM does:

* an unknown member -> 400 InvalidRequestContent ("Could not find member ..."),
* a value of the wrong JSON type -> 400 InvalidRequestContent ("Error converting value ..."),
* a read-only member sent by the client -> silently dropped,
* a required member missing, an enum value outside the enum, a constraint broken -> 400 InvalidParameter,
* enum values are matched case-insensitively and stored in their canonical spelling, member names too.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .errors import ArmError, invalid_content, invalid_parameter

# Attributes whose SDK enum lags behind the service (ARM accepts values the enum does not list): checked elsewhere.
OPEN_ENUMS = frozenset({"vm_size", "location"})

_BASIC = {"str", "int", "long", "bool", "float", "iso-8601", "rfc-1123", "base64", "bytearray", "object", "date"}
_BASIC |= {"duration", "unix-time", "time", "decimal"}


@dataclass(frozen=True)
class Field:
    attr: str
    type_name: str
    readonly: bool
    required: bool
    constraints: dict[str, Any]
    enum: type[enum.Enum] | None


Tree = dict[str, "Field | Tree"]


def _split_key(key: str) -> list[str]:
    return [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]


def _enum_for(cls: type, attr: str, models: ModuleType) -> type[enum.Enum] | None:
    try:
        parameter = inspect.signature(cls).parameters.get(attr)
    except (TypeError, ValueError):
        return None
    if parameter is None:
        return None
    for name in re.findall(r"_models\.(\w+)", str(parameter.annotation)):
        candidate = getattr(models, name, None)
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


@functools.cache
def _tree(cls: type, models: ModuleType) -> tuple[Tree, bool]:
    """The JSON shape of a model: nested dict of member name -> Field; and whether extra members are allowed."""
    tree: Tree = {}
    open_ended = False
    validation: dict[str, dict[str, Any]] = getattr(cls, "_validation", {}) or {}
    for attr, info in cls._attribute_map.items():  # type: ignore[attr-defined]
        if info["key"] == "":
            open_ended = True  # `additional_properties`
            continue
        parts = _split_key(info["key"])
        node: Tree = tree
        for part in parts[:-1]:
            sub = node.setdefault(part, {})
            assert isinstance(sub, dict)
            node = sub
        rules = validation.get(attr, {})
        constraints = {k: v for k, v in rules.items() if k not in {"readonly", "required", "constant"}}
        enum_cls = None if attr in OPEN_ENUMS else _enum_for(cls, attr, models)
        node[parts[-1]] = Field(
            attr, info["type"], bool(rules.get("readonly")), bool(rules.get("required")), constraints, enum_cls
        )
    return tree, open_ended


def _lookup(tree: Tree, name: str) -> tuple[str, Field | Tree] | None:
    """JSON.NET (and so ARM) matches member names case-insensitively."""
    if name in tree:
        return name, tree[name]
    lowered = name.lower()
    for k, v in tree.items():
        if k.lower() == lowered:
            return k, v
    return None


class Validator:
    """Cleans request bodies against the models of one SDK package (`azure.mgmt.network.models`, ...)."""

    def __init__(self, models: ModuleType) -> None:
        self.models = models

    def clean(self, body: Any, model: str, *, partial: bool = False) -> dict[str, Any]:
        """The body as ARM would take it, or ArmError. `partial` (PATCH): required members are not required."""
        if not isinstance(body, dict):
            raise invalid_content("The request content was invalid and could not be deserialized: expected an object.")
        cleaned = self._value(body, model, "", partial)
        assert isinstance(cleaned, dict)
        return cleaned

    def _class(self, name: str) -> type | None:
        candidate = getattr(self.models, name, None)
        return candidate if isinstance(candidate, type) else None

    def _value(self, value: Any, type_name: str, path: str, partial: bool) -> Any:
        if type_name.startswith("[") and type_name.endswith("]"):
            if not isinstance(value, list):
                raise _conversion(value, type_name, path)
            return [self._value(v, type_name[1:-1], f"{path}[{i}]", partial) for i, v in enumerate(value)]
        if type_name.startswith("{") and type_name.endswith("}"):
            if not isinstance(value, dict):
                raise _conversion(value, type_name, path)
            return {k: self._value(v, type_name[1:-1], f"{path}.{k}", partial) for k, v in value.items()}
        if type_name in _BASIC:
            return _basic(value, type_name, path)
        cls = self._class(type_name)
        if cls is None:
            return value
        if issubclass(cls, enum.Enum):
            return _enum(value, cls, path)
        return self._model(value, cls, path, partial)

    def _model(self, value: Any, cls: type, path: str, partial: bool) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _conversion(value, cls.__name__, path)
        cls = self._subtype(cls, value)
        tree, open_ended = _tree(cls, self.models)
        out = self._object(value, tree, open_ended, cls, path, partial)
        if not partial:
            self._required(out, tree, path)
        return out

    def _subtype(self, cls: type, value: dict[str, Any]) -> type:
        subtypes: dict[str, dict[str, str]] = getattr(cls, "_subtype_map", None) or {}
        for attr, mapping in subtypes.items():
            key = cls._attribute_map[attr]["key"]  # type: ignore[attr-defined]
            chosen = mapping.get(str(value.get(key)))
            sub = self._class(chosen) if chosen else None
            if sub is not None:
                return sub
        return cls

    def _object(
        self, value: dict[str, Any], tree: Tree, open_ended: bool, cls: type, path: str, partial: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item in value.items():
            found = _lookup(tree, name)
            member_path = f"{path}.{name}" if path else name
            if found is None:
                if open_ended:
                    out[name] = item
                    continue
                raise invalid_content(
                    f"Could not find member '{name}' on object of type '{cls.__name__}'. Path '{member_path}'."
                )
            canonical, node = found
            if item is None:
                continue
            if isinstance(node, dict):
                if not isinstance(item, dict):
                    raise _conversion(item, "object", member_path)
                out[canonical] = self._object(item, node, False, cls, member_path, partial)
                continue
            if node.readonly:
                continue
            cleaned = (
                _enum(item, node.enum, member_path)
                if node.enum is not None and node.type_name == "str"
                else self._value(item, node.type_name, member_path, partial)
            )
            _constraints(cleaned, node, member_path)
            out[canonical] = cleaned
        return out

    def _required(self, value: dict[str, Any], tree: Tree, path: str) -> None:
        for name, node in tree.items():
            member_path = f"{path}.{name}" if path else name
            if isinstance(node, dict):
                sub = value.get(name)
                self._required(sub if isinstance(sub, dict) else {}, node, member_path)
            elif node.required and not node.readonly and name not in value:
                raise invalid_parameter(f"Required parameter '{node.attr}' is missing (null).", target=member_path)


def _conversion(value: Any, type_name: str, path: str) -> ArmError:
    shown = str(value)[:60]
    return invalid_content(f"Error converting value \"{shown}\" to type '{type_name}'. Path '{path}'.")


def _basic(value: Any, type_name: str, path: str) -> Any:
    if type_name in {"int", "long", "unix-time"}:
        if isinstance(value, bool):
            raise _conversion(value, type_name, path)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)  # JSON.NET converts numeric strings
        raise _conversion(value, type_name, path)
    if type_name in {"float", "decimal"}:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise _conversion(value, type_name, path)
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise _conversion(value, type_name, path)
    if type_name == "object":
        return value
    if isinstance(value, (dict, list)):
        raise _conversion(value, type_name, path)
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _enum(value: Any, cls: type[enum.Enum], path: str) -> str:
    allowed = [str(m.value) for m in cls]
    text = str(value)
    for candidate in allowed:
        if candidate.lower() == text.lower():
            return candidate
    name = path.rsplit(".", 1)[-1]
    raise invalid_parameter(
        f"The value '{text}' of parameter '{name}' is not valid. Allowed values are: {', '.join(allowed)}.",
        target=path,
    )


def _constraints(value: Any, field: Field, path: str) -> None:
    c = field.constraints
    problem = None
    if isinstance(value, str):
        if "max_length" in c and len(value) > c["max_length"]:
            problem = f"at most {c['max_length']} characters"
        elif "min_length" in c and len(value) < c["min_length"]:
            problem = f"at least {c['min_length']} characters"
        elif "pattern" in c and not re.search(c["pattern"], value):
            problem = f"matching '{c['pattern']}'"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "maximum" in c and value > c["maximum"]:
            problem = f"at most {c['maximum']}"
        elif "minimum" in c and value < c["minimum"]:
            problem = f"at least {c['minimum']}"
    elif isinstance(value, list):
        if "max_items" in c and len(value) > c["max_items"]:
            problem = f"at most {c['max_items']} items"
        elif "min_items" in c and len(value) < c["min_items"]:
            problem = f"at least {c['min_items']} items"
    if problem:
        raise invalid_parameter(f"The value of parameter '{path}' is invalid: expected {problem}.", target=path)
