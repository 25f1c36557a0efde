"""apigatewayv2_http_api run by ansible-playbook against the local AWS (testbed.aws: moto on loopback), checked with
boto3.

moto 5.2.5 accepts any Lambda ARN as an integration URI (it never invokes it), so no functions are created. Its
API Gateway v2 has no UpdateStage: the module then recreates the stage (with a warning), which these tests use.
Only loopback ports 15220-15229 are used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from testbed import ROOT, playbook, port_free
from testbed.aws import CREDENTIALS, local_aws

PORTS = range(15220, 15230)
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gf-httpapi-rooms"
FN2 = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gf-httpapi-admin"
LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/gf-httpapi/access"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with local_aws(PORTS) as server:
        yield server.endpoint


def client(url: str) -> Any:
    return boto3.client(
        "apigatewayv2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def ansible_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return dict(env, **CREDENTIALS, AWS_ENDPOINT_URL=endpoint, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))


def play(
    tmp: Path,
    endpoint: str,
    tasks: list[dict[str, Any]],
    *flags: str,
    module_defaults: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Runs the tasks in one play on localhost; returns each task's result and the host's recap counts."""
    book: dict[str, Any] = {
        "name": "apigatewayv2_http_api test",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": tasks,
    }
    if module_defaults:
        book["module_defaults"] = module_defaults
    path = tmp / "play.yml"
    path.write_text(json.dumps([book], indent=1))
    result = playbook.run(path, None, *flags, env=env or ansible_env(endpoint))
    assert result.plays, str(result)
    return [task.result for task in result.tasks], result.stats["localhost"]


def api_task(args: dict[str, Any], **task: Any) -> dict[str, Any]:
    return {"name": "HTTP API", "godot_fleet.fleet.apigatewayv2_http_api": args, **task}


def run(tmp: Path, endpoint: str, args: dict[str, Any], *flags: str) -> dict[str, Any]:
    results, stats = play(tmp, endpoint, [api_task(args)], *flags)
    result = results[0]
    assert not result.get("failed"), str(result)
    assert stats["changed"] == (1 if result["changed"] else 0)
    return result


def snapshot(url: str, name: str) -> dict[str, Any] | None:
    """The API named `name` as boto3 sees it, ids resolved (None when there is none)."""
    c = client(url)
    apis = [a for a in c.get_apis()["Items"] if a["Name"] == name]
    if not apis:
        return None
    assert len(apis) == 1
    api = apis[0]
    integrations = {i["IntegrationId"]: i for i in c.get_integrations(ApiId=api["ApiId"])["Items"]}
    routes = {}
    for route in c.get_routes(ApiId=api["ApiId"])["Items"]:
        integration = integrations[route["Target"].removeprefix("integrations/")]
        routes[route["RouteKey"]] = (
            integration["IntegrationUri"],
            integration["PayloadFormatVersion"],
            integration["TimeoutInMillis"],
        )
    stages = {s["StageName"]: s for s in c.get_stages(ApiId=api["ApiId"])["Items"]}
    for stage in stages.values():
        for key in ("CreatedDate", "LastUpdatedDate"):
            stage.pop(key, None)
    return {
        "api_id": api["ApiId"],
        "endpoint": api["ApiEndpoint"],
        "description": api.get("Description"),
        "tags": api.get("Tags", {}),
        "cors": api.get("CorsConfiguration"),
        "routes": routes,
        "integrations": sorted(i["IntegrationUri"] for i in integrations.values()),
        "integration_ids": sorted(integrations),
        "stages": stages,
    }


def aws_rooms_api(name: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": name,
        "region": REGION,
        "description": "rooms on demand",
        "tags": {"project": "gf-httpapi"},
        "routes": [
            {"route_key": "POST /create_server", "target": FN},
            {"route_key": "GET /list_servers", "target": FN},
            {"route_key": "DELETE /rooms/{name}", "target": FN2, "timeout_ms": 5000},
        ],
        "cors": {"allow_origins": ["https://play.example.com"], "allow_methods": ["GET", "POST"]},
    }
    args.update(overrides)
    return args


