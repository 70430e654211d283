"""The issuers' signing keys: found through OpenID discovery, cached, or read from a file.

Keys are only ever fetched for an issuer the caller already trusts (the verifier checks
``iss`` first), so a token cannot make this server fetch from a host of its choosing.
Fetching uses tornado's async client, so the Jupyter server's event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPInputError

from ..remote.reply_head import ReplyHead

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT = 1024 * 1024
#: Redirects followed for a discovery document or a JWKS (http(s) only, never to http
#: from https).
MAX_REDIRECTS = 3
REDIRECT_CODES = (301, 302, 303, 307, 308)
MIN_KEY_BITS = 2048
#: An unknown ``kid`` refetches the keys (they rotate), but not more often than this.
MIN_REFRESH_SECONDS = 60.0


class KeyUnavailable(Exception):
    """The issuer's keys could not be had (network, bad documents, bad file)."""


class UnknownKey(Exception):
    """The issuer's keys are known, but none has the token's ``kid``."""


def normalise_issuer(issuer: str) -> str:
    """Issuers compare without a trailing slash (the local backend's has none)."""
    return issuer.strip().rstrip("/")


@dataclass
class _Entry:
    fetched: float
    keys: dict[str, RSAPublicKey]


class KeyStore:
    """Public keys by issuer and ``kid``, cached for ``ttl`` seconds.

    With ``jwks_file`` set nothing is fetched: the file is a JWKS (``{"keys": [...]}``,
    used for every trusted issuer) or a map ``{"<issuer>": {"keys": [...]}}``. With
    ``documents`` (the same map, in memory: a bundle's) nothing is fetched either.
    """

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        jwks_file: str | Path | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        documents: dict[str, Any] | None = None,
    ) -> None:
        self.ttl = ttl
        self.jwks_file = Path(jwks_file) if jwks_file else None
        self.documents = (
            {normalise_issuer(k): v for k, v in documents.items()}
            if documents is not None
            else None
        )
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key(self, issuer: str, kid: str) -> RSAPublicKey:
        """The key ``kid`` of ``issuer``; raises :class:`KeyUnavailable` or :class:`UnknownKey`."""
        issuer = normalise_issuer(issuer)
        if self.documents is not None:
            if issuer not in self.documents:
                raise KeyUnavailable(f"the bundle holds no keys of {issuer}")
            keys = parse_jwks(self.documents[issuer], f"the bundle's JWKS of {issuer}")
            if kid not in keys:
                raise UnknownKey(f"no key with kid {kid!r} in the bundle's JWKS of {issuer}")
            return keys[kid]
        if self.jwks_file is not None:
            loop = asyncio.get_running_loop()
            keys = await loop.run_in_executor(None, load_jwks_file, self.jwks_file, issuer)
            if kid not in keys:
                raise UnknownKey(f"no key with kid {kid!r} in {self.jwks_file.name}")
            return keys[kid]
        lock = self._locks.setdefault(issuer, asyncio.Lock())
        async with lock:
            entry = self._cache.get(issuer)
            now = self._clock()
            stale = entry is None or now - entry.fetched >= self.ttl
            rotated = (
                entry is not None
                and kid not in entry.keys
                and now - entry.fetched >= MIN_REFRESH_SECONDS
            )
            if stale or rotated:
                entry = _Entry(now, await self.fetch(issuer))
                self._cache[issuer] = entry
        assert entry is not None
        if kid not in entry.keys:
            raise UnknownKey(f"{issuer} publishes no key with kid {kid!r}")
        return entry.keys[kid]

    async def fetch(self, issuer: str) -> dict[str, RSAPublicKey]:
        """Discovery, then ``jwks_uri``; every problem becomes :class:`KeyUnavailable`."""
        return parse_jwks(await self.fetch_jwks(issuer), f"the JWKS of {issuer}")

    async def fetch_jwks(self, issuer: str) -> dict[str, Any]:
        """The issuer's JWKS document as published."""
        issuer = normalise_issuer(issuer)
        discovery = await self._get_json(issuer + DISCOVERY_PATH, "discovery document")
        named = discovery.get("issuer")
        if named is not None and normalise_issuer(str(named)) != issuer:
            raise KeyUnavailable(
                f"the discovery document of {issuer} names another issuer ({named!r})"
            )
        return await self._get_json(usable_jwks_uri(issuer, discovery), "JWKS")

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        """A JSON object of at most ``MAX_DOCUMENT`` bytes; every problem (a bad URL or
        redirect included) is a :class:`KeyUnavailable`, never another exception."""
        for _hop in range(MAX_REDIRECTS + 1):
            response, body = await self._get(url, what)
            if response.code not in REDIRECT_CODES:
                break
            url = _redirect_target(url, response.headers.get("Location", ""), what)
        else:
            raise KeyUnavailable(f"the {what} redirected more than {MAX_REDIRECTS} times")
        if response.code != 200:
            raise KeyUnavailable(f"the {what} at {url} answered HTTP {response.code}")
        try:
            data = json.loads(body)
        except ValueError:
            raise KeyUnavailable(f"the {what} at {url} is not JSON") from None
        if not isinstance(data, dict):
            raise KeyUnavailable(f"the {what} at {url} is not a JSON object")
        return data

    async def _get(self, url: str, what: str) -> tuple[HTTPResponse, bytes]:
        """One GET, its body refused as soon as it passes ``MAX_DOCUMENT`` bytes."""
        body = bytearray()
        too_large = KeyUnavailable(f"the {what} at {url} is larger than {MAX_DOCUMENT} bytes")
        stopped: list[KeyUnavailable] = []

        def stop() -> None:
            # tornado reports an exception raised here only as a closed stream, and logs
            # any but HTTPInputError as uncaught: keep the reason, stop quietly
            stopped.append(too_large)
            raise HTTPInputError(str(too_large))

        head = ReplyHead()

        def on_header(line: str) -> None:
            if not head.feed(line):
                return
            for length in head.headers.get_list("Content-Length"):
                if length.strip().isdigit() and int(length) > MAX_DOCUMENT:
                    stop()

        def on_chunk(chunk: bytes) -> None:
            if len(body) + len(chunk) > MAX_DOCUMENT:
                stop()
            body.extend(chunk)

        client = AsyncHTTPClient(force_instance=True, max_body_size=2 * MAX_DOCUMENT)
        try:
            request = HTTPRequest(
                url,
                connect_timeout=self.connect_timeout,
                request_timeout=self.request_timeout,
                headers={"Accept": "application/json"},
                follow_redirects=False,
                header_callback=on_header,
                streaming_callback=on_chunk,
            )
            return await client.fetch(request, raise_error=False), bytes(body)
        except HTTPClientError as e:
            if stopped:
                raise stopped[0] from None
            raise KeyUnavailable(f"cannot fetch the {what} at {url}: {e.message}") from None
        except OSError as e:
            reason = e.strerror or str(e) or type(e).__name__
            raise KeyUnavailable(f"cannot fetch the {what} at {url}: {reason}") from None
        except ValueError as e:  # tornado's refusal of a URL it cannot fetch
            raise KeyUnavailable(f"cannot fetch the {what} at {url!r}: {e}") from None
        finally:
            client.close()


