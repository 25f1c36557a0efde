"""Command line of the room API: `python -m room_api serve ...` (see `python -m room_api serve --help`)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from room_api import __version__
from room_api.handlers import Api
from room_api.local import LocalBackend, LocalConfig
from room_api.server import make_server, serve_in_thread

KEY_ENV = "ROOM_API_KEY"
MIN_KEY_LENGTH = 16

DESCRIPTION = """\
Rooms on demand: an HTTP API that creates, lists and stops game rooms (see room_api/README.md).

  serve   run the API on this host (backend "local": rooms are podman containers, registry in SQLite)

The AWS deployment runs the same handlers in Lambda (room_api.aws_lambda); it has no command here."""

SERVE_EPILOG = f"""\
The API key comes from the environment variable {KEY_ENV} or from --key-file (the file wins); it is never
printed or logged. Clients send it as 'Authorization: Bearer <key>'.

Once listening, the server prints ROOM_API_URL=http://HOST:PORT and READY on stdout. SIGTERM or SIGINT stops it
(and removes its rooms unless --keep-rooms).

example:
  ROOM_API_KEY=$(openssl rand -hex 24) python -m room_api serve --port 15000 --db /var/tmp/rooms.db \\
      --image localhost/godot-fleet/demo-room:1.0.0 --ports 15100-15199 --max-rooms 20 \\
      --room-arg=--max-players=8 --room-arg=--empty-server-timeout=120
  curl -s -H "Authorization: Bearer $ROOM_API_KEY" -X POST -d '{{}}' http://127.0.0.1:15000/create_server"""


def _port_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last if sep else first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST (e.g. 15100-15199), got {text!r}") from None
    if not 1 <= low <= high <= 65535:
        raise argparse.ArgumentTypeError(f"bad port range {text!r}: need 1 <= FIRST <= LAST <= 65535")
    return low, high


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"bad port {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m room_api", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"room_api {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the room API over HTTP",
        description="Run the room API over HTTP (standard library server, one thread per connection).",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    http = serve.add_argument_group("HTTP")
    http.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    http.add_argument("--port", type=_port, default=15000, help="port to listen on (default 15000; 0 = any)")
    http.add_argument(
        "--allow-public", action="store_true", help="allow a non-loopback --host (put TLS in front of it!)"
    )
    http.add_argument("--key-file", type=Path, help=f"file holding the API key (default: ${KEY_ENV})")
    http.add_argument(
        "--open-listing", action="store_true", help="let GET /get_servers answer without the key (default: key)"
    )
    rooms = serve.add_argument_group("rooms (backend local: podman + SQLite)")
    rooms.add_argument("--backend", choices=["local"], default="local", help="room backend (default local)")
    rooms.add_argument("--db", required=True, help="SQLite registry file (created if missing)")
    rooms.add_argument("--image", required=True, help="room image, e.g. localhost/godot-fleet/demo-room:1.0.0")
    rooms.add_argument(
        "--ports", type=_port_range, default=(15100, 15199), help="host UDP port range FIRST-LAST (15100-15199)"
    )
    rooms.add_argument("--publish-ip", type=_ip, default="127.0.0.1", help="host address rooms publish on")
    rooms.add_argument("--public-ip", type=_ip, help="address reported to clients (default: --publish-ip)")
    rooms.add_argument("--container-port", type=_port, default=12077, help="UDP port inside the room (12077)")
    rooms.add_argument("--max-rooms", type=_positive, default=20, help="room limit (default 20)")
    rooms.add_argument(
        "--room-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="game argument replacing the image's CMD (repeatable; write --room-arg=--empty-server-timeout=60)",
    )
    rooms.add_argument("--api-id", default="local", help="id of this API instance (a-z0-9, max 16; default local)")
    rooms.add_argument("--build-version", default="", help="version reported on rooms (default: the image tag)")
    rooms.add_argument("--memory", default="512m", help="memory limit per room (default 512m; '' = none)")
    rooms.add_argument("--pids-limit", type=_positive, default=512, help="process/thread limit per room (512)")
    rooms.add_argument("--no-read-only", action="store_true", help="do not run rooms with a read-only root")
    rooms.add_argument("--keep-rooms", action="store_true", help="leave rooms running when the server stops")
    rooms.add_argument("--podman", default="podman", help="podman executable (default podman)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _read_key(key_file: Path | None) -> str:
    if key_file is not None:
        try:
            return key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"error: cannot read --key-file {key_file}: {exc.strerror}") from None
    return os.environ.get(KEY_ENV, "").strip()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if not _is_loopback(args.host) and not args.allow_public:
        raise SystemExit(f"error: --host {args.host} is not a loopback address; add --allow-public to serve on it")
    key = _read_key(args.key_file)
    if not key:
        source = f"--key-file {args.key_file}" if args.key_file else f"${KEY_ENV}"
        raise SystemExit(f"error: no API key: {source} is empty or unset; refusing to start without a key")
    if len(key) < MIN_KEY_LENGTH:
        logging.getLogger("room_api").warning("the API key is shorter than %d characters", MIN_KEY_LENGTH)
    config = LocalConfig(
        db_path=args.db,
        image=args.image,
        ports=args.ports,
        publish_ip=args.publish_ip,
        public_ip=args.public_ip,
        max_rooms=args.max_rooms,
        room_args=tuple(args.room_arg),
        container_port=args.container_port,
        api_id=args.api_id,
        build_version=args.build_version,
        read_only=not args.no_read_only,
        memory=args.memory or None,
        pids_limit=args.pids_limit,
        stop_rooms_on_close=not args.keep_rooms,
        podman=args.podman,
    )
    try:
        backend = LocalBackend(config)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        backend.start()
        try:
            server = make_server(Api(backend, lambda: key, open_listing=args.open_listing), args.host, args.port)
        except OSError as exc:
            raise SystemExit(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
        host, port = str(server.server_address[0]), int(server.server_address[1])
        thread = serve_in_thread(server)
        url_host = f"[{host}]" if ":" in host else host
        print(f"ROOM_API_URL=http://{url_host}:{port}", flush=True)
        print("READY", flush=True)
        while not stop.wait(1.0):
            pass
        logging.getLogger("room_api").info("shutting down")
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    finally:
        backend.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
