"""The double's state: resource groups, resources, role assignments, long-running operations, a request log.

Back-references (a subnet's ipConfigurations, a NIC's virtualMachine, ...) are never stored: they are derived from
the forward references at read time, so a later PUT of the referenced resource cannot lose them.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import ids

Json = dict[str, Any]

LOG_LIMIT = 5000


class State:
    def __init__(self, path: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.path = path
        self.groups: dict[str, Json] = {}
        self.resources: dict[str, Json] = {}
        self.assignments: dict[str, Json] = {}
        self.operations: dict[str, Json] = {}
        self.requests: list[Json] = []
        if path is not None and path.exists():
            self.load(path)

    # --- persistence -------------------------------------------------------------------------------------------
    def snapshot(self) -> Json:
        with self.lock:
            return copy.deepcopy({"groups": self.groups, "resources": self.resources, "assignments": self.assignments})

    def load(self, path: Path) -> None:
        data = json.loads(path.read_text())
        with self.lock:
            self.groups = data.get("groups", {})
            self.resources = data.get("resources", {})
            self.assignments = data.get("assignments", {})

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def reset(self) -> None:
        with self.lock:
            self.groups.clear()
            self.resources.clear()
            self.assignments.clear()
            self.operations.clear()
            self.requests.clear()
            self.save()

    # --- resources ---------------------------------------------------------------------------------------------
    def group(self, subscription: str, name: str) -> Json | None:
        return self.groups.get(ids.key(ids.group_id(subscription, name)))

    def get(self, resource_id: str) -> Json | None:
        return self.resources.get(ids.key(resource_id))

    def put(self, doc: Json) -> None:
        self.resources[ids.key(doc["id"])] = doc

    def delete_tree(self, resource_id: str) -> None:
        """Delete a resource with its child resources and the role assignments at or below it."""
        prefix = ids.key(resource_id)
        for table in (self.resources, self.assignments):
            for k in [k for k in table if k == prefix or k.startswith(prefix + "/")]:
                del table[k]

    def of_type(self, type_name: str) -> list[Json]:
        lowered = type_name.lower()
        return [doc for doc in self.resources.values() if str(doc.get("type", "")).lower() == lowered]

    # --- long-running operations -------------------------------------------------------------------------------
    def new_operation(self, kind: str, resource_id: str, delay: float, result: Json | None = None) -> str:
        op_id = str(uuid.uuid4())
        self.operations[op_id] = {
            "kind": kind,
            "resourceId": resource_id,
            "startTime": time.time(),
            "doneAt": time.time() + delay,
            "result": result,
        }
        return op_id

    def operation(self, op_id: str) -> Json | None:
        return self.operations.get(op_id.lower()) or self.operations.get(op_id)

    # --- request log -------------------------------------------------------------------------------------------
    def log(self, entry: Json) -> None:
        with self.lock:
            self.requests.append(entry)
            del self.requests[:-LOG_LIMIT]
