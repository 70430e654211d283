"""The ManaTEE API over HTTP: its routes called, signed URLs downloaded.

Every call sends ``Authorization: <token>`` (raw, even when empty; upstream's attestation
route ignores it, the local backend requires it there too); redirects, timeouts, huge or
broken replies become :mod:`..errors` exceptions that never mention the token. What the
API's requests and replies look like is :mod:`.wire`'s alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders
from tornado.iostream import StreamClosedError

from ..config import redact_url
from ..errors import (
    ApiTimeout,
    ApiUnavailable,
    NotFound,
)
from .api_session import (
    REFUSED,
    ApiSession,
    Broken,
    ConnectTimeout,
    ReplyTooLarge,
    Unreachable,
    connect_failure,
)
from .archive_stream import ArchiveStream
from .readers import MAX_JSON_REPLY, CappedBody, Reader
from .reply_head import ReplyHead
from .signed_urls import check_signed_url, redirect_target
from .wire import (
    ATTESTATION,
    DELETE,
    HEALTH,
    HEALTH_REPLY,
    OUTPUT,
    QUERY,
    SUBMIT,
    form,
    is_job,
    json_or_none,
    parse_reply,
    snippet,
    submitted,
)

CHUNK = 1024 * 1024
#: Redirects followed for a signed URL (each one checked, none carries a header of ours).
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_BODY = 1 << 62  # downloads are streamed to disk; tornado's 100 MB default would cut them

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedFile:
    """Where to GET a job's output or token (``url`` may be "" when storage could not sign)."""

    url: str
    filename: str = ""


