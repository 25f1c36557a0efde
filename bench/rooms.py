#!/usr/bin/env python3
"""Rooms benchmark: what N Godot rooms on ONE host cost, and how many rooms this machine holds.

One local systemd container (Debian 12, like `make demo`) with a UDP port range published on 127.0.0.1
(host 40000+i -> room port 12000+i). For each N in --rooms (default 1, 8, 32), deploy-hosts.yml is run with N
ports and then:

- ready: `systemctl restart godot-server.target` (all rooms are PartOf it), then probe rounds with a real ENet
  client (testbed/enet_probe.py, 0.5 s rounds) until every room answered; the figure is the time from the
  restart command until the last room's echo arrived (--runs times);
- memory: PSS and RSS of each room's MainPID (/proc/PID/smaps_rollup);
- idle CPU: utime+stime of each room over --cpu-window seconds (/proc/PID/stat), in % of one core;
- latency: all rooms probed at once (--runs times): handshake and echo round trip distribution.

Then the capacity search: more rooms of the same unit template are started in steps (32, 64, 96, ...; one
`systemctl start` per step instead of the role's per-port loop, which costs about 2 round trips per room), and
each step must answer 3 probe rounds of all rooms at once, every room within --latency-limit (1 s). The search
stops at the first failing step or when the --search-budget (about 10 minutes) runs out.

    python -m bench.rooms [--runs 3] [--quick] [--rooms 1,8,32] [--no-search]

Prints tables and writes bench/results/rooms.json (medians, raw samples, machine info).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import (
    IMAGE,
    Artifacts,
    JsonDict,
    begin,
    busy_cores_since,
    fmt,
    host_cpu_times,
    log,
    median,
    mem_available_mib,
    percentile,
    podman_exec,
    remove_host,
    result_document,
    run_playbook,
    snapshot_artifacts,
    start_host,
    table,
    write_inventory,
    write_results,
)
from testbed.enet_probe import ProbeResult, probe_many

ROOM_PORT_BASE = 12000
HOST_PORT_BASE = 40000
SERVICE = "godot-server"
READY_ROUND_S = 0.5
READY_TIMEOUT_S = 120.0
CHECK_ROUNDS = 3
KIB_PER_MIB = 1024.0
MEM_RESERVE_MIB = 4096  # the capacity search stops before MemAvailable would drop below this

# Runs inside the container (python3 of Debian 12): MainPID of each room, memory, then CPU over a window.
MEASURE_SCRIPT = r"""
import json, os, subprocess, sys, time
service, window, ports = sys.argv[1], float(sys.argv[2]), sys.argv[3].split(",")
units = [f"{service}@{p}.service" for p in ports]
out = subprocess.run(["systemctl", "show", "-p", "Id", "-p", "MainPID", *units],
                     capture_output=True, text=True, check=True).stdout
pids = {}
for block in out.strip().split("\n\n"):
    kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    pids[kv["Id"].split("@", 1)[1].split(".")[0]] = int(kv.get("MainPID", "0"))
tck = os.sysconf("SC_CLK_TCK")
def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
rooms = {}
for port, pid in pids.items():
    room = {"port": int(port), "pid": pid}
    if pid:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Anonymous"):
                        room[key.lower() + "_kb"] = int(rest.split()[0])
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        room["threads"] = int(line.split()[1])
        except OSError as exc:
            room["error"] = str(exc)
    rooms[port] = room
t0 = time.monotonic()
c0 = {p: cpu_ticks(r["pid"]) for p, r in rooms.items() if r["pid"] and "error" not in r}
time.sleep(window)
t1 = time.monotonic()
for p, ticks in c0.items():
    try:
        rooms[p]["cpu_pct"] = round((cpu_ticks(rooms[p]["pid"]) - ticks) / tck / (t1 - t0) * 100.0, 3)
    except OSError as exc:
        rooms[p]["error"] = str(exc)
