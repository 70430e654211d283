"""Which cells raised in a Finished job's output, known before the user presses Output.

A notebook whose cells raise still ends "Finished" (see :mod:`.notebook_errors`), so the
job card alone reads as a success. Once the job list shows a Finished job, its output is
downloaded in the background through the API's signed URL (held in memory, never saved into
the workspace), scanned off the event loop, and the result kept per job for the list's
``cells_raised``. One scan at a time, at most :data:`MAX_NOTEBOOK_BYTES` held, a bounded
number of results: the server's memory stays bounded however many jobs a user has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from .notebook_errors import MAX_NOTEBOOK_BYTES, errors_in

#: ``fetch(write)`` streams one job's output into ``write``; raises on failure.
Fetch = Callable[[Callable[[bytes], None]], Awaitable[int]]
#: (API URL, creator, job id, job uuid): ids restart at 1 on another (or a reset) API.
Key = tuple[str, str, int, str]

#: Jobs whose result is kept (least recently asked for dropped first).
MAX_KEPT = 2048
#: Jobs waiting for a scan; more are asked for again by the list's next poll.
MAX_WAITING = 64
#: Seconds before a failed scan (API or storage unreachable) is tried again.
RETRY_AFTER = 60.0


class _TooLarge(Exception):
    """The output passed the scan limit: stop downloading it."""


class OutputScans:
    """The cells that raised, per job: scanned in the background, asked for without waiting."""

    def __init__(
        self,
        executor: Executor | None,
        log: logging.Logger,
        *,
        limit: int = MAX_NOTEBOOK_BYTES,
        max_kept: int = MAX_KEPT,
    ) -> None:
        self._executor = executor
        self._log = log
        self._limit = limit
        self._max_kept = max_kept
        #: a scanned job's ``cells_raised`` (None: scanned, but unknown: too large, not a
        #: notebook)
        self._results: OrderedDict[Key, dict[str, Any] | None] = OrderedDict()
        self._failed: OrderedDict[Key, float] = OrderedDict()
        self._waiting: deque[tuple[Key, Fetch]] = deque()
        self._waiting_keys: set[Key] = set()
        self._worker: asyncio.Future[None] | None = None

    def cells_raised(self, key: Key, fetch: Fetch) -> dict[str, Any] | None:
        """The job's ``{"count", "first", "first_cell"}`` once scanned; None while unknown
        (not scanned yet: a scan is started; failed; too large to scan)."""
        if key in self._results:
            self._results.move_to_end(key)
            return self._results[key]
        self._want(key, fetch)
        return None

    def pending(self, key: Key) -> bool:
        """Whether the job's scan waits or runs: its result comes at a later ask."""
        return key in self._waiting_keys

    def remember(self, key: Key, errors: dict[str, Any] | None) -> None:
        """A result found elsewhere (the output saved by Output was scanned there)."""
        self._keep(key, summary(errors))

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def idle(self) -> None:
        """Wait until no scan is waiting or running (tests, server stop)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    def _want(self, key: Key, fetch: Fetch) -> None:
        if key in self._waiting_keys or len(self._waiting) >= MAX_WAITING:
            return
        failed_at = self._failed.get(key)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER:
            return
        self._waiting.append((key, fetch))
        self._waiting_keys.add(key)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        while self._waiting:
            key, fetch = self._waiting.popleft()
            try:
                if key not in self._results:
                    await self._scan(key, fetch)
            finally:
                self._waiting_keys.discard(key)

    async def _scan(self, key: Key, fetch: Fetch) -> None:
        received = bytearray()

        def write(chunk: bytes) -> None:
            if len(received) + len(chunk) > self._limit:
                raise _TooLarge()
            received.extend(chunk)

        try:
            await fetch(write)
        except _TooLarge:
            self._log.info("ManaTEE: the output of job %d is too large to scan", key[2])
            self._keep(key, None)
            return
        except Exception as e:  # unknown, not "no errors": asked again later
            self._log.info("ManaTEE: could not scan the output of job %d: %s", key[2], e)
            self._failed[key] = time.monotonic()
            while len(self._failed) > self._max_kept:
                self._failed.popitem(last=False)
            return
        loop = asyncio.get_running_loop()
        try:  # parsed in place: at most one output of the limit's size is held at a time
            errors = await loop.run_in_executor(self._executor, errors_in, received)
        except RuntimeError:  # the pool is shut down: the server is stopping
            return
        self._keep(key, summary(errors))

    def _keep(self, key: Key, value: dict[str, Any] | None) -> None:
        self._failed.pop(key, None)
        self._results[key] = value
        self._results.move_to_end(key)
        while len(self._results) > self._max_kept:
            self._results.popitem(last=False)


def summary(errors: dict[str, Any] | None) -> dict[str, Any] | None:
    """The job list's ``cells_raised`` from :func:`.notebook_errors.cell_errors`' result:
    ``{"count", "first": "ValueError: boom", "first_cell": 2}``; None when unknown."""
    if errors is None or errors.get("count") is None:
        return None
    first = errors.get("first")
    if not first:
        return {"count": errors["count"], "first": None, "first_cell": None}
    evalue = first.get("evalue") or ""
    return {
        "count": errors["count"],
        "first": f"{first['ename']}: {evalue}" if evalue else first["ename"],
        "first_cell": first["cell"],
    }
