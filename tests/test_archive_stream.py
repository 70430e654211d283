"""Submit streams the archive while it is compressed: chunked on the wire, re-sent whole
after a 307/308, bounded memory, and no temporary file left whatever the outcome."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from jupyterlab_manatee.errors import BadRequest
from jupyterlab_manatee.remote import archive_stream
from jupyterlab_manatee.remote.archive_stream import ArchiveStream
from tests.conftest import call

BIG = 6 * 1024 * 1024  # more than DEPTH blocks of incompressible bytes


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.fixture
def big_notebook(notebook: Path) -> Path:
    (notebook.parent / "noise.bin").write_bytes(os.urandom(BIG))
    return notebook


def submit(jp_fetch):
    body = {"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    return call(jp_fetch, "jobs", method="POST", body=body)


async def test_the_upload_is_chunked_while_compressing(jp_fetch, fault_server, big_notebook):
    status, _ = await submit(jp_fetch)
    assert status == 200
    (seen,) = fault_server.requests_to("v1/job/submit/")
    assert seen.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in seen.headers


async def test_the_streamed_archive_is_the_whole_workspace(jp_fetch, fault_server, big_notebook):
    await submit(jp_fetch)
    (seen,) = fault_server.requests_to("v1/job/submit/")
    with seen.archive() as tar:
        noise = tar.extractfile("alice-workspace/noise.bin")
        assert (
            noise is not None and noise.read() == (big_notebook.parent / "noise.bin").read_bytes()
        )


async def test_a_307_resends_the_identical_archive_from_the_tee_file(
    jp_fetch, fault_server, big_notebook
):
    fault_server.mode = "redirect"
    status, _ = await submit(jp_fetch)
    assert status == 200
    first, second = fault_server.requests_to("v1/job/submit/")
    assert first.form()["file"][0] == second.form()["file"][0]
    assert len(first.form()["file"][0]) > BIG


async def test_a_307_resend_carries_a_content_length(jp_fetch, fault_server, big_notebook):
    fault_server.mode = "redirect"
    await submit(jp_fetch)
    _, second = fault_server.requests_to("v1/job/submit/")
    assert int(second.headers["Content-Length"]) == len(second.body)


async def test_a_redirected_submit_leaves_no_temporary_file(
    jp_fetch, fault_server, big_notebook, temp_dir
):
    fault_server.mode = "redirect"
    await submit(jp_fetch)
    assert list(temp_dir.iterdir()) == []


async def test_a_successful_submit_leaves_no_temporary_file(
    jp_fetch, fault_server, big_notebook, temp_dir
):
    await submit(jp_fetch)
    assert list(temp_dir.iterdir()) == []


async def test_a_cancelled_submit_leaves_no_temporary_file(
    jp_fetch, jp_serverapp, fault_server, big_notebook, temp_dir
):
    fault_server.mode = "hang"
    fault_server.hang_seconds = 5
    manager = jp_serverapp.web_app.settings["manatee_manager"]
    manager.config.queue_submissions = False  # straight to the upload (no job query first)
    task = asyncio.ensure_future(manager.submit("alice", "analysis/nb.ipynb", "nb.ipynb"))
    # the whole body arrived; the reply is what hangs
    while not fault_server.requests_to("v1/job/submit/"):  # noqa: ASYNC110 - a server's record
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(temp_dir.iterdir()) == []


# --- the stream itself ---------------------------------------------------------------


def _raw_writer(total: int):
    def write(out) -> None:
        block = b"\0" * 65536
        for _ in range(total // len(block)):
            out.write(block)

    return write


async def test_the_writer_waits_for_a_slow_upload(tmp_path: Path) -> None:
    """Bounded memory: at most DEPTH blocks wait for the network, whatever the size."""
    stream = await ArchiveStream.start(
        _raw_writer(64 * archive_stream.BLOCK), None, str(tmp_path), "t-"
    )
    blocks = stream.blocks()
    await blocks.__anext__()
    await asyncio.sleep(0.5)  # a slow network: the writer would run far ahead if it could
    assert stream.size <= (archive_stream.DEPTH + 2) * archive_stream.BLOCK
    await stream.close()


async def test_closing_stops_the_writer_and_removes_the_file(tmp_path: Path) -> None:
    stream = await ArchiveStream.start(
        _raw_writer(64 * archive_stream.BLOCK), None, str(tmp_path), "t-"
    )
    await stream.blocks().__anext__()
    await stream.close()
    await asyncio.wait_for(asyncio.shield(stream._done), 10)
    assert list(tmp_path.iterdir()) == []


async def test_a_writer_error_reaches_the_upload(tmp_path: Path) -> None:
    def write(out) -> None:
        out.write(b"x" * (2 * archive_stream.BLOCK))
        raise BadRequest("The file 'a.csv' changed while it was being archived")

    stream = await ArchiveStream.start(write, None, str(tmp_path), "t-")
    with pytest.raises(BadRequest, match="changed"):
        async for _ in stream.blocks():
            pass
    await stream.close()


async def test_complete_gives_the_whole_archive_after_a_detach(tmp_path: Path) -> None:
    stream = await ArchiveStream.start(
        _raw_writer(16 * archive_stream.BLOCK), None, str(tmp_path), "t-"
    )
    await stream.blocks().__anext__()
    path = await stream.complete()
    assert path.stat().st_size == 16 * archive_stream.BLOCK
    await stream.close()
