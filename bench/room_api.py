#!/usr/bin/env python3
"""Room API, AWS backend: handler latency and DynamoDB work per request with 10, 1 000 and 10 000 rooms in the
registry, and concurrent creates.

Everything runs through `Api.handle` (the path the Lambda function runs: routing, auth, JSON, backend) against the
AWS backend on the local AWS (testbed.aws: moto on 127.0.0.1:15205, one request at a time, because moto's
TransactWriteItems is not atomic under concurrent requests; the resources made by testbed.aws_rooms). moto runs no
containers: a room is a DynamoDB row plus an ECS task record. For each registry size N (--sizes) the state is reset,
the table is seeded with N running rooms by BatchWriteItem (25 per call) and the counter set to N, then --runs times:

- create: POST /create_server {"name": ...} (TransactWriteItems + RunTask + UpdateItem);
- get starting: GET /get_servers?name= of that new room (GetItem + DescribeTasks + UpdateItem: starting → running);
- get running: GET /get_servers?name= of a seeded room (GetItem only);
- list page: GET /get_servers (one page of 50, oldest first: one Query on the by_created index);
- stop: POST /stop_server (GetItem + StopTask + UpdateItem); then the cleanup's reap of that room (not timed
  through the handler: the cleanup function calls the backend directly);
- raw_get_item / raw_query: the GetItem and Query of get_running / list_page straight from boto3 (moto's floor).

Per request: wall time, API calls per service/operation, items DynamoDB read (Query ScannedCount, GetItem 1).
Then concurrent creates (threads released together, each a full Api.handle): --concurrent distinct names, the same
name --concurrent times, and --concurrent distinct names with only 20 free slots; counted: rooms created, refusals,
errors, duplicates (a name created twice, rows without a task or tasks without a row), the counter against the rows.

    python -m bench.room_api [--runs 20] [--sizes 10,1000,10000] [--concurrent 50] [--quick] [--name NAME]

Prints tables and writes bench/results/room_api.json (room_api-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from typing import Any

from bench.common import (
    JsonDict,
    begin,
    fmt,
    log,
    median,
    paths_hash,
    percentile,
    result_document,
    rounded,
    table,
    write_results,
)
from room_api.aws import COUNTER_KEY
from room_api.handlers import Api, Request, Response
from testbed import ROOT
from testbed.aws import LocalAws, local_aws
from testbed.aws_rooms import AwsWorld, fresh, provision

PORT = 15205
KEY = "gf-bench-room-api-key-0123456789abcdef"
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
MEASURED_PATHS = ("room_api", "testbed/aws.py", "testbed/aws_rooms.py", "bench/room_api.py")
OPERATIONS = ("create", "get_starting", "get_running", "list_page", "stop", "reap", "raw_get_item", "raw_query")
CAPACITY_FREE_SLOTS = 20
SEED_CREATED_AT = "2026-01-01T00:00:00Z"


class CallLog:
    """API calls of the world's clients (service.Operation) and the items DynamoDB read, since the last take()."""

    def __init__(self, world: AwsWorld) -> None:
        self.calls: Counter[str] = Counter()
        self.items_read = 0
        self._lock = threading.Lock()
        for service, client in world.clients.items():
            client.meta.events.register(f"before-call.{service}", self._before)
        world.clients["dynamodb"].meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if model.name == "Query":
                self.items_read += int(parsed.get("ScannedCount", 0))
            elif model.name == "GetItem" and "Item" in parsed:
                self.items_read += 1

    def take(self) -> tuple[dict[str, int], int]:
        with self._lock:
            calls, items = dict(self.calls), self.items_read
            self.calls.clear()
            self.items_read = 0
        return calls, items


def seed(world: AwsWorld, count: int) -> float:
    """`count` running rooms (seed-00000 ...) written 25 per BatchWriteItem, and the counter; returns seconds."""
    t0 = time.perf_counter()
    dynamodb, table_name = world.clients["dynamodb"], world.config.table
    arn_prefix = f"arn:aws:ecs:eu-west-1:123456789012:task/{world.config.cluster}/seed"
    batch: list[dict[str, Any]] = []
    for i in range(count):
        name = f"seed-{i:05d}"
        item = {
            "name": {"S": name},
            "listing": {"S": "room"},
            "created_key": {"S": f"{SEED_CREATED_AT}#{name}"},
            "created_at": {"S": SEED_CREATED_AT},
            "status": {"S": "running"},
            "port": {"N": "12077"},
            "build_version": {"S": world.config.build_version},
            "ip": {"S": f"10.77.{i // 250}.{i % 250 + 1}"},
            "task_arn": {"S": f"{arn_prefix}{i:05d}"},
        }
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25 or i == count - 1:
            pending: dict[str, Any] = {table_name: batch}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []
    dynamodb.put_item(TableName=table_name, Item={"name": {"S": COUNTER_KEY}, "rooms": {"N": str(count)}})
    return time.perf_counter() - t0


