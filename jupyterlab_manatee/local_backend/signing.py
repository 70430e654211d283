"""Signed download URLs: HMAC-SHA256 over the storage key and the expiry time.

Like a cloud bucket's signed URL, the URL alone grants a GET of one file until it
expires; anyone changing the key, the expiry or the signature gets 403. The secret is
made on first start and kept in the data directory (mode 0600), so URLs stay valid across
a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from .layout import atomic_write_bytes

#: Upstream signs GET URLs for one hour.
DEFAULT_TTL_SECONDS = 3600
#: The route prefix the signed files are served under.
STORAGE_PREFIX = "/storage/"


class SignatureRefused(Exception):
    """A signed URL that is malformed, tampered with or expired (HTTP 403)."""


class UrlSigner:
    """Makes and checks signed URLs for storage keys under one base URL."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        if len(secret) < 32:
            raise ValueError("the URL signing secret must be at least 32 bytes")
        self._secret = secret
        self.base_url = base_url.rstrip("/")

    @classmethod
    def load_or_create(cls, path: Path, base_url: str) -> UrlSigner:
        """Read the secret from ``path``, making a new random one on first start."""
        if not path.exists():
            atomic_write_bytes(path, secrets.token_hex(32).encode("ascii"), mode=0o600)
        os.chmod(path, 0o600)
        return cls(path.read_bytes().strip(), base_url)

    def signature(self, key: str, expires: int) -> str:
        """Hex HMAC-SHA256 of the method, storage key and expiry."""
        message = f"GET\n{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, key: str, ttl: float = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
        """A GET URL for ``key`` that is valid for ``ttl`` seconds."""
        expires = int((time.time() if now is None else now) + ttl)
        query = urlencode({"expires": expires, "signature": self.signature(key, expires)})
        return f"{self.base_url}{STORAGE_PREFIX}{quote(key, safe='/')}?{query}"

    def verify(self, key: str, expires: str | None, signature: str | None) -> None:
        """Raise `SignatureRefused` unless the signature matches and has not expired."""
        if not expires or not signature:
            raise SignatureRefused("the URL is not signed (expires and signature are required)")
        # isdigit() alone takes '²' and other digits int() refuses: ASCII only.
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            raise SignatureRefused("the URL's expiry is not a valid time")
        expected = self.signature(key, int(expires))
        given = signature.lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode("ascii"), given):
            raise SignatureRefused("the URL's signature does not match (tampered with?)")
        if int(expires) < time.time():
            raise SignatureRefused("the signed URL has expired; ask for a new one")
