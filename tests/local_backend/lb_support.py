"""Helpers for the local backend's tests: an API client written against the contract,
workspace archives (friendly and hostile) and notebooks."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

from tests.support import notebook_text

CREATOR = "alice"
#: The API token the test backends are started with.
TOKEN = "test-token"
IN_PROGRESS = {0, 1, 3, 4}
TERMINAL = {2, 5, 6, 7, 8, 9}


def notebook_bytes(*cells: str) -> bytes:
    """A notebook with one code cell per source string."""
    return notebook_text(*cells).encode("utf-8")


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A gzip tar of exactly these members (for hostile archives too)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def workspace_archive(files: dict[str, bytes], top: str = f"{CREATOR}-workspace") -> bytes:
    """A workspace archive as the extension builds it: one top-level folder."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    folder = tarfile.TarInfo(top)
    folder.type = tarfile.DIRTYPE
    folder.mode = 0o755
    members.append((folder, None))
    for name, data in files.items():
        info = tarfile.TarInfo(f"{top}/{name}")
        info.mode = 0o644
        members.append((info, data))
    return tar_gz(members)


class Api:
    """A client of the ManaTEE API, written against the contract (section 1)."""

    def __init__(self, base_url: str, creator: str = CREATOR) -> None:
        self.base_url = base_url
        self.creator = creator
        self.headers = {"Authorization": TOKEN}

    def post(self, route: str, body: Any, *, auth: bool = True) -> requests.Response:
        headers = self.headers if auth else {}
        return requests.post(f"{self.base_url}{route}", json=body, headers=headers, timeout=30)

    def submit(
        self,
        archive: bytes,
        filename: str = "nb.ipynb",
        *,
        creator: str | None = None,
        envs: list[dict[str, str]] | str = "[]",
        auth: bool = True,
    ) -> dict[str, Any]:
        fields = {
            "creator": self.creator if creator is None else creator,
            "filename": filename,
            "envs": envs if isinstance(envs, str) else json.dumps(envs),
        }
        response = requests.post(
            f"{self.base_url}/v1/job/submit/",
            files={"file": ("workspace.tar.gz", archive, "application/gzip")},
            data=fields,
            headers=self.headers if auth else {},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def submit_ok(self, archive: bytes, filename: str = "nb.ipynb", **kwargs: Any) -> str:
        reply = self.submit(archive, filename, **kwargs)
        assert reply["code"] == 0, reply
        return reply["uuid"]

    def submit_read(self, archive: bytes, filename: str = "nb.ipynb", **kwargs: Any) -> str:
        """Submit, then wait until the build has read the creator's one workspace object
        (status past 0 and 1), so the creator's next submit cannot replace these files."""
        job_uuid = self.submit_ok(archive, filename, **kwargs)
        self.wait(job_uuid, {2, 3, 4, 5, 6, 7, 8, 9})
        return job_uuid

    def query(self, page: int = 1, page_size: int = 100, **extra: Any) -> dict[str, Any]:
        body = {"page": page, "page_size": page_size, "creator": self.creator, **extra}
        return self.post("/v1/job/query/", body).json()

    def job(self, job_uuid: str) -> dict[str, Any]:
        jobs = [job for job in self.query()["jobs"] if job["uuid"] == job_uuid]
        assert jobs, f"job {job_uuid} is not listed"
        return jobs[0]

    def wait(self, job_uuid: str, statuses: set[int], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_uuid)
            if job["job_status"] in statuses:
                return job
            assert time.monotonic() < deadline, f"job stuck in {job}"
            time.sleep(0.1)

    def download(self, job_id: int) -> dict[str, Any]:
        return self.post("/v1/job/output/download/", {"id": job_id, "creator": self.creator}).json()

    def attestation(self, job_id: int) -> dict[str, Any]:
        body = {"id": job_id, "creator": self.creator}
        return self.post("/v1/job/attestation/", body).json()

    def delete(self, job_uuid: str) -> dict[str, Any]:
        return self.post("/v1/job/delete/", {"uuid": job_uuid, "creator": self.creator}).json()


def processes_under(folder: Path) -> list[int]:
    """Pids of processes whose working directory is inside ``folder`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = (entry / "cwd").readlink()
        except OSError:
            continue
        if str(cwd).startswith(str(folder)):
            pids.append(int(entry.name))
    return pids


def wait_no_processes_under(folder: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while processes_under(folder):
        assert time.monotonic() < deadline, f"processes still run in {folder}"
        time.sleep(0.1)


def jwks_certs(base_url: str) -> dict[str, str]:
    """The issuer's keys as PEM, found through the discovery document like a verifier does."""
    config = requests.get(f"{base_url}/.well-known/openid-configuration", timeout=10).json()
    certs = {}
    for key in requests.get(config["jwks_uri"], timeout=10).json()["keys"]:
        numbers = RSAPublicNumbers(
            int.from_bytes(base64.urlsafe_b64decode(key["e"] + "=="), "big"),
            int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=="), "big"),
        )
        pem = numbers.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        certs[key["kid"]] = pem.decode("ascii")
    return certs


#: A job that ends quickly without a kernel: the notebook is not in the archive.
QUICK_FAIL_ARCHIVE = workspace_archive({"other.txt": b"no notebook here"})

#: A job that stays in status 4 until killed.
SLEEPING_NOTEBOOK = notebook_bytes("import time\ntime.sleep(120)")


def gated_notebook(gate: Path, text: str) -> bytes:
    """A notebook that runs until the file ``gate`` exists, then prints ``text``: the test
    decides when the job ends, no clock does."""
    return notebook_bytes(
        "import pathlib, time\n"
        f"while not pathlib.Path({str(gate)!r}).exists():\n"
        "    time.sleep(0.05)\n"
        f"print({text!r})"
    )
