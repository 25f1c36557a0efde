"""ARM-shaped errors: `{"error": {"code": ..., "message": ...}}` with the status code ARM uses."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class ArmError(Exception):
    """Raised anywhere in a handler; the server turns it into the error response."""

    def __init__(
        self, status: int, code: str, message: str, *, target: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> Json:
        error: Json = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


def not_found(type_name: str, name: str, group: str | None) -> ArmError:
    where = f" under resource group '{group}'" if group else ""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_name}/{name}'{where} was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def group_not_found(group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def invalid_content(message: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent", message)


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)