print(json.dumps({"window_s": t1 - t0, "rooms": list(rooms.values())}))
"""


def room_ports(n: int, start: int = 0) -> list[int]:
    return [ROOM_PORT_BASE + i for i in range(start, n)]


def targets(n: int) -> list[str]:
    return [f"127.0.0.1:{HOST_PORT_BASE + i}" for i in range(n)]


def units(ports: list[int]) -> list[str]:
    return [f"{SERVICE}@{p}.service" for p in ports]


def measure_resources(name: str, n: int, window: float) -> JsonDict:
    """Per-room memory and CPU over `window` seconds, plus the machine's CPU busy % over the same time."""
    ports = ",".join(str(p) for p in room_ports(n))
    cpu0 = host_cpu_times()
    proc = podman_exec(name, "python3", "-c", MEASURE_SCRIPT, SERVICE, str(window), ports, timeout=window + 300)
    data: JsonDict = json.loads(proc.stdout)
    data["host_cpu_busy_cores"] = busy_cores_since(cpu0)
    data["host_cpu_busy_pct_of_machine"] = round(data["host_cpu_busy_cores"] / (os.cpu_count() or 1) * 100.0, 2)
    data["loadavg"] = list(os.getloadavg())
    data["mem_available_mib"] = round(mem_available_mib())
    return data


def resource_summary(res: JsonDict) -> JsonDict:
    rooms = [r for r in res["rooms"] if r.get("pid") and "error" not in r]
    pss = [r["pss_kb"] / KIB_PER_MIB for r in rooms if "pss_kb" in r]
    rss = [r["rss_kb"] / KIB_PER_MIB for r in rooms if "rss_kb" in r]
    anon = [r.get("pss_anon_kb", 0) / KIB_PER_MIB for r in rooms]
    cpu = [r["cpu_pct"] for r in rooms if "cpu_pct" in r]
    threads = [r.get("threads", 0) for r in rooms]
    return {
        "rooms_measured": len(rooms),
        "rooms_missing": len(res["rooms"]) - len(rooms),
        "pss_mib_median": median(pss),
        "pss_mib_sum": round(sum(pss), 1),
        "pss_anon_mib_median": median(anon),
        "rss_mib_median": median(rss),
        "cpu_pct_per_room_median": median(cpu),
        "cpu_pct_per_room_mean": round(sum(cpu) / len(cpu), 3) if cpu else None,
        "cpu_pct_per_room_max": max(cpu) if cpu else None,
        "cpu_pct_rooms_sum": round(sum(cpu), 2),
        "threads_per_room_median": median(threads),
        "cpu_window_s": round(float(res["window_s"]), 2),
        "host_cpu_busy_cores": res["host_cpu_busy_cores"],
        # Everything else the machine ran meanwhile: other engineers, podman, the probe (in cores).
        "other_busy_cores": round(res["host_cpu_busy_cores"] - sum(cpu) / 100.0, 3),
        "mem_available_mib": res["mem_available_mib"],
        "loadavg": res["loadavg"],
    }


def wait_ready(tgts: list[str], t0: float, timeout: float = READY_TIMEOUT_S) -> dict[str, float | None]:
    """Probe rounds (fresh connects every READY_ROUND_S) until every target answered; seconds since t0 each."""
    ready: dict[str, float | None] = dict.fromkeys(tgts)
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        pending = [t for t in tgts if ready[t] is None]
        if not pending:
            break
        round_start = time.perf_counter()
        for t, r in zip(pending, probe_many(pending, timeout=READY_ROUND_S), strict=True):
            if r.ok and r.handshake_ms is not None and r.rtt_ms is not None:
                ready[t] = round_start + (r.handshake_ms + r.rtt_ms) / 1000.0 - t0
    return ready


