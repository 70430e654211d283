"""Helpers shared by the tests that start real processes: free ports, polling, and the
README's product command (`./dev run`) started as a user starts it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# The deployment manatee-local signs for by default, pinned as ./dev run pins it (its
# tokens carry these in submods.gce.project_id, google_service_accounts, image_reference).
LOCAL_PINS = {
    "project_id": "manatee-local",
    "tee_service_accounts": ["manatee-local-tee@manatee-local.iam.gserviceaccount.com"],
    "image_repository": "localhost/manatee-local",
}
LOCAL_PIN_ENV = {
    "MANATEE_PROJECT_ID": "manatee-local",
    "MANATEE_TEE_SERVICE_ACCOUNTS": "manatee-local-tee@manatee-local.iam.gserviceaccount.com",
    "MANATEE_IMAGE_REPOSITORY": "localhost/manatee-local",
}


#: The API token the tests' in-process local backends are started with, and that their
#: JupyterLab servers send (USER_TOKEN): manatee-local refuses requests without it.
LOCAL_API_TOKEN = "local-api-token-for-tests"


def notebook_text(*sources: str) -> str:
    """A Python 3 notebook with one code cell per source: the tests' notebooks."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """``check()``'s first truthy result; connection refusals count as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(requests.ConnectionError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@dataclass
class Product:
    """A running `./dev run`: its process, an authenticated session and where it serves."""

    process: subprocess.Popen[Any]
    session: requests.Session
    base: str
    notebooks: Path
    backend_port: int

    def wait_for_job(self, job_uuid: str, timeout: float = 120) -> dict[str, Any]:
        """The job once it has left the in-progress statuses."""

        def ended() -> dict[str, Any] | None:
            jobs = self.session.get(f"{self.base}/manatee/jobs").json()["jobs"]
            job = next(j for j in jobs if j["uuid"] == job_uuid)
            return job if job["job_status"] not in (0, 1, 3, 4) else None

        return wait_until(ended, timeout, f"job {job_uuid} to end")


@contextlib.contextmanager
def run_product(
    tmp_path: Path, creator: str = "tester", backend_port: int | None = None
) -> Iterator[Product]:
    """`./dev run` on a copy of tutorials/ (kept when ``tmp_path`` already has one, as its
    backend's data folder is), using this venv as it is (no install)."""
    notebooks = tmp_path / "tutorials"
    if not notebooks.exists():
        shutil.copytree(REPO / "tutorials", notebooks)
    port, token = free_port(), "product-test-token"
    backend_port = backend_port or free_port()
    env = {
        **os.environ,
        "MANATEE_VENV": sys.prefix,
        "MANATEE_SKIP_INSTALL": "1",
        "MANATEE_NOTEBOOK_DIR": str(notebooks),
        "MANATEE_LOCAL_DATA": str(tmp_path / "backend"),
        "MANATEE_LOCAL_PORT": str(backend_port),
        "MANATEE_CREATOR": creator,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    env.pop("MANATEE_LOCAL_STAGE2", None)  # the default: the repository's stage-2 folder
    log = (tmp_path / "dev-run.log").open("ab")  # what the script says (tests read it)
    # stage 2 in the TEE-like environment `./dev test` made, else in this one (making it
    # here would take minutes)
    env.setdefault("MANATEE_STAGE2_PYTHON", sys.executable)
    process = subprocess.Popen(
        [str(REPO / "dev"), "run", "--no-browser", f"--port={port}", f"--ServerApp.token={token}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: session.get(f"{base}/manatee/config").ok, 60, "JupyterLab")
        # JupyterLab comes up first; the backend once its stage-2 environment exists
        wait_until(
            lambda: session.get(f"{base}/manatee/config").json()["reachable"], 120, "the backend"
        )
        keys = tmp_path / "backend" / "issuers.jwks.json"  # written once the backend answers
        issuer = f"http://127.0.0.1:{backend_port}"
        wait_until(lambda: keys.is_file() and issuer in keys.read_text(), 30, "the issuers' keys")
        yield Product(process, session, base, notebooks, backend_port)
    finally:
        # the whole group, also when the script itself is gone (a test killed it): what it
        # started (JupyterLab, the backend) must not outlive the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
