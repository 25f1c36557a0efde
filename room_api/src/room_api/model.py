"""The room record, room names and the errors every backend raises (mapped to HTTP statuses by the handlers)."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

RoomStatus = Literal["starting", "running", "stopping"]

#: 3-32 characters: lowercase letters, digits and inner hyphens (safe as a DNS label, a container name,
#: an ECS startedBy value and a DynamoDB key).
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$")
NAME_RULES = "3-32 characters: lowercase letters a-z, digits and hyphens, starting and ending with a letter or digit"
#: Page sizes of GET /get_servers.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100

_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l/1/o/0: names are read aloud and typed


def random_name() -> str:
    """A random room name (`room-` + 8 characters, 40 bits): callers retry on the rare collision."""
    return "room-" + "".join(secrets.choice(_ALPHABET) for _position in range(8))


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or "--" in name:
        raise BadRequest("invalid_name", f"invalid room name {str(name)[:64]!r}: {NAME_RULES}, no '--'")
    return name


@dataclass(frozen=True)
class Room:
    name: str
    ip: str | None  # public address clients connect to; None until the runtime reports one
    port: int
    status: RoomStatus
    build_version: str
    created_at: str  # ISO 8601 UTC, seconds precision, e.g. 2026-11-21T10:00:00Z

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Page:
    rooms: list[Room]
    next_page_token: str | None  # opaque; None on the last page


class RoomApiError(Exception):
    """An error the API answers with `status` and `{"error": code, "message": message}`."""

    status = 500

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadRequest(RoomApiError):
    status = 400


class Unauthorized(RoomApiError):
    status = 401


class NotFound(RoomApiError):
    status = 404


class NameTaken(RoomApiError):
    status = 409


class CapacityReached(RoomApiError):
    status = 429


class StartFailed(RoomApiError):
    status = 503
