"""plugins/module_utils/http_api.py: input checks, normalization and the change plan (pure logic, no AWS calls).

The apigatewayv2_http_api module runs for real against moto in tests/integration/test_apigatewayv2_http_api_moto.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils import http_api as m

FN = "arn:aws:lambda:eu-west-1:123456789012:function:rooms-api"
FN2 = "arn:aws:lambda:eu-west-1:123456789012:function:rooms-admin"
LOGS = "arn:aws:logs:eu-west-1:123456789012:log-group:/gf/api"


def params(**overrides: Any) -> dict[str, Any]:
    """Module parameters as Ansible hands them over (defaults filled in)."""
    values: dict[str, Any] = {
        "name": "rooms",
        "state": "present",
        "description": None,
        "tags": None,
        "purge_tags": True,
        "disable_execute_api_endpoint": False,
        "cors": None,
        "routes": [route("POST /create_server"), route("GET /list_servers")],
        "purge_routes": True,
        "stage": stage(),
    }
    values.update(overrides)
    return values


def route(key: str, target: str = FN, timeout_ms: int = 30000, payload: str = "2.0") -> dict[str, Any]:
    return {"route_key": key, "target": target, "timeout_ms": timeout_ms, "payload_format_version": payload}


def stage(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "$default",
        "throttling_burst_limit": 20,
        "throttling_rate_limit": 10.0,
        "detailed_metrics_enabled": False,
        "access_log": None,
    }
    values.update(overrides)
    return values


def desired(**overrides: Any) -> m.Desired:
    result, _warnings = m.build_desired(params(**overrides))
    return result


def api_state(
    integrations: list[dict[str, Any]] | None = None,
    routes: list[dict[str, Any]] | None = None,
    stage_raw: dict[str, Any] | None = None,
    **api: Any,
) -> m.Current:
    """An existing API as the apigatewayv2 API describes it."""
    raw = {
        "ApiId": "abc123",
        "Name": "rooms",
        "ProtocolType": "HTTP",
        "ApiEndpoint": "https://abc123.execute-api.eu-west-1.amazonaws.com",
        "DisableExecuteApiEndpoint": False,
        "Tags": {},
        **api,
    }
    if integrations is None:
        integrations = [integration("i1", FN)]
    if routes is None:
        routes = [
            {"RouteId": "r1", "RouteKey": "POST /create_server", "Target": "integrations/i1"},
            {"RouteId": "r2", "RouteKey": "GET /list_servers", "Target": "integrations/i1"},
        ]
    if stage_raw is None:
        stage_raw = {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingBurstLimit": 20, "ThrottlingRateLimit": 10.0},
        }
    return m.current_from_api(raw, integrations, routes, stage_raw)


def integration(integration_id: str, uri: str, timeout: int = 30000, payload: str = "2.0") -> dict[str, Any]:
    return {
        "IntegrationId": integration_id,
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": uri,
        "PayloadFormatVersion": payload,
        "TimeoutInMillis": timeout,
    }


# --- input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["$default", "POST /create_server", "GET /", "ANY /{proxy+}", "GET /rooms/{name}", "DELETE /a/b.c/{id}/{rest+}"],
)
def test_valid_route_keys(key: str) -> None:
    m.validate_route_key(key)


@pytest.mark.parametrize(
    "key",
    ["post /x", "POST", "POST x", "POST  /x", "FETCH /x", "GET /{a+}/b", "GET /a/", "GET /a b", "default", "GET "],
)
def test_bad_route_keys_are_refused(key: str) -> None:
    with pytest.raises(m.InputError, match="route key"):
        m.validate_route_key(key)


def test_numeric_version_qualifier_is_removed_with_a_warning_and_an_alias_kept() -> None:
    result, warnings = m.build_desired(
        params(routes=[route("POST /a", FN + ":7"), route("GET /b", FN), route("GET /c", FN2 + ":live")])
    )
    assert result.routes == {"POST /a": FN, "GET /b": FN, "GET /c": FN2 + ":live"}
    assert set(result.integrations) == {FN, FN2 + ":live"}
    assert len(warnings) == 1 and FN + ":7" in warnings[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"routes": [route("POST /a", "arn:aws:s3:::bucket")]}, "not a Lambda function ARN"),
        ({"routes": [route("POST /a", "")]}, "has no target"),
        ({"routes": [route("POST /a"), route("POST /a")]}, "listed twice"),
        ({"routes": [route("POST /a", timeout_ms=10)]}, "between 50 and 30000"),
        ({"routes": [route("POST /a", timeout_ms=1000), route("GET /b")]}, "different settings"),
        ({"routes": [route("POST /a", payload="1.0"), route("GET /b")]}, "different settings"),
        ({"cors": {"allow_origins": ["*"], "allow_credentials": True}}, "allow_credentials"),
        ({"cors": {"allow_methods": ["FETCH"]}}, "allow_methods"),
        ({"cors": {"max_age": 100000}}, "max_age"),
        ({"stage": stage(throttling_burst_limit=-1)}, "burst"),
        ({"stage": stage(name="bad name")}, "stage.name"),
        ({"stage": stage(access_log={"destination_arn": LOGS, "format": "$context.status"})}, "requestId"),
        (
            {"stage": stage(access_log={"destination_arn": "arn:aws:s3:::b", "format": "$context.requestId"})},
            "log group",
        ),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(m.InputError, match=message):
        m.build_desired(params(**overrides))


def test_access_log_destination_loses_the_trailing_wildcard() -> None:
    result = desired(stage=stage(access_log={"destination_arn": LOGS + ":*", "format": "$context.requestId"}))
    assert result.stage.access_log == (LOGS, "$context.requestId")


def test_cors_compares_headers_without_case_and_lists_as_sets() -> None:
    given = m.normalize_cors(
        {"allow_origins": ["https://b", "https://a"], "allow_headers": ["X-Api-Key", "Content-Type"]}
    )
    stored = m.normalize_cors(
        {"AllowOrigins": ["https://a", "https://b"], "AllowHeaders": ["content-type", "x-api-key"]}
    )
    assert given == stored
    assert m.normalize_cors({"allow_methods": ["get"]}) == m.normalize_cors({"AllowMethods": ["GET"]})
    assert m.normalize_cors({}) is None
    assert m.normalize_cors({"allow_origins": [], "allow_credentials": None}) is None
    assert m.normalize_cors(None) is None


def test_cors_request_keeps_the_given_values() -> None:
    request = m.cors_request({"allow_origins": ["*"], "allow_headers": ["Content-Type", "Content-Type"], "max_age": 60})
    assert request == {"AllowOrigins": ["*"], "AllowHeaders": ["Content-Type"], "MaxAge": 60}


# --- plan -------------------------------------------------------------------------------------------------------


def test_new_api_plans_everything() -> None:
    plan = m.plan_api(desired(), None)
    assert plan.create_api
    assert plan.integration_creates == [FN]
    assert sorted(key for key, _target in plan.route_creates) == ["GET /list_servers", "POST /create_server"]
    assert plan.stage_create
    assert plan.changes[0] == "create HTTP API rooms"


def test_converged_api_plans_nothing() -> None:
    want = desired()
    current = api_state()
    plan = m.plan_api(want, current)
    assert plan.changes == []
    assert m.predict(want, current, plan) == m.describe(current)


def test_stage_from_moto_without_detailed_metrics_flag_is_converged() -> None:
    # moto keeps DefaultRouteSettings as sent; AWS adds DetailedMetricsEnabled=false: both are the same state
    with_flag = api_state(
        stage_raw={
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {
                "DetailedMetricsEnabled": False,
                "ThrottlingBurstLimit": 20,
                "ThrottlingRateLimit": 10,
            },
        }
    )
    assert m.plan_api(desired(), with_flag).changes == []


def test_new_target_creates_an_integration_repoints_the_route_and_drops_the_unused_one() -> None:
    plan = m.plan_api(desired(routes=[route("POST /create_server", FN2)]), api_state())
    assert plan.integration_creates == [FN2]
    assert plan.route_updates == [("r1", "POST /create_server", FN2)]
    assert plan.route_deletes == [("r2", "GET /list_servers")]
    assert plan.integration_deletes == [("i1", FN)]


def test_changed_timeout_updates_the_integration_in_place() -> None:
    routes = [route("POST /create_server", timeout_ms=5000), route("GET /list_servers", timeout_ms=5000)]
    plan = m.plan_api(desired(routes=routes), api_state())
    assert plan.integration_updates == [("i1", FN, m.IntegrationSpec("2.0", 5000))]
    assert plan.integration_creates == [] and plan.route_updates == [] and plan.integration_deletes == []


def test_purge_routes_false_keeps_other_routes_and_their_integrations() -> None:
    current = api_state(
        integrations=[integration("i1", FN), integration("i2", FN2)],
        routes=[
            {"RouteId": "r1", "RouteKey": "POST /create_server", "Target": "integrations/i1"},
            {"RouteId": "r2", "RouteKey": "GET /list_servers", "Target": "integrations/i1"},
            {"RouteId": "r3", "RouteKey": "GET /admin", "Target": "integrations/i2"},
        ],
    )
    assert m.plan_api(desired(purge_routes=False), current).changes == []
    plan = m.plan_api(desired(), current)
    assert plan.route_deletes == [("r3", "GET /admin")]
    assert plan.integration_deletes == [("i2", FN2)]


def test_duplicate_integrations_of_one_function_collapse_to_the_used_one() -> None:
    current = api_state(
        integrations=[integration("a-spare", FN), integration("z-used", FN)],
        routes=[
            {"RouteId": "r1", "RouteKey": "POST /create_server", "Target": "integrations/z-used"},
            {"RouteId": "r2", "RouteKey": "GET /list_servers", "Target": "integrations/z-used"},
        ],
    )
    plan = m.plan_api(desired(), current)
    assert plan.arn_to_integration == {FN: "z-used"}
    assert plan.route_updates == []
    assert plan.integration_deletes == [("a-spare", FN)]


def test_rest_style_invocation_uri_is_read_as_the_function_arn() -> None:
    uri = f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{FN}/invocations"
    assert m.plan_api(desired(), api_state(integrations=[integration("i1", uri)])).changes == []


def test_route_without_integration_target_is_repointed() -> None:
    current = api_state(
        routes=[
            {"RouteId": "r1", "RouteKey": "POST /create_server"},
            {"RouteId": "r2", "RouteKey": "GET /list_servers", "Target": "integrations/i1"},
        ]
    )
    assert m.plan_api(desired(), current).route_updates == [("r1", "POST /create_server", FN)]


def test_routes_not_given_are_left_alone() -> None:
    plan = m.plan_api(desired(routes=None), api_state(integrations=[], routes=[]))
    assert plan.changes == []


def test_stage_differences_are_named() -> None:
    want = desired(
        stage=stage(
            throttling_rate_limit=5.0,
            detailed_metrics_enabled=True,
            access_log={"destination_arn": LOGS, "format": "$context.requestId"},
        )
    )
    plan = m.plan_api(want, api_state())
    assert plan.stage_update == ["throttling_rate_limit", "detailed_metrics_enabled", "access_log"]
    assert plan.changes == ["update stage $default: throttling_rate_limit, detailed_metrics_enabled, access_log"]


def test_missing_stage_is_created() -> None:
    current = api_state()
    current.stage = None
    plan = m.plan_api(desired(), current)
    assert plan.stage_create and plan.changes == ["create stage $default (auto deploy)"]


def test_cors_changes() -> None:
    cors = {"AllowOrigins": ["*"], "AllowHeaders": ["content-type"], "MaxAge": 60}
    current = api_state(CorsConfiguration=cors)
    same = m.plan_api(desired(cors={"allow_origins": ["*"], "allow_headers": ["Content-Type"], "max_age": 60}), current)
    assert same.changes == []
    unmanaged = m.plan_api(desired(cors=None), current)
    assert unmanaged.changes == []
    removed = m.plan_api(desired(cors={}), current)
    assert removed.delete_cors and "CorsConfiguration" not in removed.api_update
    widened = m.plan_api(
        desired(cors={"allow_origins": ["*"], "allow_headers": ["content-type", "x"], "max_age": 60}), current
    )
    assert not widened.delete_cors
    assert widened.api_update == {
        "CorsConfiguration": {"AllowOrigins": ["*"], "AllowHeaders": ["content-type", "x"], "MaxAge": 60}
    }
    narrowed = m.plan_api(desired(cors={"allow_origins": ["*"]}), current)
    assert narrowed.delete_cors and narrowed.api_update == {"CorsConfiguration": {"AllowOrigins": ["*"]}}


def test_api_fields_and_tags() -> None:
    current = api_state(Description="old", Tags={"keep": "1", "drop": "2", "aws:cloudformation:stack": "x"})
    plan = m.plan_api(
        desired(description="new", tags={"keep": "1", "add": "3"}, disable_execute_api_endpoint=True), current
    )
    assert plan.api_update == {"Description": "new", "DisableExecuteApiEndpoint": True}
    assert plan.tags_set == {"add": "3"} and plan.tags_unset == ["drop"]
    kept = m.plan_api(desired(tags={"add": "3"}, purge_tags=False), current)
    assert kept.tags_set == {"add": "3"} and kept.tags_unset == []
    assert m.plan_api(desired(description=None), current).api_update == {}


def test_prediction_matches_the_description_of_the_result() -> None:
    want = desired(routes=[route("POST /create_server", FN2)], description="d", tags={"a": "b"})
    after = m.predict(want, api_state(), m.plan_api(want, api_state()))
    assert after["routes"] == {
        "POST /create_server": {"target": FN2, "payload_format_version": "2.0", "timeout_ms": 30000}
    }
    assert after["description"] == "d" and after["tags"] == {"a": "b"}
    converged = api_state(
        integrations=[integration("i9", FN2)],
        routes=[{"RouteId": "r1", "RouteKey": "POST /create_server", "Target": "integrations/i9"}],
        Description="d",
        Tags={"a": "b"},
    )
    assert m.describe(converged) == after


def test_invoke_url() -> None:
    assert m.invoke_url("https://x", "$default") == "https://x"
    assert m.invoke_url("https://x", "prod") == "https://x/prod"
    assert m.invoke_url(None, "prod") is None


# --- result -----------------------------------------------------------------------------------------------------


def test_result_of_a_new_api_in_check_mode_has_no_ids() -> None:
    want = desired()
    plan = m.plan_api(want, None)
    result = m.present_result(want, None, m.predict(want, None, plan), plan, check_mode=True, execution_arn=None)
    assert "api_id" not in result and "execution_arn" not in result
    assert result["routes"] == [
        {
            "route_key": "GET /list_servers",
            "route_id": None,
            "integration_id": None,
            "target": FN,
            "payload_format_version": "2.0",
            "timeout_ms": 30000,
        },
        {
            "route_key": "POST /create_server",
            "route_id": None,
            "integration_id": None,
            "target": FN,
            "payload_format_version": "2.0",
            "timeout_ms": 30000,
        },
    ]
    assert result["stage"]["invoke_url"] is None and result["stage"]["name"] == "$default"


def test_result_of_a_converged_api_describes_it() -> None:
    want, current = desired(), api_state()
    plan = m.plan_api(want, current)
    arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123"
    result = m.present_result(want, current, m.predict(want, current, plan), plan, False, arn)
    assert result["api_id"] == "abc123" and result["execution_arn"] == arn
    assert [(r["route_key"], r["route_id"], r["integration_id"]) for r in result["routes"]] == [
        ("GET /list_servers", "r2", "i1"),
        ("POST /create_server", "r1", "i1"),
    ]
    assert result["stage"]["invoke_url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com"


def test_result_in_check_mode_predicts_the_routes_with_the_ids_that_exist() -> None:
    want = desired(routes=[route("POST /create_server"), route("GET /rooms", FN2)], stage=stage(name="prod"))
    current = api_state()
    plan = m.plan_api(want, current)
    result = m.present_result(want, current, m.predict(want, current, plan), plan, True, "arn")
    assert [(r["route_key"], r["route_id"], r["integration_id"], r["target"]) for r in result["routes"]] == [
        ("GET /rooms", None, None, FN2),
        ("POST /create_server", "r1", "i1", FN),
    ]
    assert result["stage"]["name"] == "prod"
    assert result["stage"]["invoke_url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
