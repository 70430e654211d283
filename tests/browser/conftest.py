"""Browser end-to-end fixtures: Debian's chromium (playwright) and real `jupyter lab`
servers with the installed extension; see lab_support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.browser.lab_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LabServer,
    copy_tutorials,
    local_backend,
    require_browser,
)


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """No asyncio here: pytest-jupyter's per-test loop would be playwright's own loop (sync
    playwright runs one in this thread) and closing it at teardown fails."""
    yield


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """No in-process Jupyter server to clean up (JupyterLab runs in a subprocess)."""
    yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module: playwright's loop must be gone before other tests run."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory) -> Iterator[Callable[..., LabServer]]:
    """Start JupyterLab servers for a module; all are stopped at its end."""
    started: list[LabServer] = []

    def start(
        root: Path,
        api_url: str | None,
        creator: str = "tester",
        local_issuers: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> LabServer:
        require_browser()
        home = tmp_path_factory.mktemp("lab")
        server = LabServer(home, root, api_url, creator, local_issuers, env)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> Iterator[Any]:
    """A module's local backend (modules that need other settings define their own)."""
    server = local_backend(tmp_path_factory.mktemp("backend"), max_running=2, job_timeout=120)
    with server.running_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def tutorials_lab(lab_factory, backend, tmp_path_factory) -> LabServer:
    """JupyterLab on a copy of tutorials/, against the module's backend, trusting its
    tokens as a local run (as ./dev run does)."""
    root = copy_tutorials(tmp_path_factory.mktemp("root") / "tutorials")
    return lab_factory(root, backend.url, local_issuers=[backend.url])
