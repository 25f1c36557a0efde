"""Runs the Molecule scenario of the godot_server role: real Godot rooms under systemd, real clients."""

from __future__ import annotations

import os
import subprocess
import sys

from testbed import ROOT

LOGS = ROOT / ".cache" / "logs"


def run_scenario(name: str) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"molecule-{name}.log"
    env = dict(
        os.environ,
        GF_ROOT=str(ROOT),
        GF_DEMO_VERSION=(ROOT / "dist" / "VERSION").read_text().strip(),
        GF_DEMO_RELEASE=(ROOT / "dist" / "RELEASE").read_text().strip(),
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
    )
    with log.open("w") as out:
        proc = subprocess.run(
            ["molecule", "test", "-s", name], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    text = log.read_text()
    if proc.returncode != 0:
        sys.stderr.write("\n".join(text.splitlines()[-200:]) + "\n")
    assert proc.returncode == 0, f"molecule test -s {name} failed (full log: {log})"
    assert "idempotence] Executed: Successful" in text, "the idempotence step did not run"


def test_default_scenario() -> None:
    run_scenario("default")
