#!/usr/bin/env python3
"""Packaging benchmark: how long `build-game.yml` (the godot_build role) takes for a game that is not the demo.

Each run exports tests/games/beacon (a fresh copy, no Godot import cache) into an empty destination with the
engine in the godot image - the `exported` artifact alone, then `pack` + `exported` + `portable` - and runs the
playbook again on the unchanged inputs (the recap must say changed=0). The export task's own duration (the engine
import + export + packing) is reported beside the playbook's wall time.

    python -m bench.build_game [--runs 3]

Prints a table and writes bench/results/build_game.json (medians, raw samples, machine information).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    JsonDict,
    Run,
    begin,
    fmt,
    log,
    median,
    result_document,
    run_playbook,
    table,
    write_results,
)
from testbed import ROOT

GAME = ROOT / "tests" / "games" / "beacon"
IMAGE = "localhost/godot-fleet/godot:forky"
VARIANTS = {"exported": ["exported"], "pack+exported+portable": ["pack", "exported", "portable"]}


def build(work: Path, dest: Path, artifacts: list[str]) -> Run:
    values = {
        "godot_build_project": str(work / "beacon"),
        "godot_build_dest": str(dest),
        "godot_build_container_image": IMAGE,
        "godot_build_engine": "/usr/bin/godot",
        "godot_build_export_template": "/usr/bin/godot-template-release",
        "godot_build_artifacts": artifacts,
    }
    inventory = work / "vars.json"  # localhost with the build variables
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                     "ansible_python_interpreter": sys.executable, **values}}}}))  # fmt: skip
    return run_playbook("build-game.yml", inventory=inventory)


def export_seconds(run: Run) -> float | None:
    return next((t.seconds for t in run.executed if t.action.endswith("godot_export")), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started, git, machine = begin()
    t_start = time.perf_counter()
    samples: dict[str, dict[str, list[float]]] = {}
    failures: list[str] = []
    for variant, artifacts in VARIANTS.items():
        walls, exports, noops = [], [], []
        for index in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="gf-bench-build-") as tmp:
                work = Path(tmp)
                shutil.copytree(GAME, work / "beacon", ignore=shutil.ignore_patterns(".godot"))
                log(f"{variant}: build {index + 1}/{args.runs}")
                first = build(work, work / "dist", artifacts)
                again = build(work, work / "dist", artifacts)
                if first.rc != 0 or again.rc != 0 or again.changed != 0:
                    failures.append(f"{variant} run {index + 1}: {first.error or again.error or again.stats}")
                    continue
                walls.append(first.wall_s)
                exports.append(export_seconds(first) or 0.0)
                noops.append(again.wall_s)
        samples[variant] = {"build_s": walls, "export_task_s": exports, "noop_s": noops}
    rows = [
        [variant, fmt(median(s["build_s"])), fmt(median(s["export_task_s"])), fmt(median(s["noop_s"])),
         str(len(s["build_s"]))]
        for variant, s in samples.items()
    ]  # fmt: skip
    print(table(["artifacts", "build (s)", "export task (s)", "no-op re-run (s)", "runs"], rows))
    medians: JsonDict = {v: {k: median(x) for k, x in s.items()} for v, s in samples.items()}
    document = result_document(
        "build_game", started, t_start, git, machine, {"runs": args.runs, "image": IMAGE}, failures,
        medians=medians, samples=samples,
    )  # fmt: skip
    log(f"wrote {write_results('build_game', document)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
