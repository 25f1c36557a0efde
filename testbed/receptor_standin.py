"""A stand-in for receptor's control socket, for the local AWX of testbed.awx. THIS IS NOT RECEPTOR.

Receptor (a Go program) cannot be built here. AWX talks to it through receptorctl's ReceptorControl over the unix
socket named by the `control-service` entry of /etc/receptor/receptor.conf, and on a single hybrid node it uses only
a few commands. This module serves those commands, in receptor's wire protocol, for work that runs on this node:

- on connecting, the server says `Receptor Control, node <node id>`;
- a command is one line: either words (`work status <unit id>`) or a JSON object with a `command` key (`work
  submit` always comes as JSON: `{"command": "work", "subcommand": "submit", "node": ..., "worktype": ...,
  "params": ...}`); the answer is one line of JSON, or `ERROR: <message>` (receptor's messages, which AWX matches:
  `unknown work unit <id>`);
- `status`: the node's status, with itself as the only advertisement (its work types in WorkCommands);
- `work submit`: answers `Work unit created with ID <id>. Send stdin data and EOF.`, reads the payload until the
  client shuts its side down (AWX streams ansible-runner's `transmit` output here), starts the work and answers
  `{"result": "Job Started", "unitid": <id>}`;
- `work results <id> [start position]`: `Streaming results for work unit <id>`, then the unit's output from that
  position, following it until the unit has ended and all of it is sent, then closes the connection;
- `work status <id>`, `work list [<id>]`: receptor's status fields (State, StateName, Detail, StdoutSize, WorkType,
  ExtraData);
- `work cancel <id>` (SIGINT to the work's process and SIGKILL 10 s later, as receptor does; here to its process
  group),
  `work release <id>` / `work force-release <id>` (cancel, then delete the unit's files).

The work types are the `work-command` entries of the configuration (AWX's: `local`, command `ansible-runner`,
params `worker`, runtime params allowed): the command runs with the unit's payload on stdin and its stdout and
stderr in the unit's output, exactly as receptor's command worker runs it. For AWX that is `ansible-runner worker
--private-data-dir=...`, which runs the job's playbook in the execution environment container with podman.

What it is not: there is no mesh (work for any node other than this one or `localhost` is refused: no remote work,
no `ttl`), no TLS, no work signing or verification (a signed submission is refused), no Kubernetes or Python
workers, no `ping`, `traceroute`, `connect` or `reload`; units do not survive a restart of the stand-in.

    python -m testbed.receptor_standin --config receptor.conf --data-dir DIR     (until SIGTERM or SIGINT)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import shlex
import shutil
import signal
import socketserver
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED = range(5)
STATE_NAMES = {PENDING: "Pending", RUNNING: "Running", SUCCEEDED: "Succeeded", FAILED: "Failed", CANCELED: "Canceled"}
VERSION = "1.4.4+godot-fleet-standin"  # receptorctl's version AWX pins, marked as the stand-in it is


class ControlError(Exception):
    """A command failed: the session answers `ERROR: <message>` and goes on."""


@dataclass
class WorkCommand:
    """A `work-command` entry of receptor's configuration."""

    worktype: str
    command: str
    params: str = ""
    allowruntimeparams: bool = False


@dataclass
class Unit:
    """One unit of work: its files are in `directory` (stdin, stdout, status), as receptor keeps them."""

    id: str
    worktype: str
    directory: Path
    params: str
    state: int = PENDING
    detail: str = ""
    stdout_size: int = 0
    pid: int = 0
    proc: subprocess.Popen[bytes] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stdout(self) -> Path:
        return self.directory / "stdout"

    def status(self) -> dict[str, Any]:
        with self.lock:
            running = self.proc is not None and not self.done.is_set()
            extra = {"Pid": self.pid, "Params": self.params} if running or self.proc is None else None
            size = self.stdout_size
            if not self.done.is_set():
                with contextlib.suppress(OSError):
                    size = self.stdout.stat().st_size
            return {
                "State": self.state,
                "StateName": STATE_NAMES[self.state],
                "Detail": self.detail,
                "StdoutSize": size,
                "WorkType": self.worktype,
                "ExtraData": extra,
            }

    def update(self, state: int, detail: str) -> None:
        with self.lock:
            self.state, self.detail = state, detail
            with contextlib.suppress(OSError):
                self.stdout_size = self.stdout.stat().st_size
        with contextlib.suppress(OSError):
            (self.directory / "status").write_text(json.dumps(self.status()))


