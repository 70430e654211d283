"""The asynchronous API: serving in the caller's event loop, and ``wait_for_status``."""

from __future__ import annotations

import asyncio

import pytest
from lb_support import QUICK_FAIL_ARCHIVE, TOKEN, Api
from tornado.httpclient import AsyncHTTPClient

from jupyterlab_manatee.local_backend import LocalBackend


async def test_start_serves_in_the_running_loop_and_stop_is_safe_twice(tmp_path):
    backend = LocalBackend(tmp_path / "data", token=TOKEN, reconcile_interval=0)
    await backend.start()
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(f"{backend.url}/health")
        assert response.body == b'{"message": "pong"}'
    finally:
        await backend.stop()
        await backend.stop()
    with pytest.raises(OSError):
        await client.fetch(f"{backend.url}/health")
    client.close()


async def test_wait_for_status_returns_the_job_once_it_reaches_a_wanted_status(tmp_path):
    backend = LocalBackend(tmp_path / "data", token=TOKEN, reconcile_interval=0)
    await backend.start()
    try:
        api = Api(backend.url)
        job_uuid = await asyncio.to_thread(api.submit_ok, QUICK_FAIL_ARCHIVE)
        job = await backend.wait_for_status(job_uuid, {5}, timeout=30)
        assert job["uuid"] == job_uuid and job["job_status"] == 5
        with pytest.raises(TimeoutError):
            await backend.wait_for_status(job_uuid, {2}, timeout=0.3)
    finally:
        await backend.stop()


async def test_a_backend_can_be_started_only_once(tmp_path):
    backend = LocalBackend(tmp_path / "data", token=TOKEN, reconcile_interval=0)
    await backend.start()
    try:
        with pytest.raises(RuntimeError):
            await backend.start()
    finally:
        await backend.stop()
