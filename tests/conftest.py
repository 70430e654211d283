"""Shared fixtures: a real Jupyter server with the extension, the local ManaTEE backend as
its API, misbehaving API servers for faults, and helpers to make notebooks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.fault_server import FaultServer
from tests.support import LOCAL_PINS, notebook_text

pytest_plugins = ("pytest_jupyter.jupyter_server",)

CREATOR = "alice"
USER_TOKEN = "tok-9f8e7d6c5b4a-do-not-leak"


@pytest.fixture
def backend(tmp_path_factory):
    """The local ManaTEE backend on a free port, on its own thread and event loop."""
    from jupyterlab_manatee.local_backend import LocalBackend

    server = LocalBackend(
        data_dir=tmp_path_factory.mktemp("backend"),
        max_running=2,
        job_timeout=120,
        token=USER_TOKEN,  # what the extension sends (ManateeConfig.user_token)
        reconcile_interval=0,
    )
    with server.running_in_thread() as running:
        yield running


@pytest.fixture
def fault_server(jp_asyncio_loop):
    server = FaultServer()
    jp_asyncio_loop.run_until_complete(server.start())
    yield server
    server.stop()


@pytest.fixture
def api_url(backend) -> str:
    """The API the extension talks to; tests of faults override it."""
    return backend.url


@pytest.fixture
def manatee_config(api_url, tmp_path_factory) -> dict[str, Any]:
    return {
        "api_url": api_url,
        "user_token": USER_TOKEN,
        "creator": CREATOR,
        "state_dir": str(tmp_path_factory.mktemp("state")),
        "temp_dir": str(tmp_path_factory.mktemp("archives")),
        "connect_timeout": 2.0,
        "request_timeout": 5.0,
        "upload_timeout": 30.0,
        **LOCAL_PINS,
    }


@pytest.fixture
def jp_server_config(manatee_config):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyterlab_manatee": True}},
        "ManateeConfig": manatee_config,
    }


@pytest.fixture
def temp_dir(manatee_config) -> Path:
    return Path(manatee_config["temp_dir"])


def write_notebook(path: Path, source: str = "print('hello')") -> Path:
    """A minimal notebook with one code cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(source))
    return path


@pytest.fixture
def notebook(jp_root_dir) -> Path:
    """``analysis/nb.ipynb`` under the contents root, with a data file beside it."""
    nb = write_notebook(jp_root_dir / "analysis" / "nb.ipynb")
    (nb.parent / "data.csv").write_text("a,b\n1,2\n")
    return nb


async def wait_for_job(
    jp_fetch, job_uuid: str, statuses: set[int], timeout: float = 90.0
) -> dict[str, Any]:
    """Poll the extension's job list until the job reaches one of ``statuses``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, reply = await call(jp_fetch, "jobs", page_size="100")
        job = next((j for j in reply["jobs"] if j["uuid"] == job_uuid), None)
        if job is not None and job["job_status"] in statuses:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_uuid} did not reach {statuses}: {job}")
        await asyncio.sleep(0.3)


async def call(jp_fetch, *parts: str, method: str = "GET", body: Any = None, **params: Any):
    """A request to a manatee route that does not raise on error statuses."""
    kwargs: dict[str, Any] = {"method": method, "raise_error": False}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    if params:
        kwargs["params"] = params
    response = await jp_fetch("manatee", *parts, **kwargs)
    return response.code, json.loads(response.body or b"null")
