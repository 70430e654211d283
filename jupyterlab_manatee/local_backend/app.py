"""The HTTP side: upstream's routes, reply shapes and error conventions, on tornado.

Job routes are POST with a trailing slash; without the slash they answer 307 with a bare
``Location``. Failures of a well-formed HTTP exchange are HTTP 200 with
``{"code": 10001, "msg": ...}``, as upstream, in upstream's words (see `validation`);
an unknown path or a wrong method is plain-text 404, a body over the limit 413, and
where upstream's handler panics (a submit without its file part) HTTP 500 with no body.
Signed files are served by ``GET /storage/<key>?expires=..&signature=..``.

Before any route runs, `BaseHandler.prepare` applies the access rules (see `access`):
a foreign ``Host`` or browser ``Origin`` is refused with HTTP 403 and the API's error
body; a job route whose ``Authorization`` is not the API token gets the API's error reply
(HTTP 200, code 10001), before any request body is read. Both are deliberate differences
from upstream (docs/operators/real-api.md); a route without its slash redirects before the token
check, as upstream's.

The handlers reach the backend only through the `interface.ApiBackend` protocol.
"""

from __future__ import annotations

import json
import logging
import os
import uuid as uuid_module
from typing import Any

import tornado.web

from ..remote.wire import (
    ATTESTATION,
    DELETE,
    ERROR_CODE,
    HEALTH,
    HEALTH_REPLY,
    JOB_LIMIT_MSG,
    JOB_ROUTES,
    OUTPUT,
    QUERY,
    SUBMIT,
    SUCCESS_CODE,
    SUCCESS_MSG,
)
from . import tarcheck, validation
from .interface import ApiBackend
from .layout import DataLayout
from .signing import STORAGE_PREFIX, SignatureRefused
from .tokens import DISCOVERY_PATH, JWKS_PATH
from .upload import FORM_OVERHEAD, MultipartUpload, UploadError, UploadTooLarge

log = logging.getLogger(__name__)
access_log = logging.getLogger("jupyterlab_manatee.local_backend.access")

SERVICE_ERROR_CODE = ERROR_CODE
#: Upstream's message for a job id that is not the creator's (or does not exist).
JOB_NOT_FOUND_MSG = "failed to query jobs or it doesn't exist: record not found"
#: Upstream's replies to a request without an Authorization header: its JSON routes bind
#: the header into a required body field, its submit route into a required header field.
MISSING_TOKEN_MSG = (
    "'access_token' field is a 'required' parameter, but the request body does not have "
    "this parameter 'access_token'"
)
SUBMIT_MISSING_TOKEN_MSG = (
    "'Authorization' field is a 'required' parameter, but the request does not have this parameter"
)
#: Upstream's (Hertz's) answer to an unknown path or a method a route does not have.
NOT_FOUND_TEXT = "404 page not found"
_STREAM_CHUNK = 256 * 1024


class ApiError(Exception):
    """Answered as HTTP 200 ``{"code": 10001, "msg": <message>}``."""


