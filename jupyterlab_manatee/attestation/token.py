"""Reading attestation tokens: which kind a token is, and its parts.

A Confidential Space token is an RS256 JWT; the upstream mock backend hands out the plain
text ``mock tee token with nonce <md5>``. Parsing checks nothing: decoded claims are for
display until :mod:`.verify` has checked the signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

MOCK_TOKEN_RE = re.compile(r"^mock tee token with nonce ([0-9a-f]{32})$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ParsedToken:
    """A token split into its parts; ``kind`` is "jwt", "mock" or "unknown"."""

    kind: str
    text: str
    header: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    signed_section: bytes = b""
    signature: bytes = b""
    nonce: str = ""
    problem: str = ""


def parse_token(token: str) -> ParsedToken:
    """Split ``token`` without verifying it; ``problem`` says why an unknown one is unreadable."""
    text = token.strip()
    mock = MOCK_TOKEN_RE.match(text)
    if mock:
        return ParsedToken("mock", text, nonce=mock.group(1))
    parts = text.split(".")
    if len(parts) != 3:
        return ParsedToken("unknown", text, problem="it is neither a JWT nor the mock token")
    try:
        header = _json_segment(parts[0])
        claims = _json_segment(parts[1])
        signature = _b64url(parts[2])
    except ValueError as e:
        return ParsedToken("unknown", text, problem=f"it is not a readable JWT: {e}")
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    return ParsedToken("jwt", text, header, claims, signed, signature)


def describe_token(token: str) -> dict[str, Any]:
    """``{"kind": "jwt"|"mock"|"unknown", ...}`` with the decoded header/claims or nonce."""
    parsed = parse_token(token)
    if parsed.kind == "mock":
        return {"kind": "mock", "nonce": parsed.nonce}
    if parsed.kind == "jwt":
        return {"kind": "jwt", "header": parsed.header, "claims": parsed.claims}
    return {"kind": "unknown"}


def _b64url(segment: str) -> bytes:
    """Strict base64url (no stray characters), padding optional as JWTs omit it."""
    if not _SEGMENT_RE.match(segment):
        raise ValueError("a segment is not base64url")
    try:
        return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a segment is not base64url") from None


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("a segment is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError("a segment is not a JSON object")
    return value
