"""``GET manatee/jobs`` is newest first whatever order the API pages in: the real API's
query has no ORDER BY, so its pages come oldest first (manatee-api.md, section 5.2)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from tornado import web

from tests.attestation_support import ServedOnAThread, ThreadedServer
from tests.conftest import call


def job(job_id: int) -> dict[str, Any]:
    return {
        "id": job_id,
        "uuid": f"00000000-0000-4000-8000-{job_id:012d}",
        "creator": "alice",
        "job_status": 5,
        "jupyter_file_name": "nb.ipynb",
        "created_at": "2026-12-01 10:00:00",
        "updated_at": "2026-12-01 10:05:00",
    }


class _QueryHandler(web.RequestHandler):
    def initialize(self, api: PagingApi) -> None:
        self.api = api

    def post(self) -> None:
        body = json.loads(self.request.body)
        self.api.asked.append((body["page"], body["page_size"]))
        size = body["page_size"]
        rows = self.api.rows()
        page = rows[(body["page"] - 1) * size : body["page"] * size]
        self.write({"code": 0, "msg": "Success", "jobs": page, "total": len(rows)})


class PagingApi(ServedOnAThread):
    """The API's query route over jobs 1..count, paged in ``order``."""

    def __init__(self) -> None:
        self.count = 12
        self.order = "ascending"
        self.asked: list[tuple[int, int]] = []
        self._server = ThreadedServer([(r"/v1/job/query/", _QueryHandler, {"api": self})])

    def rows(self) -> list[dict[str, Any]]:
        ids = list(range(1, self.count + 1))
        if self.order == "descending":
            ids.reverse()
        elif self.order == "unordered":
            random.Random(7).shuffle(ids)
        return [job(i) for i in ids]


@pytest.fixture
def paging_api():
    api = PagingApi().start()
    yield api
    api.stop()


@pytest.fixture
def api_url(paging_api) -> str:
    return paging_api.url


async def ids(jp_fetch, page: int, page_size: int) -> list[int]:
    code, reply = await call(jp_fetch, "jobs", page=str(page), page_size=str(page_size))
    assert code == 200, reply
    assert reply["total"] == 12
    return [j["id"] for j in reply["jobs"]]


@pytest.mark.parametrize("order", ["ascending", "descending", "unordered"])
async def test_pages_are_newest_first_whatever_order_the_api_pages_in(jp_fetch, paging_api, order):
    paging_api.order = order
    assert await ids(jp_fetch, 1, 5) == [12, 11, 10, 9, 8]
    assert await ids(jp_fetch, 2, 5) == [7, 6, 5, 4, 3]
    assert await ids(jp_fetch, 3, 5) == [2, 1]
    assert await ids(jp_fetch, 4, 5) == []


@pytest.mark.parametrize("order", ["ascending", "descending"])
async def test_one_job_per_page_is_still_newest_first(jp_fetch, paging_api, order):
    paging_api.order = order
    assert await ids(jp_fetch, 1, 1) == [12]
    assert await ids(jp_fetch, 12, 1) == [1]


async def test_an_oldest_first_api_is_read_through_at_most_three_pages(jp_fetch, paging_api):
    """Page 1 to learn the order and total, then the (at most two) pages holding the slice."""
    await ids(jp_fetch, 1, 5)
    assert paging_api.asked == [(1, 5), (2, 5), (3, 5)]


async def test_a_new_job_shows_on_the_first_page_of_an_oldest_first_api(jp_fetch, paging_api):
    assert (await ids(jp_fetch, 1, 10))[0] == 12
    paging_api.count = 13
    code, reply = await call(jp_fetch, "jobs", page="1", page_size="10")
    assert (code, reply["total"], reply["jobs"][0]["id"]) == (200, 13, 13)
