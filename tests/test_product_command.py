"""The README's first command, `./dev run`, brings up the local backend and JupyterLab
with the extension talking to it; a submitted notebook comes back with its proof; Ctrl-C
stops both."""

from __future__ import annotations

import hashlib
import os
import signal

import pytest
import requests

from tests.support import run_product

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
