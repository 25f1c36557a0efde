"""How long the pytest part of `make test` takes with N workers side by side (pytest-xdist --dist loadfile), each
worker count run in turn in one invocation, with the wall time of every test module (from pytest's junit report).

    python -m bench.suite --workers 1 3 [--rounds 1]

Every run is the whole suite (tests/integration, tests/room_api, tests/unit but tests/unit/plugins, which
`make test` runs with ansible-test): about 15-25 minutes each on the 2-core development machine, so one round is
the default and a figure is one run, not a median. Prints a table, writes bench/results/suite.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from bench.common import JsonDict, begin, fmt, log, result_document, table, write_results
from testbed import ROOT

SUITE = ["tests/integration", "tests/room_api", "tests/unit", "--ignore=tests/unit/plugins"]


def module_seconds(report: Path) -> dict[str, float]:
    """Seconds per test module (setup + call + teardown of its tests) from a junit XML report."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")[-1] or case.get("file", "?")
        seconds[module] += float(case.get("time", 0))
    return dict(seconds)


def run_suite(workers: int) -> JsonDict:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        parallel = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else ["-p", "no:xdist"]
        argv = [sys.executable, "-m", "pytest", "-q", *parallel, f"--junit-xml={report}", *SUITE]
        log(f"pytest with {workers} worker(s)")
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
        modules = module_seconds(report) if report.exists() else {}
    return {"workers": workers, "wall_s": round(wall, 1), "passed": proc.returncode == 0, "summary": summary,
            "module_s": {k: round(v, 1) for k, v in sorted(modules.items(), key=lambda kv: -kv[1])}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3], help="worker counts to compare (1: serial)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each worker count, alternating")
    args = parser.parse_args()
    started, git, machine = begin()
    t_start = time.perf_counter()
    runs = [run_suite(w) for _ in range(args.rounds) for w in args.workers]
    failures = [f"{r['workers']} worker(s): {r['summary']}" for r in runs if not r["passed"]]
    serial = next((r["wall_s"] for r in runs if r["workers"] == 1), None)
    rows = [[str(r["workers"]), fmt(r["wall_s"] / 60, 1), fmt(r["wall_s"] / serial if serial else None), r["summary"]]
            for r in runs]  # fmt: skip
    print(table(["workers", "wall min", "ratio to serial", "result"], rows))
    for r in runs:
        top = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in list(r["module_s"].items())[:6])
        print(f"{r['workers']} worker(s), longest modules (min): {top}")
    config: JsonDict = {"workers": args.workers, "rounds": args.rounds, "suite": SUITE}
    path = write_results("suite", result_document("suite", started, t_start, git, machine, config, failures, runs=runs))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
