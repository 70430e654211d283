"""Consume a download's bytes (hash, write to disk) off the event loop, overlapped with
receiving the next ones.

Hashing and writing 500 MB in tornado's streaming callback held the loop for seconds.
Here the bytes are gathered into ``BLOCK``-sized pieces and handed to one worker thread at
a time, in order; the callback's awaitable makes tornado wait while a piece is still being
written, so at most one piece is written while the next is gathered (bounded memory).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor

BLOCK = 1024 * 1024


class OffLoop:
    """An async ``write(chunk)`` that runs the sync ``consume`` in a worker thread."""

    def __init__(self, consume: Callable[[bytes], None], executor: Executor | None = None) -> None:
        self._consume = consume
        self._executor = executor
        self._buffer = bytearray()
        self._pending: asyncio.Future[None] | None = None

    async def __call__(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= BLOCK:
            await self._hand_over()

    async def drain(self) -> None:
        """Write what is gathered and wait for the worker; raises what ``consume`` raised."""
        await self._hand_over()
        await self._wait()

    async def _hand_over(self) -> None:
        await self._wait()  # one piece in the worker at a time: order kept, memory bounded
        if self._buffer:
            piece = bytes(self._buffer)
            self._buffer.clear()
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(self._executor, self._consume, piece)

    async def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending
