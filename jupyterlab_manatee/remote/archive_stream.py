"""Upload a workspace archive while it is being compressed.

Compressing to a file and uploading it after made a submit take the sum of both times.
Here a worker thread writes the gzip tar into a *tee*: each 1 MiB block goes to a
temporary file (kept only so that a 307/308 answer can be re-sent whole, as the API
contract asks) and, through a bounded hand-off, to the request body on the event loop.
Memory stays bounded (``DEPTH`` blocks in flight; the thread waits when the network is
slower), and the temporary file is removed on success, failure and cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import BinaryIO

BLOCK = 1024 * 1024
#: Blocks handed to the loop and not yet sent: the memory bound of one upload.
DEPTH = 4
_WAIT = 0.1  # how often a waiting worker looks whether the upload was given up


class _Aborted(Exception):
    """The upload was given up; the worker stops writing the archive."""


_END = object()


class ArchiveStream:
    """A gzip tar written by ``write(out)`` in ``executor``, readable as async blocks."""

    def __init__(
        self, write: Callable[[BinaryIO], None], executor: Executor | None, fd: int, path: Path
    ) -> None:
        """Use :meth:`start`, which creates the temporary file off the loop."""
        self._write = write
        self._executor = executor
        self.path = path
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._buffer = bytearray()
        self._slots = threading.Semaphore(DEPTH)
        self._detached = threading.Event()
        self._aborted = threading.Event()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.size = 0
        self._error: BaseException | None = None
        # last: the worker starts at once
        self._done: asyncio.Future[None] = self._loop.run_in_executor(executor, self._run)

    @classmethod
    async def start(
        cls,
        write: Callable[[BinaryIO], None],
        executor: Executor | None,
        temp_dir: str | None,
        prefix: str,
    ) -> ArchiveStream:
        """Create the tee file in ``temp_dir`` and start ``write`` on ``executor``."""
        loop = asyncio.get_running_loop()
        fd, name = await loop.run_in_executor(
            None, lambda: tempfile.mkstemp(prefix=prefix, suffix=".tar.gz", dir=temp_dir)
        )
        return cls(write, executor, fd, Path(name))

    # --- the worker thread ------------------------------------------------------------

    def _run(self) -> None:
        """Write the archive; finish with ``_END`` or the exception on the queue."""
        try:
            try:
                self._write(self)  # type: ignore[arg-type]
                self._emit(bytes(self._buffer))
                self._buffer.clear()
            finally:
                self._file.close()
        except BaseException as e:  # kept for the loop: a thread cannot raise to it
            self._error = e
            self._put(e)
            return
        self._put(_END)

    def write(self, data: bytes) -> int:
        """Called by the gzip writer: collect into ``BLOCK``-sized pieces."""
        if self._aborted.is_set():
            raise _Aborted()
        self._buffer += data
        if len(self._buffer) >= BLOCK:
            block = bytes(self._buffer)
            self._buffer.clear()
            self._emit(block)
        return len(data)

    def flush(self) -> None:
        """Blocks are written whole in ``write``; nothing is held for ``flush``."""

    def _emit(self, block: bytes) -> None:
        if not block:
            return
        view = memoryview(block)
        while view:  # a raw file may write less than asked
            view = view[self._file.write(view) :]
        self.size += len(block)
        if self._detached.is_set():
            return
        while not self._slots.acquire(timeout=_WAIT):
            if self._aborted.is_set():
                raise _Aborted()
            if self._detached.is_set():
                return
        self._put(block)

    def _put(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is reading
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    # --- the event loop ---------------------------------------------------------------

    async def blocks(self) -> AsyncIterator[bytes]:
        """The archive as it is written; raises what the writer raised (a changed file)."""
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            self._slots.release()
            yield item  # type: ignore[misc]

    async def complete(self) -> Path:
        """Stop feeding the loop, let the writer finish the file, return it (to re-send)."""
        self._detached.set()
        await self._done
        if self._error is not None:
            raise self._error
        return self.path

    async def close(self) -> None:
        """Give up (if still running) and remove the temporary file; safe to call twice."""
        self._aborted.set()
        self._detached.set()
        # the worker may still hold it open: POSIX allows the unlink
        await self._loop.run_in_executor(None, _unlink, self.path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
