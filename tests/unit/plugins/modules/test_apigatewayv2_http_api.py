"""The apigatewayv2_http_api module: main() against a stubbed API Gateway v2 API.

The planning logic is tested in tests/unit/plugins/module_utils/test_http_api.py; the module runs for real against
moto in tests/integration/test_apigatewayv2_http_api_moto.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from ansible_collections.godot_fleet.fleet.plugins.modules import apigatewayv2_http_api
from ansible_collections.godot_fleet.fleet.tests.unit.plugins.modules.utils import (
    fail_module,
    run_module,
    stubbed_aws,
)
from botocore.stub import Stubber

FN = "arn:aws:lambda:eu-west-1:123456789012:function:rooms-api"
API = {
    "ApiId": "abc123",
    "Name": "rooms",
    "ProtocolType": "HTTP",
    "ApiEndpoint": "https://abc123.execute-api.eu-west-1.amazonaws.com",
    "RouteSelectionExpression": "$request.method $request.path",
    "Tags": {},
}
ROUTE = {"route_key": "POST /create_server", "target": FN}


@pytest.fixture(autouse=True)
def account() -> Iterator[None]:
    """The account of the execution ARN (read with STS by the module)."""
    with mock.patch(
        "ansible_collections.godot_fleet.fleet.plugins.module_utils.http_api.get_aws_account_info",
        return_value=("123456789012", "aws"),
    ):
        yield


def existing_api(stubber: Stubber) -> None:
    """GetApis finds the API; its integration, route and stage are converged with ROUTE and the default stage."""
    stubber.add_response("get_apis", {"Items": [API]}, {})
    stubber.add_response(
        "get_integrations",
        {
            "Items": [
                {
                    "IntegrationId": "i1",
                    "IntegrationType": "AWS_PROXY",
                    "IntegrationUri": FN,
                    "PayloadFormatVersion": "2.0",
                    "TimeoutInMillis": 30000,
                }
            ]
        },
        {"ApiId": "abc123"},
    )
    stubber.add_response(
        "get_routes",
        {"Items": [{"RouteId": "r1", "RouteKey": "POST /create_server", "Target": "integrations/i1"}]},
        {"ApiId": "abc123"},
    )
    stubber.add_response(
        "get_stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingBurstLimit": 20, "ThrottlingRateLimit": 10.0},
        },
        {"ApiId": "abc123", "StageName": "$default"},
    )


def test_bad_input_fails_before_any_aws_call() -> None:
    with stubbed_aws("apigatewayv2"):
        result = fail_module(
            apigatewayv2_http_api.main, {"name": "rooms", "routes": [{"route_key": "post /x", "target": FN}]}
        )
    assert "route key 'post /x' is not valid" in result["msg"]


def test_check_mode_plans_a_new_api_without_writing() -> None:
    with stubbed_aws("apigatewayv2") as stubber:
        stubber.add_response("get_apis", {"Items": []}, {})
        result = run_module(apigatewayv2_http_api.main, {"name": "rooms", "routes": [ROUTE]}, check_mode=True)
    assert result["changed"] is True
    assert result["changes"] == [
        "create HTTP API rooms",
        f"create integration -> {FN} (payload 2.0, timeout 30000 ms)",
        f"create route POST /create_server -> {FN}",
        "create stage $default (auto deploy)",
    ]
    assert "api_id" not in result and result["routes"][0]["route_id"] is None


def test_a_converged_api_makes_no_write_call() -> None:
    with stubbed_aws("apigatewayv2") as stubber:
        existing_api(stubber)
        result = run_module(
            apigatewayv2_http_api.main,
            {"name": "rooms", "region": "eu-west-1", "routes": [ROUTE], "_ansible_diff": True},
        )
    assert result["changed"] is False and result["changes"] == []
    assert result["execution_arn"] == "arn:aws:execute-api:eu-west-1:123456789012:abc123"
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["stage"]["invoke_url"] == API["ApiEndpoint"]


def test_absent_deletes_the_api() -> None:
    with stubbed_aws("apigatewayv2") as stubber:
        existing_api(stubber)
        stubber.add_response("delete_api", {}, {"ApiId": "abc123"})
        result = run_module(apigatewayv2_http_api.main, {"name": "rooms", "state": "absent"})
    assert result == {"changed": True, "changes": ["delete HTTP API rooms (abc123)"], "name": "rooms"}


def test_absent_in_check_mode_and_when_missing() -> None:
    with stubbed_aws("apigatewayv2") as stubber:
        existing_api(stubber)
        checked = run_module(
            apigatewayv2_http_api.main, {"name": "rooms", "state": "absent", "_ansible_diff": True}, check_mode=True
        )
        stubber.add_response("get_apis", {"Items": []}, {})
        missing = run_module(apigatewayv2_http_api.main, {"name": "rooms", "state": "absent"})
    assert checked["changed"] is True and checked["diff"]["after"] == {}
    assert checked["diff"]["before"]["routes"] == {
        "POST /create_server": {"target": FN, "payload_format_version": "2.0", "timeout_ms": 30000}
    }
    assert missing == {"changed": False, "changes": [], "name": "rooms"}


def test_an_api_of_another_protocol_is_refused() -> None:
    with stubbed_aws("apigatewayv2") as stubber:
        stubber.add_response("get_apis", {"Items": [{**API, "ProtocolType": "WEBSOCKET"}]}, {})
        result: dict[str, Any] = fail_module(apigatewayv2_http_api.main, {"name": "rooms"})
    assert result["msg"] == "the API named 'rooms' (abc123) is a WEBSOCKET API, not an HTTP API"
