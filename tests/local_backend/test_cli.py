"""``manatee-local`` starts, logs its URL, answers, and stops cleanly on a signal."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from google.auth import jwt
from lb_support import TERMINAL, Api, notebook_bytes, workspace_archive

import jupyterlab_manatee.local_backend as local_backend

PACKAGE_PARENT = Path(local_backend.__path__[0]).resolve().parents[1]


def start_cli(*args: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """Run the console command's module; its log lines arrive on a queue."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab_manatee.local_backend.cli", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_for_line(lines: queue.Queue[str], pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r} in {seen}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_logs_its_url_answers_health_and_stops_on_a_signal(tmp_path, signum):
    proc, lines = start_cli("--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"))
    try:
        url = wait_for_line(lines, r"ready at (http://127\.0\.0\.1:\d+)").group(1)
        assert requests.get(f"{url}/health", timeout=10).json() == {"message": "pong"}
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
        wait_for_line(lines, "stopped")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_cli_refuses_a_data_directory_in_use(tmp_path):
    first, first_lines = start_cli("--port", "0", "--data-dir", str(tmp_path / "d"))
    try:
        wait_for_line(first_lines, "ready at")
        second, second_lines = start_cli("--port", "0", "--data-dir", str(tmp_path / "d"))
        assert second.wait(timeout=30) == 1
        wait_for_line(second_lines, "in use")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def test_the_cli_deployment_flags_name_the_deployment_in_a_real_runs_token(tmp_path):
    proc, lines = start_cli(
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "d"),
        "--project-id",
        "acme-dcr",
        "--service-account",
        "dcr-prod-cvm-sa@acme-dcr.iam.gserviceaccount.com",
        "--image-registry",
        "europe-docker.pkg.dev/acme-dcr/jobs/",
        "--zone",
        "europe-west4-a",
    )
    try:
        api = Api(wait_for_line(lines, r"ready at (http://127\.0\.0\.1:\d+)").group(1))
        archive = workspace_archive({"nb.ipynb": notebook_bytes("print(1)")})
        job = api.wait(api.submit_ok(archive), TERMINAL, timeout=90)
        assert job["job_status"] == 5, job
        signed_url = api.attestation(job["id"])["signed_url"]
        claims = jwt.decode(requests.get(signed_url, timeout=10).text, verify=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    name = f"alice-{job['uuid']}"
    digest = hashlib.sha256(archive).hexdigest()
    assert claims["sub"] == (
        "https://www.googleapis.com/compute/v1/projects/acme-dcr/zones/europe-west4-a/"
        f"instances/{name}"
    )
    assert claims["google_service_accounts"] == ["dcr-prod-cvm-sa@acme-dcr.iam.gserviceaccount.com"]
    assert claims["submods"]["container"]["image_reference"] == (
        f"europe-docker.pkg.dev/acme-dcr/jobs/{name}@sha256:{digest}"
    )
    gce = claims["submods"]["gce"]
    assert (gce["project_id"], gce["project_number"], gce["zone"]) == (
        "acme-dcr",
        "291159555286",
        "europe-west4-a",
    )


def test_the_cli_refuses_a_project_number_that_is_not_digits(tmp_path):
    proc, lines = start_cli(
        "--port", "0", "--data-dir", str(tmp_path / "d"), "--project-number", "12ab"
    )
    assert proc.wait(timeout=30) == 1
    wait_for_line(lines, "project number must be decimal digits")
