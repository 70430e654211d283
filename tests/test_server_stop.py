"""A real `jupyter server` with the extension closes its API connections when it stops:
nothing on stderr about an unclosed session, connector or socket."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import CREATOR, USER_TOKEN
from tests.support import free_port, wait_until

JUPYTER_TOKEN = "stop-test-token"
LEAKS = ("Unclosed", "ResourceWarning", "unclosed")
#: `jupyter server`, then the process stays until its stdin closes: the test looks at what
#: it still holds once the server has stopped (at exit, the OS would close it all anyway).
#: The wait tolerates a non-blocking stdin: O_NONBLOCK belongs to the pipe's open file,
#: shared by every process that inherited it, and a child the server started may set it
#: (seen once in CI: a plain ``sys.stdin.read()`` then failed with "can't concat NoneType
#: to bytes" after a clean stop).
RUN_THEN_WAIT = """
import os, select, sys
from jupyter_server.serverapp import ServerApp
ServerApp.launch_instance()
print('server stopped', file=sys.stderr, flush=True)
while True:
    select.select([0], [], [])
    try:
        if not os.read(0, 4096):
            break
    except BlockingIOError:
        pass
"""


def connections_to(pid: int, port: int) -> int:
    """The process's established TCP connections to 127.0.0.1:``port`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if inode in inodes and state == "01" and remote == f"0100007F:{port:04X}":
            count += 1
    return count


def start_server(tmp_path: Path, api_url: str) -> tuple[subprocess.Popen, str, Path]:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyterlab_manatee": True}}})
    )
    root = tmp_path / "root"
    root.mkdir()
    port = free_port()
    stderr = tmp_path / "jupyter.stderr"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                # every ResourceWarning shown, as at the end of a test run
                "-W",
                "always::ResourceWarning",
                "-c",
                RUN_THEN_WAIT,
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.token={JUPYTER_TOKEN}",
                f"--ServerApp.root_dir={root}",
                f"--ManateeConfig.api_url={api_url}",
                f"--ManateeConfig.creator={CREATOR}",
                f"--ManateeConfig.user_token={USER_TOKEN}",
                f"--ManateeConfig.state_dir={tmp_path / 'state'}",
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return process, f"http://127.0.0.1:{port}", stderr


@pytest.mark.parametrize("how", ["shutdown-api", "sigterm"])
def test_the_api_connections_are_closed_when_the_server_stops(tmp_path, backend, how):
    process, base, stderr = start_server(tmp_path, backend.url)
    api_port = int(backend.url.rsplit(":", 1)[1])
    headers = {"Authorization": f"token {JUPYTER_TOKEN}"}
    try:
        wait_until(lambda: requests.get(f"{base}/api/status", headers=headers).ok, 60, "jupyter")
        # JSON calls through the pool: its session and a kept-alive connection exist now
        for _ in range(2):
            listed = requests.get(f"{base}/manatee/jobs", headers=headers, timeout=30)
            assert listed.status_code == 200, listed.text
        assert connections_to(process.pid, api_port) == 1
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            requests.post(f"{base}/api/shutdown", headers=headers, timeout=30)
        wait_until(lambda: "server stopped" in stderr.read_text(), 60, "the server to stop")
        assert connections_to(process.pid, api_port) == 0
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=60) == 0, stderr.read_text()[-4000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = stderr.read_text()
    assert "jupyterlab_manatee: stopped; API connections closed" in log, log[-3000:]
    assert not any(leak in log for leak in LEAKS), log[-3000:]
