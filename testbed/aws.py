"""The local AWS of godot-fleet: moto on loopback, plus local systemd containers standing in for EC2 instances.

Used by `make demo-aws`, `make demo-rooms`, the tests and the benchmarks, so all of them run the playbooks and the
room API exactly as on AWS; only variables differ (the endpoint URL, dummy credentials, and a connection override
that maps each instance to a container).

    python -m testbed.aws serve --port P           moto + instance-role credentials, until SIGTERM
    python -m testbed.aws host-up NAME --endpoint URL --fleet FLEET --index I
    python -m testbed.aws host-down NAME

From Python: `with local_aws(ports) as aws:` starts the server on the first free port as a child process and
stops it afterwards; `aws.endpoint`, `aws.reset()`, `aws.client(service)`.

What stands in for what, and why:
- moto (the AWS emulator) runs no instances, so an instance is mapped to a container that shares the loopback
  of this machine (host network namespace, own UTS namespace), where moto is reachable at the same URL as from
  the controller. Game rooms bind to 127.0.0.1 there (godot_server_bind), so nothing listens beyond loopback.
- On EC2 the instance's role credentials come from the instance metadata service (169.254.169.254), which moto
  does not provide (and nothing here may talk to that address). The stand-in: `serve` also answers
  GET /_godot_fleet/instance-credentials/<fleet>/<index> by looking up the instance (the <index>-th running
  instance tagged Name=<fleet>, in instance id order, as deploy-aws.yml adds them to the inventory), its
  instance profile and role, and returning temporary credentials from STS AssumeRole on that role. `host-up`
  points the container's AWS SDK at that URL through a `credential_process` in /root/.aws/config. So the host
  holds no long-lived keys, and a host whose instance has no role gets no credentials, as on EC2.
- moto's models are not thread-safe, and its TransactWriteItems in particular is not atomic under concurrent requests
  (it snapshots the table, applies the items one by one and restores the snapshot on a failed condition, so
  interleaved requests undo each other: 50 concurrent creates of one room name left the room counter at 15-17
  instead of 1 in stock moto_server). DynamoDB executes a transaction atomically; the server gives moto that
  property by executing one request at a time (requests still arrive concurrently, on many connections).
- Responses where stock moto differs from AWS in a way the Ansible modules depend on are completed by
  `complete_moto_responses()` (DynamoDB fields AWS returns, EventBridge TestEventPattern; see its docstring).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from testbed import hosts, port_free

CREDENTIALS_PATH = "/_godot_fleet/instance-credentials/"
REGION = "us-east-1"  # STS/EC2/IAM lookups of the stand-in; overridden by the region in the request
#: Dummy credentials: moto accepts any. Never real ones here.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "godot-fleet-local-aws", "AWS_SECRET_ACCESS_KEY": "godot-fleet-local-aws-secret"}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def instance_credentials(endpoint: str, fleet: str, index: int, region: str) -> dict[str, Any] | None:
    """Temporary credentials of the role of the index-th running instance of a fleet (None: no such role)."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id="instance-metadata-stand-in",
            aws_secret_access_key="instance-metadata-stand-in",
        )

    reservations = client("ec2").describe_instances(
        Filters=[{"Name": "tag:Name", "Values": [fleet]}, {"Name": "instance-state-name", "Values": ["running"]}]
    )["Reservations"]
    instances = sorted((i for r in reservations for i in r["Instances"]), key=lambda i: i["InstanceId"])
    if index >= len(instances) or "IamInstanceProfile" not in instances[index]:
        return None
    instance = instances[index]
    profile_name = instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1]
    roles = client("iam").get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
    if not roles:
        return None
    granted = client("sts").assume_role(RoleArn=roles[0]["Arn"], RoleSessionName=instance["InstanceId"])
    creds = granted["Credentials"]
    return {
        "Version": 1,
        "AccessKeyId": creds["AccessKeyId"],
        "SecretAccessKey": creds["SecretAccessKey"],
        "SessionToken": creds["SessionToken"],
        "Expiration": creds["Expiration"].isoformat(),
        "RoleArn": roles[0]["Arn"],
    }


