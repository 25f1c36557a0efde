"""An Azure Resource Manager test double: see README.md beside this file."""

from __future__ import annotations

from .arm import Config
from .server import ArmDouble

__all__ = ["ArmDouble", "Config"]