def latency_stats(results: list[ProbeResult]) -> JsonDict:
    ok = [r for r in results if r.ok]
    hs = [r.handshake_ms for r in ok if r.handshake_ms is not None]
    rtt = [r.rtt_ms for r in ok if r.rtt_ms is not None]
    both = [(r.handshake_ms or 0.0) + (r.rtt_ms or 0.0) for r in ok]
    errors = sorted({r.error or "" for r in results if not r.ok})
    return {
        "probes": len(results),
        "failed": len(results) - len(ok),
        "handshake_ms_p50": median(hs),
        "handshake_ms_p95": percentile(hs, 95),
        "handshake_ms_max": max(hs) if hs else None,
        "rtt_ms_p50": median(rtt),
        "rtt_ms_max": max(rtt) if rtt else None,
        "handshake_plus_echo_ms_max": max(both) if both else None,
        "errors": errors,
    }


def failed_units(name: str) -> str:
    proc = podman_exec(
        name, "systemctl", "list-units", "--failed", "--plain", "--no-legend", f"{SERVICE}@*", check=False
    )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        return ""
    first = lines[0].split()[0]
    journal = podman_exec(name, "journalctl", "--no-pager", "-n", "8", "-o", "cat", "-u", first, check=False)
    return f"{len(lines)} failed units (e.g. {first}: {' | '.join(journal.stdout.strip().splitlines())})"


def measure_n(name: str, workdir: Path, artifacts: Artifacts, n: int, runs: int, window: float) -> JsonDict:
    """Deploy with N ports, then ready time, memory/CPU and latency."""
    out: JsonDict = {"n": n}
    inventory = write_inventory(workdir / f"inventory-{n}", name, artifacts, room_ports(n))
    log(f"N={n}: deploy-hosts.yml with {n} ports")
    deploy = run_playbook("deploy-hosts.yml", inventory=inventory)
    summary = deploy.summary()
    out["deploy"] = {k: v for k, v in summary.items() if k != "tasks"}
    out["deploy"]["slowest_tasks"] = sorted(
        ({"task": t["name"], "s": t["s"], "items": t["items"]} for t in summary["tasks"]),
        key=lambda t: float(t["s"]),
        reverse=True,
    )[:3]
    if deploy.rc != 0:
        raise RuntimeError(f"deploy with {n} ports failed (rc {deploy.rc}): {deploy.error}")

    tg = targets(n)
    out["ready"] = []
    for i in range(runs):
        log(f"N={n}: restart {i + 1}/{runs} of {SERVICE}.target, waiting for every room to answer")
        t0 = time.perf_counter()
        podman_exec(name, "systemctl", "restart", f"{SERVICE}.target")
        restart_cmd_s = time.perf_counter() - t0
        ready = wait_ready(tg, t0)
        values = [v for v in ready.values() if v is not None]
        out["ready"].append(
            {
                "restart_cmd_s": round(restart_cmd_s, 3),
                "all_ready_s": round(max(values), 3) if len(values) == n else None,
                "first_ready_s": round(min(values), 3) if values else None,
                "not_ready": [t for t, v in ready.items() if v is None],
                "per_room_s": {t: (round(v, 3) if v is not None else None) for t, v in ready.items()},
            }
        )
    time.sleep(3.0)  # let the start-up burst pass before measuring idle figures
    log(f"N={n}: memory and idle CPU over {window:g} s")
    res = measure_resources(name, n, window)
    out["resources_raw"] = res
    out["resources"] = resource_summary(res)

    log(f"N={n}: probing all rooms at once ({runs}x)")
    probes: list[ProbeResult] = []
    out["latency_raw"] = []
    for _ in range(runs):
        batch = probe_many(tg, timeout=5.0)
        probes += batch
        out["latency_raw"].append([asdict(p) for p in batch])
        time.sleep(0.5)
    out["latency"] = latency_stats(probes)
    ready_all = [r["all_ready_s"] for r in out["ready"] if r["all_ready_s"] is not None]
    out["ready_all_s_median"] = median(ready_all)
    out["ready_all_s_samples"] = [r["all_ready_s"] for r in out["ready"]]
    return out