def request(method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None) -> Request:
    raw = json.dumps(body).encode() if body is not None else b""
    return Request(method=method, path=path, query=query or {}, headers=dict(HEADERS), body=raw)


def timed(api: Api, req: Request, expect: int) -> tuple[float, Response]:
    t0 = time.perf_counter()
    response = api.handle(req)
    elapsed = time.perf_counter() - t0
    if response.status != expect:
        raise RuntimeError(f"{req.method} {req.path} answered {response.status} {response.body} (expected {expect})")
    return elapsed, response


def summarize(samples: list[JsonDict]) -> JsonDict:
    ms = [s["ms"] for s in samples]
    calls: Counter[str] = Counter()
    for s in samples:
        calls.update(s["calls"])
    return {
        "n": len(samples),
        "median_ms": rounded(median(ms)),
        "p90_ms": rounded(percentile(ms, 90)),
        "max_ms": rounded(max(ms) if ms else None),
        "calls_per_request": {k: round(v / len(samples), 2) for k, v in sorted(calls.items())} if samples else {},
        "dynamodb_items_read_per_request": rounded(median(s["items_read"] for s in samples)),
        "samples": samples,
    }


def measure_size(aws: LocalAws, size: int, runs: int) -> JsonDict:
    fresh(aws)
    world = provision(aws, max_rooms=size + runs + 10)
    seed_s = seed(world, size)
    backend = world.backend()
    api = Api(backend, key=lambda: KEY)
    calls = CallLog(world)
    samples: dict[str, list[JsonDict]] = {op: [] for op in OPERATIONS}

    def record(op: str, elapsed: float) -> None:
        made, items = calls.take()
        samples[op].append({"ms": round(elapsed * 1000.0, 3), "calls": made, "items_read": items})

    # One untimed warm-up round (connection pools, lazy imports), then the runs.
    for i in range(-1, runs):
        name = f"bench-{i + 1:03d}"
        seeded = f"seed-{(i * 7919) % size:05d}" if size else name
        steps = [
            ("create", request("POST", "/create_server", {"name": name}), 201),
            ("get_starting", request("GET", "/get_servers", query={"name": name}), 200),
            ("get_running", request("GET", "/get_servers", query={"name": seeded}), 200),
            ("list_page", request("GET", "/get_servers"), 200),
            ("stop", request("POST", "/stop_server", {"name": name}), 200),
        ]
        for op, req, expect in steps:
            calls.take()
            elapsed, _ = timed(api, req, expect)
            if i >= 0:
                record(op, elapsed)
        item = world.clients["dynamodb"].get_item(TableName=world.config.table, Key={"name": {"S": name}})["Item"]
        calls.take()
        t0 = time.perf_counter()
        if not backend.reap(name, item["task_arn"]["S"]):
            raise RuntimeError(f"reap of {name} removed nothing")
        if i >= 0:
            record("reap", time.perf_counter() - t0)
    # moto's own floor: the same GetItem / Query as get_running / list_page, straight from boto3 (no handler).
    dynamodb, table_name = world.clients["dynamodb"], world.config.table
    for i in range(runs):
        seeded = f"seed-{(i * 7919) % size:05d}"
        calls.take()
        t0 = time.perf_counter()
        dynamodb.get_item(TableName=table_name, Key={"name": {"S": seeded}}, ConsistentRead=True)
        record("raw_get_item", time.perf_counter() - t0)
        t0 = time.perf_counter()
        dynamodb.query(
            TableName=table_name,
            IndexName="by_created",
            KeyConditionExpression="listing = :room",
            ExpressionAttributeValues={":room": {"S": "room"}},
            Limit=51,
        )
        record("raw_query", time.perf_counter() - t0)
    # Sanity: the first page holds 50 rooms (or all of them).
    first_page = api.handle(request("GET", "/get_servers")).body
    if len(first_page["rooms"]) != min(50, size):
        raise RuntimeError(f"the first page holds {len(first_page['rooms'])} rooms, expected {min(50, size)}")
    return {"size": size, "seed_s": round(seed_s, 2), **{op: summarize(samples[op]) for op in OPERATIONS}}


