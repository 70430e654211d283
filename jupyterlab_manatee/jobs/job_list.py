"""The creator's jobs newest first, whatever order the API pages them in.

The real API's job query has no ORDER BY (its ``Order("id DESC")`` comes after the query
ran), so in practice pages come oldest first and a new job lands on the last page. The
order is told from the ids the API returns; ``total`` says which API pages hold the
wanted slice, so at most two API pages are read for an ordered API. An API whose pages
are in no order at all is read whole (up to :data:`MAX_PAGES_WHEN_UNORDERED` pages).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any

Query = Callable[[int, int], Awaitable[dict[str, Any]]]

ASCENDING, DESCENDING, UNORDERED = "ascending", "descending", "unordered"
MAX_PAGES_WHEN_UNORDERED = 20
UNORDERED_PAGE_SIZE = 100


async def newest_first(query: Query, page: int, page_size: int) -> dict[str, Any]:
    """Page ``page`` (1-based) of ``page_size`` jobs, newest (highest id) first.

    ``query(page, page_size)`` is one API call returning ``{"jobs": [...], "total": N}``.
    The reply has the same shape, with ``order`` saying how the API paged.
    """
    first = await query(1, page_size)
    total, jobs = first["total"], first["jobs"]
    if total <= len(jobs):  # everything is in hand
        return _reply(_slice(jobs, page, page_size), total, _order_of(jobs) or ASCENDING)
    order = _order_of(jobs)
    pages: dict[int, list[dict[str, Any]]] = {1: jobs}
    if order is None:  # one job per page: compare with the next page
        second = await query(2, page_size)
        pages[2] = second["jobs"]
        order = _order_of(jobs + second["jobs"])
    if order == DESCENDING:
        wanted = pages.get(page) or (await query(page, page_size))["jobs"]
        return _reply(_sorted(wanted), total, order)
    if order == ASCENDING:
        start, end = (page - 1) * page_size, min(page * page_size, total)
        if start >= end:
            return _reply([], total, order)
        # newest-first index i is ascending index total - 1 - i
        low, high = total - end, total - start  # ascending indices [low, high)
        collected: list[dict[str, Any]] = []
        for api_page in range(low // page_size + 1, (high - 1) // page_size + 2):
            if api_page not in pages:
                pages[api_page] = (await query(api_page, page_size))["jobs"]
            offset = (api_page - 1) * page_size
            collected += [job for k, job in enumerate(pages[api_page], offset) if low <= k < high]
        return _reply(_sorted(collected), total, order)
    return await _read_whole(query, page, page_size, total)


async def _read_whole(query: Query, page: int, page_size: int, total: int) -> dict[str, Any]:
    everything: dict[int, dict[str, Any]] = {}
    for api_page in range(1, MAX_PAGES_WHEN_UNORDERED + 1):
        reply = await query(api_page, UNORDERED_PAGE_SIZE)
        everything.update({job["id"]: job for job in reply["jobs"]})
        if not reply["jobs"] or api_page * UNORDERED_PAGE_SIZE >= reply["total"]:
            break
    return _reply(_slice(list(everything.values()), page, page_size), total, UNORDERED)


def _order_of(jobs: list[dict[str, Any]]) -> str | None:
    """ASCENDING, DESCENDING, UNORDERED, or None when fewer than two jobs tell nothing."""
    ids = [job["id"] for job in jobs]
    if len(ids) < 2:
        return None
    if all(a < b for a, b in pairwise(ids)):
        return ASCENDING
    if all(a > b for a, b in pairwise(ids)):
        return DESCENDING
    return UNORDERED


def _sorted(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(jobs, key=lambda job: job["id"], reverse=True)


def _slice(jobs: list[dict[str, Any]], page: int, page_size: int) -> list[dict[str, Any]]:
    start = (page - 1) * page_size
    return _sorted(jobs)[start : start + page_size]


def _reply(jobs: list[dict[str, Any]], total: int, order: str) -> dict[str, Any]:
    return {"jobs": jobs, "total": total, "order": order}
