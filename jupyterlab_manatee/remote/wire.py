"""The ManaTEE API's wire format, and the only module that knows it.

Routes carry their trailing slash (the API answers 307 without it), failures arrive as
HTTP 200 with ``code != 0``, and non-JSON answers (307, 404/405/413 text, a 500 after a
panic) are possible: :func:`parse_reply` turns those into :mod:`..errors` exceptions that
keep the API's ``msg``. The upload is a multipart form (:func:`form`) whose file part
streams in between its head and tail. :mod:`.api_client` carries these over HTTP; the
local backend (:mod:`..local_backend.app`) answers in the same format.
"""

from __future__ import annotations

import json
from typing import Any

from urllib3.filepost import encode_multipart_formdata

from ..config import redact_url
from ..errors import ApiRefused, ApiUnavailable, JobLimitReached, NotFound, WorkspaceTooLarge

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


def form(creator: str, filename: str, envs: list[dict[str, str]]) -> tuple[bytes, bytes, str]:
    """The multipart form around the archive: (head, tail, Content-Type).

    urllib3 encodes the whole form with an empty file part (a random boundary, the fields'
    values as they are: a multipart part carries any bytes); it is cut where the file's
    bytes would go, so the archive streams in between without being held in memory.
    """
    encoded, content_type = encode_multipart_formdata(
        [
            ("creator", creator),
            ("filename", filename),
            ("envs", json.dumps(envs)),
            ("file", ("workspace.tar.gz", b"", "application/gzip")),
        ]
    )
    boundary = content_type.partition("boundary=")[2]
    tail = f"\r\n--{boundary}--\r\n".encode()
    if not boundary or not encoded.endswith(tail):  # a urllib3 that frames forms otherwise
        raise RuntimeError("urllib3 encoded the upload form in an unexpected way")
    return encoded[: -len(tail)], tail, content_type


def submitted(reply: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(reply.get("uuid"), str) or not reply["uuid"]:
        raise ApiUnavailable("The ManaTEE API accepted the job but its reply has no uuid")
    return reply


def parse_reply(status: int, body: bytes, route: str, base_url: str) -> dict[str, Any]:
    """A JSON reply with ``code == 0``, or the matching domain error."""
    data = json_or_none(body)
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
            f"{snippet(body)}"
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


def is_job(job: object) -> bool:
    """Every field of :data:`JOB_KEYS` is there (one set comparison: it runs per listed job)."""
    return isinstance(job, dict) and _JOB_KEY_SET <= job.keys()


def json_or_none(body: bytes | None) -> Any:
    try:
        return json.loads(body or b"")
    except ValueError:
        return None


def snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", errors="replace").strip()
    return text or "(empty body)"
