"""The HTTP side: a CONNECT proxy on loopback that terminates TLS for the two Azure hosts it serves.

Clients reach it with `HTTPS_PROXY=http://127.0.0.1:PORT` and trust it with `REQUESTS_CA_BUNDLE`. A CONNECT to any
other host is refused (403), so nothing the double's clients send can leave the machine. Plain HTTP requests to
`/_double/...` on the same port are the inspection API for tests.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import entra
from .arm import Arm, Config
from .entra import Tokens
from .resource import Request, Response
from .store import State
from .tls import SERVED_HOSTS, TlsFiles, create_tls_files

MANAGEMENT, LOGIN = SERVED_HOSTS


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], double: ArmDouble) -> None:
        self.double = double
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    tunnel_host: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.double.verbose:
            super().log_message(format, *args)

    # --- CONNECT ---------------------------------------------------------------------------------------------------
    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        host = host.strip("[]").lower()
        if host not in SERVED_HOSTS or port != "443":
            self.server.double.record(host, "CONNECT", self.path, 403)
            self._send_raw(
                403, b"The ARM test double only tunnels to management.azure.com and login.microsoftonline.com.\n"
            )
            self.close_connection = True
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        try:
            tls = self.server.double.ssl_context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.tunnel_host = host
        self.close_connection = False

    # --- requests -----------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_PATCH(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self) -> None:
        raw = self._read_body()
        url = urlsplit(self.path)
        double = self.server.double
        if self.tunnel_host is None:
            if url.scheme or not url.path.startswith("/_double/"):
                double.record(url.netloc or "", self.command, self.path, 403)
                self._send_raw(403, b"The ARM test double is not an open proxy.\n")
                return
            status, body = double.inspect(self.command, url.path, raw)
            self._send_json(status, body, {})
            return
        query = {k.lower(): v for k, v in parse_qsl(url.query, keep_blank_values=True)}
        if self.tunnel_host == LOGIN:
            status, body = entra.handle(double.tokens, self.command, url.path, query, raw)
            double.record(LOGIN, self.command, url.path, status)
            self._send_json(status, body, {})
            return
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError as exc:
            response = Response(
                400, {"error": {"code": "InvalidRequestContent", "message": f"The request content was invalid: {exc}."}}
            )
        else:
            request = Request(
                method=self.command,
                path=url.path,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=parsed,
            )
            response = double.arm.handle(request)
        double.record(MANAGEMENT, self.command, url.path, response.status, query.get("api-version"))
        self._send_json(response.status, response.body, response.headers)

    def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None or status == 204 else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _send_raw(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class ArmDouble:
    """The ARM test double: `start()` binds 127.0.0.1:port (0 = any free port) and serves in a daemon thread."""

    def __init__(
        self,
        ca_dir: Path,
        *,
        port: int = 0,
        state_file: Path | None = None,
        config: Config | None = None,
        verbose: bool = False,
    ) -> None:
        self.ca_dir = Path(ca_dir)
        self.port = port
        self.verbose = verbose
        self.state = State(state_file)
        self.tokens = Tokens()
        self.arm = Arm(self.state, config or Config(), self.tokens)
        self.tls: TlsFiles | None = None
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------------------------------------
    def start(self) -> ArmDouble:
        self.tls = create_tls_files(self.ca_dir)
        self.ssl_context = self.tls.server_context()
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="arm-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ArmDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a client process needs to reach the double (credentials are the caller's business)."""
        assert self.tls is not None, "start() first"
        bundle = str(self.tls.ca_bundle)
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": bundle,
        }

    # --- bookkeeping --------------------------------------------------------------------------------------------------
    def record(self, host: str, method: str, path: str, status: int, api_version: str | None = None) -> None:
        entry: dict[str, Any] = {
            "time": round(time.time(), 3),
            "host": host,
            "method": method,
            "path": path,
            "status": status,
        }
        if api_version:
            entry["apiVersion"] = api_version
        self.state.log(entry)

    def inspect(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/_double/health":
            return 200, {"status": "ok", "port": self.port}
        if method == "GET" and path == "/_double/resources":
            return 200, {"value": self.arm.all_views()}
        if method == "GET" and path == "/_double/requests":
            with self.state.lock:
                return 200, {"value": list(self.state.requests)}
        if method == "DELETE" and path == "/_double/requests":
            with self.state.lock:
                self.state.requests.clear()
            return 200, {"value": []}
        if method == "POST" and path == "/_double/reset":
            self.state.reset()
            return 200, {"status": "reset"}
        return 404, {"error": {"code": "NotFound", "message": f"No inspection endpoint {method} {path}."}}