class BaseHandler(tornado.web.RequestHandler):
    """Common replies and the access rules; the backend comes through the application."""

    #: Job routes require the API token; the public routes set this to False.
    needs_token = True
    #: Upstream's reply to a request without an Authorization header (JSON routes).
    missing_token_msg = MISSING_TOKEN_MSG
    #: Upstream's name of the route's request, in its binder's words.
    request_type = "job.Request"

    @property
    def backend(self) -> ApiBackend:
        return self.application.settings["backend"]

    def prepare(self) -> None:
        self.guard()

    def guard(self) -> bool:
        """Refuse (and finish) a request the access rules do not allow; True if allowed."""
        if not self.guard_host_and_origin():
            return False
        refusal = self.token_refusal()
        if refusal is not None:
            self.api_error(refusal)
            return False
        return True

    def guard_host_and_origin(self) -> bool:
        """Refuse (HTTP 403, finished) a foreign Host or browser Origin; True if allowed."""
        access = self.backend.access
        headers = self.request.headers
        refusal = None
        if not access.host_allowed(headers.get("Host")):
            refusal = (
                "the Host header does not name this backend (allowed: "
                f"{', '.join(sorted(access.allowed_hosts))}; add names with --allowed-host)"
            )
        elif not access.origin_allowed(headers.get("Origin")):
            refusal = "requests from another web origin are refused"
        if refusal is None:
            return True
        self.set_status(403)
        self.write_json({"code": SERVICE_ERROR_CODE, "msg": refusal})
        return False

    def token_refusal(self) -> str | None:
        """Why the request's Authorization is refused, or None (also for public routes)."""
        headers = self.request.headers
        if not self.needs_token or self.backend.access.token_matches(headers.get("Authorization")):
            return None
        if "Authorization" not in headers:
            return self.missing_token_msg  # upstream's words (it checks only presence)
        return "the Authorization header is not this backend's API token"

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def write_json(self, payload: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload))

    def write_text(self, status: int, text: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)

    def api_error(self, message: str) -> None:
        self.write_json({"code": SERVICE_ERROR_CODE, "msg": message})

    def server_panic(self) -> None:
        """Upstream's answer where its handler panics (recovered): HTTP 500, no body."""
        self.set_status(500)
        self.clear_header("Content-Type")
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:  # upstream's router has no 405: a wrong method is not found
            self.set_status(404)
            self.set_header("Content-Type", "text/plain")
            self.finish(NOT_FOUND_TEXT)
            return
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}")

    def json_body(self) -> dict[str, Any]:
        return validation.parse_body(self.request.body or b"", self.request_type)


class JsonApiHandler(BaseHandler):
    """A job route with a JSON body; `handle` raises `ApiError` for error replies."""

    async def post(self) -> None:
        try:
            reply = await self.handle(self.json_body())
        except (ApiError, validation.InvalidRequest) as exc:
            self.api_error(str(exc))
            return
        self.write_json({"code": SUCCESS_CODE, "msg": SUCCESS_MSG, **reply})

    async def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class QueryHandler(JsonApiHandler):
    request_type = "job.QueryJobRequest"

    async def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        # bound first (types), then validated in upstream's field order
        page = validation.integer(body, "page")
        page_size = validation.integer(body, "page_size")
        creator = validation.text(body, "creator")
        validation.page(page)
        validation.creator(creator)
        jobs, total = await self.backend.query_jobs(creator, page, page_size)
        return {"jobs": jobs, "total": total}


class DeleteHandler(JsonApiHandler):
    request_type = "job.DeleteJobRequest"

    async def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        job_uuid = validation.text(body, "uuid")  # not required: "" matches nothing
        creator = validation.creator(validation.text(body, "creator"))
        await self.backend.delete_job(job_uuid, creator)
        return {}


def _job_of(body: dict[str, Any]) -> tuple[int, str]:
    """The ``id`` and ``creator`` of an output or attestation request, bound and checked."""
    job_id = validation.integer(body, "id")
    creator = validation.text(body, "creator")
    return validation.job_id(job_id), validation.creator(creator)


class OutputDownloadHandler(JsonApiHandler):
    request_type = "job.DownloadJobOutputRequest"

    async def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id, creator = _job_of(body)
        job = await self.backend.find_job(job_id, creator)
        if job is None:
            raise ApiError(JOB_NOT_FOUND_MSG)
        key = DataLayout.output_key(job.uuid, job.jupyter_file_name)
        return {
            "signed_url": self.backend.signer.sign(key),
            "filename": f"out-{job.id}-{job.jupyter_file_name}",
        }


class AttestationHandler(JsonApiHandler):
    request_type = "job.QueryJobAttestationRequest"
    # Upstream's attestation route takes no token; here it does (closed by default).

    async def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id, creator = _job_of(body)
        job = await self.backend.find_job(job_id, creator)
        if job is None:
            raise ApiError(JOB_NOT_FOUND_MSG)
        return {"signed_url": self.backend.signer.sign(DataLayout.token_key_for(job.uuid))}


