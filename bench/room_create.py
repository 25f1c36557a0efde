#!/usr/bin/env python3
"""Rooms on demand, local backend: how long from `POST /create_server` to a room that accepts a client.

Starts the real room API (`python -m room_api serve --backend local`: rooms are podman containers from the room
image, registry in SQLite) on 127.0.0.1, then --runs times:

- create: the HTTP call's own latency (registry write + `podman run -d`);
- ready: from sending `POST /create_server` until a real ENet client (testbed/enet_probe.py) completed its
  echo round trip with the room (probe attempts of 0.25 s back to back);
- gone: from `POST /stop_server` until the room left `GET /get_servers` (the runtime's exit event drives the
  cleanup, as in production).

Then the concurrency check: --concurrent creates of ONE name at once (exactly one room may result) and
--concurrent creates of distinct names (all real rooms; with --max-rooms below --concurrent the capacity refusals
must make up the difference); duplicates must be 0. Rooms created there are stopped and waited for.

    python -m bench.room_create [--runs 9] [--concurrent 50] [--max-rooms 60]

Needs the room image (`make room-image`). Prints tables and writes bench/results/room_create.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    JsonDict,
    begin,
    fmt,
    log,
    median,
    percentile,
    result_document,
    rounded,
    table,
    write_results,
)
from room_api.local import LABEL_API
from testbed import ROOT, demo
from testbed.enet_probe import probe

API_PORT = 42000
ROOM_PORTS = (42001, 42099)
API_ID = "bench"


class Api:
    """The room API process and authenticated calls to it."""

    def __init__(self, state: Path, image: str, max_rooms: int, empty_timeout: int) -> None:
        self.url = f"http://127.0.0.1:{API_PORT}"
        self.key = secrets.token_urlsafe(32)
        self.log_path = state / "api.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "room_api",
                "serve",
                "--backend",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(API_PORT),
                "--db",
                str(state / "rooms.sqlite3"),
                "--image",
                image,
                "--ports",
                f"{ROOM_PORTS[0]}-{ROOM_PORTS[1]}",
                "--max-rooms",
                str(max_rooms),
                "--api-id",
                API_ID,
                f"--room-arg=--empty-server-timeout={empty_timeout}",
                "--room-arg=--max-players=8",
            ],
            cwd=ROOT,
            env={**os.environ, "ROOM_API_KEY": self.key},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while "READY" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the room API did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def call(self, method: str, path: str, body: JsonDict | None = None) -> tuple[int, JsonDict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def names(self) -> set[str]:
        names: set[str] = set()
        token = ""
        while True:
            status, page = self.call("GET", "/get_servers?limit=100" + (f"&page_token={token}" if token else ""))
            if status != 200:
                raise RuntimeError(f"get_servers: HTTP {status} {page}")
            names |= {room["name"] for room in page["rooms"]}
            token = page.get("next_page_token") or ""
            if not token:
                return names

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
        left = subprocess.run(
            ["podman", "ps", "-aq", "--filter", f"label={LABEL_API}={API_ID}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if left:
            subprocess.run(["podman", "rm", "-f", *left], capture_output=True)


def one_room(api: Api, index: int) -> JsonDict:
    name = f"bench-{index}-{secrets.token_hex(3)}"
    t0 = time.perf_counter()
    status, answer = api.call("POST", "/create_server", {"name": name})
    t_created = time.perf_counter()
    if status != 201:
        raise RuntimeError(f"create_server: HTTP {status} {answer}")
    room = answer["room"]
    ready = None
    attempts = 0
    while time.perf_counter() - t0 < 60:
        attempts += 1
        if probe(room["ip"], int(room["port"]), timeout=0.25).ok:
            ready = time.perf_counter() - t0
            break
    if ready is None:
        raise RuntimeError(f"room {name} did not answer a client within 60 s")
    t_stop = time.perf_counter()
    status, answer = api.call("POST", "/stop_server", {"name": name})
    if status != 200:
        raise RuntimeError(f"stop_server: HTTP {status} {answer}")
    gone = None
    while time.perf_counter() - t_stop < 60:
        if name not in api.names():
            gone = time.perf_counter() - t_stop
            break
        time.sleep(0.1)
    return {
        "create_call_s": rounded(t_created - t0),
        "ready_s": rounded(ready),
        "probe_attempts": attempts,
        "stop_to_gone_s": rounded(gone),
    }


def concurrent(api: Api, count: int, same_name: bool) -> JsonDict:
    base = f"race-{secrets.token_hex(3)}"
    barrier = threading.Barrier(count)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            status, answer = api.call("POST", "/create_server", {"name": base if same_name else f"{base}-{i}"})
        except OSError as exc:  # connection refused/reset: an error of the API, counted as such
            status, answer = 599, {"error": type(exc).__name__}
        with lock:
            results.append((status, str(answer.get("room", {}).get("name") or answer.get("error"))))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    statuses = Counter(status for status, _ in results)
    created = [name for status, name in results if status == 201]
    listed = [name for name in api.names() if name.startswith(base)]
    for name in listed:
        api.call("POST", "/stop_server", {"name": name})
    deadline = time.monotonic() + 120
    while any(name.startswith(base) for name in api.names()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {
        "requests": count,
        "same_name": same_name,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "created": len(created),
        "listed": len(listed),
        "duplicates": len(created) - len(set(created)) + max(0, len(listed) - len(set(listed))),
        "errors": sum(v for k, v in statuses.items() if k >= 500),
        "elapsed_s": rounded(elapsed),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--max-rooms", type=int, default=60, help="room limit of the API during the benchmark")
    args = parser.parse_args(argv)
    started, git, machine = begin()
    t_start = time.perf_counter()
    image = os.environ.get("GF_ROOM_IMAGE", f"localhost/godot-fleet/demo-room:{demo.version()}")
    failures: list[str] = []
    runs: list[JsonDict] = []
    races: list[JsonDict] = []
    with tempfile.TemporaryDirectory(prefix="gf-bench-rooms-") as tmp:
        api = Api(Path(tmp), image, args.max_rooms, empty_timeout=120)
        try:
            log(f"{args.runs} rooms one after the other: create -> client round trip -> stop -> gone")
            for i in range(args.runs):
                try:
                    runs.append(one_room(api, i))
                    log(f"run {i + 1}: {runs[-1]}")
                except RuntimeError as exc:
                    failures.append(str(exc))
            for same in (True, False):
                log(f"{args.concurrent} concurrent creates ({'one name' if same else 'distinct names'})")
                races.append(concurrent(api, args.concurrent, same))
                log(str(races[-1]))
                if races[-1]["duplicates"]:
                    failures.append(f"duplicates in a concurrent create: {races[-1]}")
        finally:
            api.close()
    figures: dict[str, Any] = {
        key: {
            "median": rounded(median(r[key] for r in runs if r[key] is not None)),
            "p90": rounded(percentile((r[key] for r in runs if r[key] is not None), 90)),
        }
        for key in ("create_call_s", "ready_s", "stop_to_gone_s")
    }
    print()
    print(table(["figure", "median s", "p90 s"], [[k, fmt(v["median"]), fmt(v["p90"])] for k, v in figures.items()]))
    print()
    print(
        table(
            ["creates at once", "names", "created", "listed", "duplicates", "errors", "statuses"],
            [
                [
                    str(r["requests"]),
                    "one" if r["same_name"] else "distinct",
                    str(r["created"]),
                    str(r["listed"]),
                    str(r["duplicates"]),
                    str(r["errors"]),
                    json.dumps(r["statuses"]),
                ]
                for r in races
            ],
        )
    )
    document = result_document(
        "room_create",
        started,
        t_start,
        git,
        machine,
        {"runs": args.runs, "concurrent": args.concurrent, "max_rooms": args.max_rooms, "image": image},
        failures,
        figures=figures,
        runs=runs,
        concurrent=races,
    )
    print(f"\nwritten: {write_results('room_create', document)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
