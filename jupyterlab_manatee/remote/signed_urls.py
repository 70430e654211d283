"""Signed URLs the API hands out, and storage's redirects: checked before any fetch, so a
bad one is the API's fault (502) or "none to hand out" (404), never a parser's exception."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from ..errors import ApiUnavailable, NotFound


def check_signed_url(url: str, what: str) -> None:
    """An empty URL is "none to hand out" (404); anything not a usable http(s) URL is the
    API's fault (502), never an exception out of the URL parser."""
    if not url:
        raise NotFound(
            f"The ManaTEE API has no {what} to hand out for this job (empty signed URL): "
            "it may have produced none, or storage could not sign a URL"
        )
    problem = url_problem(url)
    if problem:
        raise ApiUnavailable(
            f"The ManaTEE API's signed URL for the {what} {problem}: the API or its "
            "storage is misconfigured"
        )


def redirect_target(url: str, location: str, what: str) -> str:
    """Where a storage redirect leads, refused unless it is a usable http(s) URL."""
    if not location:
        raise ApiUnavailable(f"Storage redirected the {what} without a Location")
    try:
        target = urljoin(url, location)
    except ValueError:
        target = location
    problem = url_problem(target)
    if problem:
        raise ApiUnavailable(
            f"Storage redirected the {what} to a URL that {problem}; not following"
        )
    return target


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched (None: it can be tried)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "is not http(s)"
    if not parts.hostname:
        return "has no host"
    return None
