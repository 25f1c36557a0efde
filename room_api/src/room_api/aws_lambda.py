"""AWS Lambda entry points of the room API (runtime python3.12; the zip holds the room_api package only).

- `api_handler`: API Gateway HTTP API, payload format 2.0 → `room_api.handlers.Request` → `Api.handle` →
  `{"statusCode", "headers", "body"}`. The API key is a SecureString SSM parameter (ROOM_API_KEY_PARAMETER), read
  on first need and re-read after KEY_TTL_S so that a rotated key takes effect within minutes; it is never logged.
- `cleanup_handler`: EventBridge "ECS Task State Change" events; for a STOPPED task started by the room API
  (startedBy = room name) it removes that room's registry row if the row still belongs to that task.

The backend, the Api and the clients are built once per container (on the first event) and reused.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from room_api.aws import AwsBackend, AwsConfig, ConfigError, Registry, default_client
from room_api.handlers import Api, Request, Response, error_response
from room_api.model import NAME_PATTERN, BadRequest, RoomApiError

log = logging.getLogger("room_api.lambda")
logging.getLogger("room_api").setLevel(logging.INFO)  # the Lambda root logger passes WARNING and up only
# botocore's DEBUG output includes every response body, the decrypted API key of GetParameter among them: never
# let a DEBUG log level (e.g. AWS_LAMBDA_LOG_LEVEL=DEBUG) put the key into the logs.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)

KEY_TTL_S = 300.0


class CachedParameter:
    """An SSM SecureString read lazily and cached for `ttl` seconds (callable: the `key` of Api). When SSM fails
    after the first read, the last value keeps being used; when it never succeeded, the error propagates (the
    request is answered 500). Its repr shows the parameter name only."""

    def __init__(
        self, ssm: Any, name: str, ttl: float = KEY_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ssm = ssm
        self.name = name
        self._ttl = ttl
        self._clock = clock
        self._value: str | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedParameter({self.name!r})"

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._value is not None and now - self._read_at < self._ttl:
                return self._value
            try:
                answer = self._ssm.get_parameter(Name=self.name, WithDecryption=True)
            except Exception as exc:
                if self._value is None:
                    raise
                log.warning(
                    "SSM parameter %s could not be re-read (%s): keeping the cached key", self.name, type(exc).__name__
                )
                self._read_at = now
                return self._value
            self._value = str(answer["Parameter"]["Value"])
            self._read_at = now
            return self._value


# --- per-container state -------------------------------------------------------------------------------------

_lock = threading.Lock()
_api: Api | None = None
_registry: Registry | None = None


def _build_api(env: Mapping[str, str]) -> Api:
    parameter = env.get("ROOM_API_KEY_PARAMETER", "").strip()
    if not parameter:
        raise ConfigError("environment variable ROOM_API_KEY_PARAMETER is not set (the SSM parameter of the API key)")
    open_listing = env.get("ROOM_OPEN_LISTING", "false").strip().lower()
    if open_listing not in ("true", "false"):
        raise ConfigError(f"environment variable ROOM_OPEN_LISTING={open_listing!r} is not true or false")
    backend = AwsBackend(AwsConfig.from_env(env))
    return Api(backend, CachedParameter(default_client("ssm"), parameter), open_listing=open_listing == "true")


def get_api() -> Api:
    """The container's Api (built on first use from the environment)."""
    global _api
    with _lock:
        if _api is None:
            _api = _build_api(os.environ)
        return _api


def get_registry() -> Registry:
    """The cleanup function's registry (needs ROOM_TABLE only)."""
    global _registry
    with _lock:
        if _registry is None:
            table = os.environ.get("ROOM_TABLE", "").strip()
            if not table:
                raise ConfigError(
                    "environment variable ROOM_TABLE is not set (the DynamoDB table of the room registry)"
                )
            _registry = Registry(table, default_client("dynamodb"))
        return _registry


def reset() -> None:
    """Forgets the per-container state (tests: a new environment is a new container)."""
    global _api, _registry
    with _lock:
        _api = None
        _registry = None


# --- API Gateway ---------------------------------------------------------------------------------------------


def request_from_event(event: Mapping[str, Any]) -> Request:
    """The Request of an HTTP API payload-2.0 event (stage prefix removed when the stage is not $default)."""
    context = event.get("requestContext") or {}
    method = str((context.get("http") or {}).get("method") or "GET").upper()
    path = str(event.get("rawPath") or (context.get("http") or {}).get("path") or "/")
    stage = context.get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    params = event.get("queryStringParameters")
    if isinstance(params, dict):
        query = {str(k): str(v) for k, v in params.items()}
    else:
        query = dict(parse_qsl(str(event.get("rawQueryString") or ""), keep_blank_values=True))
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body")
    if raw is None:
        body = b""
    elif event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("bad_json", "the body is marked base64 but is not valid base64") from None
    else:
        body = str(raw).encode("utf-8")
    return Request(method=method, path=path, query=query, headers=headers, body=body)


def _to_lambda(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": response.encoded().decode("utf-8"),
        "isBase64Encoded": False,
    }


def api_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) function."""
    try:
        api = get_api()
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return _to_lambda(error_response(500, "internal", "the room API is misconfigured; see its log"))
    try:
        request = request_from_event(event)
    except RoomApiError as exc:
        return _to_lambda(error_response(exc.status, exc.code, exc.message))
    return _to_lambda(api.handle(request))


# --- EventBridge ---------------------------------------------------------------------------------------------


def handle_task_state_change(event: Mapping[str, Any], reap: Callable[[str, str], bool]) -> dict[str, Any]:
    """The cleanup of one EventBridge "ECS Task State Change" event: reap(room name, task ARN) for a STOPPED task
    started by the room API (startedBy = a room name); other events (other states, tasks not started by the room
    API) are ignored. Logs one line per STOPPED task."""
    detail = event.get("detail") or {}
    status = detail.get("lastStatus")
    name = detail.get("startedBy")
    task_arn = detail.get("taskArn")
    if event.get("detail-type") != "ECS Task State Change" or status != "STOPPED":
        return {"removed": False, "ignored": f"lastStatus {status}"}
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or not isinstance(task_arn, str):
        log.info(json.dumps({"cleanup": "ignored", "startedBy": str(name)[:64], "task": str(task_arn)[:200]}))
        return {"removed": False, "ignored": "not a room task"}
    removed = reap(name, task_arn)
    log.info(
        json.dumps(
            {
                "cleanup": "removed" if removed else "no row of that task",
                "room": name,
                "task": task_arn,
                "stoppedReason": str(detail.get("stoppedReason", ""))[:200],
            }
        )
    )
    return {"removed": removed, "room": name}


def cleanup_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The EventBridge function (rule: source aws.ecs, detail-type "ECS Task State Change", lastStatus STOPPED)."""
    return handle_task_state_change(event, get_registry().reap)
