"""The contract suite's plumbing: two targets, one exchange format, recordings.

A *target* is an API to drive: the local backend (started by the test, builds held so
nothing moves a job but the test, as on the real API where no reconciler runs) or the
real API at ``MANATEE_CONTRACT_API_URL``. Each target can do what the reconciler and the
executor would: move a job to a status (``advance``) and put its output and token where
the API signs URLs for them.

An `Exchange` is one request and the reply, normalised (uuids, times, signature values)
so that two runs, and two servers, can be compared. Recordings of the real API's
exchanges live in ``recorded/<case>.json`` and are written only by the recording mode
(``MANATEE_CONTRACT_RECORD=1`` against a real API).
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from tests.support import notebook_text

RECORDED = Path(__file__).resolve().parent / "recorded"
#: The real API to drive (the local backend when unset), and whether to record it.
API_URL = os.environ.get("MANATEE_CONTRACT_API_URL", "").rstrip("/")
RECORD = os.environ.get("MANATEE_CONTRACT_RECORD") == "1"
#: The API token the local target is started with (the real API only checks presence).
TOKEN = "contract-token"
#: The upstream commit the recordings were made at (see recorded/README.md).
UPSTREAM_COMMIT = "942a4c9"

#: Response headers worth keeping: the rest (Date, Server, Content-Length) say nothing
#: about the contract.
KEPT_HEADERS = ("Content-Type", "Location")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b")
#: Query values of a signed URL that change with every signing.
_VOLATILE_QUERY = {
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Signature",
    "expires",
    "signature",
}


@dataclass
class Exchange:
    """One request and its reply, as kept in a recording."""

    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "status": self.status,
            "headers": self.headers,
            "body": self.body,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exchange:
        return cls(data["request"], data["status"], data["headers"], data["body"])


def normalise_text(text: str) -> str:
    """Uuids and timestamps replaced by placeholders."""
    return _TIME.sub("<time>", _UUID.sub("<uuid>", text))


def normalise_url(url: str) -> str:
    """A signed URL with its host, and the values that change per signing, replaced."""
    if not url:
        return url
    parts = urlsplit(url)
    query = [
        f"{key}=<{key}>" if key in _VOLATILE_QUERY else f"{key}={value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    path = normalise_text(parts.path)
    return f"{parts.scheme}://<store>{path}" + ("?" + "&".join(query) if query else "")


def normalise_body(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: normalise_url(item)
            if key == "signed_url" and isinstance(item, str)
            else normalise_body(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalise_body(item) for item in value]
    if isinstance(value, str):
        return normalise_text(value)
    return value


def exchange_of(request: dict[str, Any], response: requests.Response) -> Exchange:
    """The normalised exchange of one request made with ``requests``."""
    headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if "Location" in headers:
        headers["Location"] = normalise_text(headers["Location"])
    return Exchange(normalise_body(request), response.status_code, headers, normalise_body(body))


# -- archives and notebooks --------------------------------------------------------------
def notebook_bytes(*cells: str) -> bytes:
    return notebook_text(*cells).encode("utf-8")


def workspace_archive(creator: str, files: dict[str, bytes]) -> bytes:
    """A workspace archive as the extension builds it: one top-level folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(f"{creator}-workspace")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{creator}-workspace/{name}")
            info.mode = 0o644
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# -- targets -----------------------------------------------------------------------------
@dataclass
class Target:
    """An API to drive, and what the reconciler would do to its jobs."""

    name: str
    base_url: str
    token: str = TOKEN

    def advance(self, job_uuid: str, status: int) -> None:
        """Move a job to ``status`` as the reconciler would."""
        raise NotImplementedError

    def put_output(self, job_uuid: str, data: bytes) -> None:
        """Put the executed notebook where the API signs the output's URL."""
        raise NotImplementedError

    def put_token(self, job_uuid: str, text: str) -> None:
        """Put the attestation token where the API signs its URL."""
        raise NotImplementedError

    def reset(self) -> None:
        """Start a case on an empty job table."""


@dataclass
class LocalTarget(Target):
    """The local backend (builds held: only the test moves a job)."""

    backend: Any = None

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.backend.layout.db, timeout=30, isolation_level=None)

    def advance(self, job_uuid: str, status: int) -> None:
        with self._db() as conn:
            conn.execute("UPDATE jobs SET job_status = ? WHERE uuid = ?", (status, job_uuid))

    def _job(self, job_uuid: str) -> tuple[str, str]:
        with self._db() as conn:
            row = conn.execute(
                "SELECT creator, jupyter_file_name FROM jobs WHERE uuid = ?", (job_uuid,)
            ).fetchone()
        assert row is not None, f"no job {job_uuid}"
        return row[0], row[1]

    def _put(self, key: str, data: bytes) -> None:
        path = self.backend.layout.resolve_key(key)
        assert path is not None, key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_output(self, job_uuid: str, data: bytes) -> None:
        _creator, notebook = self._job(job_uuid)
        self._put(self.backend.layout.output_key(job_uuid, notebook), data)

    def put_token(self, job_uuid: str, text: str) -> None:
        self._put(self.backend.layout.token_key_for(job_uuid), text.encode())


