"""The README's product command on the tutorials: JupyterLab's folder holds the stage-1
file only, and a submitted regression notebook finishes in stage 2 on the real table that
`./dev run` gave the local backend."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
TOKEN = "tutorials-product-test"


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
def lab(tmp_path):
    notebooks = tmp_path / "tutorials"
    shutil.copytree(REPO / "tutorials", notebooks)
    port = free_port()
    env = {
        **os.environ,
        "MANATEE_VENV": sys.prefix,
        "MANATEE_SKIP_INSTALL": "1",
        "MANATEE_NOTEBOOK_DIR": str(notebooks),
        "MANATEE_LOCAL_DATA": str(tmp_path / "backend"),
        "MANATEE_LOCAL_PORT": str(free_port()),
        "MANATEE_CREATOR": "tutorial",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    env.pop("MANATEE_LOCAL_STAGE2", None)  # the default: the repository's stage-2 folder
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
        poll(lambda: session.get(f"{base}/manatee/config").ok, 60, "JupyterLab")
        yield session, base, notebooks
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_dev_run_serves_the_tutorials_with_the_stage1_file_only_and_runs_stage2_on_real_data(lab):
    session, base, notebooks = lab
    listing = session.get(f"{base}/api/contents/data").json()
    names = sorted(item["name"] for item in listing["content"])
    assert "insurance.csv.s1" in names
    assert not [name for name in names if name.endswith(".s2")]
    for name in ("insurance.ipynb", "regression.ipynb"):
        assert session.get(f"{base}/api/contents/{name}").ok

    submitted = session.post(
        f"{base}/manatee/jobs", json={"path": "regression.ipynb", "filename": "regression.ipynb"}
    ).json()
    assert submitted["code"] == 0, submitted

    def ended():
        jobs = session.get(f"{base}/manatee/jobs").json()["jobs"]
        job = next(j for j in jobs if j["uuid"] == submitted["uuid"])
        return job if job["job_status"] not in (0, 1, 3, 4) else None

    job = poll(ended, 180, "the regression job to end")
    assert job["job_status"] == 5, job
    saved = session.post(f"{base}/manatee/output", json={"id": job["id"]}).json()
    executed = nbformat.read(notebooks / saved["filename"], as_version=4)
    printed = "".join(
        out.get("text", "") for cell in executed.cells for out in cell.get("outputs", [])
    )
    assert "Stage 2: read data/insurance.csv.s2, 1338 rows" in printed
    match = re.search(r"^R\^2: (\d\.\d+)$", printed, re.MULTILINE)
    assert match and float(match.group(1)) >= 0.75, printed
