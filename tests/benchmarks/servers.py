"""The processes a benchmark measures: the local backend, a Jupyter server with the
extension, and a GCS emulator, each a subprocess on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
CREATOR = "bench"
API_AUTHORIZATION = "bench-token"
START_TIMEOUT = 60.0


def free_port() -> int:
    """A port nobody listens on right now (the servers are told it explicitly)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: this repository importable first."""
    env = dict(os.environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + existing if existing else "")
    env.update(extra or {})
    return env


@dataclass
class Child:
    """One started subprocess, its log file, and how to reach it."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; only this child's own process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _spawn(name: str, command: list[str], log_path: Path, env: dict[str, str]) -> Child:
    log = open(log_path, "ab")
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Child(name=name, process=process, url="", log_path=log_path, _log=log)


def _wait_until(child: Child, ready, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {child.process.returncode}:\n{child.log_tail()}"
            )
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if time.monotonic() > deadline:
            child.stop()
            raise RuntimeError(f"{what} did not start in {START_TIMEOUT:g} s:\n{child.log_tail()}")
        time.sleep(0.1)


def _get_json(url: str, headers: dict[str, str] | None = None) -> object:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def start_backend(data_dir: Path, logs: Path, *, max_archive_size: int = 64 << 30) -> Child:
    """``manatee-local`` as a subprocess (its own CPU, as in a deployment)."""
    port = free_port()
    child = _spawn(
        "manatee-local",
        [
            sys.executable,
            "-m",
            "jupyterlab_manatee.local_backend.cli",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--max-archive-size",
            str(max_archive_size),
            "--max-running",
            "1",
            "--job-timeout",
            "300",
            "--log-level",
            "WARNING",
            "--token",
            API_AUTHORIZATION,
            "--reconcile-interval",
            "0",
        ],
        logs / "backend.log",
        child_env(),
    )
    child.url = f"http://127.0.0.1:{port}"
    _wait_until(child, lambda: _get_json(child.url + "/health") == {"message": "pong"}, "backend")
    return child


def start_jupyter(root_dir: Path, backend_url: str, work: Path, logs: Path, token: str) -> Child:
    """``jupyter server`` with the extension, talking to ``backend_url`` as ``bench``."""
    config_dir = work / "jupyter-config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyterlab_manatee": True}}})
    )
    temp_dir = work / "extension-temp"
    temp_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = child_env(
        {
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(work / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
        }
    )
    child = _spawn(
        "jupyter server",
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root_dir}",
            f"--ManateeConfig.api_url={backend_url}",
            f"--ManateeConfig.creator={CREATOR}",
            f"--ManateeConfig.user_token={API_AUTHORIZATION}",
            f"--ManateeConfig.max_workspace_size={1 << 40}",
            f"--ManateeConfig.temp_dir={temp_dir}",
            f"--ManateeConfig.state_dir={work / 'extension-state'}",
            f"--ManateeConfig.local_issuers={backend_url}",
            # the benchmarks measure uploads back to back, not the queue's wait
            "--ManateeConfig.queue_submissions=False",
            "--ManateeConfig.project_id=manatee-local",
            "--ManateeConfig.tee_service_accounts=manatee-local-tee@manatee-local.iam.gserviceaccount.com",
            "--ManateeConfig.image_repository=localhost/manatee-local",
            "--ManateeConfig.upload_timeout=7200",
            "--ManateeConfig.request_timeout=120",
        ],
        logs / "jupyter.log",
        env,
    )
    child.url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    _wait_until(
        child,
        lambda: isinstance(_get_json(child.url + "/manatee/config", headers), dict),
        "jupyter server",
    )
    return child


EMULATOR_SCRIPT = """
import signal, sys, threading
from gcp_storage_emulator.server import create_server
server = create_server("127.0.0.1", int(sys.argv[1]), in_memory=True)
server.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
server.stop()
"""


def start_emulator(logs: Path) -> Child:
    """gcp-storage-emulator in memory, in its own process (its CPU is not ours)."""
    port = free_port()
    child = _spawn(
        "gcs emulator",
        [sys.executable, "-c", EMULATOR_SCRIPT, str(port)],
        logs / "emulator.log",
        child_env(),
    )
    child.url = f"http://127.0.0.1:{port}"
    _wait_until(child, lambda: "ready" in child.log_path.read_text(), "gcs emulator")
    return child
