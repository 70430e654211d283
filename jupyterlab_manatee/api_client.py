"""The ManaTEE API's wire format, and the only module that knows it.

Routes carry their trailing slash (the API answers 307 without it), every call sends
``Authorization: <token>`` (raw, even when empty; upstream's attestation route ignores it,
the local backend requires it there too), failures arrive as
HTTP 200 with ``code != 0``, and non-JSON answers (307, 404/405/413 text, a 500 after a
panic) are possible. Everything here turns those into :mod:`.errors` exceptions that keep
the API's ``msg`` and never mention the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders, HTTPInputError
from tornado.iostream import StreamClosedError
from urllib3.filepost import encode_multipart_formdata

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
from .config import redact_url
from .errors import (
    ApiRefused,
    ApiTimeout,
    ApiUnavailable,
    JobLimitReached,
    NotFound,
    WorkspaceTooLarge,
)
from .reply_head import ReplyHead

# The job routes, registered by the API with their trailing slash.
SUBMIT = "/v1/job/submit/"
QUERY = "/v1/job/query/"
DELETE = "/v1/job/delete/"
OUTPUT = "/v1/job/output/download/"
ATTESTATION = "/v1/job/attestation/"
JOB_ROUTES = (SUBMIT, QUERY, DELETE, OUTPUT, ATTESTATION)
HEALTH = "/health"
HEALTH_REPLY = {"message": "pong"}

SUCCESS_CODE = 0
SUCCESS_MSG = "Success"
ERROR_CODE = 10001  # every failure in practice, the job limit included
JOB_LIMIT_CODE = 10002  # defined upstream for the limit, but not what it sends
# Upstream wraps the limit message with an empty prefix, hence the leading ": ".
JOB_LIMIT_MSG = ": The number of in progress jobs has reached the limit"
JOB_KEYS = ("id", "uuid", "creator", "job_status", "jupyter_file_name", "created_at", "updated_at")
_JOB_KEY_SET = frozenset(JOB_KEYS)

CHUNK = 1024 * 1024
MIB = 1024 * 1024
#: The largest JSON reply read from the API; a longer one is refused while it streams.
MAX_JSON_REPLY = 16 * MIB
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


class _Reader:
    """Lets a fetch's callbacks stop it for a reason of ours.

    tornado logs any other exception raised in ``header_callback``/``streaming_callback``
    as uncaught and reports only a closed stream; an ``HTTPInputError`` closes the
    connection quietly. So the reason is kept here and raised once the fetch returns.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def stop(self, error: BaseException) -> NoReturn:
        self.error = error
        raise HTTPInputError(str(error))


