"""Who may talk to the local backend: the API token, the Host names it serves, browser Origins.

Closed by default. The real API only checks that ``Authorization`` is present; a backend
on a developer's machine would then run any notebook any local process or web page sends
it. So every job route (attestation included) requires the token, made on first start
and kept in the data directory (mode 0600). Requests whose ``Host`` is not a name this
backend serves are refused (a DNS-rebinding page names its own host), and so are browser
requests from a foreign ``Origin``.

Left open on purpose: ``/health`` (a liveness probe; it says only ``pong``), the token
issuer's discovery document and JWKS (public keys: any verifier must be able to fetch
them), and ``/storage/`` (a signed URL carries its own signature and expiry; its holder
sends no token, as with a cloud bucket's signed URL). The Host and Origin rules apply to
every route.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from .layout import atomic_write_bytes

#: Names a loopback backend always answers to (with its port).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: Set the API token instead of the one kept in the data directory.
TOKEN_ENV = "MANATEE_LOCAL_TOKEN"


def load_or_create_token(path: Path) -> str:
    """The token kept at ``path`` (mode 0600), made at random on first start."""
    if not path.exists():
        atomic_write_bytes(path, secrets.token_urlsafe(32).encode("ascii"), mode=0o600)
    os.chmod(path, 0o600)
    token = path.read_text("utf-8").strip()
    if not token:
        raise ValueError(f"the API token file {path} is empty; delete it to make a new one")
    return token


def save_token(path: Path, token: str) -> None:
    """Keep a token given on the command line where ``./dev`` and others read it."""
    atomic_write_bytes(path, token.encode("utf-8"), mode=0o600)


def _host_name(host: str) -> str:
    """``host`` as it appears in a Host header (IPv6 in brackets)."""
    host = host.strip()
    if host.startswith("["):
        return host.lower()
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host.lower()


def is_loopback(host: str) -> bool:
    """True for a bind address that only this machine can reach."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Ports a Host or Origin header leaves out (http's and https's).
DEFAULT_PORTS = ("80", "443")


class AccessPolicy:
    """The token and the ``Host``/``Origin`` values one running backend accepts."""

    def __init__(self, token: str, port: int, names: Iterable[str]) -> None:
        if not token:
            raise ValueError("the API token must not be empty")
        self._token = token.encode("utf-8")
        self.port = port
        allowed: set[str] = set()
        for name in (*LOOPBACK_NAMES, *names):
            name = name.strip()
            if not name:
                continue
            if (name.startswith("[") and "]:" in name) or name.count(":") == 1:
                allowed.add(name.lower())  # host:port, taken as given
                host, _, given_port = name.lower().rpartition(":")
                if given_port in DEFAULT_PORTS:
                    # a browser and most proxies leave a scheme's default port out of
                    # Host and Origin (https://manatee.example, not ...:443)
                    allowed.add(host)
                continue
            host = _host_name(name)
            allowed.add(f"{host}:{port}")
            if port == 80:
                allowed.add(host)
        self.allowed_hosts = frozenset(allowed)

    @staticmethod
    def names_for(bind_host: str, public_url: str | None, extra: Iterable[str]) -> list[str]:
        """The names a backend serves: its bind address (unless a wildcard), its public
        URL's host and port, and the operator's ``--allowed-host`` names."""
        names = list(extra)
        if bind_host not in ("", "0.0.0.0", "::"):
            names.append(bind_host)
        if public_url:
            parts = urlsplit(public_url)
            if parts.hostname:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                names.append(f"{_host_name(parts.hostname)}:{port}")
        return names

    def token_matches(self, header: str | None) -> bool:
        """Constant-time comparison of an ``Authorization`` value with the token."""
        if header is None:
            return False
        return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), self._token)

    def host_allowed(self, host: str | None) -> bool:
        return host is not None and host.strip().lower() in self.allowed_hosts

    def origin_allowed(self, origin: str | None) -> bool:
        """No Origin (not a browser) or one of this backend's own origins."""
        if origin is None:
            return True
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null", file:, extensions
        return self.host_allowed(parts.netloc)
