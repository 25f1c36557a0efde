"""HTTP mapping of room_api.handlers (and the local HTTP server): auth, JSON and body errors, routes, 404/405/413,
query parameters, error codes, logging.

The backend here is an in-memory fake that only records calls and raises what a test asks for: these tests cover
the pure HTTP mapping. The real backends (podman + SQLite, ECS + DynamoDB) are covered by test_contract.py, which
runs the same contract through these handlers against each of them.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from room_api.auth import bearer_token, key_matches
from room_api.handlers import MAX_BODY_BYTES, Api, Request, Response
from room_api.model import (
    BadRequest,
    CapacityReached,
    NameTaken,
    NotFound,
    Page,
    Room,
    RoomApiError,
    StartFailed,
)
from room_api.server import RoomApiServer, make_server, serve_in_thread

KEY = "test-key-7f3a9c0e5b1d2468"
HTTP_PORT = 15001


def room(name: str, status: str = "running") -> Room:
    return Room(name, "127.0.0.1", 15100, status, "1.0.0", "2026-11-21T10:00:00Z")  # type: ignore[arg-type]


@dataclass
class FakeBackend:
    """Records calls; raises `fail` (an exception) from every call when set."""

    kind: str = "fake"
    build_version: str = "1.0.0"
    calls: list[tuple[str, object]] = field(default_factory=list)
    fail: Exception | None = None
    taken: set[str] = field(default_factory=set)
    rooms: dict[str, Room] = field(default_factory=dict)

    def _call(self, what: str, arg: object) -> None:
        self.calls.append((what, arg))
        if self.fail is not None:
            raise self.fail

    def create(self, name: str) -> Room:
        self._call("create", name)
        if name in self.taken or name in self.rooms:
            raise NameTaken("name_taken", "taken")
        self.rooms[name] = room(name)
        return self.rooms[name]

    def get(self, name: str) -> Room | None:
        self._call("get", name)
        return self.rooms.get(name)

    def list(self, limit: int, page_token: str | None) -> Page:
        self._call("list", (limit, page_token))
        return Page(list(self.rooms.values())[:limit], "next" if len(self.rooms) > limit else None)

    def stop(self, name: str) -> Room:
        self._call("stop", name)
        if name not in self.rooms:
            raise NotFound("not_found", f"no room {name!r}")
        return room(name, "stopping")

    def reap(self, name: str, runtime_id: str) -> bool:
        return self.rooms.pop(name, None) is not None


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def api(backend: FakeBackend) -> Api:
    return Api(backend, lambda: KEY)


def req(
    method: str,
    path: str,
    body: object = None,
    query: dict[str, str] | None = None,
    auth: str | None = f"Bearer {KEY}",
    raw: bytes | None = None,
) -> Request:
    headers = {"authorization": auth} if auth is not None else {}
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Request(method, path, query or {}, headers, data)


def check_error(response: Response, status: int, code: str) -> None:
    assert response.status == status, response.body
    assert response.body["error"] == code
    assert isinstance(response.body["message"], str) and response.body["message"]
    assert response.headers["content-type"] == "application/json"


# -- auth -------------------------------------------------------------------------------------------------------


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in (None, "", "Bearer", "Bearer ", "Basic abc", "abc", "Bearer a b"):
        assert bearer_token(bad) is None, bad


def test_key_matches_refuses_without_a_configured_key() -> None:
    assert key_matches(f"Bearer {KEY}", KEY)
    assert not key_matches(f"Bearer {KEY}x", KEY)
    assert not key_matches("Bearer x", "")
    assert not key_matches("Bearer ", "")
    assert not key_matches(None, "")
    assert not key_matches(None, None)


@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY} extra", KEY])
def test_wrong_or_missing_key_is_401_and_backend_untouched(auth: str | None, api: Api, backend: FakeBackend) -> None:
    for request in (
        req("POST", "/create_server", {"name": "abc"}, auth=auth),
        req("GET", "/get_servers", auth=auth),
        req("POST", "/stop_server", {"name": "abc"}, auth=auth),
        req("DELETE", "/servers/abc", auth=auth),
    ):
        response = api.handle(request)
        check_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert backend.calls == []


@pytest.mark.parametrize("configured", ["", None])
def test_empty_configured_key_refuses_everything(configured: str | None, backend: FakeBackend) -> None:
    api = Api(backend, lambda: configured)  # type: ignore[arg-type,return-value]
    for auth in (None, "Bearer ", "Bearer x", "Bearer None"):
        check_error(api.handle(req("POST", "/create_server", {}, auth=auth)), 401, "unauthorized")
    assert api.handle(req("GET", "/health", auth=None)).status == 200
    assert backend.calls == []


def test_key_is_read_per_request(backend: FakeBackend) -> None:
    keys = iter(["first-key-0000000000", "second-key-000000000"])
    current = {"key": next(keys)}
    api = Api(backend, lambda: current["key"])
    assert api.handle(req("GET", "/get_servers", auth="Bearer first-key-0000000000")).status == 200
    current["key"] = next(keys)
    assert api.handle(req("GET", "/get_servers", auth="Bearer first-key-0000000000")).status == 401
    assert api.handle(req("GET", "/get_servers", auth="Bearer second-key-000000000")).status == 200


def test_open_listing(backend: FakeBackend) -> None:
    backend.rooms["abc"] = room("abc")
    closed = Api(backend, lambda: KEY)
    opened = Api(backend, lambda: KEY, open_listing=True)
    assert closed.handle(req("GET", "/get_servers", auth=None)).status == 401
    assert opened.handle(req("GET", "/get_servers", auth=None)).status == 200
    assert opened.handle(req("GET", "/get_servers", query={"name": "abc"}, auth=None)).status == 200
    # only the listing is open
    check_error(opened.handle(req("POST", "/create_server", {}, auth=None)), 401, "unauthorized")
    check_error(opened.handle(req("POST", "/stop_server", {"name": "abc"}, auth=None)), 401, "unauthorized")


# -- routes -----------------------------------------------------------------------------------------------------


def test_health_without_key(api: Api) -> None:
    response = api.handle(req("GET", "/health", auth=None))
    assert response.status == 200
    assert response.body == {"status": "ok", "backend": "fake", "build_version": "1.0.0"}


@pytest.mark.parametrize(
    "path", ["/", "/nope", "/health/", "/servers", "/servers/", "/servers/a/b", "/create_server/x"]
)
def test_unknown_path_is_404(path: str, api: Api) -> None:
    check_error(api.handle(req("GET", path)), 404, "no_route")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/health", "GET"),
        ("GET", "/create_server", "POST"),
        ("PUT", "/create_server", "POST"),
        ("POST", "/get_servers", "GET"),
        ("GET", "/stop_server", "POST"),
        ("GET", "/servers/abc", "DELETE"),
        ("HEAD", "/health", "GET"),
    ],
)
def test_wrong_method_is_405(method: str, path: str, allow: str, api: Api, backend: FakeBackend) -> None:
    response = api.handle(req(method, path, {}))
    check_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow
    assert backend.calls == []


def test_body_over_16_kib_is_413(api: Api, backend: FakeBackend) -> None:
    body = json.dumps({"name": "abc", "pad": "x" * MAX_BODY_BYTES}).encode()
    check_error(api.handle(req("POST", "/create_server", raw=body)), 413, "body_too_large")
    check_error(api.handle(req("POST", "/create_server", raw=body, auth=None)), 413, "body_too_large")
    just_fits = b" " * (MAX_BODY_BYTES - 2) + b"{}"
    assert api.handle(req("POST", "/create_server", raw=just_fits)).status == 201
    assert [c[0] for c in backend.calls] == ["create"]


# -- create -----------------------------------------------------------------------------------------------------


def test_create_named(api: Api, backend: FakeBackend) -> None:
    response = api.handle(req("POST", "/create_server", {"name": "abc"}))
    assert response.status == 201
    assert response.body == {"room": room("abc").to_json()}
    assert backend.calls == [("create", "abc")]


@pytest.mark.parametrize("raw", [b"", b"{}", b"  {}\n"])
def test_create_random_name(raw: bytes, api: Api, backend: FakeBackend) -> None:
    response = api.handle(req("POST", "/create_server", raw=raw))
    assert response.status == 201
    assert response.body["room"]["name"].startswith("room-")


def test_random_name_retries_on_collision(api: Api, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    names = iter(["room-aaaaaaaa", "room-bbbbbbbb", "room-cccccccc"])
    monkeypatch.setattr("room_api.handlers.random_name", lambda: next(names))
    backend.taken = {"room-aaaaaaaa", "room-bbbbbbbb"}
    response = api.handle(req("POST", "/create_server", {}))
    assert response.status == 201
    assert response.body["room"]["name"] == "room-cccccccc"


def test_random_name_gives_up(api: Api, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("room_api.handlers.random_name", lambda: "room-aaaaaaaa")
    backend.taken = {"room-aaaaaaaa"}
    check_error(api.handle(req("POST", "/create_server", {})), 409, "name_taken")
    assert len(backend.calls) == 5


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", "bad_json"),
        (b"not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b'{"name": NaN}', "bad_json"),
        (b"[]", "bad_body"),
        (b'"abc"', "bad_body"),
        (b"null", "bad_body"),
        (b"42", "bad_body"),
        (b'{"name": "abc", "size": 3}', "bad_body"),
        (b'{"nam": "abc"}', "bad_body"),
        (b'{"name": null}', "invalid_name"),
        (b'{"name": 12345}', "invalid_name"),
        (b'{"name": "ab"}', "invalid_name"),
        (b'{"name": "Abc"}', "invalid_name"),
        (b'{"name": "a--b"}', "invalid_name"),
        (b'{"name": "-abc"}', "invalid_name"),
        (b'{"name": "abc-"}', "invalid_name"),
        (b'{"name": "' + b"a" * 33 + b'"}', "invalid_name"),
        (b'{"name": "caf\\u00e9"}', "invalid_name"),
    ],
)
def test_create_bad_bodies(raw: bytes, code: str, api: Api, backend: FakeBackend) -> None:
    check_error(api.handle(req("POST", "/create_server", raw=raw)), 400, code)
    assert backend.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NameTaken("name_taken", "x"), 409),
        (CapacityReached("capacity", "x"), 429),
        (StartFailed("start_failed", "x"), 503),
        (BadRequest("invalid_name", "x"), 400),
        (NotFound("not_found", "x"), 404),
        (RoomApiError("odd", "x"), 500),
    ],
)
def test_backend_errors_map_to_status(error: RoomApiError, status: int, api: Api, backend: FakeBackend) -> None:
    backend.fail = error
    check_error(api.handle(req("POST", "/create_server", {"name": "abc"})), status, error.code)


def test_unexpected_error_is_500_and_logged_without_secrets(
    api: Api, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.fail = RuntimeError("disk on fire")
    with caplog.at_level(logging.DEBUG, logger="room_api"):
        response = api.handle(req("POST", "/create_server", {"name": "abc"}))
    assert response.status == 500
    assert response.body == {"error": "internal", "message": "internal error; see the server log"}
    assert "disk on fire" in caplog.text  # the traceback is in the log ...
    assert "Traceback" in caplog.text
    assert KEY not in caplog.text  # ... the key and the header are not
    assert "authorization" not in caplog.text.lower()
    assert "disk on fire" not in json.dumps(response.body)


def test_key_source_failure_is_500(backend: FakeBackend, caplog: pytest.LogCaptureFixture) -> None:
    def broken_key() -> str:
        raise OSError("parameter store unreachable")

    api = Api(backend, broken_key)
    with caplog.at_level(logging.ERROR, logger="room_api"):
        check_error(api.handle(req("POST", "/create_server", {})), 500, "internal")
    assert api.handle(req("GET", "/health", auth=None)).status == 200
    assert backend.calls == []


def test_one_log_line_per_request_without_headers(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="room_api.http"):
        api.handle(req("POST", "/create_server", {"name": "abc"}))
        api.handle(req("GET", "/get_servers", query={"page_token": "tok"}, auth="Bearer nope"))
    lines = [r.getMessage() for r in caplog.records if r.name == "room_api.http"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /create_server 201 ") and lines[0].endswith("ms")
    assert lines[1].startswith("GET /get_servers 401 ")
    assert KEY not in caplog.text and "nope" not in caplog.text and "Bearer" not in caplog.text


# -- get_servers ------------------------------------------------------------------------------------------------


def test_list_default_and_explicit_limits(api: Api, backend: FakeBackend) -> None:
    assert api.handle(req("GET", "/get_servers")).body == {"rooms": [], "next_page_token": None}
    api.handle(req("GET", "/get_servers", query={"limit": "1", "page_token": "abc"}))
    api.handle(req("GET", "/get_servers", query={"limit": "100"}))
    api.handle(req("GET", "/get_servers", query={"limit": "", "page_token": "", "name": ""}))  # empty = not given
    assert [c for c in backend.calls if c[0] == "list"] == [
        ("list", (50, None)),
        ("list", (1, "abc")),
        ("list", (100, None)),
        ("list", (50, None)),
    ]


def test_list_pages(api: Api, backend: FakeBackend) -> None:
    for name in ("aaa", "bbb", "ccc"):
        backend.rooms[name] = room(name)
    response = api.handle(req("GET", "/get_servers", query={"limit": "2"}))
    assert [r["name"] for r in response.body["rooms"]] == ["aaa", "bbb"]
    assert response.body["next_page_token"] == "next"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "abc", " 5", "٣", "9" * 5000])
def test_bad_limit(limit: str, api: Api, backend: FakeBackend) -> None:
    check_error(api.handle(req("GET", "/get_servers", query={"limit": limit})), 400, "bad_limit")
    assert backend.calls == []


def test_list_by_name(api: Api, backend: FakeBackend) -> None:
    backend.rooms["abc"] = room("abc")
    found = api.handle(req("GET", "/get_servers", query={"name": "abc"}))
    assert found.body == {"rooms": [room("abc").to_json()], "next_page_token": None}
    missing = api.handle(req("GET", "/get_servers", query={"name": "xyz"}))
    assert missing.status == 200
    assert missing.body == {"rooms": [], "next_page_token": None}
    check_error(api.handle(req("GET", "/get_servers", query={"name": "A B"})), 400, "invalid_name")
    check_error(api.handle(req("GET", "/get_servers", query={"name": "abc", "limit": "5"})), 400, "bad_query")
    check_error(api.handle(req("GET", "/get_servers", query={"nme": "abc"})), 400, "bad_query")
    assert [c[0] for c in backend.calls] == ["get", "get"]


def test_backend_page_token_error_passes_through(api: Api, backend: FakeBackend) -> None:
    backend.fail = BadRequest("bad_page_token", "no such token")
    check_error(api.handle(req("GET", "/get_servers", query={"page_token": "zzz"})), 400, "bad_page_token")


# -- stop -------------------------------------------------------------------------------------------------------


def test_stop_and_delete(api: Api, backend: FakeBackend) -> None:
    backend.rooms["abc"] = room("abc")
    stopped = api.handle(req("POST", "/stop_server", {"name": "abc"}))
    assert stopped.status == 200
    assert stopped.body == {"room": room("abc", "stopping").to_json()}
    deleted = api.handle(req("DELETE", "/servers/abc"))
    assert deleted.status == 200
    assert deleted.body == stopped.body
    check_error(api.handle(req("DELETE", "/servers/xyz")), 404, "not_found")
    check_error(api.handle(req("POST", "/stop_server", {"name": "xyz"})), 404, "not_found")
    assert backend.calls == [("stop", "abc"), ("stop", "abc"), ("stop", "xyz"), ("stop", "xyz")]


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"", "bad_body"), (b"{}", "bad_body"), (b"[", "bad_json"), (b'{"name": "x"}', "invalid_name")],
)
def test_stop_bad_bodies(raw: bytes, code: str, api: Api, backend: FakeBackend) -> None:
    check_error(api.handle(req("POST", "/stop_server", raw=raw)), 400, code)
    assert backend.calls == []


@pytest.mark.parametrize("path", ["/servers/A", "/servers/a%2Fb", "/servers/%00abc", "/servers/ab"])
def test_delete_bad_names(path: str, api: Api, backend: FakeBackend) -> None:
    check_error(api.handle(req("DELETE", path)), 400, "invalid_name")
    assert backend.calls == []


def test_delete_name_is_percent_decoded(api: Api, backend: FakeBackend) -> None:
    backend.rooms["abc"] = room("abc")
    assert api.handle(req("DELETE", "/servers/%61bc")).status == 200


def test_delete_with_body_is_400(api: Api) -> None:
    check_error(api.handle(req("DELETE", "/servers/abc", {"name": "abc"})), 400, "bad_body")


# -- the HTTP server (standard library) over the same handlers ----------------------------------------------------


@pytest.fixture
def server(api: Api) -> Iterator[RoomApiServer]:
    srv = make_server(api, "127.0.0.1", HTTP_PORT)
    thread = serve_in_thread(srv)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def send(
    method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    try:
        conn.request(method, target, body=body, headers={"Authorization": f"Bearer {KEY}", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_server_round_trip(server: RoomApiServer, backend: FakeBackend) -> None:
    status, headers, data = send("POST", "/create_server", b'{"name": "abc"}', {"Content-Type": "application/json"})
    assert status == 201
    assert headers["content-type"] == "application/json"
    assert json.loads(data) == {"room": room("abc").to_json()}
    status, _, data = send("GET", "/get_servers?limit=5&page_token=")
    assert status == 200
    assert backend.calls[-1] == ("list", (5, None))
    status, _, data = send("GET", "/get_servers?name=abc&name=abd")
    assert (status, json.loads(data)["error"]) == (400, "bad_query")
    status, headers, data = send("HEAD", "/health")
    assert (status, headers["allow"], data) == (405, "GET", b"")
    status, _, data = send("DELETE", "/servers/abc")
    assert (status, json.loads(data)["room"]["status"]) == (200, "stopping")


def test_server_refuses_large_body_without_reading_it(server: RoomApiServer, backend: FakeBackend) -> None:
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10) as sock:
        head = (
            "POST /create_server HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
        )
        sock.sendall(head.encode())  # the body is never sent
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer.lower()
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "body_too_large"
    assert backend.calls == []


def test_server_refuses_chunked_bodies(server: RoomApiServer) -> None:
    status, _, data = send("POST", "/create_server", b"{}", {"Transfer-Encoding": "chunked"})
    assert (status, json.loads(data)["error"]) == (411, "length_required")


def test_log_lines_cannot_be_forged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="room_api.http"):
        api.handle(req("GET", "/x\nGET /health 200 0.1ms"))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "room_api.http"]
    assert "\n" not in line and line.startswith("GET /x?GET /health 200 0.1ms 404 ")