def with_instance_credentials(app: WsgiApp, endpoint: str, grants: list[dict[str, str]]) -> WsgiApp:
    """Wraps moto's WSGI app with the instance-credentials stand-in (every grant is recorded in `grants`)."""

    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path == "/_godot_fleet/grants":
            body = json.dumps(grants).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if not path.startswith(CREDENTIALS_PATH):
            return app(environ, start_response)
        parts = path[len(CREDENTIALS_PATH) :].split("/")
        region = environ.get("QUERY_STRING", "").removeprefix("region=") or REGION
        found = None
        if len(parts) == 2 and parts[1].isdigit():
            found = instance_credentials(endpoint, parts[0], int(parts[1]), region)
        if found is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no running instance with an instance profile at this index\n"]
        grants.append({"fleet": parts[0], "index": parts[1], "role": found.pop("RoleArn")})
        body = json.dumps(found).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wrapped


def complete_moto_responses() -> None:
    """Adds to moto's responses the fields real AWS returns and the Ansible modules rely on (idempotent).

    - DynamoDB DescribeTable/CreateTable/DeleteTable: `TableId` (a UUID fixed for the table's lifetime) and each
      global secondary index's `IndexArn`. Without `TableId`, community.aws.dynamodb_table fails with KeyError
      after every call (moto 5.2.5), although the table itself is created.
    - EventBridge TestEventPattern: moto 5.2.5 answers nothing; here it answers `{"Result": true|false}` with
      moto's own rule matcher (the one PutEvents uses), so a test can check that a real-shaped event matches the
      pattern of a deployed rule.
    """
    import uuid

    from moto.dynamodb.models.table import Table
    from moto.events.models import EventPattern, EventPatternParser
    from moto.events.responses import EventsHandler

    if getattr(Table.describe, "_godot_fleet", False):
        return

    def test_event_pattern(self: Any) -> tuple[str, dict[str, Any]]:
        raw = self._get_param("EventPattern")
        event = json.loads(self._get_param("Event"))
        matches = EventPattern(raw, EventPatternParser(raw).parse()).matches_event(event)
        return json.dumps({"Result": matches}), self.response_headers

    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[assignment,method-assign]
    original = Table.describe

    def describe(self: Any, base_key: str = "TableDescription") -> dict[str, Any]:
        result: dict[str, Any] = original(self, base_key)
        table_id = self.__dict__.setdefault("_godot_fleet_table_id", str(uuid.uuid4()))
        result[base_key]["TableId"] = table_id
        for index in result[base_key].get("GlobalSecondaryIndexes", []):
            index.setdefault("IndexArn", f"{self.table_arn}/index/{index['IndexName']}")
        return result

    describe._godot_fleet = True  # type: ignore[attr-defined]
    Table.describe = describe  # type: ignore[method-assign]


def one_at_a_time(app: WsgiApp) -> WsgiApp:
    """moto's WSGI app executing one request at a time (see the module docstring)."""
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    return serialized


def serve(host: str, port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    complete_moto_responses()
    endpoint = f"http://{host}:{port}"
    grants: list[dict[str, str]] = []
    moto = one_at_a_time(DomainDispatcherApplication(create_backend_app))
    # the credentials stand-in calls moto itself (EC2, IAM, STS): it runs outside the lock
    app = with_instance_credentials(moto, endpoint, grants)
    server = make_server(host, port, app, threaded=True)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"AWS_ENDPOINT_URL={endpoint}", flush=True)
    print("READY", flush=True)
    server.serve_forever()