def concurrent_case(aws: LocalAws, kind: str, count: int) -> JsonDict:
    """`count` creates at once through Api.handle: distinct names, one name, or distinct names with 20 free slots."""
    fresh(aws)
    max_rooms = CAPACITY_FREE_SLOTS if kind == "capacity" else count + 10
    world = provision(aws, max_rooms=max_rooms)
    api = Api(world.backend(), key=lambda: KEY)
    names = ["same-name"] * count if kind == "same_name" else [f"conc-{i:03d}" for i in range(count)]
    barrier = threading.Barrier(count + 1)
    statuses: list[tuple[int, str]] = [(0, "")] * count
    latencies = [0.0] * count

    def work(i: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        try:
            response = api.handle(request("POST", "/create_server", {"name": names[i]}))
            statuses[i] = (response.status, str(response.body.get("error", "")))
        except Exception as exc:
            statuses[i] = (-1, type(exc).__name__)
        latencies[i] = time.perf_counter() - t0

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0

    created_names = Counter(names[i] for i, (status, _) in enumerate(statuses) if status == 201)
    rows = world.backend().list(100, None).rooms
    counter_item = world.clients["dynamodb"].get_item(TableName=world.config.table, Key={"name": {"S": COUNTER_KEY}})
    counter_value = int(counter_item["Item"]["rooms"]["N"]) if "Item" in counter_item else 0
    ecs = world.clients["ecs"]
    task_arns = ecs.list_tasks(cluster=world.config.cluster, desiredStatus="RUNNING")["taskArns"]
    started_by = Counter(
        t["startedBy"]
        for t in (ecs.describe_tasks(cluster=world.config.cluster, tasks=task_arns)["tasks"] if task_arns else [])
    )
    row_names = Counter(r.name for r in rows)
    duplicates = (
        sum(n - 1 for n in created_names.values() if n > 1)
        + sum(n - 1 for n in started_by.values() if n > 1)
        + len(set(started_by) ^ set(row_names))  # a task without a row or a row without a task
    )
    outcome = Counter(f"{status} {error}".strip() for status, error in statuses)
    return {
        "kind": kind,
        "requests": count,
        "max_rooms": max_rooms,
        "created": sum(created_names.values()),
        "refused_name_taken": outcome.get("409 name_taken", 0),
        "refused_capacity": outcome.get("429 capacity", 0),
        "errors": sum(v for k, v in outcome.items() if not k.startswith(("201", "409 name_taken", "429 capacity"))),
        "duplicates": duplicates,
        "rows": len(rows),
        "counter": counter_value,
        "running_tasks": len(task_arns),
        "outcomes": dict(outcome),
        "wall_s": round(wall, 3),
        "latency_median_ms": rounded(median(x * 1000.0 for x in latencies)),
        "latency_max_ms": rounded(max(latencies) * 1000.0),
    }


def expected_counts(case: JsonDict) -> str:
    """'' when the concurrent case came out as it must, else what is wrong."""
    count, kind = case["requests"], case["kind"]
    want_created = {"distinct": count, "same_name": 1, "capacity": min(CAPACITY_FREE_SLOTS, count)}[kind]
    problems = []
    if case["created"] != want_created:
        problems.append(f"created {case['created']} != {want_created}")
    if case["errors"] or case["duplicates"]:
        problems.append(f"errors {case['errors']}, duplicates {case['duplicates']}")
    if not case["rows"] == case["counter"] == case["running_tasks"] == case["created"]:
        problems.append(f"rows {case['rows']} / counter {case['counter']} / tasks {case['running_tasks']} disagree")
    return f"concurrent {kind}: " + "; ".join(problems) if problems else ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="requests per operation and registry size")
    parser.add_argument("--sizes", default="10,1000,10000", help="rooms in the registry, comma-separated")
    parser.add_argument("--concurrent", type=int, default=50, help="creates at once")
    parser.add_argument("--concurrent-runs", type=int, default=3, help="repetitions of each concurrent case")
    parser.add_argument("--quick", action="store_true", help="sizes 10,1000, 5 runs, 1 concurrent run")
    parser.add_argument("--name", default="", help="results file name (default room_api / room_api-quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.sizes, args.concurrent_runs = 5, "10,1000", 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.runs < 1 or args.concurrent < 2 or any(s < 1 for s in sizes):
        parser.error("--runs >= 1, --concurrent >= 2 and sizes >= 1")
    name = args.name or ("room_api-quick" if args.quick else "room_api")

    started, git, machine = begin()
    t_start = time.perf_counter()
    measured = paths_hash(ROOT, MEASURED_PATHS)
    failures: list[str] = []
    per_size: list[JsonDict] = []
    concurrency: list[JsonDict] = []
    with local_aws(range(PORT, PORT + 1)) as aws:
        for size in sizes:
            log(f"registry of {size} rooms: {args.runs} runs")
            try:
                per_size.append(measure_size(aws, size, args.runs))
            except Exception as exc:
                failures.append(f"size {size}: {type(exc).__name__}: {exc}")
        for kind in ("distinct", "same_name", "capacity"):
            for run in range(args.concurrent_runs):
                log(f"concurrent creates ({kind}, {args.concurrent} at once), run {run + 1}")
                try:
                    case = concurrent_case(aws, kind, args.concurrent)
                except Exception as exc:
                    failures.append(f"concurrent {kind}: {type(exc).__name__}: {exc}")
                    continue
                concurrency.append(case)
                problem = expected_counts(case)
                if problem:
                    failures.append(problem)

    by_size = {s["size"]: s for s in per_size}
    ratios: JsonDict = {}
    if sizes and max(sizes) in by_size and min(sizes) in by_size and max(sizes) != min(sizes):
        big, small = by_size[max(sizes)], by_size[min(sizes)]
        for op in OPERATIONS:
            b, s = big[op]["median_ms"], small[op]["median_ms"]
            ratios[f"{op}_ms_{max(sizes)}_to_{min(sizes)}"] = round(b / s, 2) if b and s else None
        b_items, s_items = (
            big["list_page"]["dynamodb_items_read_per_request"],
            small["list_page"]["dynamodb_items_read_per_request"],
        )
        ratios[f"list_page_items_read_{max(sizes)}_to_{min(sizes)}"] = round(b_items / s_items, 2) if s_items else None

    rows = []
    for s in per_size:
        for op in OPERATIONS:
            fig = s[op]
            calls = ", ".join(
                f"{k.split('.', 1)[1]} {fmt(v, 1) if v != int(v) else int(v)}"
                for k, v in fig["calls_per_request"].items()
            )
            rows.append(
                [
                    str(s["size"]),
                    op,
                    fmt(fig["median_ms"], 1),
                    fmt(fig["p90_ms"], 1),
                    fmt(fig["dynamodb_items_read_per_request"], 0),
                    calls,
                ]
            )
    print(table(["rooms", "request", "median ms", "p90 ms", "items read", "calls per request"], rows))
    print()
    crow = [
        [
            c["kind"],
            str(c["requests"]),
            str(c["created"]),
            str(c["refused_name_taken"]),
            str(c["refused_capacity"]),
            str(c["errors"]),
            str(c["duplicates"]),
            f"{c['rows']}/{c['counter']}/{c['running_tasks']}",
            fmt(c["wall_s"], 2),
        ]
        for c in concurrency
    ]
    print(table(["case", "at once", "created", "409", "429", "errors", "dups", "rows/counter/tasks", "wall s"], crow))
    print()
    for key, value in ratios.items():
        print(f"{key}: {fmt(value)}")
    for failure in failures:
        print(f"FAILED: {failure}")

    document = result_document(
        "room_api",
        started,
        t_start,
        git,
        machine,
        {
            "runs": args.runs,
            "sizes": sizes,
            "concurrent": args.concurrent,
            "concurrent_runs": args.concurrent_runs,
            "moto_port": PORT,
            "page_size": 50,
            "measured_paths": list(MEASURED_PATHS),
            "measured_hash_start": measured,
            "note": "moto runs no containers; every request is a real boto3 call to moto (serialized requests)",
        },
        failures,
        sizes=per_size,
        ratios=ratios,
        concurrency=concurrency,
    )
    if paths_hash(ROOT, MEASURED_PATHS) != measured:
        document["warnings"].append("room_api / the test bed changed during the run")
    path = write_results(name, document)
    log(f"wrote {path.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