@tornado.web.stream_request_body
class SubmitHandler(BaseHandler):
    """Receives the workspace archive straight to disk while parsing the form."""

    missing_token_msg = SUBMIT_MISSING_TOKEN_MSG
    _upload: MultipartUpload | None = None
    _error: UploadError | None = None
    _not_a_form = False
    _refusal: str | None = None

    async def prepare(self) -> None:
        if not self.guard_host_and_origin():
            return  # refused before a byte of the body is read
        limit = self.backend.max_archive_size
        self._refusal = self.token_refusal()
        if self._refusal is not None:
            # The body is drained, never stored, so the client reads the error reply
            # (a client still sending would only see the connection close).
            self.request.connection.set_max_body_size(limit + FORM_OVERHEAD)
            return
        self.request.connection.set_max_body_size(limit + FORM_OVERHEAD)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit + FORM_OVERHEAD:
            # Refuse before reading: tornado closes the connection after this reply.
            self.write_text(
                413,
                f"the request body ({length} bytes) is larger than the workspace archive "
                f"limit of {limit} bytes",
            )
            return
        temp = self.backend.layout.uploads / f".tmp-{uuid_module.uuid4().hex}.tar.gz"
        try:
            self._upload = MultipartUpload(self.request.headers.get("Content-Type"), temp, limit)
        except UploadError:
            self._not_a_form = True  # upstream finds no file part in it, and panics

    async def data_received(self, chunk: bytes) -> None:
        upload = self._upload
        if upload is None or self._error is not None or self._finished:
            return  # drain the body; the reply is decided in post()
        try:
            upload.feed(chunk)
        except UploadError as exc:
            self._error = exc
            await self.backend.run_io(upload.discard)
            return
        pieces = upload.take_pending()
        if pieces:
            await self.backend.run_io(upload.write_pending, pieces)

    async def post(self) -> None:
        await self.backend.submits_answered()  # held by tests only (`hold_submits`)
        if self._refusal is not None:
            self.api_error(self._refusal)
            return
        upload = self._upload
        if self._not_a_form:
            self.server_panic()
            return
        try:
            if isinstance(self._error, UploadTooLarge):
                self.write_text(413, str(self._error))
                return
            if self._error is not None:
                raise ApiError(str(self._error))
            assert upload is not None
            if not upload.complete:
                raise ApiError("the multipart body ended before its closing boundary")
            fields = upload.fields
            try:
                envs = validation.envs(fields.get("envs"))
            except validation.HandlerPanics:
                self.server_panic()
                return
            if not upload.has_file:
                self.server_panic()  # upstream opens the missing file part and panics
                return
            # Upstream never validates the submit form: any creator and filename pass.
            creator = fields.get("creator", "")
            notebook = fields.get("filename", "")
            await self.backend.run_io(upload.close_file)
            # Upstream's order: the job limit, then the archive read through as a gzip tar
            # (a file that is not one is refused here, and no job is made).
            if await self.backend.at_job_limit(creator):
                raise ApiError(JOB_LIMIT_MSG)
            refused = await self.backend.run_io(tarcheck.refusal, upload.temp_path)
            if refused is not None:
                raise ApiError(refused)
            job_uuid = await self.backend.accept_job(
                temp_archive=upload.temp_path,
                creator=creator,
                notebook=notebook,
                envs=envs,
                archive_sha256=upload.sha256,
                archive_size=upload.file_size,
            )
            if job_uuid is None:  # a concurrent submit took the last place
                raise ApiError(JOB_LIMIT_MSG)
        except (ApiError, validation.InvalidRequest) as exc:
            self.api_error(str(exc))
            return
        finally:
            if upload is not None:
                await self.backend.run_io(upload.discard)
        self.write_json({"code": SUCCESS_CODE, "msg": SUCCESS_MSG, "uuid": job_uuid})

    def on_connection_close(self) -> None:
        if self._upload is not None:
            self._upload.discard()


