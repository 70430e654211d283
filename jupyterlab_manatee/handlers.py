"""HTTP routes of the shield panel. Thin: parse, call the manager, reply JSON.

The four upstream routes (``GET/POST manatee/jobs``, ``POST manatee/output``,
``GET manatee/attestation``) keep the reply keys the upstream frontend reads (``code``,
``msg``, ...); errors carry an HTTP status plus ``code``/``msg`` and ``message``.
"""

from __future__ import annotations

import json
import re
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web

from .errors import BadRequest, Forbidden, ManateeError, NotFound, quoted
from .jobs.submission_queue import ENTRY_ID
from .manager import ManateeManager

AUTH_RESOURCE = "manatee"
UUID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_PAGE_SIZE = 100
#: The API's job ids are signed 64-bit integers; a larger id is bad input, not an API fault.
MAX_JOB_ID = 2**63 - 1
#: No file path is longer (Linux's PATH_MAX): a longer ``path`` is refused before any work.
MAX_PATH_BYTES = 4096


class ManateeHandler(APIHandler):
    """Base handler: the manager, the user name, JSON bodies and JSON errors."""

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> ManateeManager:
        return self.settings["manatee_manager"]

    @property
    def username(self) -> str:
        return self.current_user.username

    async def require_contents(self, action: str, path: str | None = None) -> None:
        """These routes read (and write) the user's files, so the server's contents policy
        applies to them as to the contents API: the authorizer's permission on
        ``contents``, and ``ContentsManager.allow_hidden`` for the path asked for."""
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, action, "contents")
        )
        if not allowed:
            verb = "read" if action == "read" else "change"
            raise Forbidden(f"You are not allowed to {verb} files on this server (contents)")
        if path is not None and not getattr(self.contents_manager, "allow_hidden", True):
            try:
                hidden = await ensure_async(self.contents_manager.is_hidden(path.strip("/")))
            except Exception:  # outside the root, or unreadable: the manager refuses it
                hidden = False
            if hidden:
                raise NotFound(f"No such file: {quoted(path)} (hidden files are not served)")

    def reply(self, data: dict[str, Any]) -> None:
        """One small JSON body (the upstream frontend parses only the first chunk)."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": 0, "msg": "Success", **data}))

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object; NaN/Infinity and absurd nesting are bad input."""
        try:
            data = json.loads(self.request.body or b"", parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise BadRequest("The request body must be a JSON object") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object")
        return data

    def job_id(self, value: Any) -> int:
        """A positive job id from a query argument or a JSON field; never a default."""
        if value is None or value == "":
            raise BadRequest("Missing job 'id'")
        if isinstance(value, bool):
            raise BadRequest("Job 'id' must be a positive integer")
        try:
            job_id = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 is infinite
            raise BadRequest(f"Job 'id' must be a positive integer, not {quoted(value)}") from None
        if job_id <= 0 or (isinstance(value, float) and value != job_id):
            raise BadRequest(f"Job 'id' must be a positive integer, not {quoted(value)}")
        if job_id > MAX_JOB_ID:
            raise BadRequest(f"Job 'id' must be at most {MAX_JOB_ID}, not {job_id}")
        return job_id

    def int_argument(self, name: str, default: int, lowest: int, highest: int) -> int:
        raw = self.get_query_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"'{name}' must be an integer, not {quoted(raw)}") from None
        if not lowest <= value <= highest:
            raise BadRequest(f"'{name}' must be between {lowest} and {highest}, not {value}")
        return value

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error of these routes has one shape, ``{"code", "msg", "message",
        "reason"}`` (openapi.yaml's ``Error``), also for the server's own refusals (403
        without credentials, 405, ...); an unexpected exception says no more than
        "Unhandled error" (its traceback is in the server's log)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        phrase = responses.get(status_code, "Unknown HTTP Error")
        if isinstance(exc, ManateeError):
            message, reason = exc.message, type(exc).__name__
        elif isinstance(exc, web.HTTPError):
            try:
                message = (exc.log_message % exc.args) if exc.log_message else ""
            except (TypeError, ValueError):
                message = exc.log_message or ""
            message, reason = message or phrase, exc.reason or phrase
        else:
            message, reason = "Unhandled error", phrase
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps({"code": status_code, "msg": message, "message": message, "reason": reason})
        )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _checked_length(path: str) -> str:
    """``path``, refused when no file system could hold it (the cheap check, first)."""
    if len(path) > MAX_PATH_BYTES or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadRequest(
            f"The path {quoted(path)} is longer than the {MAX_PATH_BYTES} bytes (UTF-8) a "
            "file path can have: give the path from the contents root, with shorter names."
        )
    return path


def _submission(body: dict[str, Any]) -> tuple[str, str | None]:
    path, filename = body.get("path"), body.get("filename")
    if not isinstance(path, str) or not path:
        raise BadRequest("Missing 'path': the notebook's path from the contents root")
    _checked_length(path)
    if filename is not None and not isinstance(filename, str):
        raise BadRequest("'filename' must be the notebook's file name")
    return path, filename


class JobsHandler(ManateeHandler):
    """``GET manatee/jobs?page=&page_size=`` lists, ``POST manatee/jobs`` submits."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        page = self.int_argument("page", 1, 1, 1_000_000)
        page_size = self.int_argument("page_size", 10, 1, MAX_PAGE_SIZE)
        jobs = await self.manager.list_jobs(self.username, page, page_size)
        self.reply(
            {
                **jobs,
                "queued": self.manager.queued(self.username),
                "submitting": self.manager.submitting(self.username),
            }
        )

    @web.authenticated
    @authorized
    async def post(self) -> None:
        path, filename = _submission(self.json_body())
        await self.require_contents("read", path)
        self.reply(await self.manager.submit(self.username, path, filename))


class JobHandler(ManateeHandler):
    """``DELETE manatee/jobs/<uuid>``."""

    @web.authenticated
    @authorized
    async def delete(self, job_uuid: str) -> None:
        if not UUID_RE.match(job_uuid):
            raise BadRequest(f"{quoted(job_uuid)} is not a job uuid")
        await self.manager.delete_job(self.username, job_uuid)
        self.reply({"uuid": job_uuid})


class QueueHandler(ManateeHandler):
    """``GET manatee/queue``: submissions held back, what became of recent ones, and the
    uploads under way (``submitting``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(
            {
                "queued": self.manager.queued(self.username),
                "submitting": self.manager.submitting(self.username),
            }
        )


class QueuedHandler(ManateeHandler):
    """``DELETE manatee/queue/<id>``: cancel a queued submission (its archive goes too)."""

    @web.authenticated
    @authorized
    async def delete(self, entry_id: str) -> None:
        if not ENTRY_ID.fullmatch(entry_id):
            raise BadRequest(f"{quoted(entry_id)} is not a queue id")
        self.manager.cancel_queued(self.username, entry_id)
        self.reply({"queue_id": entry_id})


class ManifestHandler(ManateeHandler):
    """``POST manatee/manifest``: what a submission would ship, without uploading, and
    warnings about paths the notebook's code refers to outside its folder."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        path, filename = _submission(self.json_body())
        await self.require_contents("read", path)
        self.reply(await self.manager.preview(path, filename))


class OutputHandler(ManateeHandler):
    """``POST manatee/output`` with ``{"id": 7}``: save the executed notebook."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        job_id = self.job_id(self.json_body().get("id"))
        await self.require_contents("write")
        self.reply(await self.manager.save_output(self.username, job_id))


class AttestationHandler(ManateeHandler):
    """``GET manatee/attestation?id=7``: the token text, its claims and its verification
    against the job's output (``verification``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        job_id = self.job_id(self.get_query_argument("id", None))
        await self.require_contents("read")
        self.reply(await self.manager.attestation(self.username, job_id))


class VerifySavedHandler(ManateeHandler):
    """``POST manatee/attestation/verify`` with ``{"path": "<saved output>"}``: re-verify a
    saved output against the token saved beside it (``<output>.attestation.json``)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        path = self.json_body().get("path")
        if not isinstance(path, str) or not path.strip("/"):
            raise BadRequest("Missing 'path': the saved output's path from the contents root")
        await self.require_contents("read", _checked_length(path))
        self.reply(await self.manager.verify_saved(self.username, path))


class ConfigHandler(ManateeHandler):
    """``GET manatee/config``: configured? reachable? who am I? (for the panel's banner)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.status(self.username))


class CreatorNoticeHandler(ManateeHandler):
    """``DELETE manatee/config/creator-notice``: the user has read that the safe mapping
    changed their creator; ``GET manatee/config`` stops carrying the notice."""

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        self.manager.dismiss_creator_notice(self.username)
        self.reply({"creator_notice": None})


def setup_handlers(web_app: web.Application, manager: ManateeManager) -> None:
    web_app.settings["manatee_manager"] = manager
    base = url_path_join(web_app.settings["base_url"], "manatee")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "jobs"), JobsHandler),
            (url_path_join(base, "jobs", r"([^/]+)"), JobHandler),
            (url_path_join(base, "queue"), QueueHandler),
            (url_path_join(base, "queue", r"([^/]+)"), QueuedHandler),
            (url_path_join(base, "manifest"), ManifestHandler),
            (url_path_join(base, "output"), OutputHandler),
            (url_path_join(base, "attestation"), AttestationHandler),
            (url_path_join(base, "attestation", "verify"), VerifySavedHandler),
            (url_path_join(base, "config"), ConfigHandler),
            (url_path_join(base, "config", "creator-notice"), CreatorNoticeHandler),
        ],
    )
