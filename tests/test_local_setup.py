"""While ./dev run sets the local backend up (the first start makes the stage-2
environment), GET manatee/config says so, with the seconds left, instead of "not
reachable"; without its file (or with one a killed ./dev run left) the usual problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyterlab_manatee.common.local_setup import setup_under_way
from tests.conftest import call
from tests.support import free_port


@pytest.fixture
def api_url() -> str:
    """An API that does not answer yet (nothing listens on the port)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def setup_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backend") / "setup.json"


@pytest.fixture
def manatee_config(manatee_config, setup_file):
    return {**manatee_config, "local_setup_file": str(setup_file)}


def write_setup(path: Path, started_ago: float, expected: float, pid: int) -> None:
    path.write_text(
        json.dumps(
            {"started_at": time.time() - started_ago, "expected_seconds": expected, "pid": pid}
        )
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def test_config_says_the_backend_is_being_set_up_with_the_seconds_left(jp_fetch, setup_file):
    write_setup(setup_file, started_ago=100, expected=400, pid=os.getpid())

    code, reply = await call(jp_fetch, "config")

    assert code == 200
    assert reply["reachable"] is False
    left = reply["setting_up"]["seconds_left"]
    assert 295 <= left <= 300  # the request itself takes a moment
    assert reply["problem"] == f"The local ManaTEE backend is being set up: about {left} s left"


async def test_without_the_file_the_api_is_not_reachable_as_usual(jp_fetch, setup_file):
    code, reply = await call(jp_fetch, "config")

    assert code == 200
    assert reply["reachable"] is False
    assert reply["setting_up"] is None
    assert reply["problem"].startswith("Cannot reach http://127.0.0.1:")


async def test_a_file_left_by_a_dev_run_that_no_longer_runs_is_ignored(jp_fetch, setup_file):
    write_setup(setup_file, started_ago=10, expected=400, pid=dead_pid())

    _, reply = await call(jp_fetch, "config")

    assert reply["setting_up"] is None
    assert "being set up" not in reply["problem"]


def test_a_setup_past_its_expected_time_says_it_takes_longer(tmp_path):
    from jupyterlab_manatee.common.local_setup import describe

    path = tmp_path / "setup.json"
    write_setup(path, started_ago=0, expected=200, pid=os.getpid())
    setting_up = setup_under_way(str(path), now=time.time() + 250)

    assert setting_up == {"seconds_left": 0, "expected_seconds": 200, "elapsed_seconds": 250}
    assert describe(setting_up) == (
        "The local ManaTEE backend is being set up: it takes longer than the 200 s expected "
        "(250 s so far)"
    )


@pytest.mark.parametrize("text", ["", "not json", "[1]", '{"started_at": "soon"}'])
def test_a_file_that_is_not_dev_runs_is_ignored(tmp_path, text):
    path = tmp_path / "setup.json"
    path.write_text(text)
    assert setup_under_way(str(path)) is None