def _exit_detail(returncode: int) -> str:
    """What Go's ProcessState.String() says (receptor's Detail of a finished command)."""
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {signal.SIGINT: "interrupt", signal.SIGKILL: "killed", signal.SIGTERM: "terminated"}
    return f"signal: {names.get(signal.Signals(-returncode), signal.Signals(-returncode).name.lower())}"


class StandIn:
    """The node: its configuration, its work units, and the control commands."""

    def __init__(self, config: list[dict[str, Any]], data_dir: Path) -> None:
        self.node = "localhost"
        self.socket_path: Path | None = None
        self.permissions = 0o600
        self.work_commands: dict[str, WorkCommand] = {}
        for entry in config:
            for key, value in entry.items():
                if key == "node":
                    self.node = str((value or {}).get("id", self.node))
                elif key == "control-service":
                    self.socket_path = Path(value["filename"])
                    self.permissions = int(str(value.get("permissions", "0600")), 8)
                elif key == "work-command":
                    allowed = value.get("allowruntimeparams", False)
                    self.work_commands[value["worktype"]] = WorkCommand(
                        value["worktype"], value["command"], value.get("params", ""), allowed in (True, "true")
                    )
        if self.socket_path is None:
            raise SystemExit("the configuration has no control-service entry with a filename")
        self.data_dir = data_dir / self.node
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.units: dict[str, Unit] = {}
        self.units_lock = threading.Lock()

    # --- commands

    def status(self, requested: list[str] | None = None) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        fields: dict[str, Any] = {
            "NodeID": self.node,
            "Version": VERSION,
            "SystemCPUCores": os.cpu_count() or 1,
            "SystemMemoryMB": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
            "Connections": [],
            "RoutingTable": {},
            "KnownConnectionCosts": {},
            "Advertisements": [
                {
                    "NodeID": self.node,
                    "Service": "control",
                    "Time": now,
                    "ConnType": 1,  # a stream service, as receptor's control service is
                    "Tags": {"type": "Control Service"},
                    "WorkCommands": [{"WorkType": w, "Secure": False} for w in sorted(self.work_commands)],
                }
            ],
        }
        return {k: v for k, v in fields.items() if requested is None or k in requested}

    def find(self, unit_id: str) -> Unit:
        with self.units_lock:
            unit = self.units.get(unit_id)
        if unit is None:
            raise ControlError(f"unknown work unit {unit_id}")
        return unit

    def allocate(self, params: dict[str, str]) -> Unit:
        node, worktype = params.get("node", ""), params.get("worktype", "")
        if params.get("signwork") == "true" or params.get("signature"):
            raise ControlError("work signing is not supported by this receptor stand-in")
        if node != self.node and node.lower() != "localhost":
            raise ControlError(f"remote work (node {node}) is not supported by this receptor stand-in")
        if params.get("ttl"):
            raise ControlError("ttl option is intended for remote work only")
        command = self.work_commands.get(worktype)
        if command is None:
            raise ControlError(f"unknown work type {worktype}")
        extra = params.get("params", "")
        if extra and not command.allowruntimeparams:
            raise ControlError("extra params provided but not allowed")
        with self.units_lock:
            while True:
                unit_id = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
                if unit_id not in self.units:
                    break
            directory = self.data_dir / unit_id
            directory.mkdir(mode=0o700)
            combined = " ".join(p for p in (command.params, extra) if p)
            unit = Unit(unit_id, worktype, directory, combined)
            self.units[unit_id] = unit
        unit.update(PENDING, "Waiting for Input Data")
        return unit

    def start(self, unit: Unit) -> None:
        command = self.work_commands[unit.worktype]
        unit.update(PENDING, "Starting Worker")
        executable = shutil.which(command.command) or command.command
        with (unit.directory / "stdin").open("rb") as stdin, unit.stdout.open("ab") as stdout:
            try:
                proc = subprocess.Popen(
                    [executable, *shlex.split(unit.params)],
                    stdin=stdin,
                    stdout=stdout,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                unit.update(FAILED, f"Error starting worker: {error}")
                unit.done.set()
                raise ControlError(f"error starting work: {error}") from error
        with unit.lock:
            unit.proc, unit.pid = proc, proc.pid
        unit.update(RUNNING, f"Running: PID {proc.pid}")
        log(f"unit {unit.id}: started {command.command} {unit.params} (pid {proc.pid})")
        threading.Thread(target=self._wait, args=(unit, proc), daemon=True).start()

    def _wait(self, unit: Unit, proc: subprocess.Popen[bytes]) -> None:
        returncode = proc.wait()
        if unit.state != CANCELED:
            unit.update(SUCCEEDED if returncode == 0 else FAILED, _exit_detail(returncode))
        unit.done.set()
        log(f"unit {unit.id}: {unit.detail}")

    def cancel(self, unit: Unit) -> None:
        proc = unit.proc
        if proc is None or unit.done.is_set():
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        if not unit.done.wait(10):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            unit.done.wait(10)
        unit.update(CANCELED, "Canceled")

    def release(self, unit: Unit, force: bool) -> None:
        try:
            self.cancel(unit)
        except OSError:
            if not force:
                raise
        shutil.rmtree(unit.directory, ignore_errors=True)
        with self.units_lock:
            self.units.pop(unit.id, None)

    def stream_results(self, unit: Unit, start: int, out: io.BufferedIOBase) -> None:
        """Sends the unit's output from `start`, following it until the unit has ended and all of it is sent."""
        position = start
        while not unit.stdout.exists():
            if unit.done.is_set() or not unit.directory.exists():  # ended without output, or released
                return
            time.sleep(0.1)
        with contextlib.suppress(FileNotFoundError), unit.stdout.open("rb") as stdout:  # released meanwhile
            while True:
                stdout.seek(position)
                chunk = stdout.read(65536)
                if chunk:
                    out.write(chunk)
                    out.flush()
                    position += len(chunk)
                    continue
                if unit.done.is_set() and position >= unit.stdout.stat().st_size:
                    return
                unit.done.wait(0.1)

    def shutdown(self) -> None:
        with self.units_lock:
            units = list(self.units.values())
        for unit in units:
            self.cancel(unit)


def log(message: str) -> None:
    print(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} receptor-standin: {message}", flush=True)


def _json(data: Any) -> bytes:
    """One answer line as receptor writes it (Go's json.Marshal: compact, keys sorted)."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode() + b"\n"


class Session(socketserver.StreamRequestHandler):
    """One control connection: the greeting, then commands until EOF (or until a command takes the connection)."""

    server: Server

    def handle(self) -> None:
        node = self.server.node
        self.wfile.write(f"Receptor Control, node {node.node}\n".encode())
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode(errors="replace").replace("\r", "").rstrip("\n")
            if not text:
                continue
            try:
                keep_going = self.command(node, text)
            except ControlError as error:
                log(f"{text[:200]!r}: ERROR: {error}")
                self.wfile.write(f"ERROR: {error}\n".encode())
                keep_going = True
            except (BrokenPipeError, ConnectionResetError):
                return
            if not keep_going:
                return

    def command(self, node: StandIn, text: str) -> bool:
        """Runs one command; False when the connection is done with (results streamed)."""
        data: dict[str, Any] | None = None
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise ControlError(str(error)) from error
            if not isinstance(data, dict) or "command" not in data:
                raise ControlError("JSON did not contain a command")
            name, rest = str(data["command"]).lower(), ""
        else:
            name, _, rest = text.partition(" ")
            name = name.lower()
        if name == "status":
            if data is None and rest:
                raise ControlError("status command does not take parameters")
            requested = data.get("requested_fields") if data else None
            self.wfile.write(_json(node.status(requested)))
            return True
        if name != "work":
            raise ControlError("Unknown command")
        if data is not None:
            sub = str(data.get("subcommand", "")).lower()
            params = {k: v for k, v in data.items()}
        else:
            tokens = rest.split(" ")
            sub, params = tokens[0].lower(), self.word_params(tokens)
        log(f"work {sub} {params.get('unitid', '')}".rstrip())
        if sub == "submit":
            return self.submit(node, params)
        if sub == "list":
            ids = [params["unitid"]] if params.get("unitid") else list(node.units)
            self.wfile.write(_json({i: node.find(i).status() for i in ids}))
            return True
        unit = node.find(str(params.get("unitid", "")))
        if sub == "status":
            self.wfile.write(_json(unit.status()))
        elif sub == "cancel":
            node.cancel(unit)
            self.wfile.write(_json({"cancelled": unit.id}))
        elif sub in ("release", "force-release"):
            node.release(unit, force=sub == "force-release")
            self.wfile.write(_json({"released": unit.id}))
        elif sub == "results":
            start = int(params.get("startpos", 0) or 0)
            self.wfile.write(f"Streaming results for work unit {unit.id}\n".encode())
            self.wfile.flush()
            node.stream_results(unit, start, self.wfile)
            return False
        else:
            raise ControlError("bad command")
        return True

    @staticmethod
    def word_params(tokens: list[str]) -> dict[str, Any]:
        sub = tokens[0].lower()
        if sub == "submit":
            if len(tokens) < 3:
                raise ControlError("work submit requires a target node and work type")
            params = {"node": tokens[1], "worktype": tokens[2]}
            if len(tokens) > 3:
                params["params"] = " ".join(tokens[3:])
            return params
        if sub in ("status", "cancel", "release", "force-release"):
            if len(tokens) != 2:
                raise ControlError(f"work {sub} requires a unit ID and nothing after it")
            return {"unitid": tokens[1]}
        if sub == "results":
            if len(tokens) not in (2, 3):
                raise ControlError("work results only takes a unit ID and optional start position")
            try:
                return {"unitid": tokens[1], "startpos": int(tokens[2]) if len(tokens) == 3 else 0}
            except ValueError as error:
                raise ControlError(f"error converting start position to integer: {error}") from error
        if sub == "list":
            return {"unitid": tokens[1]} if len(tokens) > 1 else {}
        return {}

    def submit(self, node: StandIn, params: dict[str, Any]) -> bool:
        if any(not isinstance(v, str) for v in params.values()):
            raise ControlError("submit parameters must all be strings")
        unit = node.allocate(params)
        self.wfile.write(f"Work unit created with ID {unit.id}. Send stdin data and EOF.\n".encode())
        self.wfile.flush()
        with (unit.directory / "stdin").open("wb") as stdin:
            shutil.copyfileobj(self.rfile, stdin)
        node.start(unit)
        self.wfile.write(_json({"result": "Job Started", "unitid": unit.id}))
        return True


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, node: StandIn) -> None:
        self.node = node
        assert node.socket_path is not None
        node.socket_path.parent.mkdir(parents=True, exist_ok=True)
        node.socket_path.unlink(missing_ok=True)
        super().__init__(str(node.socket_path), Session)
        node.socket_path.chmod(node.permissions)


def serve(config_path: Path, data_dir: Path) -> int:
    config = yaml.safe_load(config_path.read_text())
    node = StandIn(config, data_dir)
    server = Server(node)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    log(f"node {node.node} serving {node.socket_path} (work types: {', '.join(node.work_commands)})")
    stopping.wait()
    log("stopping: cancelling running work")
    server.shutdown()
    node.shutdown()
    server.server_close()
    assert node.socket_path is not None
    node.socket_path.unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.receptor_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="receptor's YAML configuration")
    parser.add_argument("--data-dir", type=Path, required=True, help="where work units keep their files")
    args = parser.parse_args(argv)
    return serve(args.config, args.data_dir)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv[1:]))
