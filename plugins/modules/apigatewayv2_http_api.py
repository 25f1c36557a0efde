#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: one API Gateway v2 HTTP API with Lambda proxy routes and one auto-deployed stage."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apigatewayv2_http_api
short_description: Manage an API Gateway v2 HTTP API with Lambda proxy routes
description:
  - Creates, updates or deletes one Amazon API Gateway v2 HTTP API (protocol C(HTTP)), found by its name.
  - Manages the API itself (description, tags, CORS, the default C(execute-api) endpoint), one Lambda proxy
    integration (C(AWS_PROXY)) for every distinct Lambda function the routes target, the routes, and one stage
    with automatic deployment, default route throttling and optional access logging.
  - Idempotent. Only what differs is changed; a converged API makes no write call. Check mode makes no write call
    and reports what would change (RV(changes)); diff mode shows a normalized description before and after.
  - The module does not grant API Gateway the right to invoke the functions. Add a Lambda permission for the
    principal C(apigateway.amazonaws.com) with a source ARN built from RV(execution_arn), for example
    C({{ api.execution_arn }}/*/*) (any stage, any route), using M(amazon.aws.lambda_policy).
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
notes:
  - The API name is its identity. The module fails when more than one API has that name, or when the API with
    that name is not an HTTP API.
  - Other stages of the API, and the authorization settings, authorizers, request parameters and per-route
    settings of routes, are not managed and are left alone.
  - M(amazon.aws.lambda) returns a version-qualified function ARN (C(...:function:name:3)) when it creates a
    function and an unqualified one on later runs. A numeric version qualifier in a route O(routes[].target) is
    therefore removed (with a warning) so the integration does not change from run to run; to pin a version,
    target an alias (C(...:function:name:live)) instead, which is kept.
  - Header names in O(cors) are compared case-insensitively (API Gateway stores them lowercased) and methods
    in upper case; the lists are compared as sets.
  - Changing the stage uses C(UpdateStage). Endpoints without C(UpdateStage) (moto 5.2.5 answers HTTP 500) get the
    stage deleted and created again, with a warning.
options:
  name:
    description: Name of the HTTP API. The API is found by this name.
    type: str
    required: true
  state:
    description: Whether the API should exist. V(absent) deletes it with its routes, integrations and stages.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the API.
      - When not set, the description is left as it is. V("") removes it.
    type: str
  disable_execute_api_endpoint:
    description:
      - Turn off the default C(https://API_ID.execute-api.REGION.amazonaws.com) endpoint (for an API reached
        only through a custom domain name).
    type: bool
    default: false
  cors:
    description:
      - CORS configuration of the API. API Gateway then answers preflight requests itself and adds the CORS
        headers to the responses of the integrations.
      - When not set, the CORS configuration is left as it is. V({}) (no field set) removes it.
    type: dict
    suboptions:
      allow_origins:
        description: Allowed origins, for example V(https://example.com), or V(*).
        type: list
        elements: str
      allow_methods:
        description: Allowed methods (V(GET), V(POST), ...) or V(*).
        type: list
        elements: str
      allow_headers:
        description: Allowed request headers (compared case-insensitively), or V(*).
        type: list
        elements: str
      expose_headers:
        description: Response headers exposed to the browser (compared case-insensitively).
        type: list
        elements: str
      max_age:
        description: Seconds a browser caches the preflight result (V(-1) to V(86400)).
        type: int
      allow_credentials:
        description: Whether credentials are allowed. Not allowed together with the origin V(*).
        type: bool
  routes:
    description:
      - The routes of the API, each to a Lambda function through a C(AWS_PROXY) integration. Routes to the same
        function share one integration.
      - When not set, routes and integrations are left as they are. When set (even to V([])), routes not listed
        are deleted (unless O(purge_routes=false)), and integrations no remaining route uses are deleted.
    type: list
    elements: dict
    suboptions:
      route_key:
        description:
          - V($default), or a method and a path separated by one space, for example V(POST /create_server),
            V(GET /rooms/{name}) or V(ANY /{proxy+}).
          - Methods are V(ANY), V(GET), V(POST), V(PUT), V(PATCH), V(DELETE), V(HEAD) and V(OPTIONS).
        type: str
        required: true
      target:
        description:
          - ARN of the Lambda function the route invokes, unqualified (C(arn:aws:lambda:REGION:ACCOUNT:function:NAME))
            or with an alias. A numeric version qualifier is removed (see the notes).
        type: str
        required: true
        aliases: [lambda_arn]
      payload_format_version:
        description: Lambda event format. All routes to one function must use the same.
        type: str
        choices: ["1.0", "2.0"]
        default: "2.0"
      timeout_ms:
        description:
          - Integration timeout in milliseconds (V(50) to V(30000)). All routes to one function must use the same.
        type: int
        default: 30000
  purge_routes:
    description: Whether routes that O(routes) does not list are deleted.
    type: bool
    default: true
  stage:
    description: The stage the API is served from. It deploys every change automatically (C(AutoDeploy)).
    type: dict
    default: {}
    suboptions:
      name:
        description:
          - Stage name. V($default) serves the API at the root of its endpoint; another name becomes the first
            path segment of every URL.
          - Other stages of the API are not touched.
        type: str
        default: "$default"
      throttling_burst_limit:
        description:
          - Default burst limit of every route (requests). The account limit applies on top.
          - The low default protects the functions behind the API (and the money they spend) from floods; raise it
            for many players.
        type: int
        default: 20
      throttling_rate_limit:
        description: Default steady rate limit of every route (requests per second).
        type: float
        default: 10.0
      detailed_metrics_enabled:
        description: Whether per-route CloudWatch metrics are published.
        type: bool
        default: false
      access_log:
        description:
          - Access logging to a CloudWatch Logs log group. When not set, access logging is turned off.
        type: dict
        suboptions:
          destination_arn:
            description:
              - ARN of the log group. A trailing V(:*) (as M(amazon.aws.cloudwatchlogs_log_group) returns it) is
                removed.
            type: str
            required: true
          format:
            description:
              - Log line format. Must contain V($context.requestId) or V($context.extendedRequestId).
            type: str
            required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
  - godot_fleet.fleet.aws
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: HTTP API of the room service
  godot_fleet.fleet.apigatewayv2_http_api:
    name: godot-fleet-rooms
    description: Rooms on demand
    region: eu-west-1
    tags:
      project: godot-fleet
    routes:
      - route_key: POST /create_server
        target: arn:aws:lambda:eu-west-1:123456789012:function:godot-fleet-api
        timeout_ms: 15000
      - route_key: GET /list_servers
        target: arn:aws:lambda:eu-west-1:123456789012:function:godot-fleet-api
        timeout_ms: 15000
    cors:
      allow_origins: ["https://play.example.com"]
      allow_methods: [GET, POST]
      allow_headers: [content-type, x-api-key]
      max_age: 600
    stage:
      throttling_burst_limit: 40
      throttling_rate_limit: 20
      access_log:
        destination_arn: arn:aws:logs:eu-west-1:123456789012:log-group:/godot-fleet/api
        format: '{"id":"$context.requestId","route":"$context.routeKey","status":"$context.status"}'
  register: aws_rooms_api

- name: Let the API invoke the function
  amazon.aws.lambda_policy:
    function_name: godot-fleet-api
    statement_id: apigateway-rooms
    action: lambda:InvokeFunction
    principal: apigateway.amazonaws.com
    source_arn: "{{ aws_rooms_api.execution_arn }}/*/*"
    region: eu-west-1
    state: present

- name: Remove the API
  godot_fleet.fleet.apigatewayv2_http_api:
    name: godot-fleet-rooms
    region: eu-west-1
    state: absent
"""

RETURN = r"""
api_id:
  description: Id of the API.
  type: str
  returned: when O(state=present), except when check mode would create the API
  sample: a1b2c3d4e5
name:
  description: Name of the API.
  type: str
  returned: always
  sample: godot-fleet-rooms
api_endpoint:
  description: Default endpoint of the API (the stage V($default) is served at its root).
  type: str
  returned: when O(state=present), except when check mode would create the API
  sample: https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com
execution_arn:
  description:
    - C(arn:PARTITION:execute-api:REGION:ACCOUNT:API_ID), the prefix of the source ARN of Lambda permissions
      (C(EXECUTION_ARN/*/*) allows every stage and route).
  type: str
  returned: when O(state=present), except when check mode would create the API
  sample: arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5
description:
  description: Description of the API.
  type: str
  returned: when O(state=present)
tags:
  description: Tags of the API.
  type: dict
  returned: when O(state=present)
cors:
  description: Normalized CORS configuration (headers lowercased, methods uppercased, lists sorted), or null.
  type: dict
  returned: when O(state=present)
routes:
  description: The routes of the API, sorted by route key.
  type: list
  elements: dict
  returned: when O(state=present)
  contains:
    route_key:
      description: Route key.
      type: str
      sample: POST /create_server
    route_id:
      description: Route id (null when check mode would create the route).
      type: str
    target:
      description: ARN of the Lambda function (or the URI of another integration, or null).
      type: str
    integration_id:
      description: Integration id (null when check mode would create the integration).
      type: str
    payload_format_version:
      description: Lambda event format of the integration.
      type: str
      sample: "2.0"
    timeout_ms:
      description: Integration timeout in milliseconds.
      type: int
      sample: 30000
stage:
  description: The managed stage.
  type: dict
  returned: when O(state=present)
  contains:
    name:
      description: Stage name.
      type: str
      sample: $default
    auto_deploy:
      description: Whether changes are deployed automatically.
      type: bool
    throttling_burst_limit:
      description: Default burst limit.
      type: int
    throttling_rate_limit:
      description: Default rate limit.
      type: float
    detailed_metrics_enabled:
      description: Whether detailed metrics are on.
      type: bool
    access_log:
      description: Access log destination and format, or null.
      type: dict
    invoke_url:
      description: Base URL of the stage (null when check mode would create the API).
      type: str
      sample: https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com
changes:
  description: What was changed, or what would be changed in check mode, one line per operation.
  type: list
  elements: str
  returned: always
  sample: ["create route POST /create_server -> arn:aws:lambda:eu-west-1:123456789012:function:godot-fleet-api"]
"""

from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.http_api import (
    DEFAULT_TIMEOUT_MS,
    HttpApiManager,
    InputError,
    build_desired,
    describe,
    fail,
    plan_api,
    predict,
    present_result,
    warn,
)


def argument_spec() -> dict[str, Any]:
    return {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "description": {"type": "str"},
        "tags": {"type": "dict", "aliases": ["resource_tags"]},
        "purge_tags": {"type": "bool", "default": True},
        "disable_execute_api_endpoint": {"type": "bool", "default": False},
        "cors": {
            "type": "dict",
            "options": {
                "allow_origins": {"type": "list", "elements": "str"},
                "allow_methods": {"type": "list", "elements": "str"},
                "allow_headers": {"type": "list", "elements": "str"},
                "expose_headers": {"type": "list", "elements": "str"},
                "max_age": {"type": "int"},
                "allow_credentials": {"type": "bool"},
            },
        },
        "routes": {
            "type": "list",
            "elements": "dict",
            "options": {
                "route_key": {"type": "str", "required": True, "no_log": False},  # a route, not a secret
                "target": {"type": "str", "required": True, "aliases": ["lambda_arn"]},
                "payload_format_version": {"type": "str", "default": "2.0", "choices": ["1.0", "2.0"]},
                "timeout_ms": {"type": "int", "default": DEFAULT_TIMEOUT_MS},
            },
        },
        "purge_routes": {"type": "bool", "default": True},
        "stage": {
            "type": "dict",
            "default": {},
            "options": {
                "name": {"type": "str", "default": "$default"},
                "throttling_burst_limit": {"type": "int", "default": 20},
                "throttling_rate_limit": {"type": "float", "default": 10.0},
                "detailed_metrics_enabled": {"type": "bool", "default": False},
                "access_log": {
                    "type": "dict",
                    "options": {
                        "destination_arn": {"type": "str", "required": True},
                        "format": {"type": "str", "required": True},
                    },
                },
            },
        },
    }


def main() -> None:
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        desired, warnings = build_desired(module.params)
    except InputError as e:
        fail(module, str(e))
    for warning in warnings:
        warn(module, warning)

    manager = HttpApiManager(module)
    found = manager.find(desired.name)
    current = None if found is None else manager.read(found, desired.stage.name)

    if module.params["state"] == "absent":
        changes = [] if current is None else [f"delete HTTP API {desired.name} ({current.api_id})"]
        if current is not None and not module.check_mode:
            manager.delete(current.api_id)
        diff = {"diff": {"before": describe(current), "after": {}}} if module._diff else {}
        module.exit_json(changed=bool(changes), changes=changes, name=desired.name, **diff)

    plan = plan_api(desired, current)
    after = predict(desired, current, plan)
    if module.check_mode or not plan.changes:
        final = current
    else:
        final = manager.reread(manager.apply(desired, current, plan), desired.stage.name)
    result = present_result(
        desired,
        final,
        after,
        plan,
        check_mode=module.check_mode,
        execution_arn=None if final is None else manager.execution_arn(final.api_id),
    )
    if module._diff:
        result["diff"] = {"before": describe(current), "after": after}
    module.exit_json(changed=bool(plan.changes), changes=plan.changes, **result)


if __name__ == "__main__":
    main()
