"""The interface every room backend implements. Contract tests (tests/room_api/) run against each backend."""

from __future__ import annotations

from typing import Protocol

from room_api.model import Page, Room


class Backend(Protocol):
    #: "local" or "aws" (reported by GET /health).
    kind: str
    #: The build version new rooms run (reported on each room).
    build_version: str

    def create(self, name: str) -> Room:
        """Start a room called `name` (already validated). Exactly one of concurrent creates of one name wins:
        the others raise NameTaken. Raises CapacityReached when the room limit is reached, StartFailed when the
        runtime cannot start it (then no registry row is left behind)."""

    def get(self, name: str) -> Room | None:
        """One room by key (no scan), with its status/address refreshed from the runtime when still starting."""

    def list(self, limit: int, page_token: str | None) -> Page:
        """One page of rooms, oldest first, read through a key/index (no scan); BadRequest on a bad token."""

    def stop(self, name: str) -> Room:
        """Ask the runtime to stop the room; NotFound if there is none. The registry row goes when the runtime
        reports the room stopped (cleanup), so the returned room has status "stopping"."""

    def reap(self, name: str, runtime_id: str) -> bool:
        """Cleanup: the runtime says the room `name` with runtime id `runtime_id` (container id / task ARN)
        stopped. Removes its row only if it still belongs to that runtime id; True if a row was removed."""