class ManateeApiClient:
    """Calls the five POST routes and /health, and downloads signed URLs."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        upload_timeout: float = 3600.0,
        session: ApiSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        #: the server's pooled connections for JSON calls (None: one session per call)
        self._session = session
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.upload_timeout = upload_timeout

    # --- the routes -------------------------------------------------------------------

    async def submit(
        self, archive: Path, *, creator: str, filename: str, envs: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Upload a workspace archive once, streamed from disk; returns the API's reply."""
        head, tail, content_type = form(creator, filename, envs)
        headers, produce = await _file_body(archive, head, tail)
        reply = await self._call(
            SUBMIT,
            headers={"Content-Type": content_type, **headers},
            body_producer=produce,
            timeout=self.upload_timeout,
        )
        return submitted(reply)

    async def submit_stream(
        self, stream: ArchiveStream, *, creator: str, filename: str, envs: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Upload an archive while it is written (a chunked body): one upload, unless the
        API answers 307/308; then the whole archive, complete on disk, is sent again."""
        head, tail, content_type = form(creator, filename, envs)

        async def produce(write: Callable[[bytes], Awaitable[None]]) -> None:
            await write(head)
            async for block in stream.blocks():
                await write(block)
            await write(tail)

        async def resend() -> tuple[dict[str, str], Callable[..., Awaitable[None]]]:
            archive = await stream.complete()
            headers, from_file = await _file_body(archive, head, tail)
            return {"Content-Type": content_type, **headers}, from_file

        reply = await self._call(
            SUBMIT,
            headers={"Content-Type": content_type},
            body_producer=produce,
            timeout=self.upload_timeout,
            resend=resend,
        )
        return submitted(reply)

    async def query(self, *, creator: str, page: int, page_size: int) -> dict[str, Any]:
        """One page of the creator's jobs: ``{"jobs": [JOB...], "total": N}``."""
        reply = await self._post_json(
            QUERY, {"page": page, "page_size": page_size, "creator": creator}
        )
        jobs = reply.get("jobs") or []
        if not isinstance(jobs, list) or not all(is_job(j) for j in jobs):
            raise ApiUnavailable("The ManaTEE API's job list does not have the expected fields")
        total = reply.get("total", len(jobs))
        return {"jobs": jobs, "total": total if isinstance(total, int) else len(jobs)}

    async def delete(self, *, creator: str, job_uuid: str) -> None:
        await self._post_json(DELETE, {"uuid": job_uuid, "creator": creator})

    async def output(self, *, creator: str, job_id: int) -> SignedFile:
        """The output's signed URL; ``filename`` is the API's and never names a saved file
        (see :func:`..jobs.output.output_name`)."""
        reply = await self._post_json(OUTPUT, {"id": job_id, "creator": creator})
        return SignedFile(str(reply.get("signed_url") or ""), str(reply.get("filename") or ""))

    async def attestation(self, *, creator: str, job_id: int) -> SignedFile:
        reply = await self._post_json(ATTESTATION, {"id": job_id, "creator": creator})
        return SignedFile(str(reply.get("signed_url") or ""))

    async def health(self) -> None:
        """Raise unless ``GET /health`` answers ``{"message": "pong"}`` (a redirect is not
        followed: it is not the API's answer)."""
        status, _location, body = await self._pooled(
            self.base_url + HEALTH, HEALTH, {}, None, min(self.request_timeout, 10.0)
        )
        if status != 200 or json_or_none(body) != HEALTH_REPLY:
            raise ApiUnavailable(
                f"{redact_url(self.base_url)} answered /health with HTTP {status}, "
                "not ManaTEE's pong: is DATA_CLEAN_ROOM_HOST the ManaTEE API?"
            )

    # --- signed URLs ------------------------------------------------------------------

    async def download(
        self, url: str, write: Callable[[bytes], Awaitable[None] | None], *, what: str
    ) -> int:
        """Stream a signed URL into ``write`` (sync, or async to hold the reading back);
        returns the byte count.

        ``write`` only ever sees the body of a 200 answer, so an error page never lands in
        the caller's file. Redirects are followed here, each target checked (http(s) only),
        and no request to storage carries a header of ours (no ``Authorization``).
        """
        check_signed_url(url, what)
        head = ReplyHead()
        error_head = bytearray()
        received = 0
        reader = Reader()

        async def written(pending: Awaitable[None]) -> None:
            try:
                await pending
            except Exception as e:  # the caller's refusal, or its disk
                reader.stop(e)

        def on_chunk(chunk: bytes) -> Awaitable[None] | None:
            nonlocal received
            if head.code == 200:
                received += len(chunk)
                try:
                    pending = write(chunk)
                except Exception as e:  # the caller's refusal, or its disk
                    reader.stop(e)
                # an async write (see .offload) makes tornado wait before reading on
                return written(pending) if pending is not None else None
            if len(error_head) < 1024:
                error_head.extend(chunk[: 1024 - len(error_head)])
            return None

        for _hop in range(MAX_REDIRECTS + 1):
            error_head.clear()
            request = HTTPRequest(
                url,
                connect_timeout=self.connect_timeout,
                request_timeout=self.upload_timeout,
                header_callback=head.feed,
                streaming_callback=on_chunk,
                follow_redirects=False,
                decompress_response=False,
            )
            response = await self._fetch(request, what, reader)
            if response.code not in REDIRECT_CODES:
                break
            url = redirect_target(url, response.headers.get("Location", ""), what)
        else:
            raise ApiUnavailable(f"Storage redirected the {what} more than {MAX_REDIRECTS} times")
        if response.code == 404:
            raise NotFound(
                f"The {what} is not in storage (HTTP 404): the job may have produced none"
            )
        if response.code == 403:
            raise NotFound(
                f"Storage refused the {what}'s signed URL (HTTP 403): it may have expired "
                "or the file is missing; try again"
            )
        if response.code != 200:
            raise ApiUnavailable(
                f"Storage answered HTTP {response.code} for the {what}: "
                f"{snippet(bytes(error_head))}"
            )
        return received

    async def fetch_text(self, url: str, *, what: str, limit: int = 1024 * 1024) -> str:
        """A small signed file (an attestation token) as text, at most ``limit`` bytes."""
        buf = bytearray()

        def write(chunk: bytes) -> None:
            buf.extend(chunk)
            if len(buf) > limit:
                raise ApiUnavailable(
                    f"The {what} is larger than {limit} bytes; refusing to read it"
                )

        await self.download(url, write, what=what)
        return buf.decode("utf-8", errors="replace")

    # --- plumbing ---------------------------------------------------------------------

    async def _post_json(
        self, route: str, payload: dict[str, Any], *, authorize: bool = True
    ) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        return await self._call(
            route,
            headers={"Content-Type": "application/json"},
            body=body,
            timeout=self.request_timeout,
            authorize=authorize,
        )

    async def _call(
        self,
        route: str,
        *,
        headers: dict[str, str],
        timeout: float,
        body: bytes | None = None,
        body_producer: Callable[..., Awaitable[None]] | None = None,
        authorize: bool = True,
        resend: Callable[[], Awaitable[tuple[dict[str, str], Callable[..., Awaitable[None]]]]]
        | None = None,
    ) -> dict[str, Any]:
        """POST to a route; on 307/308 re-send once to ``Location`` resolved on the base URL
        (with the headers and body ``resend`` gives, when a body cannot be produced twice)."""
        auth = {"Authorization": self._token} if authorize else {}
        headers = {**headers, **auth}
        url = self.base_url + route
        for attempt in range(2):
            if body_producer is None and body is not None:  # JSON: a pooled connection
                status, location, data = await self._pooled(url, route, headers, body, timeout)
                if status in (307, 308) and attempt == 0:
                    url = self._resolve_redirect(location, route)
                    log.info("ManaTEE API redirected %s to %s; re-sending", route, redact_url(url))
                    continue
                return parse_reply(status, data, route, self.base_url)
            capped = CappedBody(f"{redact_url(self.base_url)}{route}")
            request = HTTPRequest(
                url,
                method="POST",
                headers=HTTPHeaders(headers),
                body=body,
                body_producer=body_producer,
                connect_timeout=self.connect_timeout,
                request_timeout=timeout,
                follow_redirects=False,
                max_redirects=0,
                header_callback=capped.on_header,
                streaming_callback=capped.on_chunk,
            )
            response = await self._fetch(request, route, capped)
            if response.code in (307, 308) and attempt == 0:
                url = self._resolve_redirect(response.headers.get("Location", ""), route)
                log.info("ManaTEE API redirected %s to %s; re-sending", route, redact_url(url))
                if resend is not None:
                    new_headers, body_producer = await resend()
                    headers = {**new_headers, **auth}
                continue
            return parse_reply(response.code, bytes(capped.body), route, self.base_url)
        raise ApiUnavailable(f"The ManaTEE API redirected {route} more than once")

    async def _pooled(
        self, url: str, route: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, str, bytes]:
        """One JSON POST (or, without a body, a GET) through :mod:`.api_session`; failures
        become domain errors as in :meth:`_fetch`."""
        session = self._session or ApiSession()
        try:
            reply = await session.request(
                "GET" if body is None else "POST",
                url,
                headers,
                body,
                connect_timeout=self.connect_timeout,
                timeout=timeout,
                limit=MAX_JSON_REPLY,
            )
        except ReplyTooLarge:
            raise CappedBody(f"{redact_url(self.base_url)}{route}").too_large() from None
        except ConnectTimeout:
            raise ApiTimeout(
                f"{_host(url)} did not answer {route} within {self.connect_timeout:g} s; "
                "try again later"
            ) from None
        except asyncio.TimeoutError:
            raise ApiTimeout(
                f"{_host(url)} did not answer {route} within {timeout:g} s; try again later"
            ) from None
        except Unreachable as e:
            raise _cannot_reach(url, route, str(e)) from None
        except (Broken, OSError) as e:
            raise ApiUnavailable(
                f"The connection to {_host(url)} broke during {route}: {e or type(e).__name__}"
            ) from None
        finally:
            if session is not self._session:
                await session.close()
        return reply.status, reply.location, reply.body

    def _resolve_redirect(self, location: str, route: str) -> str:
        if not location:
            raise ApiUnavailable(f"The ManaTEE API redirected {route} without a Location")
        try:
            target = urlsplit(location)
        except ValueError:  # e.g. "http://[::1"
            raise ApiUnavailable(
                f"The ManaTEE API redirected {route} to an unusable URL; not following"
            ) from None
        if target.scheme or target.netloc:
            base = urlsplit(self.base_url)
            if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                raise ApiUnavailable(
                    f"The ManaTEE API redirected {route} to another host; not following"
                )
            return location
        if location.startswith("/"):
            return self.base_url + location
        return urljoin(self.base_url + route, location)

    async def _fetch(
        self, request: HTTPRequest, what: str, reader: Reader | None = None
    ) -> HTTPResponse:
        """One request; every failure becomes a domain error (a reader's reason first)."""
        client = AsyncHTTPClient(force_instance=True, max_body_size=MAX_BODY)
        try:
            return await client.fetch(request, raise_error=False)
        except HTTPClientError as e:
            if reader is not None and reader.error is not None:
                raise reader.error from None
            if e.code == 599 and "Timeout" in str(e):
                raise ApiTimeout(
                    f"{_host(request.url)} did not answer {what} within "
                    f"{_timeout_of(request, str(e)):g} s; try again later"
                ) from None
            raise ApiUnavailable(
                f"The connection to {_host(request.url)} broke during {what}: {e.message}"
            ) from None
        except (OSError, StreamClosedError) as e:
            if isinstance(e, StreamClosedError):
                reason = str(e) or type(e).__name__
            else:
                parts = urlsplit(request.url)
                reason = connect_failure(e, parts.hostname or "", parts.port)
            raise _cannot_reach(request.url, what, reason) from None
        finally:
            client.close()


async def _file_body(
    archive: Path, head: bytes, tail: bytes
) -> tuple[dict[str, str], Callable[..., Awaitable[None]]]:
    """A Content-Length and a producer that streams ``archive`` from disk between them."""
    loop = asyncio.get_running_loop()
    size = len(head) + await loop.run_in_executor(None, os.path.getsize, archive) + len(tail)

    async def produce(write: Callable[[bytes], Awaitable[None]]) -> None:
        await write(head)
        f = await loop.run_in_executor(None, open, archive, "rb")
        try:
            while chunk := await loop.run_in_executor(None, f.read, CHUNK):
                await write(chunk)
        finally:
            f.close()
        await write(tail)

    return {"Content-Length": str(size)}, produce


def _cannot_reach(url: str, what: str, reason: str) -> ApiUnavailable:
    """The API could not be reached; for a refused connection, what to do about it."""
    message = f"Cannot reach {_host(url)} for {what}: {reason}"
    if reason.endswith(REFUSED):
        message += (
            ". Start the ManaTEE API (./dev run starts a local one), or point "
            "DATA_CLEAN_ROOM_HOST (c.ManateeConfig.api_url) at one that runs, then try again."
        )
    return ApiUnavailable(message)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _timeout_of(request: HTTPRequest, message: str) -> float:
    if "connect" in message.lower():
        return request.connect_timeout or 0.0
    return request.request_timeout or 0.0
