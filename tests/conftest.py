"""Shared pytest fixtures and paths."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.arm_double, tests.integration.cloud
sys.path.insert(0, str(ROOT / "roles" / "godot_server" / "library"))
sys.path.insert(0, str(ROOT / "tests" / "probe"))
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
