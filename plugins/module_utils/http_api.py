# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API Gateway v2 HTTP APIs: the wanted state from module input, the state read from AWS, the change plan between
them (all pure), and HttpApiManager, which reads and changes an API through an AnsibleAWSModule's client.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ansible_collections.amazon.aws.plugins.module_utils.iam import get_aws_account_info
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing SDK
    import botocore.exceptions

METHODS = ("ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_SEGMENT = r"(?:[A-Za-z0-9._~!$&'()*,;=:@%-]+|\{[A-Za-z0-9._-]+\})"
_GREEDY = r"\{[A-Za-z0-9._-]+\+\}"
ROUTE_KEY = re.compile(rf"^(?P<method>[A-Z]+) (?P<path>/|(?:/{_SEGMENT})*/{_GREEDY}|(?:/{_SEGMENT})+)$")
LAMBDA_ARN = re.compile(
    r"^(?P<function>arn:aws[a-z-]*:lambda:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:function:[A-Za-z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
# REST-style Lambda URI; HTTP APIs echo the function ARN they were given, this form is accepted when reading
INVOCATIONS_URI = re.compile(r"^arn:aws[a-z-]*:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<arn>.+)/invocations$")
LOG_GROUP_ARN = re.compile(r"^arn:aws[a-z-]*:logs:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:log-group:[^:*]+$")
CORS_METHODS = (*METHODS[1:], "*")
DEFAULT_TIMEOUT_MS = 30000


class InputError(ValueError):
    """Invalid module input, found before any AWS call."""


@dataclass(frozen=True)
class IntegrationSpec:
    payload_format_version: str
    timeout_ms: int


@dataclass(frozen=True)
class StageSpec:
    name: str
    auto_deploy: bool | None
    throttling_burst_limit: int | None
    throttling_rate_limit: float | None
    detailed_metrics_enabled: bool
    access_log: tuple[str, str] | None  # (destination ARN, format)


@dataclass
class Desired:
    name: str
    description: str | None  # None: not managed
    tags: dict[str, str] | None  # None: not managed
    purge_tags: bool
    disable_execute_api_endpoint: bool
    cors_managed: bool
    cors: dict[str, Any] | None  # normalized (see normalize_cors); None: no CORS
    cors_request: dict[str, Any] | None  # CorsConfiguration as sent
    routes: dict[str, str] | None  # route key -> Lambda ARN; None: not managed
    integrations: dict[str, IntegrationSpec]  # Lambda ARN -> settings
    purge_routes: bool
    stage: StageSpec


@dataclass(frozen=True)
class Integration:
    integration_id: str
    integration_type: str
    uri: str  # Lambda function ARN for Lambda integrations
    payload_format_version: str | None
    timeout_ms: int | None


@dataclass(frozen=True)
class Route:
    route_id: str
    route_key: str
    integration_id: str | None


@dataclass
class Current:
    api_id: str
    name: str
    protocol_type: str
    api_endpoint: str
    description: str
    tags: dict[str, str]
    disable_execute_api_endpoint: bool
    cors: dict[str, Any] | None
    integrations: list[Integration]
    routes: list[Route]
    stage: StageSpec | None


@dataclass
class Plan:
    create_api: bool = False
    api_update: dict[str, Any] = field(default_factory=dict)  # UpdateApi arguments (without ApiId)
    delete_cors: bool = False
    tags_set: dict[str, str] = field(default_factory=dict)
    tags_unset: list[str] = field(default_factory=list)
    integration_creates: list[str] = field(default_factory=list)  # Lambda ARNs
    integration_updates: list[tuple[str, str, IntegrationSpec]] = field(default_factory=list)  # id, ARN, spec
    route_creates: list[tuple[str, str]] = field(default_factory=list)  # key, ARN
    route_updates: list[tuple[str, str, str]] = field(default_factory=list)  # id, key, ARN
    route_deletes: list[tuple[str, str]] = field(default_factory=list)  # id, key
    integration_deletes: list[tuple[str, str]] = field(default_factory=list)  # id, URI
    arn_to_integration: dict[str, str] = field(default_factory=dict)  # existing integrations kept, by ARN
    stage_create: bool = False
    stage_update: list[str] = field(default_factory=list)  # names of the stage settings that differ
    changes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Input


def normalize_lambda_arn(arn: str) -> tuple[str, bool]:
    """The ARN without a numeric version qualifier, and whether one was removed. Raises InputError."""
    match = LAMBDA_ARN.match(arn)
    if not match:
        raise InputError(
            f"route target {arn!r} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:ALIAS])"
        )
    qualifier = match.group("qualifier")
    if qualifier is not None and qualifier.isdigit():
        return match.group("function"), True
    return arn, False


def validate_route_key(key: str) -> None:
    if key == "$default":
        return
    match = ROUTE_KEY.match(key)
    if not match or match.group("method") not in METHODS:
        raise InputError(
            f"route key {key!r} is not valid: use '$default' or 'METHOD /path' with METHOD one of "
            f"{', '.join(METHODS)} (upper case), one space, and a path like /create_server, /rooms/{{name}} "
            "or /{proxy+} (a greedy {name+} only as the last segment)"
        )


def _strings(values: list[Any] | None) -> list[str]:
    return [str(v) for v in values or []]


def normalize_cors(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A CORS configuration (API field names or module option names) in a comparable form; None when empty."""
    if not raw:
        return None

    def get(option: str, api: str) -> Any:
        return raw.get(option, raw.get(api))

    cors = {
        "allow_origins": sorted(set(_strings(get("allow_origins", "AllowOrigins")))),
        "allow_methods": sorted({m.upper() for m in _strings(get("allow_methods", "AllowMethods"))}),
        "allow_headers": sorted({h.lower() for h in _strings(get("allow_headers", "AllowHeaders"))}),
        "expose_headers": sorted({h.lower() for h in _strings(get("expose_headers", "ExposeHeaders"))}),
        "max_age": get("max_age", "MaxAge"),
        "allow_credentials": bool(get("allow_credentials", "AllowCredentials")),
    }
    empty = not any(cors[k] for k in ("allow_origins", "allow_methods", "allow_headers", "expose_headers"))
    if empty and cors["max_age"] is None and not cors["allow_credentials"]:
        return None
    return cors


def cors_request(cors: dict[str, Any]) -> dict[str, Any]:
    """The CorsConfiguration to send for module option values (given casing kept, duplicates removed)."""
    request: dict[str, Any] = {}
    for option, api in (
        ("allow_origins", "AllowOrigins"),
        ("allow_methods", "AllowMethods"),
        ("allow_headers", "AllowHeaders"),
        ("expose_headers", "ExposeHeaders"),
    ):
        values = list(dict.fromkeys(_strings(cors.get(option))))
        if values:
            request[api] = values
    if cors.get("max_age") is not None:
        request["MaxAge"] = cors["max_age"]
    if cors.get("allow_credentials") is not None:
        request["AllowCredentials"] = bool(cors["allow_credentials"])
    return request


def _validate_cors(cors: dict[str, Any]) -> None:
    bad = [m for m in _strings(cors.get("allow_methods")) if m.upper() not in CORS_METHODS]
    if bad:
        raise InputError(f"cors.allow_methods: {bad} not among {', '.join(CORS_METHODS)}")
    max_age = cors.get("max_age")
    if max_age is not None and not -1 <= max_age <= 86400:
        raise InputError(f"cors.max_age must be between -1 and 86400, not {max_age}")
    if cors.get("allow_credentials") and "*" in _strings(cors.get("allow_origins")):
        raise InputError("cors.allow_credentials is not allowed together with the origin '*'")


def _stage_spec(stage: dict[str, Any]) -> StageSpec:
    name = stage.get("name") or "$default"
    if not re.match(r"^(\$default|[A-Za-z0-9_-]{1,128})$", name):
        raise InputError(f"stage.name {name!r} is not valid: '$default' or letters, digits, '-' and '_'")
    burst = stage.get("throttling_burst_limit")
    rate = stage.get("throttling_rate_limit")
    if burst is None or burst < 0:
        raise InputError("stage.throttling_burst_limit must be 0 or more")
    if rate is None or rate < 0:
        raise InputError("stage.throttling_rate_limit must be 0 or more")
    access_log = None
    if stage.get("access_log"):
        destination = str(stage["access_log"]["destination_arn"]).removesuffix(":*")
        log_format = str(stage["access_log"]["format"])
        if not LOG_GROUP_ARN.match(destination):
            raise InputError(
                f"stage.access_log.destination_arn {destination!r} is not a CloudWatch Logs log group ARN "
                "(arn:aws:logs:REGION:ACCOUNT:log-group:NAME)"
            )
        if not re.search(r"\$context\.(requestId|extendedRequestId)\b", log_format):
            raise InputError("stage.access_log.format must contain $context.requestId or $context.extendedRequestId")
        access_log = (destination, log_format)
    return StageSpec(
        name=name,
        auto_deploy=True,
        throttling_burst_limit=int(burst),
        throttling_rate_limit=float(rate),
        detailed_metrics_enabled=bool(stage.get("detailed_metrics_enabled")),
        access_log=access_log,
    )


def build_desired(params: dict[str, Any]) -> tuple[Desired, list[str]]:
    """The wanted state from the module parameters, and warnings. Raises InputError on bad input."""
    warnings: list[str] = []
    name = params["name"]
    if not name or len(name) > 128:
        raise InputError("name must have 1 to 128 characters")

    cors_param = params.get("cors")
    if cors_param is not None:
        _validate_cors(cors_param)
    cors = normalize_cors(cors_param)

    routes: dict[str, str] | None = None
    integrations: dict[str, IntegrationSpec] = {}
    if params.get("routes") is not None:
        routes = {}
        stripped: list[str] = []
        for route in params["routes"]:
            key = route["route_key"]
            validate_route_key(key)
            if key in routes:
                raise InputError(f"route key {key!r} is listed twice")
            if not route.get("target"):
                raise InputError(f"route {key!r} has no target (a Lambda function ARN)")
            arn, was_stripped = normalize_lambda_arn(route["target"])
            if was_stripped:
                stripped.append(route["target"])
            timeout = route.get("timeout_ms")
            timeout = DEFAULT_TIMEOUT_MS if timeout is None else timeout
            if not 50 <= timeout <= 30000:
                raise InputError(f"route {key!r}: timeout_ms must be between 50 and 30000, not {timeout}")
            spec = IntegrationSpec(
                payload_format_version=route.get("payload_format_version") or "2.0", timeout_ms=timeout
            )
            if integrations.setdefault(arn, spec) != spec:
                raise InputError(
                    f"routes to {arn} share one integration but ask for different settings "
                    f"({integrations[arn]} and {spec}): give them the same payload_format_version and timeout_ms"
                )
            routes[key] = arn
        if stripped:
            warnings.append(
                "removed the numeric version qualifier from the Lambda ARNs "
                f"{sorted(set(stripped))} (the integration targets the unqualified function; use an alias to pin)"
            )

    tags = params.get("tags")
    desired = Desired(
        name=name,
        description=params.get("description"),
        tags=None if tags is None else {str(k): str(v) for k, v in tags.items()},
        purge_tags=bool(params.get("purge_tags", True)),
        disable_execute_api_endpoint=bool(params.get("disable_execute_api_endpoint")),
        cors_managed=cors_param is not None,
        cors=cors,
        cors_request=cors_request(cors_param) if cors is not None and cors_param is not None else None,
        routes=routes,
        integrations=integrations,
        purge_routes=bool(params.get("purge_routes", True)),
        stage=_stage_spec(params.get("stage") or {}),
    )
    return desired, warnings


# ---------------------------------------------------------------------------------------------------------------
# Reading (API responses -> comparable values)


def integration_from_api(raw: dict[str, Any]) -> Integration:
    uri = raw.get("IntegrationUri") or ""
    match = INVOCATIONS_URI.match(uri)
    if match:
        uri = match.group("arn")
    timeout = raw.get("TimeoutInMillis")
    return Integration(
        integration_id=raw["IntegrationId"],
        integration_type=raw.get("IntegrationType", ""),
        uri=uri,
        payload_format_version=raw.get("PayloadFormatVersion"),
        timeout_ms=None if timeout is None else int(timeout),
    )


def route_from_api(raw: dict[str, Any]) -> Route:
    target = raw.get("Target") or ""
    return Route(
        route_id=raw["RouteId"],
        route_key=raw["RouteKey"],
        integration_id=target.removeprefix("integrations/") if target.startswith("integrations/") else None,
    )


def stage_from_api(raw: dict[str, Any]) -> StageSpec:
    # moto stores DefaultRouteSettings as given (without DetailedMetricsEnabled); AWS fills the flag in
    settings = raw.get("DefaultRouteSettings") or {}
    access = raw.get("AccessLogSettings") or {}
    access_log = None
    if access.get("DestinationArn"):
        access_log = (str(access["DestinationArn"]).removesuffix(":*"), str(access.get("Format") or ""))
    burst = settings.get("ThrottlingBurstLimit")
    rate = settings.get("ThrottlingRateLimit")
    return StageSpec(
        name=raw["StageName"],
        auto_deploy=raw.get("AutoDeploy"),
        throttling_burst_limit=None if burst is None else int(burst),
        throttling_rate_limit=None if rate is None else float(rate),
        detailed_metrics_enabled=bool(settings.get("DetailedMetricsEnabled")),
        access_log=access_log,
    )


def current_from_api(
    api: dict[str, Any], integrations: list[dict[str, Any]], routes: list[dict[str, Any]], stage: dict[str, Any] | None
) -> Current:
    return Current(
        api_id=api["ApiId"],
        name=api["Name"],
        protocol_type=api.get("ProtocolType", ""),
        api_endpoint=api.get("ApiEndpoint", ""),
        description=api.get("Description") or "",
        tags={str(k): str(v) for k, v in (api.get("Tags") or {}).items()},
        disable_execute_api_endpoint=bool(api.get("DisableExecuteApiEndpoint")),
        cors=normalize_cors(api.get("CorsConfiguration")),
        integrations=sorted((integration_from_api(i) for i in integrations), key=lambda i: i.integration_id),
        routes=sorted((route_from_api(r) for r in routes), key=lambda r: r.route_key),
        stage=None if stage is None else stage_from_api(stage),
    )


# ---------------------------------------------------------------------------------------------------------------
# Planning (pure)


def _same_rate(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and round(a, 6) == round(b, 6))


def stage_differences(want: StageSpec, have: StageSpec) -> list[str]:
    diffs = []
    if have.auto_deploy is not True:
        diffs.append("auto_deploy")
    if have.throttling_burst_limit != want.throttling_burst_limit:
        diffs.append("throttling_burst_limit")
    if not _same_rate(have.throttling_rate_limit, want.throttling_rate_limit):
        diffs.append("throttling_rate_limit")
    if have.detailed_metrics_enabled != want.detailed_metrics_enabled:
        diffs.append("detailed_metrics_enabled")
    if have.access_log != want.access_log:
        diffs.append("access_log")
    return diffs


def _pick_integration(
    candidates: list[Integration], spec: IntegrationSpec, usage: dict[str, int]
) -> tuple[Integration, bool]:
    """The existing integration to keep for a function (settings already right first, then the most used)."""

    def score(i: Integration) -> tuple[int, int, str]:
        right = i.payload_format_version == spec.payload_format_version and i.timeout_ms == spec.timeout_ms
        return (0 if right else 1, -usage.get(i.integration_id, 0), i.integration_id)

    best = min(candidates, key=score)
    return best, score(best)[0] == 1


def plan_api(desired: Desired, current: Current | None) -> Plan:
    plan = Plan()
    if current is None:
        plan.create_api = True
        plan.changes.append(f"create HTTP API {desired.name}")
        # Everything below is created: no existing integration, route or stage.
        current_integrations: list[Integration] = []
        current_routes: list[Route] = []
        current_stage = None
    else:
        fields = []
        if desired.description is not None and desired.description != current.description:
            plan.api_update["Description"] = desired.description
            fields.append("description")
        if desired.disable_execute_api_endpoint != current.disable_execute_api_endpoint:
            plan.api_update["DisableExecuteApiEndpoint"] = desired.disable_execute_api_endpoint
            fields.append("disable_execute_api_endpoint")
        if desired.cors_managed and desired.cors != current.cors:
            fields.append("cors")
            if desired.cors is None:
                plan.delete_cors = True
            else:
                plan.api_update["CorsConfiguration"] = desired.cors_request
                # UpdateApi sets the fields it is given: a field to unset needs the configuration deleted first
                removed = current.cors is not None and (
                    any(current.cors[k] and not desired.cors[k] for k in current.cors if k != "max_age")
                    or (current.cors["max_age"] is not None and desired.cors["max_age"] is None)
                )
                plan.delete_cors = bool(removed)
        if fields:
            plan.changes.append(f"update API {current.api_id}: {', '.join(fields)}")
        if desired.tags is not None:
            plan.tags_set, plan.tags_unset = compare_aws_tags(current.tags, desired.tags, desired.purge_tags)
            if plan.tags_set or plan.tags_unset:
                plan.changes.append(
                    f"tags: set {sorted(plan.tags_set)}, remove {sorted(plan.tags_unset)}"
                    if plan.tags_unset
                    else f"tags: set {sorted(plan.tags_set)}"
                )
        current_integrations = current.integrations
        current_routes = current.routes
        current_stage = current.stage

    if desired.routes is not None:
        _plan_routes(plan, desired, desired.routes, current_integrations, current_routes)

    stage = desired.stage
    if current_stage is None:
        plan.stage_create = True
        plan.changes.append(f"create stage {stage.name} (auto deploy)")
    else:
        plan.stage_update = stage_differences(stage, current_stage)
        if plan.stage_update:
            plan.changes.append(f"update stage {stage.name}: {', '.join(plan.stage_update)}")
    return plan


def _plan_routes(
    plan: Plan, desired: Desired, wanted: dict[str, str], integrations: list[Integration], routes: list[Route]
) -> None:
    """Plans the integrations and routes: wanted is desired.routes (route key -> Lambda ARN)."""
    usage: dict[str, int] = {}
    for route in routes:
        if route.integration_id:
            usage[route.integration_id] = usage.get(route.integration_id, 0) + 1

    for arn, spec in sorted(desired.integrations.items()):
        candidates = [i for i in integrations if i.integration_type == "AWS_PROXY" and i.uri == arn]
        if not candidates:
            plan.integration_creates.append(arn)
            plan.changes.append(f"create integration -> {arn} ({_spec_text(spec)})")
            continue
        kept, needs_update = _pick_integration(candidates, spec, usage)
        plan.arn_to_integration[arn] = kept.integration_id
        if needs_update:
            plan.integration_updates.append((kept.integration_id, arn, spec))
            plan.changes.append(f"update integration {kept.integration_id} -> {arn} ({_spec_text(spec)})")

    by_key = {r.route_key: r for r in routes}
    for key, arn in sorted(wanted.items()):
        existing = by_key.get(key)
        if existing is None:
            plan.route_creates.append((key, arn))
            plan.changes.append(f"create route {key} -> {arn}")
        elif existing.integration_id is None or existing.integration_id != plan.arn_to_integration.get(arn):
            plan.route_updates.append((existing.route_id, key, arn))
            plan.changes.append(f"update route {key} -> {arn}")

    still_used = set(plan.arn_to_integration.values())
    for route in routes:
        if route.route_key in wanted:
            continue
        if desired.purge_routes:
            plan.route_deletes.append((route.route_id, route.route_key))
            plan.changes.append(f"delete route {route.route_key}")
        elif route.integration_id:
            still_used.add(route.integration_id)
    for integration in integrations:
        if integration.integration_id not in still_used:
            plan.integration_deletes.append((integration.integration_id, integration.uri))
            plan.changes.append(f"delete integration {integration.integration_id} -> {integration.uri or '-'}")


def _spec_text(spec: IntegrationSpec) -> str:
    return f"payload {spec.payload_format_version}, timeout {spec.timeout_ms} ms"


# ---------------------------------------------------------------------------------------------------------------
# Describing (for diff and results)


def stage_description(stage: StageSpec | None) -> dict[str, Any] | None:
    if stage is None:
        return None
    return {
        "name": stage.name,
        "auto_deploy": stage.auto_deploy,
        "throttling_burst_limit": stage.throttling_burst_limit,
        "throttling_rate_limit": stage.throttling_rate_limit,
        "detailed_metrics_enabled": stage.detailed_metrics_enabled,
        "access_log": None
        if stage.access_log is None
        else {"destination_arn": stage.access_log[0], "format": stage.access_log[1]},
    }


def route_list(current: Current) -> list[dict[str, Any]]:
    by_id = {i.integration_id: i for i in current.integrations}
    result = []
    for route in current.routes:
        integration = by_id.get(route.integration_id or "")
        result.append(
            {
                "route_key": route.route_key,
                "route_id": route.route_id,
                "target": integration.uri if integration else None,
                "integration_id": route.integration_id if integration else None,
                "payload_format_version": integration.payload_format_version if integration else None,
                "timeout_ms": integration.timeout_ms if integration else None,
            }
        )
    return result


def describe(current: Current | None) -> dict[str, Any]:
    """Normalized description of an existing API (the diff's before); {} when there is none."""
    if current is None:
        return {}
    return {
        "name": current.name,
        "description": current.description,
        "tags": dict(sorted(current.tags.items())),
        "disable_execute_api_endpoint": current.disable_execute_api_endpoint,
        "cors": current.cors,
        "routes": {
            r["route_key"]: {k: r[k] for k in ("target", "payload_format_version", "timeout_ms")}
            for r in route_list(current)
        },
        "stage": stage_description(current.stage),
    }


def predict(desired: Desired, current: Current | None, plan: Plan) -> dict[str, Any]:
    """Normalized description the API will have once the plan is applied (the diff's after)."""
    before = describe(current)
    tags = dict(before.get("tags", {}))
    for key in plan.tags_unset:
        tags.pop(key, None)
    tags.update(plan.tags_set)
    if current is None and desired.tags is not None:
        tags = dict(desired.tags)
    routes: dict[str, Any] = dict(before.get("routes", {}))
    if desired.routes is not None:
        if desired.purge_routes:
            routes = {}
        for key, arn in desired.routes.items():
            spec = desired.integrations[arn]
            routes[key] = {
                "target": arn,
                "payload_format_version": spec.payload_format_version,
                "timeout_ms": spec.timeout_ms,
            }
    return {
        "name": desired.name,
        "description": desired.description if desired.description is not None else before.get("description", ""),
        "tags": dict(sorted(tags.items())),
        "disable_execute_api_endpoint": desired.disable_execute_api_endpoint,
        "cors": desired.cors if desired.cors_managed else before.get("cors"),
        "routes": dict(sorted(routes.items())),
        "stage": stage_description(desired.stage),
    }


def invoke_url(api_endpoint: str | None, stage: str) -> str | None:
    if not api_endpoint:
        return None
    return api_endpoint if stage == "$default" else f"{api_endpoint}/{stage}"


def predicted_routes(current: Current, after: dict[str, Any], plan: Plan) -> list[dict[str, Any]]:
    """Routes as check mode expects them: ids of what exists, null for what would be created."""
    existing = {r["route_key"]: r for r in route_list(current)}
    routes = []
    for key, value in after["routes"].items():
        route = existing.get(key, {})
        integration_id = plan.arn_to_integration.get(value["target"])  # None: would be created
        routes.append({"route_key": key, "route_id": route.get("route_id"), "integration_id": integration_id, **value})
    return routes


def present_result(
    desired: Desired,
    final: Current | None,
    after: dict[str, Any],
    plan: Plan,
    check_mode: bool,
    execution_arn: str | None,
) -> dict[str, Any]:
    """The module result for state=present (without changed, changes and diff).

    final is the API as read after the changes (or before them in check mode; None when check mode would create
    it), after the prediction of predict().
    """
    result: dict[str, Any] = {"name": desired.name}
    if final is None:  # check mode, new API
        routes = [
            {"route_key": key, "route_id": None, "integration_id": None, **value}
            for key, value in after["routes"].items()
        ]
        result.update(
            description=after["description"],
            tags=after["tags"],
            cors=after["cors"],
            routes=routes,
            stage=dict(after["stage"], invoke_url=None),
        )
        return result
    description = describe(final)
    routes = route_list(final)
    if check_mode and plan.changes:
        routes = predicted_routes(final, after, plan)
        description = after
    result.update(
        api_id=final.api_id,
        api_endpoint=final.api_endpoint,
        execution_arn=execution_arn,
        description=description["description"],
        tags=description["tags"],
        cors=description["cors"],
        routes=routes,
        stage=dict(description["stage"] or {}, invoke_url=invoke_url(final.api_endpoint, desired.stage.name)),
    )
    return result


# ---------------------------------------------------------------------------------------------------------------
# AWS calls


def fail_aws(module: Any, error: BaseException, msg: str) -> NoReturn:
    module.fail_json_aws(error, msg=msg)
    raise AssertionError("fail_json_aws returned")  # not reached: it exits


def warn(module: Any, msg: str) -> None:
    # AnsibleAWSModule.warn (amazon.aws 10) also passes its warnings to exit_json, which ansible-core 2.19
    # reports as a deprecation; the AnsibleModule underneath reports them on its own.
    getattr(module, "_module", module).warn(msg)


def fail(module: Any, msg: str) -> NoReturn:
    module.fail_json(msg=msg)
    raise AssertionError("fail_json returned")  # not reached: it exits


class HttpApiManager:
    def __init__(self, module: Any) -> None:
        self.module = module
        retry = AWSRetry.jittered_backoff(retries=8, catch_extra_error_codes=["ConflictException"])
        self.client = module.client("apigatewayv2", retry_decorator=retry)
        self.region = module.region

    def _paginate(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            result = self.client.get_paginator(operation).paginate(**kwargs).build_full_result()
            return list(result.get("Items", []))

        try:
            items: list[dict[str, Any]] = AWSRetry.jittered_backoff(retries=8)(run)()
            return items
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            fail_aws(self.module, e, f"{operation} failed")

    def find(self, name: str) -> dict[str, Any] | None:
        matches = [a for a in self._paginate("get_apis") if a.get("Name") == name]
        if len(matches) > 1:
            ids = ", ".join(sorted(a["ApiId"] for a in matches))
            fail(self.module, f"{len(matches)} APIs are named {name!r} ({ids}): delete the extra ones first")
        if matches and matches[0].get("ProtocolType") != "HTTP":
            fail(
                self.module,
                f"the API named {name!r} ({matches[0]['ApiId']}) is a {matches[0].get('ProtocolType')} API, "
                "not an HTTP API",
            )
        return matches[0] if matches else None

    def read(self, api: dict[str, Any], stage_name: str) -> Current:
        api_id = api["ApiId"]
        integrations = self._paginate("get_integrations", ApiId=api_id)
        routes = self._paginate("get_routes", ApiId=api_id)
        try:
            stage = self.client.get_stage(ApiId=api_id, StageName=stage_name, aws_retry=True)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") != "NotFoundException":
                fail_aws(self.module, e, f"get_stage {stage_name} failed")
            stage = None
        return current_from_api(api, integrations, routes, stage)

    def reread(self, api_id: str, stage_name: str) -> Current:
        try:
            api = self.client.get_api(ApiId=api_id, aws_retry=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            fail_aws(self.module, e, f"get_api {api_id} failed")
        return self.read(api, stage_name)

    def call(self, what: str, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.client, method)(aws_retry=True, **kwargs)
            return result
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            fail_aws(self.module, e, f"failed to {what}")

    def apply(self, desired: Desired, current: Current | None, plan: Plan) -> str:
        """Carries the plan out; returns the API id."""
        if current is None:
            create: dict[str, Any] = {"Name": desired.name, "ProtocolType": "HTTP"}
            if desired.description:
                create["Description"] = desired.description
            if desired.cors_request:
                create["CorsConfiguration"] = desired.cors_request
            if desired.tags:
                create["Tags"] = desired.tags
            if desired.disable_execute_api_endpoint:
                create["DisableExecuteApiEndpoint"] = True
            api_id = str(self.call(f"create HTTP API {desired.name}", "create_api", **create)["ApiId"])
        else:
            api_id = current.api_id
            if plan.delete_cors:
                self.call("delete the CORS configuration", "delete_cors_configuration", ApiId=api_id)
            if plan.api_update:
                self.call("update the API", "update_api", ApiId=api_id, **plan.api_update)
            arn = f"arn:{self._partition()}:apigateway:{self.region}::/apis/{api_id}"
            if plan.tags_unset:
                self.call("remove tags", "untag_resource", ResourceArn=arn, TagKeys=plan.tags_unset)
            if plan.tags_set:
                self.call("tag the API", "tag_resource", ResourceArn=arn, Tags=plan.tags_set)

        arn_to_id = dict(plan.arn_to_integration)
        for arn in plan.integration_creates:
            spec = desired.integrations[arn]
            created = self.call(
                f"create the integration to {arn}",
                "create_integration",
                ApiId=api_id,
                IntegrationType="AWS_PROXY",
                IntegrationUri=arn,
                PayloadFormatVersion=spec.payload_format_version,
                TimeoutInMillis=spec.timeout_ms,
            )
            arn_to_id[arn] = created["IntegrationId"]
        for integration_id, arn, spec in plan.integration_updates:
            self.call(
                f"update the integration to {arn}",
                "update_integration",
                ApiId=api_id,
                IntegrationId=integration_id,
                PayloadFormatVersion=spec.payload_format_version,
                TimeoutInMillis=spec.timeout_ms,
            )
        for key, arn in plan.route_creates:
            target = f"integrations/{arn_to_id[arn]}"
            self.call(f"create route {key}", "create_route", ApiId=api_id, RouteKey=key, Target=target)
        for route_id, key, arn in plan.route_updates:
            target = f"integrations/{arn_to_id[arn]}"
            self.call(f"update route {key}", "update_route", ApiId=api_id, RouteId=route_id, Target=target)
        for route_id, key in plan.route_deletes:
            self.call(f"delete route {key}", "delete_route", ApiId=api_id, RouteId=route_id)
        for integration_id, _uri in plan.integration_deletes:
            self.call(
                f"delete integration {integration_id}", "delete_integration", ApiId=api_id, IntegrationId=integration_id
            )

        if plan.stage_create:
            self.call(
                f"create stage {desired.stage.name}", "create_stage", ApiId=api_id, **_stage_request(desired.stage)
            )
        elif plan.stage_update:
            self._update_stage(api_id, desired.stage, plan.stage_update)
        return api_id

    def _update_stage(self, api_id: str, stage: StageSpec, differences: list[str]) -> None:
        full = _stage_request(stage)
        request: dict[str, Any] = {"ApiId": api_id, "StageName": stage.name}
        if "auto_deploy" in differences:
            request["AutoDeploy"] = True
        if {"throttling_burst_limit", "throttling_rate_limit", "detailed_metrics_enabled"} & set(differences):
            request["DefaultRouteSettings"] = full["DefaultRouteSettings"]
        if "access_log" in differences:
            # an empty AccessLogSettings turns access logging off
            request["AccessLogSettings"] = full.get("AccessLogSettings", {})
        try:
            self.client.update_stage(**request)
        except botocore.exceptions.ClientError as e:
            # moto 5.2.5 has no UpdateStage: its server answers HTTP 500 with an HTML page (error code "500"),
            # which AWS never does (its errors have names). Only then: recreate the stage.
            if e.response.get("Error", {}).get("Code") != "500":
                fail_aws(self.module, e, f"failed to update stage {stage.name}")
            warn(
                self.module, f"the endpoint does not support UpdateStage: stage {stage.name} deleted and created again"
            )
            self.call(f"delete stage {stage.name}", "delete_stage", ApiId=api_id, StageName=stage.name)
            self.call(f"create stage {stage.name}", "create_stage", ApiId=api_id, **full)
        except botocore.exceptions.BotoCoreError as e:
            fail_aws(self.module, e, f"failed to update stage {stage.name}")

    def delete(self, api_id: str) -> None:
        self.call(f"delete API {api_id}", "delete_api", ApiId=api_id)

    def _partition(self) -> str:
        return self._account()[1]

    def _account(self) -> tuple[str, str]:
        if not hasattr(self, "_account_info"):
            account, partition = get_aws_account_info(self.module)
            self._account_info = (str(account), str(partition or "aws"))
        return self._account_info

    def execution_arn(self, api_id: str) -> str:
        account, partition = self._account()
        return f"arn:{partition}:execute-api:{self.region}:{account}:{api_id}"


def _stage_request(stage: StageSpec) -> dict[str, Any]:
    request: dict[str, Any] = {
        "StageName": stage.name,
        "AutoDeploy": True,
        "DefaultRouteSettings": {
            "ThrottlingBurstLimit": stage.throttling_burst_limit,
            "ThrottlingRateLimit": stage.throttling_rate_limit,
            "DetailedMetricsEnabled": stage.detailed_metrics_enabled,
        },
    }
    if stage.access_log is not None:
        request["AccessLogSettings"] = {"DestinationArn": stage.access_log[0], "Format": stage.access_log[1]}
    return request
