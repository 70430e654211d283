"""`./dev run`'s first start: while it makes the stage-2 environment, JupyterLab says the
local backend is being set up, with the seconds left, rather than "not reachable"; once
the backend answers, that is gone and the setup's duration is kept for the next estimate.

The stage-2 package list given here (MANATEE_STAGE2_PACKAGES) reads a named pipe, so the
environment's making waits for the test, with no download."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import requests

from tests.support import REPO, free_port, wait_until


def test_dev_run_says_the_backend_is_being_set_up_until_it_answers(tmp_path):
    gate = tmp_path / "gate.txt"
    os.mkfifo(gate)
    packages = tmp_path / "packages.txt"
    packages.write_text(f"-r {gate}\n")
    stage2 = tmp_path / "stage2"
    data = tmp_path / "backend"
    notebooks = tmp_path / "tutorials"
    shutil.copytree(REPO / "tutorials", notebooks)
    port, token = free_port(), "product-test-token"
    env = {
        **os.environ,
        "MANATEE_VENV": sys.prefix,
        "MANATEE_SKIP_INSTALL": "1",
        "MANATEE_NOTEBOOK_DIR": str(notebooks),
        "MANATEE_LOCAL_DATA": str(data),
        "MANATEE_LOCAL_PORT": str(free_port()),
        "MANATEE_CREATOR": "tester",
        "MANATEE_STAGE2_VENV": str(stage2),
        "MANATEE_STAGE2_PACKAGES": str(packages),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    env.pop("MANATEE_STAGE2_PYTHON", None)  # made by ./dev run, as on a first start
    with (tmp_path / "dev-run.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(REPO / "dev"),
                "run",
                "--no-browser",
                f"--port={port}",
                f"--ServerApp.token={token}",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    config_url = f"http://127.0.0.1:{port}/manatee/config"
    try:
        config = wait_until(lambda: session.get(config_url).json(), 90, "JupyterLab")

        assert config["reachable"] is False
        left = config["setting_up"]["seconds_left"]
        assert 0 < left <= config["setting_up"]["expected_seconds"]
        assert (
            config["problem"] == f"The local ManaTEE backend is being set up: about {left} s left"
        )
        assert (data / "setup.json").is_file()

        # the environment exists and its install waits at the gate: let it see this
        # Python's packages (ipykernel, nbclient: what jobs need) and finish
        site = Path(sysconfig.get_path("purelib", vars={"base": str(stage2)}))
        wait_until(site.is_dir, 60, "the stage-2 venv")
        (site / "product.pth").write_text(sysconfig.get_path("purelib") + "\n")
        with gate.open("w") as opened:
            opened.write("\n")

        config = wait_until(
            lambda: (c := session.get(config_url).json())["reachable"] and c, 120, "the backend"
        )
        assert config["setting_up"] is None
        assert config["problem"] is None
        # removed once ./dev run's own check sees the backend answer (a moment later)
        wait_until(lambda: not (data / "setup.json").exists(), 30, "setup.json to go")
        assert (data / "stage2-setup-seconds").read_text().strip().isdigit()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
