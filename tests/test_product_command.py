"""The README's first command, `./dev run`, brings up the local backend and JupyterLab
with the extension talking to it; a submitted notebook comes back with its proof; Ctrl-C
stops both."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
import requests

from tests.support import free_port, run_product, wait_until

LOCAL_RUN = "local run, no hardware TEE"


def test_dev_run_serves_the_flow_and_ctrl_c_stops_everything(tmp_path):
    with run_product(tmp_path) as product:
        session, base = product.session, product.base
        config = session.get(f"{base}/manatee/config").json()
        assert config["configured"] and config["reachable"] and config["creator"] == "tester"
        assert session.get(f"{base}/lab").ok

        submitted = session.post(
            f"{base}/manatee/jobs",
            json={"path": "getting-started.ipynb", "filename": "getting-started.ipynb"},
        ).json()
        assert submitted["code"] == 0, submitted
        job = product.wait_for_job(submitted["uuid"], 90)
        assert job["job_status"] == 5, job

        saved = session.post(f"{base}/manatee/output", json={"id": job["id"]}).json()
        output = (product.notebooks / saved["filename"]).read_bytes()
        assert b"This is stage 2" in output
        assert saved["attestation"]["verdict"] == LOCAL_RUN, saved
        attestation = session.get(f"{base}/manatee/attestation", params={"id": job["id"]}).json()
        assert attestation["claims"]["eat_nonce"] == hashlib.md5(output).hexdigest()
        assert attestation["verification"]["verdict"] == LOCAL_RUN

        os.killpg(product.process.pid, signal.SIGINT)
        assert product.process.wait(timeout=30) is not None
        for port in (product.backend_port, int(base.rsplit(":", 1)[1])):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def refuses_connections(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def pid_alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that never reaps it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_shut_down_stops_the_backend_and_a_restart_still_verifies_earlier_outputs(tmp_path):
    with run_product(tmp_path) as product:
        session, base = product.session, product.base
        submitted = session.post(
            f"{base}/manatee/jobs",
            json={"path": "getting-started.ipynb", "filename": "getting-started.ipynb"},
        ).json()
        job = product.wait_for_job(submitted["uuid"], 90)
        saved = session.post(f"{base}/manatee/output", json={"id": job["id"]}).json()
        assert saved["attestation"]["verdict"] == LOCAL_RUN, saved
        backend_pid = int((tmp_path / "backend" / "dev-run.pid").read_text())
        first_port = product.backend_port

        session.post(f"{base}/api/shutdown")  # JupyterLab's File > Shut Down

        assert product.process.wait(timeout=60) == 0
        wait_until(lambda: not pid_alive(backend_pid), 30, "the backend to stop")
        assert refuses_connections(first_port)
        assert not (tmp_path / "backend" / "dev-run.pid").exists()

    # another port (the old one may be taken): the backend gets another URL, another issuer
    with run_product(tmp_path, backend_port=free_port()) as product:
        assert product.backend_port != first_port
        reply = product.session.post(
            f"{product.base}/manatee/attestation/verify", json={"path": saved["filename"]}
        ).json()
        assert reply["verification"]["verdict"] == LOCAL_RUN, reply["verification"]
        issuers = (tmp_path / "backend" / "issuers").read_text().split()
        assert issuers == [
            f"http://127.0.0.1:{first_port}",
            f"http://127.0.0.1:{product.backend_port}",
        ]


def test_sigterm_to_dev_run_stops_jupyterlab_and_the_backend(tmp_path):
    with run_product(tmp_path) as product:
        backend_pid = int((tmp_path / "backend" / "dev-run.pid").read_text())

        product.process.send_signal(signal.SIGTERM)  # the script alone, not its group

        assert product.process.wait(timeout=60) == 143
        wait_until(lambda: not pid_alive(backend_pid), 30, "the backend to stop")
        for port in (product.backend_port, int(product.base.rsplit(":", 1)[1])):
            wait_until(lambda port=port: refuses_connections(port), 30, f"port {port} to close")


def test_a_backend_left_by_a_killed_dev_run_is_stopped_by_the_next_one(tmp_path):
    with run_product(tmp_path) as product:
        leftover = int((tmp_path / "backend" / "dev-run.pid").read_text())
        os.kill(product.process.pid, signal.SIGKILL)  # no trap runs: the backend stays
        product.process.wait()
        assert pid_alive(leftover)

        with run_product(tmp_path) as again:
            config = again.session.get(f"{again.base}/manatee/config").json()
            assert config["reachable"], config
            assert not pid_alive(leftover)
            log = (tmp_path / "dev-run.log").read_text()
            assert f"Stopping the local backend (pid {leftover}) an earlier ./dev run left" in log
