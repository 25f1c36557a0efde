"""API key checks: `Authorization: Bearer <key>` compared in constant time. Keys are never logged or echoed."""

from __future__ import annotations

import hmac

SCHEME = "bearer"


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), None if absent/malformed."""
    if not header:
        return None
    scheme, _space, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != SCHEME or not token or any(c.isspace() for c in token):
        return None
    return token


def key_matches(header: str | None, expected: str | None) -> bool:
    """True only if a key is configured (non-empty) and the header carries exactly that key.

    An unset or empty configured key refuses everything: an API without a key is closed, never open.
    """
    if not expected:
        return False
    token = bearer_token(header)
    if token is None:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))