class _CappedBody(_Reader):
    """A JSON reply's body, refused as soon as it passes ``limit`` bytes: a huge or endless
    reply is never held whole in memory (tornado would read it all before any check)."""

    def __init__(self, where: str, limit: int = MAX_JSON_REPLY) -> None:
        super().__init__()
        self.where = where
        self.limit = limit
        self.body = bytearray()
        self.head = ReplyHead()

    def on_header(self, line: str) -> None:
        if not self.head.feed(line):
            return
        # a 1xx reply's headers end here too; tornado refuses one that declares a body
        for length in self.head.headers.get_list("Content-Length"):
            if length.strip().isdigit() and int(length) > self.limit:
                self.stop(self.too_large())

    def on_chunk(self, chunk: bytes) -> None:
        if len(self.body) + len(chunk) > self.limit:
            self.stop(self.too_large())
        self.body.extend(chunk)

    def too_large(self) -> ApiUnavailable:
        return ApiUnavailable(
            f"{self.where} sent a reply larger than {self.limit // MIB} MiB; stopped reading "
            "it. Is DATA_CLEAN_ROOM_HOST the ManaTEE API?"
        )


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
        head, tail, content_type = _form(creator, filename, envs)
        headers, produce = await _file_body(archive, head, tail)
        reply = await self._call(
            SUBMIT,
            headers={"Content-Type": content_type, **headers},
            body_producer=produce,
            timeout=self.upload_timeout,
        )
        return _submitted(reply)

    async def submit_stream(
        self, stream: ArchiveStream, *, creator: str, filename: str, envs: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Upload an archive while it is written (a chunked body): one upload, unless the
        API answers 307/308; then the whole archive, complete on disk, is sent again."""
        head, tail, content_type = _form(creator, filename, envs)

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
        return _submitted(reply)

    async def query(self, *, creator: str, page: int, page_size: int) -> dict[str, Any]:
        """One page of the creator's jobs: ``{"jobs": [JOB...], "total": N}``."""
        reply = await self._post_json(
            QUERY, {"page": page, "page_size": page_size, "creator": creator}
        )
        jobs = reply.get("jobs") or []
        if not isinstance(jobs, list) or not all(_is_job(j) for j in jobs):
            raise ApiUnavailable("The ManaTEE API's job list does not have the expected fields")
        total = reply.get("total", len(jobs))
        return {"jobs": jobs, "total": total if isinstance(total, int) else len(jobs)}

    async def delete(self, *, creator: str, job_uuid: str) -> None:
        await self._post_json(DELETE, {"uuid": job_uuid, "creator": creator})

    async def output(self, *, creator: str, job_id: int) -> SignedFile:
        """The output's signed URL; ``filename`` is the API's and never names a saved file
        (see :func:`.output.output_name`)."""
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
        if status != 200 or _json_or_none(body) != HEALTH_REPLY:
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
        _check_signed_url(url, what)
        head = ReplyHead()
        error_head = bytearray()
        received = 0
        reader = _Reader()

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
            url = _redirect_target(url, response.headers.get("Location", ""), what)
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
                f"{_snippet(bytes(error_head))}"
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
                return _parse_reply(status, data, route, self.base_url)
            capped = _CappedBody(f"{redact_url(self.base_url)}{route}")
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
            return _parse_reply(response.code, bytes(capped.body), route, self.base_url)
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
            raise _CappedBody(f"{redact_url(self.base_url)}{route}").too_large() from None
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
        self, request: HTTPRequest, what: str, reader: _Reader | None = None
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


def _form(creator: str, filename: str, envs: list[dict[str, str]]) -> tuple[bytes, bytes, str]:
    """The multipart form around the archive: (head, tail, Content-Type).

    urllib3 encodes the whole form with an empty file part (a random boundary, the fields'
    values as they are: a multipart part carries any bytes); it is cut where the file's
    bytes would go, so the archive streams in between without being held in memory.
    """
    form, content_type = encode_multipart_formdata(
        [
            ("creator", creator),
            ("filename", filename),
            ("envs", json.dumps(envs)),
            ("file", ("workspace.tar.gz", b"", "application/gzip")),
        ]
    )
    boundary = content_type.partition("boundary=")[2]
    tail = f"\r\n--{boundary}--\r\n".encode()
    if not boundary or not form.endswith(tail):  # a urllib3 that frames forms otherwise
        raise RuntimeError("urllib3 encoded the upload form in an unexpected way")
    return form[: -len(tail)], tail, content_type


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


def _submitted(reply: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(reply.get("uuid"), str) or not reply["uuid"]:
        raise ApiUnavailable("The ManaTEE API accepted the job but its reply has no uuid")
    return reply


def _parse_reply(status: int, body: bytes, route: str, base_url: str) -> dict[str, Any]:
    """A JSON reply with ``code == 0``, or the matching domain error."""
    data = _json_or_none(body)
    if not isinstance(data, dict) or not isinstance(data.get("code"), int):
        where = f"{redact_url(base_url)}{route}"  # only errors name it (it costs a URL parse)
        if status == 413:
            raise WorkspaceTooLarge("The ManaTEE API refused the workspace as too large (HTTP 413)")
        if status in (404, 405):
            raise ApiUnavailable(
                f"{where} answered HTTP {status}: is DATA_CLEAN_ROOM_HOST "
                "the ManaTEE API, and is it the version this extension speaks?"
            )
        raise ApiUnavailable(
            f"{where} answered HTTP {status} with a body that is not the API's JSON: "
            f"{_snippet(body)}"
        )
    code, msg = data["code"], str(data.get("msg") or "")
    if code == SUCCESS_CODE:
        return data
    if code == JOB_LIMIT_CODE or JOB_LIMIT_MSG.strip(": ").lower() in msg.lower():
        raise JobLimitReached(
            "You have reached the limit of jobs in progress (3 at a time): wait for one to "
            f"finish or delete one, then submit again. (ManaTEE API: {msg.strip(': ')})"
        )
    if "not found" in msg.lower() or "not exist" in msg.lower():
        raise NotFound(f"ManaTEE API: {msg}")
    raise ApiRefused(f"The ManaTEE API refused the request: {msg or f'code {code}'}", api_code=code)


def _is_job(job: object) -> bool:
    """Every field of :data:`JOB_KEYS` is there (one set comparison: it runs per listed job)."""
    return isinstance(job, dict) and _JOB_KEY_SET <= job.keys()


def _json_or_none(body: bytes | None) -> Any:
    try:
        return json.loads(body or b"")
    except ValueError:
        return None


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", errors="replace").strip()
    return text or "(empty body)"


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


def _check_signed_url(url: str, what: str) -> None:
    """An empty URL is "none to hand out" (404); anything not a usable http(s) URL is the
    API's fault (502), never an exception out of the URL parser."""
    if not url:
        raise NotFound(
            f"The ManaTEE API has no {what} to hand out for this job (empty signed URL): "
            "it may have produced none, or storage could not sign a URL"
        )
    problem = _url_problem(url)
    if problem:
        raise ApiUnavailable(
            f"The ManaTEE API's signed URL for the {what} {problem}: the API or its "
            "storage is misconfigured"
        )


def _redirect_target(url: str, location: str, what: str) -> str:
    """Where a storage redirect leads, refused unless it is a usable http(s) URL."""
    if not location:
        raise ApiUnavailable(f"Storage redirected the {what} without a Location")
    try:
        target = urljoin(url, location)
    except ValueError:
        target = location
    problem = _url_problem(target)
    if problem:
        raise ApiUnavailable(
            f"Storage redirected the {what} to a URL that {problem}; not following"
        )
    return target


def _url_problem(url: str) -> str | None:
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
