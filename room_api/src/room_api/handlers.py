"""Framework-free HTTP handling of the room API (the contract in room_api/README.md).

The local server (`room_api.server`) and the AWS Lambda (`room_api.aws_lambda`) both turn their input into a
`Request`, call `Api.handle` and send back the `Response`. `Request.path` is the path as sent (percent-encoded,
without the query string); `Request.query` holds the decoded query parameters; header names are lowercase.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from room_api.auth import key_matches
from room_api.backend import Backend
from room_api.model import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    BadRequest,
    NameTaken,
    Room,
    RoomApiError,
    Unauthorized,
    check_name,
    random_name,
)

log = logging.getLogger("room_api.http")

#: Largest accepted request body (bytes); larger bodies get 413.
MAX_BODY_BYTES = 16 * 1024
#: Attempts at a free random name when the request names no room.
RANDOM_NAME_ATTEMPTS = 5
JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}
QUERY_FIELDS = frozenset({"name", "limit", "page_token"})


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # keys lowercased
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": code, "message": message}, {**JSON_HEADERS, **(headers or {})})


class MethodNotAllowed(RoomApiError):
    status = 405

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__("method_not_allowed", f"use {' or '.join(allowed)} here")
        self.allowed = allowed


class PayloadTooLarge(RoomApiError):
    status = 413


class NoRoute(RoomApiError):
    status = 404


Handler = Callable[[Request, str | None], Response]


class Api:
    """The room API over one backend. `key` returns the configured API key (called per request, so it can be
    read lazily and cached by the caller); an empty or missing key refuses every authenticated request."""

    def __init__(self, backend: Backend, key: Callable[[], str], open_listing: bool = False) -> None:
        self.backend = backend
        self.key = key
        self.open_listing = open_listing

    # -- entry point ------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            response = self._dispatch(request)
        except MethodNotAllowed as exc:
            response = error_response(exc.status, exc.code, exc.message, {"allow": ", ".join(exc.allowed)})
        except Unauthorized as exc:
            response = error_response(exc.status, exc.code, exc.message, {"www-authenticate": 'Bearer realm="rooms"'})
        except RoomApiError as exc:
            response = error_response(exc.status, exc.code, exc.message)
        except Exception:
            # The traceback names code and values of the failure, never the request headers (the key).
            log.exception("internal error on %s %s", _loggable(request.method, 16), _loggable(request.path))
            response = error_response(500, "internal", "internal error; see the server log")
        elapsed_ms = (time.monotonic() - started) * 1000.0
        log.info("%s %s %d %.1fms", _loggable(request.method, 16), _loggable(request.path), response.status, elapsed_ms)
        return response

    # -- routing ----------------------------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        routes: dict[str, Handler]
        param: str | None = None
        path = request.path
        if path == "/health":
            routes = {"GET": self._health}
        elif path == "/create_server":
            routes = {"POST": self._create}
        elif path == "/get_servers":
            routes = {"GET": self._list}
        elif path == "/stop_server":
            routes = {"POST": self._stop}
        elif path.startswith("/servers/") and path.count("/") == 2 and len(path) > len("/servers/"):
            routes = {"DELETE": self._delete}
            param = unquote(path[len("/servers/") :])
        else:
            raise NoRoute("no_route", f"no route {path[:100]!r}; see the API documentation (room_api/README.md)")
        handler = routes.get(request.method.upper())
        if handler is None:
            raise MethodNotAllowed(tuple(routes))
        if len(request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge("body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        return handler(request, param)

    def _authorize(self, request: Request) -> None:
        expected = self.key()
        if not expected:
            log.error("no API key is configured: refusing the request")
        if not key_matches(request.headers.get("authorization"), expected):
            raise Unauthorized("unauthorized", "send the API key as 'Authorization: Bearer <key>'")

    # -- routes -----------------------------------------------------------------------------------------------

    def _health(self, request: Request, _name: str | None) -> Response:
        return Response(
            200, {"status": "ok", "backend": self.backend.kind, "build_version": self.backend.build_version}
        )

    def _create(self, request: Request, _name: str | None) -> Response:
        self._authorize(request)
        body = _json_object(request.body, allowed={"name"}, empty_ok=True)
        room = self.backend.create(check_name(body["name"])) if "name" in body else self._create_random()
        return Response(201, {"room": room.to_json()})

    def _create_random(self) -> Room:
        for attempt in range(RANDOM_NAME_ATTEMPTS):
            try:
                return self.backend.create(random_name())
            except NameTaken:
                if attempt == RANDOM_NAME_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _list(self, request: Request, _name: str | None) -> Response:
        if not self.open_listing:
            self._authorize(request)
        query = {k: v for k, v in request.query.items() if v != ""}  # `?name=&limit=` means "not given"
        unknown = sorted(set(request.query) - QUERY_FIELDS)
        if unknown:
            raise BadRequest(
                "bad_query", f"unknown query parameter(s) {', '.join(unknown)[:200]}; use name, limit, page_token"
            )
        if "name" in query:
            if "limit" in query or "page_token" in query:
                raise BadRequest("bad_query", "name cannot be combined with limit or page_token")
            room = self.backend.get(check_name(query["name"]))
            return Response(200, {"rooms": [room.to_json()] if room else [], "next_page_token": None})
        page = self.backend.list(_limit(query.get("limit")), query.get("page_token"))
        return Response(200, {"rooms": [r.to_json() for r in page.rooms], "next_page_token": page.next_page_token})

    def _stop(self, request: Request, _name: str | None) -> Response:
        self._authorize(request)
        body = _json_object(request.body, allowed={"name"}, empty_ok=False)
        if "name" not in body:
            raise BadRequest("bad_body", 'the body must be {"name": "<room name>"}')
        return self._stop_room(check_name(body["name"]))

    def _delete(self, request: Request, name: str | None) -> Response:
        self._authorize(request)
        if request.body.strip():
            raise BadRequest("bad_body", "DELETE /servers/{name} takes no body")
        return self._stop_room(check_name(name))

    def _stop_room(self, name: str) -> Response:
        return Response(200, {"room": self.backend.stop(name).to_json()})


def _json_object(body: bytes, allowed: set[str], empty_ok: bool) -> dict[str, Any]:
    if not body.strip():
        if empty_ok:
            return {}
        raise BadRequest("bad_body", "the request needs a JSON object body")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("bad_json", f"the body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise BadRequest("bad_body", f"the body must be a JSON object, not {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        fields = ", ".join(repr(k)[:40] for k in unknown[:5])
        raise BadRequest("bad_body", f"unknown field(s) {fields}; allowed: {', '.join(sorted(allowed))}")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE_SIZE
    if len(text) > 3 or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise BadRequest(
            "bad_limit", f"limit must be an integer from 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})"
        )
    return int(text)


def _loggable(text: str, limit: int = 200) -> str:
    """Client-controlled text made safe for one log line (no control characters, bounded length)."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
