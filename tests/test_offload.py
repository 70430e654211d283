"""Output bytes are hashed and written off the event loop, in order, one piece at a time."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import pytest

from jupyterlab_manatee.common import offload
from jupyterlab_manatee.common.offload import OffLoop
from tests.conftest import call


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


async def test_output_is_hashed_and_written_off_the_loop_thread(
    jp_fetch, fault_server, jp_root_dir, monkeypatch
):
    """Every hash update of a 5 MB output runs on a worker thread, none on the loop's."""
    fault_server.file_body = os.urandom(5_000_000)
    threads: list[int] = []
    real_md5 = hashlib.md5

    class Recording:
        def __init__(self, *a, **kw) -> None:
            self._h = real_md5(*a, **kw)

        def update(self, data: bytes) -> None:
            threads.append(threading.get_ident())
            self._h.update(data)

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    monkeypatch.setattr("jupyterlab_manatee.actions.outputs.hashlib.md5", Recording)
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 200, reply
    assert threads and threading.get_ident() not in threads
    assert (jp_root_dir / reply["path"]).read_bytes() == fault_server.file_body


async def test_pieces_reach_the_consumer_whole_and_in_order() -> None:
    got = bytearray()
    sink = OffLoop(got.extend)
    sent = os.urandom(3 * offload.BLOCK + 12345)
    for i in range(0, len(sent), 65536):
        await sink(sent[i : i + 65536])
    await sink.drain()
    assert bytes(got) == sent


async def test_a_second_piece_waits_while_the_first_is_written() -> None:
    """Bounded memory: the network is held back while the disk is busy."""
    release = threading.Event()
    sink = OffLoop(lambda piece: release.wait(10))
    await sink(b"x" * offload.BLOCK)  # handed to the worker, which now waits
    second = asyncio.ensure_future(sink(b"y" * offload.BLOCK))
    await asyncio.sleep(0.3)
    assert not second.done()
    release.set()
    await asyncio.wait_for(second, 10)
    await sink.drain()


async def test_a_disk_error_reaches_the_caller_at_drain() -> None:
    def consume(piece: bytes) -> None:
        raise OSError(28, "No space left on device")

    sink = OffLoop(consume)
    await sink(b"x" * 10)
    with pytest.raises(OSError, match="No space"):
        await sink.drain()
