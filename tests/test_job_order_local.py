"""``GET manatee/jobs`` is newest first against the faithful local backend, whose pages
come oldest first as the real API's do (manatee-api.md, section 5.2)."""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

import pytest
import requests

from tests.conftest import CREATOR, USER_TOKEN, call

TERMINAL = {2, 5, 6, 7, 8, 9}


def quick_fail_archive() -> bytes:
    """A workspace without its notebook: the job ends in status 2 without a kernel."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(f"{CREATOR}-workspace")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    return buffer.getvalue()


class Direct:
    """The API spoken to directly (not through the extension), to make jobs quickly."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.headers = {"Authorization": USER_TOKEN}

    def query(self, page: int = 1, page_size: int = 100) -> dict[str, Any]:
        body = {"page": page, "page_size": page_size, "creator": CREATOR}
        return requests.post(
            f"{self.url}/v1/job/query/", json=body, headers=self.headers, timeout=10
        ).json()

    def ended_job(self) -> str:
        """Submit a quickly failing job and wait until it has ended."""
        reply = requests.post(
            f"{self.url}/v1/job/submit/",
            files={"file": ("workspace.tar.gz", quick_fail_archive(), "application/gzip")},
            data={"creator": CREATOR, "filename": "nb.ipynb", "envs": "[]"},
            headers=self.headers,
            timeout=30,
        ).json()
        assert reply["code"] == 0, reply
        deadline = time.monotonic() + 30
        while True:  # status 2 comes as soon as the build looks: no kernel to start
            job = next(j for j in self.query()["jobs"] if j["uuid"] == reply["uuid"])
            if job["job_status"] in TERMINAL:
                return reply["uuid"]
            assert time.monotonic() < deadline, job
            time.sleep(0.02)


@pytest.fixture
def twelve_jobs(backend) -> Direct:
    direct = Direct(backend.url)
    for _ in range(12):
        direct.ended_job()
    return direct


async def ids(jp_fetch, page: int, page_size: int) -> tuple[list[int], int]:
    code, reply = await call(jp_fetch, "jobs", page=str(page), page_size=str(page_size))
    assert code == 200, reply
    return [j["id"] for j in reply["jobs"]], reply["total"]


def test_the_backend_itself_pages_oldest_first(twelve_jobs):
    reply = twelve_jobs.query(page=1, page_size=5)
    assert ([j["id"] for j in reply["jobs"]], reply["total"]) == ([1, 2, 3, 4, 5], 12)


async def test_page_one_of_twelve_jobs_is_the_newest(jp_fetch, twelve_jobs):
    assert await ids(jp_fetch, 1, 5) == ([12, 11, 10, 9, 8], 12)
    assert await ids(jp_fetch, 2, 5) == ([7, 6, 5, 4, 3], 12)
    assert await ids(jp_fetch, 3, 5) == ([2, 1], 12)


async def test_a_new_job_appears_first_on_the_next_refresh(jp_fetch, twelve_jobs):
    assert await ids(jp_fetch, 1, 10) == ([12, 11, 10, 9, 8, 7, 6, 5, 4, 3], 12)
    twelve_jobs.ended_job()
    assert await ids(jp_fetch, 1, 10) == ([13, 12, 11, 10, 9, 8, 7, 6, 5, 4], 13)
