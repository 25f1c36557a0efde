"""The local HTTP server: the standard library's ThreadingHTTPServer in front of `room_api.handlers.Api`."""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from room_api.handlers import MAX_BODY_BYTES, Api, Request, Response, error_response

log = logging.getLogger("room_api.server")

#: Seconds a connection may stay idle (slow clients cannot hold threads for long).
CONNECTION_TIMEOUT = 30


class _RoomApiRequestHandler(BaseHTTPRequestHandler):
    server_version = "room_api"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT
    api: Api  # set on the subclass made by make_server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        # The Api logs one line per request; this only carries the base class's protocol errors.
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if "transfer-encoding" in headers:
            self._send(error_response(411, "length_required", "send the body with a Content-Length"), close=True)
            return
        length_text = headers.get("content-length", "0").strip()
        if not length_text.isdigit() or len(length_text) > 12:
            self._send(error_response(400, "bad_request", "invalid Content-Length"), close=True)
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            # Not read: refuse before spending memory on it, and drop the connection (the body is still in flight).
            message = f"request bodies are limited to {MAX_BODY_BYTES} bytes"
            self._send(error_response(413, "body_too_large", message), close=True)
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)
        if len(query) != len(pairs):
            self._send(error_response(400, "bad_query", "each query parameter may appear only once"))
            return
        request = Request(self.command.upper(), split.path or "/", query, headers, body)
        self._send(self.api.handle(request))

    def _send(self, response: Response, close: bool = False) -> None:
        data = b"" if self.command == "HEAD" else response.encoded()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.encoded())))
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)


class RoomApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of clients (20 creates at once) got connection resets
    request_queue_size = 128
    allow_reuse_address = True


class RoomApiServer6(RoomApiServer):
    address_family = socket.AF_INET6


def make_server(api: Api, host: str, port: int) -> RoomApiServer:
    """An HTTP server bound to host:port (port 0: any free port; see server.server_address)."""
    handler = type("RoomApiRequestHandler", (_RoomApiRequestHandler,), {"api": api})
    if ":" in host:
        return RoomApiServer6((host, port), handler)
    return RoomApiServer((host, port), handler)


def serve_in_thread(server: RoomApiServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
    thread.start()
    return thread
