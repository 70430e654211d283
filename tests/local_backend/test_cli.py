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
from socket import socket

import pytest
import requests
from google.auth import jwt
from lb_support import TERMINAL, TOKEN, Api, notebook_bytes, workspace_archive

import jupyterlab_manatee.local_backend as local_backend

PACKAGE_PARENT = Path(local_backend.__path__[0]).resolve().parents[1]


def start_cli(
    *args: str, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """Run the console command's module; its log lines arrive on a queue."""
    env = dict(os.environ)
    env.pop("MANATEE_LOCAL_TOKEN", None)
    env.update(env_extra or {})
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
        "--token",
        TOKEN,
        "--reconcile-interval",
        "0",
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


# -- the API token and the bind warning --------------------------------------------------
def free_port() -> int:
    with socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query_with(url: str, token: str | None) -> dict:
    headers = {} if token is None else {"Authorization": token}
    body = {"page": 1, "page_size": 10, "creator": "alice"}
    return requests.post(f"{url}/v1/job/query/", json=body, headers=headers, timeout=10).json()


def served(*args: str, env_extra: dict[str, str] | None = None):
    """Start the CLI on a free port; (process, URL)."""
    proc, lines = start_cli("--port", "0", *args, env_extra=env_extra)
    url = wait_for_line(lines, r"ready at (http://127\.0\.0\.1:\d+)").group(1)
    return proc, url


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_the_first_start_makes_a_token_file_readable_only_by_its_owner(tmp_path):
    proc, url = served("--data-dir", str(tmp_path / "d"))
    try:
        token_file = tmp_path / "d" / "api-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text()
        assert len(token) == 43  # 32 random bytes, URL-safe base64
        assert query_with(url, token) == {"code": 0, "msg": "Success", "jobs": [], "total": 0}
    finally:
        stop(proc)


def test_a_restart_keeps_the_token_of_the_first_start(tmp_path):
    proc, _ = served("--data-dir", str(tmp_path / "d"))
    stop(proc)
    first = (tmp_path / "d" / "api-token").read_text()
    proc, url = served("--data-dir", str(tmp_path / "d"))
    try:
        assert query_with(url, first)["code"] == 0
    finally:
        stop(proc)


def test_the_token_flag_sets_the_token_and_writes_it_to_the_token_file(tmp_path):
    proc, url = served("--data-dir", str(tmp_path / "d"), "--token", "flag-token")
    try:
        assert query_with(url, "flag-token")["code"] == 0
        assert query_with(url, "other")["code"] == 10001
        assert (tmp_path / "d" / "api-token").read_text() == "flag-token"
    finally:
        stop(proc)


def test_the_token_environment_variable_sets_the_token(tmp_path):
    env = {"MANATEE_LOCAL_TOKEN": "env-token"}
    proc, url = served("--data-dir", str(tmp_path / "d"), env_extra=env)
    try:
        assert query_with(url, "env-token")["code"] == 0
        assert query_with(url, None)["code"] == 10001
    finally:
        stop(proc)


def test_a_wildcard_bind_warns_naming_the_addresses_it_is_reachable_at(tmp_path):
    port = free_port()
    proc, lines = start_cli("--host", "0.0.0.0", "--port", str(port), "--data-dir", str(tmp_path))
    try:
        warning = wait_for_line(lines, r"WARNING .*listens beyond this machine, on (.+?): anyone")
        addresses = warning.group(1).split(", ")
        assert f"127.0.0.1:{port}" in addresses
        assert "0.0.0.0" not in warning.group(1)
        wait_for_line(lines, "ready at")
    finally:
        stop(proc)


def test_a_loopback_bind_gives_no_warning(tmp_path):
    proc, lines = start_cli("--port", "0", "--data-dir", str(tmp_path))
    try:
        seen = [wait_for_line(lines, "ready at").string]
        while not lines.empty():
            seen.append(lines.get())
        assert not [line for line in seen if "listens beyond" in line]
    finally:
        stop(proc)


def test_the_help_documents_the_access_and_reconciler_flags():
    text = subprocess.run(
        [sys.executable, "-m", "jupyterlab_manatee.local_backend.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT), "COLUMNS": "200"},
    ).stdout
    for flag in ("--token", "--allowed-host", "--reconcile-interval", "--max-expansion-ratio"):
        assert flag in text
    assert "MANATEE_LOCAL_TOKEN" in text