def test_lifecycle(moto: str, tmp_path: Path) -> None:
    name = "gf-httpapi-life"
    args = aws_rooms_api(name)

    # check mode on a new API: reports the creation, creates nothing
    result = run(tmp_path, moto, args, "--check", "--diff")
    assert result["changed"] and result["changes"][0] == f"create HTTP API {name}"
    assert "api_id" not in result
    assert [r["route_key"] for r in result["routes"]] == [
        "DELETE /rooms/{name}",
        "GET /list_servers",
        "POST /create_server",
    ]
    assert snapshot(moto, name) is None

    # create
    result = run(tmp_path, moto, args)
    assert result["changed"]
    state = snapshot(moto, name)
    assert state is not None
    assert result["api_id"] == state["api_id"] and result["api_endpoint"] == state["endpoint"]
    assert result["execution_arn"] == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{state['api_id']}"
    assert state["description"] == "rooms on demand" and state["tags"] == {"project": "gf-httpapi"}
    assert state["cors"] == {"AllowOrigins": ["https://play.example.com"], "AllowMethods": ["GET", "POST"]}
    assert state["routes"] == {
        "POST /create_server": (FN, "2.0", 30000),
        "GET /list_servers": (FN, "2.0", 30000),
        "DELETE /rooms/{name}": (FN2, "2.0", 5000),
    }
    assert state["integrations"] == sorted([FN, FN2])  # one integration per function
    assert list(state["stages"]) == ["$default"]
    stage = state["stages"]["$default"]
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 20
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 10.0
    assert result["stage"]["invoke_url"] == state["endpoint"]
    assert {r["route_key"]: r["target"] for r in result["routes"]} == {k: v[0] for k, v in state["routes"].items()}

    # converged: a re-run, a check-mode run, and a run with the version-qualified ARN amazon.aws.lambda returns
    # on create change nothing
    assert not run(tmp_path, moto, args)["changed"]
    assert not run(tmp_path, moto, args, "--check", "--diff")["changed"]
    qualified = aws_rooms_api(name)
    qualified["routes"][0]["target"] = FN + ":3"
    result = run(tmp_path, moto, qualified)
    assert not result["changed"]
    assert any("version qualifier" in w for w in result.get("warnings", [])), result.get("warnings")
    assert snapshot(moto, name) == state

    # change a target, add and remove routes, change a timeout and CORS: check mode first
    changed_args = aws_rooms_api(
        name,
        routes=[
            {"route_key": "POST /create_server", "target": FN2, "timeout_ms": 8000},
            {"route_key": "GET /rooms/{name}", "target": FN2, "timeout_ms": 8000},
            {"route_key": "$default", "target": FN2, "timeout_ms": 8000},
        ],
        cors={"allow_origins": ["*"], "allow_headers": ["Content-Type", "X-Api-Key"], "max_age": 300},
    )
    result = run(tmp_path, moto, changed_args, "--check", "--diff")
    assert result["changed"]
    assert "delete route GET /list_servers" in result["changes"]
    assert any(c.startswith("delete route DELETE /rooms") for c in result["changes"])
    assert "delete integration" in " ".join(result["changes"])
    assert {r["route_key"] for r in result["routes"]} == {"POST /create_server", "GET /rooms/{name}", "$default"}
    assert snapshot(moto, name) == state

    result = run(tmp_path, moto, changed_args)
    assert result["changed"]
    after = snapshot(moto, name)
    assert after is not None and after["api_id"] == state["api_id"]
    assert after["routes"] == {
        "POST /create_server": (FN2, "2.0", 8000),
        "GET /rooms/{name}": (FN2, "2.0", 8000),
        "$default": (FN2, "2.0", 8000),
    }
    assert after["integrations"] == [FN2]  # the integration of FN went with its last route
    assert after["cors"] == {"AllowOrigins": ["*"], "AllowHeaders": ["Content-Type", "X-Api-Key"], "MaxAge": 300}
    assert not run(tmp_path, moto, changed_args)["changed"]

    # stage: throttling and access logs (moto has no UpdateStage: the module recreates the stage and warns)
    staged = dict(
        changed_args,
        stage={
            "throttling_burst_limit": 50,
            "throttling_rate_limit": 25.5,
            "access_log": {"destination_arn": LOGS + ":*", "format": '{"id":"$context.requestId"}'},
        },
    )
    result = run(tmp_path, moto, staged)
    assert result["changed"] and result["changes"] == [
        "update stage $default: throttling_burst_limit, throttling_rate_limit, access_log"
    ]
    stage = snapshot(moto, name)["stages"]["$default"]  # type: ignore[index]
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 50
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 25.5
    assert stage["AccessLogSettings"] == {"DestinationArn": LOGS, "Format": '{"id":"$context.requestId"}'}
    assert stage["AutoDeploy"] is True
    assert not run(tmp_path, moto, staged)["changed"]

    # CORS removed with {}, routes and stage left as they are when not given
    result = run(tmp_path, moto, {"name": name, "region": REGION, "cors": {}, "stage": staged["stage"]})
    assert result["changed"] and result["changes"] == [f"update API {state['api_id']}: cors"]
    final = snapshot(moto, name)
    assert final is not None and final["cors"] is None and final["routes"] == after["routes"]

    # absent: check mode keeps it, then it is deleted, then nothing is left to do
    result = run(tmp_path, moto, {"name": name, "region": REGION, "state": "absent"}, "--check")
    assert result["changed"] and snapshot(moto, name) is not None
    assert run(tmp_path, moto, {"name": name, "region": REGION, "state": "absent"})["changed"]
    assert snapshot(moto, name) is None
    assert not run(tmp_path, moto, {"name": name, "region": REGION, "state": "absent"})["changed"]


