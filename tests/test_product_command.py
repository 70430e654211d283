"""The README's first command, `./dev run`, brings up the local backend and JupyterLab
with the extension talking to it; a submitted notebook comes back with its proof; Ctrl-C
stops both."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
TOKEN = "product-command-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture
def product(tmp_path):
    notebooks = tmp_path / "tutorials"
    shutil.copytree(REPO / "tutorials", notebooks)
    port, backend_port = free_port(), free_port()
    env = {
        **os.environ,
        "MANATEE_VENV": sys.prefix,
        "MANATEE_SKIP_INSTALL": "1",
        "MANATEE_NOTEBOOK_DIR": str(notebooks),
        "MANATEE_LOCAL_DATA": str(tmp_path / "backend"),
        "MANATEE_LOCAL_PORT": str(backend_port),
        "MANATEE_CREATOR": "tester",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    process = subprocess.Popen(
        [str(REPO / "dev"), "run", "--no-browser", f"--port={port}", f"--ServerApp.token={TOKEN}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    base = f"http://127.0.0.1:{port}"
    try:
        yield process, session, base, notebooks, backend_port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_dev_run_serves_the_flow_and_ctrl_c_stops_everything(product):
    process, session, base, notebooks, backend_port = product
    config = poll(
        lambda: (r := session.get(f"{base}/manatee/config")).ok and r.json(), 60, "JupyterLab"
    )
    assert config["configured"] and config["reachable"] and config["creator"] == "tester"
    assert session.get(f"{base}/lab").ok

    submitted = session.post(
        f"{base}/manatee/jobs",
        json={"path": "getting-started.ipynb", "filename": "getting-started.ipynb"},
    ).json()
    assert submitted["code"] == 0, submitted

    def finished():
        jobs = session.get(f"{base}/manatee/jobs").json()["jobs"]
        job = next(j for j in jobs if j["uuid"] == submitted["uuid"])
        return job if job["job_status"] not in (0, 1, 3, 4) else None

    job = poll(finished, 90, "the job to end")
    assert job["job_status"] == 5, job
    saved = session.post(f"{base}/manatee/output", json={"id": job["id"]}).json()
    output = (notebooks / saved["filename"]).read_bytes()
    assert b"This is stage 2" in output
    assert saved["attestation"]["verdict"] == "local run, no hardware TEE", saved
    attestation = session.get(f"{base}/manatee/attestation", params={"id": job["id"]}).json()
    assert attestation["claims"]["eat_nonce"] == hashlib.md5(output).hexdigest()
    assert attestation["verification"]["verdict"] == "local run, no hardware TEE"

    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=30) is not None
    for port in (backend_port, int(base.rsplit(":", 1)[1])):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
