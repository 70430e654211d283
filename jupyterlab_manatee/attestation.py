"""Reading attestation tokens.

A Confidential Space token is an RS256 JWT; the upstream mock backend hands out the plain
text ``mock tee token with nonce <md5>``. This module says which one a token is and shows
its contents. It does not verify anything yet: decoded claims are for display only.
"""

from __future__ import annotations

import re
from typing import Any

from google.auth import jwt

MOCK_TOKEN_RE = re.compile(r"^mock tee token with nonce ([0-9a-f]{32})$")


def describe_token(token: str) -> dict[str, Any]:
    """``{"kind": "jwt"|"mock"|"unknown", ...}`` with the decoded header/claims or nonce."""
    text = token.strip()
    mock = MOCK_TOKEN_RE.match(text)
    if mock:
        return {"kind": "mock", "nonce": mock.group(1)}
    decoded = _decode_jwt(text) if text.count(".") == 2 else None
    if decoded is None:
        return {"kind": "unknown"}
    header, claims = decoded
    return {"kind": "jwt", "header": header, "claims": claims}


def _decode_jwt(text: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a JWT, unverified; None when ``text`` is not one."""
    try:
        header = jwt.decode_header(text)
        claims = jwt.decode(text, verify=False)
    except (ValueError, TypeError):
        return None
    if isinstance(header, dict) and isinstance(claims, dict):
        return header, claims
    return None