def test_bad_input_fails_before_any_call(moto: str, tmp_path: Path) -> None:
    # The endpoint is a closed loopback port: any AWS call would fail with a connection error instead.
    closed = next(port for port in PORTS if port_free(port))
    endpoint = f"http://127.0.0.1:{closed}"
    good = {"route_key": "POST /create_server", "target": FN}
    cases = [
        ([{"route_key": "POST /create_server"}], "missing required arguments: target"),
        ([{"route_key": "post /create_server", "target": FN}], "route key 'post /create_server' is not valid"),
        ([{"route_key": "POST create_server", "target": FN}], "route key 'POST create_server' is not valid"),
        ([{"route_key": "POST /x", "target": "arn:aws:sqs:eu-west-1:123456789012:q"}], "not a Lambda function ARN"),
        ([good, dict(good, route_key="GET /x", timeout_ms=1000)], "different settings"),
        ([good, good], "listed twice"),
    ]
    tasks = [
        api_task({"name": "gf-httpapi-bad", "region": REGION, "routes": routes}, ignore_errors=True)
        for routes, _ in cases
    ]
    tasks.append(
        api_task(
            {"name": "gf-httpapi-bad", "region": REGION, "cors": {"allow_origins": ["*"], "allow_credentials": True}},
            ignore_errors=True,
        )
    )
    tasks.append(
        api_task(
            {
                "name": "gf-httpapi-bad",
                "region": REGION,
                "stage": {"access_log": {"destination_arn": LOGS, "format": "x"}},
            },
            ignore_errors=True,
        )
    )
    messages = [message for _, message in cases] + ["allow_credentials", "must contain $context.requestId"]
    results, stats = play(tmp_path, endpoint, tasks)
    assert stats["changed"] == 0
    for result, message in zip(results, messages, strict=True):
        assert result.get("failed"), str(result)
        assert message in result["msg"], (message, result["msg"])
        assert "connect" not in result["msg"].lower(), result["msg"]
    assert snapshot(moto, "gf-httpapi-bad") is None


def test_collection_name_and_module_defaults_group(moto: str, tmp_path: Path) -> None:
    """Region from module_defaults of group/godot_fleet.fleet.aws, which extends amazon.aws's group."""
    env = ansible_env(moto)
    name = "gf-httpapi-fqcn"
    tasks = [
        {
            "name": "HTTP API by its collection name",
            "godot_fleet.fleet.apigatewayv2_http_api": {
                "name": name,
                "routes": [{"route_key": "$default", "target": FN}],
            },
        },
        {"name": "An amazon.aws module in the same group", "amazon.aws.aws_caller_info": {}},
        {"name": "Remove it", "godot_fleet.fleet.apigatewayv2_http_api": {"name": name, "state": "absent"}},
    ]
    results, stats = play(
        tmp_path, moto, tasks, module_defaults={"group/godot_fleet.fleet.aws": {"region": REGION}}, env=env
    )
    assert not any(r.get("failed") for r in results), results
    assert results[0]["changed"] and results[0]["routes"][0]["target"] == FN
    assert results[1]["account"] == ACCOUNT
    assert results[2]["changed"] and stats["changed"] == 2
    assert snapshot(moto, name) is None