def _redirect_target(url: str, location: str, what: str) -> str:
    """Where a redirect of a key document leads: http(s) only, and an https document's
    keys never come over http (anyone on the path could swap them)."""
    try:
        target = urljoin(url, location)
        parts = urlsplit(target)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise KeyUnavailable(f"the {what} at {url} redirects to an unusable URL") from None
    if not location or parts.scheme not in ("http", "https") or not parts.hostname:
        raise KeyUnavailable(f"the {what} at {url} redirects to {location!r}, not an http(s) URL")
    if urlsplit(url).scheme == "https" and parts.scheme != "https":
        raise KeyUnavailable(f"the {what} at {url} redirects to plain http; refusing it")
    return target


def usable_jwks_uri(issuer: str, discovery: dict[str, Any]) -> str:
    """The discovery document's ``jwks_uri``; an https issuer's keys never come over http
    (anyone on the path could swap them)."""
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("http", "https"):
        raise KeyUnavailable(f"the discovery document of {issuer} has no usable jwks_uri")
    if urlsplit(issuer).scheme == "https" and urlsplit(jwks_uri).scheme != "https":
        raise KeyUnavailable(f"{issuer} points its jwks_uri at plain http; refusing it")
    return jwks_uri


def parse_jwks(jwks: Any, where: str) -> dict[str, RSAPublicKey]:
    """The RS256 signing keys of a JWKS by ``kid`` (other keys are skipped)."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise KeyUnavailable(f"{where} has no 'keys' list")
    keys: dict[str, RSAPublicKey] = {}
    for jwk in entries:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            key = RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"])).public_key()
        except (KeyError, TypeError, ValueError):
            raise KeyUnavailable(f"{where} has a malformed key {kid!r}") from None
        if key.key_size < MIN_KEY_BITS:
            continue
        keys[kid] = key
    return keys


def load_jwks_file(path: Path, issuer: str) -> dict[str, RSAPublicKey]:
    """Keys for ``issuer`` from a saved JWKS file (blocking: call it in a thread)."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise KeyUnavailable(f"cannot read the JWKS file {path}: {e.strerror or e}") from None
    except ValueError:
        raise KeyUnavailable(f"the JWKS file {path} is not JSON") from None
    if isinstance(data, dict) and "keys" not in data:
        by_issuer = {normalise_issuer(k): v for k, v in data.items()}
        if issuer not in by_issuer:
            raise KeyUnavailable(f"the JWKS file {path} has no keys for {issuer}")
        data = by_issuer[issuer]
    return parse_jwks(data, f"the JWKS file {path}")


def _b64_int(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
    return int.from_bytes(raw, "big")
