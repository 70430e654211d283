"""Workspaces are scanned and compressed on threads at a lower CPU priority than the
server's event loop, so a busy machine delays the compression, not every request."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from jupyterlab_manatee.workspace import archive
from tests.conftest import call

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def archiving_nice(monkeypatch) -> list[int]:
    """The nice value of each thread that wrote a workspace archive (observed, unchanged)."""
    seen: list[int] = []
    write = archive.write_archive

    def observed(*args, **kwargs):
        seen.append(thread_nice())
        return write(*args, **kwargs)

    monkeypatch.setattr(archive, "write_archive", observed)
    return seen


async def test_a_submit_compresses_its_workspace_at_nice_19(
    jp_fetch, fault_server, notebook, archiving_nice
) -> None:
    server_nice = thread_nice()
    body = {"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    status, _reply = await call(jp_fetch, "jobs", method="POST", body=body)
    assert status == 200
    assert archiving_nice == [min(19, server_nice + 19)]
    assert thread_nice() == server_nice  # the server's own thread is untouched


class TestAtTheServersPriority:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "background_nice": 0}

    async def test_background_nice_0_compresses_at_the_servers_priority(
        self, jp_fetch, fault_server, notebook, archiving_nice
    ) -> None:
        body = {"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
        status, _reply = await call(jp_fetch, "jobs", method="POST", body=body)
        assert status == 200
        assert archiving_nice == [thread_nice()]
