#!/usr/bin/env python3
"""The real AWX (testbed.awx, from AWX's sources; receptor replaced by its stand-in): what it costs to run
godot-fleet from job templates.

- start: --starts warm starts (the cached venv and migrated database; a cold start builds them first and is
  reported once, when this run had to: `rm -rf .cache/awx` before it to measure one) until the API answers with
  capacity, then a stop; the memory of all its processes (summed RSS and PSS) once started;
- configure: configure-awx.yml against it, the first run (everything created) and --runs re-runs (nothing changes);
- job: the deploy hosts job template into a systemd container with sshd: launch -> `successful` as seen through
  the API, the first run (a fresh deploy) and --runs re-runs (nothing to change), with AWX's own `elapsed`;
- memory once the jobs ran.

    python -m bench.awx [--starts 3] [--runs 3]

Needs `make ee` and the AWX sources (GF_AWX_SOURCES). Prints tables and writes bench/results/awx.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import begin, fmt, log, median, result_document, rounded, table, write_results
from testbed import ROOT, demo, serve_files
from testbed.awx import LocalAwx, local_awx
from testbed.awx_fleet import PREFIX, Fleet, hosts_answers
from testbed.awx_job import ee_image
from testbed.awx_sources import sources

HOST, PORTS = "gf-bench-awx-host", [13691, 13692]


def mib(value: int) -> float:
    return round(value / 2**20, 1)


def memory(awx: LocalAwx) -> dict[str, Any]:
    return {
        "rss_mib": mib(awx.rss_bytes()),
        "pss_mib": mib(awx.pss_bytes()),
        "rss_mib_by_service": {k: mib(v) for k, v in awx.rss_by_service().items()},
    }


def timed_configure(fleet: Fleet) -> dict[str, Any]:
    started = time.monotonic()
    result = fleet.configure()
    if not result.ok:
        raise RuntimeError(f"configure-awx.yml failed: {result}")
    return {"seconds": round(time.monotonic() - started, 2), "changed": result.changed}


def timed_job(awx: LocalAwx, answers: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    job = awx.launch("job_templates", f"{PREFIX} deploy hosts", answers)
    seconds = time.monotonic() - started
    if job["status"] != "successful":
        raise RuntimeError(f"deploy hosts ended {job['status']}: {awx.stdout(job)[-3000:]}")
    return {"seconds": round(seconds, 2), "awx_elapsed": job["elapsed"]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=3, help="warm starts to time")
    parser.add_argument("--runs", type=int, default=3, help="re-runs of configure-awx.yml and of the job")
    args = parser.parse_args(argv)
    started, git, machine = begin()
    t_start = time.monotonic()
    sources()
    image = ee_image()
    failures: list[str] = []
    starts: list[dict[str, Any]] = []
    cold: float | None = None
    for i in range(args.starts):
        with local_awx(image) as awx:
            starts.append({"seconds": round(awx.start_seconds, 2), "cold": awx.cold, "phases": awx.phases,
                           **memory(awx)})  # fmt: skip
            cold = awx.cold_start_seconds if awx.cold else cold
        starts[-1]["stop_seconds"] = round(awx.stop_seconds, 2)
        log(f"start {i + 1}: {starts[-1]['seconds']} s ({'cold' if awx.cold else 'warm'}), RSS {starts[-1]['rss_mib']}")
    configure: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    after: dict[str, Any] = {}
    with local_awx(image) as awx, tempfile.TemporaryDirectory(prefix="gf-bench-awx.") as keys:
        fleet = Fleet.prepare(awx, Path(keys))
        try:
            for i in range(1 + args.runs):
                configure.append(timed_configure(fleet))
                log(f"configure run {i + 1}: {configure[-1]}")
            fleet.add_game_host(HOST)
            with serve_files(ROOT / "dist") as served:
                answers = hosts_answers(served, PORTS)
                for i in range(1 + args.runs):
                    jobs.append(timed_job(awx, answers))
                    log(f"deploy hosts job {i + 1}: {jobs[-1]}")
                demo.assert_rooms_serve_clients(PORTS)
            after = memory(awx)
        except (RuntimeError, AssertionError) as error:
            failures.append(str(error))
        finally:
            fleet.remove_hosts()
    if configure[1:] and any(run["changed"] for run in configure[1:]):
        failures.append(f"a configure-awx.yml re-run changed something: {configure}")
    warm = [s["seconds"] for s in starts if not s["cold"]]
    figures = {
        "cold_start_s": rounded(cold, 1),
        "warm_start_s_median": rounded(median(warm), 2),
        "stop_s_median": rounded(median(s["stop_seconds"] for s in starts), 2),
        "rss_mib_started": starts[-1]["rss_mib"] if starts else None,
        "pss_mib_started": starts[-1]["pss_mib"] if starts else None,
        "configure_first_s": configure[0]["seconds"] if configure else None,
        "configure_rerun_s_median": rounded(median(r["seconds"] for r in configure[1:]), 2),
        "job_first_s": jobs[0]["seconds"] if jobs else None,
        "job_rerun_s_median": rounded(median(j["seconds"] for j in jobs[1:]), 2),
        "job_rerun_awx_elapsed_s_median": rounded(median(j["awx_elapsed"] for j in jobs[1:]), 2),
        "rss_mib_after_jobs": after.get("rss_mib"),
        "pss_mib_after_jobs": after.get("pss_mib"),
    }
    print()
    print(table(["figure", "value"], [[k, fmt(v)] for k, v in figures.items()]))
    document = result_document(
        "awx", started, t_start, git, machine, {"starts": args.starts, "runs": args.runs, "image": image}, failures,
        figures=figures, starts=starts, configure=configure, jobs=jobs, memory_after_jobs=after,
    )  # fmt: skip
    print(f"\nwritten: {write_results('awx', document)}")
    for failure in failures:
        log(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
