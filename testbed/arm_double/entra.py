"""A fake Microsoft Entra ID (login.microsoftonline.com): OpenID metadata and the client-credentials token grant.

Tokens are JWT-shaped (header.payload.signature, HS256 with a per-process secret) so that clients that peek into
them (expiry, tenant) work, and so that ARM can refuse anything it did not issue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from .errors import ArmError

LOGIN = "https://login.microsoftonline.com"
Json = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tokens:
    def __init__(self, lifetime: int = 3600) -> None:
        self.secret = os.urandom(32)
        self.lifetime = lifetime

    def issue(self, tenant: str, client_id: str, audience: str) -> str:
        issued = int(time.time())
        header = {"typ": "JWT", "alg": "HS256", "kid": "arm-test-double"}
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.lifetime,
            "appid": client_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant}:{client_id}")),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant}:{client_id}")),
            "tid": tenant,
            "ver": "1.0",
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self.secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def check_bearer(self, authorization: str | None) -> Json:
        """The claims of a token this double issued, or 401 the way ARM answers."""
        challenge = {
            "WWW-Authenticate": f'Bearer authorization_uri="{LOGIN}/common", error="invalid_token", '
            "error_description=\"The authentication failed because of missing 'Authorization' header.\""
        }
        if not authorization:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                headers=challenge,
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                headers=challenge,
            )
        parts = token.strip().split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a JWT")
            expected = hmac.new(self.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                raise ValueError("bad signature")
            claims: Json = json.loads(_unb64(parts[1]))
        except (ValueError, json.JSONDecodeError) as exc:
            raise ArmError(
                401, "InvalidAuthenticationToken", "The access token is invalid.", headers=challenge
            ) from exc
        if claims.get("exp", 0) < time.time():
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                headers=challenge,
            )
        return claims


def openid_configuration(tenant: str, v2: bool) -> Json:
    base = f"{LOGIN}/{tenant}"
    suffix = "/v2.0" if v2 else ""
    return {
        "token_endpoint": f"{base}/oauth2{suffix}/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery{suffix}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}{suffix}" if v2 else f"https://sts.windows.net/{tenant}/",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2{suffix}/authorize",
        "device_authorization_endpoint": f"{base}/oauth2{suffix}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2{suffix}/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def _aad_error(status: int, error: str, code: int, description: str) -> tuple[int, Json]:
    return status, {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }


def handle(tokens: Tokens, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Json]:
    """One request to login.microsoftonline.com: (status, JSON body)."""
    segs = [s for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    if len(segs) >= 3 and low[-2:] == [".well-known", "openid-configuration"]:
        return 200, openid_configuration(segs[0], v2=low[1] == "v2.0")
    if low[-2:] == ["discovery", "instance"]:
        tenant = "common"
        return 200, {
            "tenant_discovery_endpoint": f"{LOGIN}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [
                {
                    "preferred_network": "login.microsoftonline.com",
                    "preferred_cache": "login.windows.net",
                    "aliases": [
                        "login.microsoftonline.com",
                        "login.windows.net",
                        "login.microsoft.com",
                        "sts.windows.net",
                    ],
                }
            ],
        }
    if method == "POST" and len(segs) >= 3 and low[-1] == "token" and "oauth2" in low:
        return _token(tokens, segs[0], dict(parse_qsl(body.decode("utf-8", "replace"))))
    return 404, {"error": "not_found", "error_description": f"The ARM test double's Entra ID does not serve {path}."}


def _token(tokens: Tokens, tenant: str, form: dict[str, str]) -> tuple[int, Json]:
    grant = form.get("grant_type", "")
    if grant != "client_credentials":
        return _aad_error(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
        )
    client_id = form.get("client_id", "")
    if not client_id:
        return _aad_error(
            400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
        )
    if not form.get("client_secret") and not form.get("client_assertion"):
        return _aad_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request "
            "is the client secret value, not the client secret ID.",
        )
    scope = form.get("scope", "")
    resource = next((s for s in scope.split() if s.endswith("/.default")), None)
    if resource is None:
        return _aad_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows "
            "must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    audience = resource[: -len(".default")]
    audience = audience.rstrip("/") + "/" if audience.endswith("//") else audience
    return 200, {
        "token_type": "Bearer",
        "expires_in": tokens.lifetime - 1,
        "ext_expires_in": tokens.lifetime - 1,
        "access_token": tokens.issue(tenant, client_id, audience),
    }