@dataclass
class RealTarget(Target):
    """The real API; its job table reached through ``dsn`` (``mysql://user:pw@host:port/db``)
    with the ``mariadb`` (or ``mysql``) client, its store through the PUT URLs the API
    signed for the executor (kept in the job's row, as the executor gets them)."""

    dsn: str = ""
    client: str = field(default="")

    def sql(self, statement: str) -> list[list[str]]:
        parts = urlsplit(self.dsn)
        client = self.client or ("mariadb" if _which("mariadb") else "mysql")
        command = [
            client,
            "--batch",
            "--skip-column-names",
            "-h",
            parts.hostname or "127.0.0.1",
            "-P",
            str(parts.port or 3306),
            "-u",
            parts.username or "",
            parts.path.lstrip("/"),
            "-e",
            statement,
        ]
        env = {**os.environ, "MYSQL_PWD": parts.password or ""}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines()]

    def reset(self) -> None:
        self.sql("TRUNCATE TABLE jobs")

    def advance(self, job_uuid: str, status: int) -> None:
        assert _UUID.fullmatch(job_uuid), job_uuid
        self.sql(f"UPDATE jobs SET job_status = {int(status)} WHERE uuid = '{job_uuid}'")

    def _put_urls(self, job_uuid: str) -> tuple[str, str]:
        assert _UUID.fullmatch(job_uuid), job_uuid
        rows = self.sql(
            "SELECT output_put_signed_url, custom_token_put_signed_url FROM jobs "
            f"WHERE uuid = '{job_uuid}'"
        )
        assert rows, f"no job {job_uuid}"
        return rows[0][0], rows[0][1]

    def put_output(self, job_uuid: str, data: bytes) -> None:
        response = requests.put(self._put_urls(job_uuid)[0], data=data, timeout=30)
        assert response.status_code == 200, response.text

    def put_token(self, job_uuid: str, text: str) -> None:
        response = requests.put(self._put_urls(job_uuid)[1], data=text.encode(), timeout=30)
        assert response.status_code == 200, response.text


def _which(name: str) -> bool:
    return any(
        os.access(os.path.join(folder, name), os.X_OK)
        for folder in os.environ.get("PATH", "").split(os.pathsep)
    )


# -- a client that records ---------------------------------------------------------------
class Recorder:
    """Sends requests to a target and keeps each exchange, normalised."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.exchanges: list[Exchange] = []

    def _keep(self, request: dict[str, Any], response: requests.Response) -> requests.Response:
        self.exchanges.append(exchange_of(request, response))
        return response

    def _headers(self, auth: bool, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": self.target.token} if auth else {}
        return {**headers, **(extra or {})}

    def post_json(
        self,
        path: str,
        body: Any,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> requests.Response:
        request: dict[str, Any] = {"method": "POST", "path": path, "auth": auth}
        if headers:
            request["headers"] = headers
        if raw is not None:
            request["raw_body"] = raw.decode("utf-8", "replace")
            data: Any = raw
        else:
            request["json"] = body
            data = json.dumps(body).encode()
        response = requests.post(
            self.target.base_url + path,
            data=data,
            headers={"Content-Type": "application/json", **self._headers(auth, headers)},
            allow_redirects=False,
            timeout=60,
        )
        return self._keep(request, response)

    def submit(
        self,
        archive: bytes | None,
        *,
        creator: str | None,
        filename: str | None = "nb.ipynb",
        envs: str | None = "[]",
        auth: bool = True,
        path: str = "/v1/job/submit/",
        what: str = "workspace archive",
    ) -> requests.Response:
        """A multipart submit as the extension sends it (fields left out when None)."""
        fields = {"creator": creator, "filename": filename, "envs": envs}
        data = {key: value for key, value in fields.items() if value is not None}
        files = (
            {"file": ("workspace.tar.gz", archive, "application/gzip")}
            if archive is not None
            else {key: (None, value) for key, value in data.items()}
        )
        request: dict[str, Any] = {
            "method": "POST",
            "path": path,
            "auth": auth,
            "form": data,
            "file": what if archive is not None else None,
        }
        response = requests.post(
            self.target.base_url + path,
            files=files,
            data=data if archive is not None else None,
            headers=self._headers(auth, None),
            allow_redirects=False,
            timeout=60,
        )
        return self._keep(request, response)

    def request(
        self, method: str, path: str, *, auth: bool = True, body: bytes | None = None
    ) -> requests.Response:
        request: dict[str, Any] = {"method": method, "path": path, "auth": auth}
        response = requests.request(
            method,
            self.target.base_url + path,
            data=body,
            headers=self._headers(auth, None),
            allow_redirects=False,
            timeout=60,
        )
        return self._keep(request, response)

    def get_url(self, url: str, *, what: str) -> requests.Response:
        """GET a signed URL; kept as the status and whether the body is what was put."""
        response = requests.get(url, timeout=60)
        self.exchanges.append(
            Exchange({"method": "GET", "url": what}, response.status_code, {}, None)
        )
        return response


def recording_path(case: str) -> Path:
    return RECORDED / f"{case}.json"


def load_recording(case: str) -> list[Exchange] | None:
    path = recording_path(case)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Exchange.from_json(item) for item in data["exchanges"]]


def write_recording(case: str, exchanges: list[Exchange], *, about: str) -> None:
    RECORDED.mkdir(exist_ok=True)
    data = {
        "case": case,
        "about": about,
        "upstream_commit": UPSTREAM_COMMIT,
        "exchanges": [exchange.to_json() for exchange in exchanges],
    }
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    recording_path(case).write_text(text, encoding="utf-8")
