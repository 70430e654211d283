"""Attestation tokens shaped like Google Confidential Space tokens, for local runs.

A local run has no hardware TEE, so the token says so (``swname`` ``LOCAL_NO_TEE``,
``dbgstat`` ``enabled``, ``hwmodel`` ``NONE``): a verifier that checks production values
refuses it, while every other step of verification (signature against the issuer's
JWKS, issuer, audience, nonce = MD5 of the output) works exactly as for a real token.
The RSA key is made on first start and kept in the data directory (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from .layout import atomic_write_bytes

#: What the real flow asks the TEE for (upstream's executor).
DEFAULT_AUDIENCE = "https://research.tiktok.com/"
#: Never CONFIDENTIAL_SPACE: this token does not come from a hardware TEE.
LOCAL_SWNAME = "LOCAL_NO_TEE"
TOKEN_LIFETIME_SECONDS = 3600
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """Signs RS256 tokens with the data directory's key and publishes the public half."""

    def __init__(self, key_pem: bytes, issuer: str, audience: str = DEFAULT_AUDIENCE) -> None:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("the token signing key must be an RSA key")
        numbers = private_key.public_key().public_numbers()
        self._public_jwk = {
            "kty": "RSA",
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }
        self.key_id = self._thumbprint(self._public_jwk)
        self._signer = crypt.RSASigner.from_string(key_pem, key_id=self.key_id)
        self.issuer = issuer.rstrip("/")
        self.audience = audience

    @classmethod
    def load_or_create(
        cls, path: Path, issuer: str, audience: str = DEFAULT_AUDIENCE
    ) -> TokenIssuer:
        """Read the key at ``path``, generating a 2048-bit RSA key on first start."""
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            atomic_write_bytes(path, pem, mode=0o600)
        os.chmod(path, 0o600)
        return cls(path.read_bytes(), issuer, audience)

    @staticmethod
    def _thumbprint(jwk: dict[str, str]) -> str:
        """RFC 7638 key id: SHA-256 of the canonical public JWK."""
        canonical = json.dumps(
            {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":")
        )
        digest = hashlib.sha256(canonical.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @property
    def jwks_uri(self) -> str:
        return self.issuer + JWKS_PATH

    def jwks(self) -> dict[str, Any]:
        """The public key set, as served at ``jwks_uri``."""
        return {"keys": [{**self._public_jwk, "alg": "RS256", "use": "sig", "kid": self.key_id}]}

    def openid_configuration(self) -> dict[str, Any]:
        """The discovery document served at ``<iss>/.well-known/openid-configuration``."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "claims_supported": [
                "iss",
                "aud",
                "iat",
                "nbf",
                "exp",
                "eat_nonce",
                "swname",
                "hwmodel",
                "dbgstat",
                "secboot",
                "submods",
            ],
        }

    def claims(
        self,
        *,
        nonce: str,
        image_digest: str,
        instance_name: str,
        env_override: dict[str, str] | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The payload of a token for one finished run."""
        issued = int(time.time() if now is None else now)
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
            "eat_nonce": nonce,
            "swname": LOCAL_SWNAME,
            "hwmodel": "NONE",
            "dbgstat": "enabled",
            "secboot": False,
            "submods": {
                "confidential_space": {"support_attributes": []},
                "container": {
                    "image_digest": image_digest,
                    "env_override": dict(env_override or {}),
                },
                "gce": {"instance_name": instance_name},
            },
        }

    def issue(
        self,
        *,
        nonce: str,
        image_digest: str,
        instance_name: str,
        env_override: dict[str, str] | None = None,
        now: float | None = None,
    ) -> str:
        """A signed RS256 JWT (``kid`` in the header) for one finished run."""
        payload = self.claims(
            nonce=nonce,
            image_digest=image_digest,
            instance_name=instance_name,
            env_override=env_override,
            now=now,
        )
        return jwt.encode(self._signer, payload).decode("ascii")