@dataclass
class LocalAws:
    """The local AWS server (serve()) running as a child process."""

    port: int
    process: subprocess.Popen[str]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self, base: dict[str, str] | None = None, *, region: str | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) without any AWS_* setting of the caller, pointed at this
        server with the dummy credentials, as a user points the AWS SDK at an emulator (AWS_ENDPOINT_URL)."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("AWS_")}
        env.update(CREDENTIALS, AWS_ENDPOINT_URL=self.endpoint)
        if region:
            env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
        return env

    def client(self, service: str, region: str = REGION, **config: Any) -> Any:
        """A boto3 client of this server (`config`: botocore Config options, e.g. max_pool_connections)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(**config) if config else None,
        )

    def moto_api(self, path: str, body: dict[str, Any] | None = None) -> None:
        """POST to moto's own API (/moto-api/<path>), e.g. `reset` or `state-manager/set-transition`."""
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/{path}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def reset(self) -> None:
        """Forgets every resource."""
        self.moto_api("reset")

    def grants(self) -> list[dict[str, str]]:
        """Every credential the instance metadata stand-in handed out: fleet, index and role."""
        with urllib.request.urlopen(f"{self.endpoint}/_godot_fleet/grants", timeout=30) as answer:
            found: list[dict[str, str]] = json.load(answer)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def local_aws(ports: int | range) -> Iterator[LocalAws]:
    """The local AWS on 127.0.0.1 (the first free port of `ports`) while the block runs, stopped afterwards."""
    candidates = range(ports, ports + 1) if isinstance(ports, int) else ports
    port = next((p for p in candidates if port_free(p)), None)
    if port is None:
        raise RuntimeError(f"no free port in {candidates.start}-{candidates.stop - 1} for the local AWS")
    process = subprocess.Popen(
        [sys.executable, "-m", "testbed.aws", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    server = LocalAws(port, process)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        if lines[-1].strip() != "READY":
            raise RuntimeError(f"the local AWS on port {port} did not start: {lines}")
        yield server
    finally:
        server.stop()


CREDENTIAL_HELPER = """#!/usr/bin/python3
# godot-fleet local AWS: the stand-in for the instance metadata service (see testbed/aws.py)
import sys
import urllib.request

URL = "{url}"
with urllib.request.urlopen(URL, timeout=10) as answer:
    sys.stdout.write(answer.read().decode())
"""


def host_up(name: str, endpoint: str, fleet: str, index: int, region: str) -> None:
    """Starts (or reuses, if it answers) a systemd container standing in for the index-th instance of the fleet."""
    hosts.start(name)
    url = f"{endpoint}{CREDENTIALS_PATH}{fleet}/{index}?region={region}"
    helper = "/usr/local/sbin/instance-credentials"
    config = f"[default]\ncredential_process = {helper}\n"
    script = (
        f"install -d -m 0700 /root/.aws && cat > {helper} && chmod 0755 {helper} && "
        f"printf '%s' '{config}' > /root/.aws/config && chmod 0600 /root/.aws/config"
    )
    hosts.run_in(name, script, CREDENTIAL_HELPER.format(url=url))


def host_down(name: str) -> None:
    hosts.remove(name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="moto + instance-role credentials on loopback, until SIGTERM")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, required=True)
    p_up = sub.add_parser("host-up", help="start a container standing in for an instance")
    p_up.add_argument("name")
    p_up.add_argument("--endpoint", required=True)
    p_up.add_argument("--fleet", required=True, help="the Name tag of the instances (godot_fleet_name)")
    p_up.add_argument("--index", type=int, default=0)
    p_up.add_argument("--region", default="eu-west-1")
    p_down = sub.add_parser("host-down", help="remove such a container")
    p_down.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if args.host not in ("127.0.0.1", "localhost"):
            parser.error("the local AWS listens on loopback only")
        serve(args.host, args.port)
    elif args.command == "host-up":
        host_up(args.name, args.endpoint, args.fleet, args.index, args.region)
    else:
        host_down(args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
