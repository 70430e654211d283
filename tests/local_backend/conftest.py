"""Fixtures for the local backend's tests: real backends on free ports, each on its own
thread (``LocalBackend.running_in_thread``), spoken to over real HTTP."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from lb_support import TOKEN, Api

from jupyterlab_manatee.local_backend import LocalBackend


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., LocalBackend]]:
    """Start `LocalBackend`s on their own threads; all are stopped after the test."""
    with ExitStack() as stack:

        def start(**kwargs: Any) -> LocalBackend:
            kwargs.setdefault("data_dir", tmp_path / "data")
            kwargs.setdefault("token", TOKEN)
            # Builds start as soon as a slot is free; tests of the reconciler's timing
            # hold the builds (LocalBackend.hold_builds) instead of racing a clock.
            kwargs.setdefault("reconcile_interval", 0)
            return stack.enter_context(LocalBackend(**kwargs).running_in_thread())

        yield start


@pytest.fixture
def gate() -> Iterator[Path]:
    """A path a job's notebook waits for (`gated_notebook`): in a folder every user may
    enter, since confined jobs run as another user and cannot enter pytest's tmp_path;
    as root under /run, since each confined job has a /tmp (/var/tmp, /dev/shm) of its own."""
    parent = "/run" if os.geteuid() == 0 and os.path.isdir("/run") else None
    folder = Path(tempfile.mkdtemp(prefix="manatee-gate-", dir=parent))
    folder.chmod(0o755)
    yield folder / "open"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def local_backend(start_backend: Callable[..., LocalBackend]) -> LocalBackend:
    """A backend with default settings."""
    return start_backend()


@pytest.fixture
def api(local_backend: LocalBackend) -> Api:
    return Api(local_backend.url)