@tornado.web.stream_request_body
class SlashRedirectHandler(BaseHandler):
    """Upstream answers a job route without its trailing slash with 307 to the slash path."""

    async def data_received(self, chunk: bytes) -> None:
        return  # drained, not stored

    def prepare(self) -> None:
        # As upstream, the redirect comes before any check of the Authorization header
        # (the slash route checks it); the Host and Origin rules still apply.
        if self.guard_host_and_origin():
            self.request.connection.set_max_body_size(self.backend.max_archive_size + FORM_OVERHEAD)

    def post(self, route: str) -> None:
        self.set_status(307)
        self.set_header("Location", f"{route}/")
        self.clear_header("Content-Type")
        self.finish()


class HealthHandler(BaseHandler):
    needs_token = False  # a liveness probe; it says only "pong"

    def get(self) -> None:
        self.write_json(HEALTH_REPLY)


class DiscoveryHandler(BaseHandler):
    needs_token = False  # verifiers must find the issuer's keys

    def get(self) -> None:
        self.write_json(self.backend.tokens.openid_configuration())


class JwksHandler(BaseHandler):
    needs_token = False  # public keys

    def get(self) -> None:
        self.write_json(self.backend.tokens.jwks())


class StorageHandler(BaseHandler):
    """Serves one output or token file to the holder of a valid signed URL, streamed.

    No API token: the signed URL's signature and expiry are its authority."""

    needs_token = False

    def compute_etag(self) -> None:
        return None

    async def get(self, key: str) -> None:
        try:
            self.backend.signer.verify(
                key,
                self.get_query_argument("expires", None),
                self.get_query_argument("signature", None),
            )
        except SignatureRefused as exc:
            self.write_text(403, f"403 Forbidden: {exc}")
            return
        path = self.backend.layout.resolve_key(key)
        if path is None:
            self.write_text(404, "404 Not Found: no such object")
            return
        try:
            handle = await self.backend.run_io(open, path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self.write_text(404, "404 Not Found: the object does not exist (yet)")
            return
        try:
            size = os.fstat(handle.fileno()).st_size
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Length", str(size))
            while chunk := await self.backend.run_io(handle.read, _STREAM_CHUNK):
                self.write(chunk)
                await self.flush()
        finally:
            await self.backend.run_io(handle.close)
        self.finish()


class NotFoundHandler(BaseHandler):
    needs_token = False

    def prepare(self) -> None:
        if self.guard():
            self.set_status(404)
            self.set_header("Content-Type", "text/plain")
            self.finish(NOT_FOUND_TEXT)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without the query string: signed URLs must not end up in logs."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    if status >= 500:
        level = logging.ERROR
    request = handler.request
    access_log.log(
        level,
        "%d %s %s %.1fms",
        status,
        request.method,
        request.path,
        1000.0 * request.request_time(),
    )


def make_app(backend: ApiBackend) -> tornado.web.Application:
    """The routes of the API, served for ``backend``."""
    routes: list[Any] = [
        (SUBMIT, SubmitHandler),
        (QUERY, QueryHandler),
        (DELETE, DeleteHandler),
        (OUTPUT, OutputDownloadHandler),
        (ATTESTATION, AttestationHandler),
        ("(" + "|".join(route.rstrip("/") for route in JOB_ROUTES) + ")", SlashRedirectHandler),
        (HEALTH, HealthHandler),
        (DISCOVERY_PATH, DiscoveryHandler),
        (JWKS_PATH, JwksHandler),
        (STORAGE_PREFIX + r"(.+)", StorageHandler),
    ]
    return tornado.web.Application(
        routes,
        backend=backend,
        default_handler_class=NotFoundHandler,
        log_function=_log_request,
        xsrf_cookies=False,
    )
