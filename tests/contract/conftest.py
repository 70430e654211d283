"""The contract suite's target: the local backend by default (started here, its builds
held), or the real API when ``MANATEE_CONTRACT_API_URL`` is set (with
``MANATEE_CONTRACT_DSN``, ``mysql://user:password@host:port/database``, for the job table).
``MANATEE_CONTRACT_RECORD=1`` with a real API writes the recordings."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract_support import API_URL, RECORD, TOKEN, LocalTarget, RealTarget, Target

from jupyterlab_manatee.local_backend import LocalBackend


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    if API_URL:
        dsn = os.environ.get("MANATEE_CONTRACT_DSN", "")
        if not dsn:
            pytest.fail("MANATEE_CONTRACT_DSN is required with MANATEE_CONTRACT_API_URL")
        real = RealTarget("real", API_URL, token="contract-token", dsn=dsn)
        real.reset()
        yield real
        return
    if RECORD:
        pytest.fail("MANATEE_CONTRACT_RECORD=1 records the real API: set MANATEE_CONTRACT_API_URL")
    backend = LocalBackend(data_dir=tmp_path / "data", token=TOKEN, reconcile_interval=0)
    with backend.running_in_thread() as running:
        # No reconciler runs beside the real API here either: only the test moves a job.
        running.hold_builds()
        yield LocalTarget("local", running.url, backend=running)