def search(
    name: str, start_running: int, step: int, max_n: int, limit_s: float, budget_s: float, window: float
) -> JsonDict:
    """Steps N up until a step fails the check (every room answers within limit_s, CHECK_ROUNDS times)."""
    t_search = time.perf_counter()
    running = start_running
    steps: list[JsonDict] = []
    last_pass: int | None = None
    first_fail: int | None = None
    reason = ""
    n = step
    while n <= max_n:
        elapsed = time.perf_counter() - t_search
        # A step costs about: starting the rooms + settling + the CPU window + the checks.
        estimate = (steps[-1]["step_s"] if steps else 30.0) * 1.5
        if elapsed + estimate > budget_s:
            reason = f"time budget of {budget_s:g} s reached before N={n} (no failing step found)"
            break
        if n > running and steps:
            # Shared machine: never let the rooms eat the memory other people's work needs.
            per_room = float(steps[-1]["resources"]["pss_anon_mib_median"] or 64.0) * 1.5
            need = (n - running) * per_room + MEM_RESERVE_MIB
            if mem_available_mib() < need:
                reason = (
                    f"memory guard: N={n} would need about {need:.0f} MiB available "
                    f"(keeping {MEM_RESERVE_MIB} MiB for others), only {mem_available_mib():.0f} MiB are"
                )
                break
        t_step = time.perf_counter()
        rec: JsonDict = {"n": n}
        if n > running:
            log(f"search: starting rooms {running + 1}..{n}")
            t0 = time.perf_counter()
            proc = podman_exec(name, "systemctl", "start", *units(room_ports(n, running)), check=False, timeout=600)
            rec["start_cmd_s"] = round(time.perf_counter() - t0, 3)
            if proc.returncode != 0:
                rec["start_error"] = proc.stderr.strip()[-500:]
            ready = wait_ready(targets(n)[running:], t0)
            missing = [t for t, v in ready.items() if v is None]
            values = [v for v in ready.values() if v is not None]
            rec["new_rooms_all_ready_s"] = round(max(values), 3) if values and not missing else None
            running = n
            if missing:
                rec["result"] = "fail"
                why = failed_units(name)
                reason = (
                    f"N={n}: {len(missing)} of the new rooms never answered within {READY_TIMEOUT_S:g} s"
                    + (f"; {why}" if why else "")
                    + (f"; systemctl start: {rec['start_error']}" if "start_error" in rec else "")
                )
                first_fail = n
                rec["step_s"] = round(time.perf_counter() - t_step, 1)
                steps.append(rec)
                break
            time.sleep(5.0)  # let the start-up burst pass
        res = measure_resources(name, n, window)
        rec["resources"] = resource_summary(res)
        rounds: list[JsonDict] = []
        for _ in range(CHECK_ROUNDS):
            results = probe_many(targets(n), timeout=limit_s)
            stats = latency_stats(results)
            stats["failed_targets"] = [r.target for r in results if not r.ok][:20]
            rounds.append(stats)
            time.sleep(1.0)
        rec["rounds"] = rounds
        passed = all(r["failed"] == 0 for r in rounds)
        rec["result"] = "pass" if passed else "fail"
        rec["step_s"] = round(time.perf_counter() - t_step, 1)
        steps.append(rec)
        r0 = rec["resources"]
        log(
            f"search: N={n} {rec['result']}: worst handshake+echo "
            f"{fmt(max((r['handshake_plus_echo_ms_max'] or 0.0) for r in rounds), 1)} ms, "
            f"failed {[r['failed'] for r in rounds]}, machine busy {r0['host_cpu_busy_cores']} cores"
        )
        if not passed:
            first_fail = n
            worst = max(rounds, key=lambda r: r["failed"])
            reason = (
                f"N={n}: {worst['failed']} of {n} rooms did not answer within {limit_s:g} s in a probe round "
                f"(failures per round {[r['failed'] for r in rounds]}; errors: {'; '.join(worst['errors'])}); "
                f"the machine was {r0['host_cpu_busy_cores']} of {os.cpu_count()} cores busy, rooms used "
                f"{r0['cpu_pct_rooms_sum']} % of a core together, load average {r0['loadavg'][0]:.1f}"
            )
            break
        last_pass = n
        n += step
    else:
        reason = f"reached --search-max {max_n} without a failing step"
    return {
        "last_pass": last_pass,
        "first_fail": first_fail,
        "reason": reason,
        "limit_s": limit_s,
        "check_rounds": CHECK_ROUNDS,
        "search_s": round(time.perf_counter() - t_search, 1),
        "steps": steps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="restarts and probe rounds per N (default 3)")
    parser.add_argument("--quick", action="store_true", help="N in 1,8, one run, 3 s CPU window, short search")
    parser.add_argument("--rooms", default="1,8,32", help="room counts to measure (default 1,8,32)")
    parser.add_argument("--cpu-window", type=float, default=10.0, help="idle CPU window in seconds (default 10)")
    parser.add_argument("--no-search", action="store_true", help="skip the capacity search")
    parser.add_argument("--search-step", type=int, default=32, help="rooms added per search step (default 32)")
    parser.add_argument("--search-max", type=int, default=512, help="largest N the search tries (default 512)")
    parser.add_argument("--search-budget", type=float, default=600.0, help="search time bound, s (default 600)")
    parser.add_argument("--search-window", type=float, default=5.0, help="CPU window per search step, s")
    parser.add_argument("--latency-limit", type=float, default=1.0, help="a room must answer within this, s")
    parser.add_argument(
        "--pids-limit", type=int, default=-1, help="podman --pids-limit of the container (default -1: none)"
    )
    parser.add_argument("--name", default=None, help="results file name (default rooms, rooms-quick)")
    args = parser.parse_args()

    runs = 1 if args.quick else max(1, args.runs)
    room_counts = sorted({int(v) for v in ("1,8" if args.quick else args.rooms).split(",")})
    window = 3.0 if args.quick else args.cpu_window
    search_max = min(args.search_max, 64) if args.quick else args.search_max
    budget = min(args.search_budget, 180.0) if args.quick else args.search_budget
    step = 16 if args.quick else args.search_step
    result_name = args.name or ("rooms-quick" if args.quick else "rooms")
    max_ports = max([*room_counts, 0 if args.no_search else search_max])
    if room_counts[0] < 1 or HOST_PORT_BASE + max_ports - 1 > 49999:
        parser.error("room counts must be >= 1 and the host ports must stay within 40000-49999")

    started, git, machine = begin()
    name = f"gf-bench-rooms-{os.getpid()}"
    publish = [
        f"127.0.0.1:{HOST_PORT_BASE}-{HOST_PORT_BASE + max_ports - 1}:"
        f"{ROOM_PORT_BASE}-{ROOM_PORT_BASE + max_ports - 1}/udp"
    ]
    per_n: list[JsonDict] = []
    capacity: JsonDict | None = None
    failures: list[str] = []
    create: JsonDict = {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gf-bench-rooms-") as tmp:
        try:
            artifacts = snapshot_artifacts(Path(tmp) / "artifacts")
            log(f"creating {name} with {max_ports} published UDP ports ({publish[0]})")
            timings = start_host(name, publish, artifacts, extra_args=["--pids-limit", str(args.pids_limit)])
            create = {k: round(v, 3) for k, v in timings.items()}
            for n in room_counts:
                per_n.append(measure_n(name, Path(tmp), artifacts, n, runs, window))
            if not args.no_search:
                capacity = search(
                    name, room_counts[-1], step, search_max, args.latency_limit, budget, args.search_window
                )
        except (RuntimeError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            log(f"failed: {exc}")
            failures.append(str(exc))
        finally:
            remove_host(name)

    summary: JsonDict = {
        "per_n": [
            {
                "n": m["n"],
                "deploy_s": m["deploy"]["wall_s"],
                "deploy_changed": m["deploy"]["changed"],
                "ready_all_s_median": m["ready_all_s_median"],
                "ready_all_s_samples": m["ready_all_s_samples"],
                **{k: v for k, v in m["resources"].items() if k != "loadavg"},
                **{k: v for k, v in m["latency"].items() if k != "errors"},
            }
            for m in per_n
        ],
        "capacity": {k: v for k, v in capacity.items() if k != "steps"} if capacity else None,
    }
    config: JsonDict = {
        "image": IMAGE,
        "runs": runs,
        "quick": args.quick,
        "rooms": room_counts,
        "cpu_window_s": window,
        "ready_probe_round_s": READY_ROUND_S,
        "publish": publish,
        "pids_limit": args.pids_limit,
        "search": None
        if args.no_search
        else {
            "step": step,
            "max": search_max,
            "budget_s": budget,
            "latency_limit_s": args.latency_limit,
            "cpu_window_s": args.search_window,
            "check_rounds": CHECK_ROUNDS,
        },
    }
    data = result_document(
        "rooms",
        started,
        t_start,
        git,
        machine,
        config,
        failures,
        container_create=create,
        summary=summary,
        raw={"per_n": per_n, "capacity_steps": capacity["steps"] if capacity else []},
    )
    path = write_results(result_name, data)

    print(f"\nRooms on one Debian 12 container ({runs} run(s) per N; medians; times in s, memory in MiB)\n")
    rows = [
        [
            str(s["n"]),
            fmt(s["deploy_s"], 1),
            fmt(s["ready_all_s_median"]),
            fmt(s["pss_mib_median"], 1),
            fmt(s["pss_anon_mib_median"], 1),
            fmt(s["rss_mib_median"], 1),
            fmt(s["pss_mib_sum"], 0),
            fmt(s["cpu_pct_per_room_median"]),
            fmt(s["cpu_pct_rooms_sum"], 1),
            f"{fmt(s['handshake_ms_p50'], 1)} / {fmt(s['handshake_ms_max'], 1)}",
            f"{fmt(s['rtt_ms_p50'], 1)} / {fmt(s['rtt_ms_max'], 1)}",
            str(s["failed"]),
        ]
        for s in summary["per_n"]
    ]
    headers = [
        "N",
        "deploy",
        "ready",
        "PSS/room",
        "anon/room",
        "RSS/room",
        "PSS sum",
        "CPU%/room",
        "CPU% sum",
        "handshake ms p50/max",
        "echo ms p50/max",
        "failed",
    ]
    print(table(headers, rows))
    if capacity:
        print(f"\nCapacity search (every room must answer within {args.latency_limit:g} s, {CHECK_ROUNDS} rounds)\n")
        srows = []
        for st in capacity["steps"]:
            r = st.get("resources", {})
            rounds = st.get("rounds", [])
            srows.append(
                [
                    str(st["n"]),
                    fmt(st.get("new_rooms_all_ready_s")),
                    fmt(r.get("cpu_pct_per_room_median")),
                    fmt(r.get("cpu_pct_rooms_sum"), 1),
                    fmt(r.get("host_cpu_busy_cores")),
                    fmt(r.get("other_busy_cores")),
                    fmt(r.get("pss_mib_sum"), 0),
                    fmt(max((x["handshake_ms_p50"] or 0.0) for x in rounds), 1) if rounds else "-",
                    fmt(max((x["handshake_plus_echo_ms_max"] or 0.0) for x in rounds), 1) if rounds else "-",
                    ",".join(str(x["failed"]) for x in rounds) or "-",
                    st["result"],
                ]
            )
        print(
            table(
                [
                    "N",
                    "new rooms ready",
                    "CPU%/room",
                    "CPU% sum",
                    "busy cores",
                    "others",
                    "PSS sum",
                    "hs p50 ms (worst round)",
                    "worst hs+echo ms",
                    "failed/round",
                    "result",
                ],
                srows,
            )
        )
        print(f"\nlargest passing N: {capacity['last_pass']}; first failing N: {capacity['first_fail']}")
        print(f"why: {capacity['reason']}")
    for f in failures:
        print(f"FAILURE: {f}")
    for w in data["warnings"]:
        print(f"WARNING: {w}")
    print(f"\nwrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
