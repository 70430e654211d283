"""Attestation tokens shaped like Google Confidential Space tokens, for local runs.

A local run has no hardware TEE, so the token says so (``swname`` ``LOCAL_NO_TEE``,
``dbgstat`` ``enabled``, ``hwmodel`` ``NONE``): a verifier that checks production values
refuses it, while every other step of verification (signature against the issuer's
JWKS, issuer, audience, nonce = MD5 of the output) works exactly as for a real token.
The token carries the whole claim set of a Confidential Space token (``sub``,
``google_service_accounts``, ``submods.gce`` and ``submods.container.image_reference``),
filled from a `Deployment` the operator names, so the verifier's deployment-binding
checks run on local runs too. The RSA key is made on first start and kept in the data
directory (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid as uuid_module
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from .._version import __version__
from .layout import atomic_write_bytes

#: What the real flow asks the TEE for (upstream's executor).
DEFAULT_AUDIENCE = "https://research.tiktok.com/"
#: Never CONFIDENTIAL_SPACE: this token does not come from a hardware TEE.
LOCAL_SWNAME = "LOCAL_NO_TEE"
TOKEN_LIFETIME_SECONDS = 3600
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
#: Google's profile of the Confidential Space token, as real tokens name it.
EAT_PROFILE = (
    "https://cloud.google.com/confidential-computing/confidential-space/docs/reference/token-claims"
)
#: Google's IANA private enterprise number, the ``oemid`` of real tokens.
GOOGLE_OEMID = 11129
_INSTANCE_URL = (
    "https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/instances/{name}"
)

DEFAULT_PROJECT_ID = "manatee-local"
DEFAULT_SERVICE_ACCOUNT = "manatee-local-tee@manatee-local.iam.gserviceaccount.com"
DEFAULT_IMAGE_REGISTRY = "localhost/manatee-local"
DEFAULT_ZONE = "local"


def project_number_for(project_id: str) -> str:
    """A stable 12-digit project number made from the project id (GCP's are 12 digits)."""
    value = int.from_bytes(hashlib.sha256(project_id.encode("utf-8")).digest()[:8], "big")
    return str(10**11 + value % (9 * 10**11))


def instance_id_for(job_uuid: str) -> str:
    """A stable decimal instance id per job (GCE's are unsigned 64-bit numbers)."""
    return str(uuid_module.UUID(job_uuid).int >> 64)


@dataclass(frozen=True)
class Deployment:
    """The deployment a local backend pretends to be: what a verifier pins."""

    project_id: str = DEFAULT_PROJECT_ID
    project_number: str = ""  # empty: made from the project id
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    image_registry: str = DEFAULT_IMAGE_REGISTRY
    zone: str = DEFAULT_ZONE

    def __post_init__(self) -> None:
        if not self.project_number:
            object.__setattr__(self, "project_number", project_number_for(self.project_id))
        if not self.project_number.isdigit():
            raise ValueError("the project number must be decimal digits")
        object.__setattr__(self, "image_registry", self.image_registry.rstrip("/"))
        for name in ("project_id", "service_account", "image_registry", "zone"):
            if not getattr(self, name):
                raise ValueError(f"the deployment's {name.replace('_', ' ')} must not be empty")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """Signs RS256 tokens with the data directory's key and publishes the public half."""

    def __init__(
        self,
        key_pem: bytes,
        issuer: str,
        audience: str = DEFAULT_AUDIENCE,
        deployment: Deployment | None = None,
    ) -> None:
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
        self.deployment = deployment or Deployment()

    @classmethod
    def load_or_create(
        cls,
        path: Path,
        issuer: str,
        audience: str = DEFAULT_AUDIENCE,
        deployment: Deployment | None = None,
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
        return cls(path.read_bytes(), issuer, audience, deployment)

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
                "sub",
                "aud",
                "iat",
                "nbf",
                "exp",
                "eat_nonce",
                "eat_profile",
                "oemid",
                "swname",
                "swversion",
                "hwmodel",
                "dbgstat",
                "secboot",
                "google_service_accounts",
                "submods",
            ],
        }

    def claims(
        self,
        *,
        nonce: str,
        archive_sha256: str,
        creator: str,
        job_uuid: str,
        env_override: dict[str, str] | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The payload of a token for one finished run.

        The image of a local run is its submitted archive: ``image_digest`` is the
        archive's SHA-256, and ``image_reference`` names the job as upstream's builder
        names its image (``<registry>/<creator>-<uuid>@sha256:...``).
        """
        issued = int(time.time() if now is None else now)
        dep = self.deployment
        instance_name = f"{creator}-{job_uuid}"
        digest = f"sha256:{archive_sha256}"
        return {
            "iss": self.issuer,
            "sub": _INSTANCE_URL.format(project=dep.project_id, zone=dep.zone, name=instance_name),
            "aud": self.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
            "eat_nonce": nonce,
            "eat_profile": EAT_PROFILE,
            "oemid": GOOGLE_OEMID,
            "swname": LOCAL_SWNAME,
            "swversion": [__version__],
            "hwmodel": "NONE",
            "dbgstat": "enabled",
            "secboot": False,
            "google_service_accounts": [dep.service_account],
            "submods": {
                "confidential_space": {"support_attributes": []},
                "container": {
                    "image_reference": f"{dep.image_registry}/{instance_name}@{digest}",
                    "image_digest": digest,
                    "env_override": dict(env_override or {}),
                },
                "gce": {
                    "project_id": dep.project_id,
                    "project_number": dep.project_number,
                    "zone": dep.zone,
                    "instance_id": instance_id_for(job_uuid),
                    "instance_name": instance_name,
                },
            },
        }

    def issue(
        self,
        *,
        nonce: str,
        archive_sha256: str,
        creator: str,
        job_uuid: str,
        env_override: dict[str, str] | None = None,
        now: float | None = None,
    ) -> str:
        """A signed RS256 JWT (``kid`` in the header) for one finished run (see `claims`)."""
        payload = self.claims(
            nonce=nonce,
            archive_sha256=archive_sha256,
            creator=creator,
            job_uuid=job_uuid,
            env_override=env_override,
            now=now,
        )
        return jwt.encode(self._signer, payload).decode("ascii")
