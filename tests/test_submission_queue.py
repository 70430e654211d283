"""The submission queue, against the faithful local backend: a creator's workspace is never
sent while an earlier job of theirs is in status 0 or 1, because the real API keeps one
workspace object per creator and reads it only when the job's build starts
(manatee-api.md, section 5.1); manatee-local does the same.

The backend's builds are held (`LocalBackend.hold_builds`) while the test submits, and
released when the test says: what a build reads never depends on timing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests

from jupyterlab_manatee.config import ManateeConfig
from jupyterlab_manatee.manager import ManateeManager
from tests.conftest import CREATOR, USER_TOKEN, call, wait_for_job, write_notebook

NOT_AT_THE_TOP = (
    "the executor failed, no output: the notebook 'first.ipynb' is not at the top of the "
    "workspace archive (it must sit directly in the archive's top-level folder)"
)


@pytest.fixture
def manatee_config(manatee_config):
    return {**manatee_config, "queue_poll_interval": 0.05}


@pytest.fixture
def held(backend):
    """The local backend with its builds held; released at the end whatever happens."""
    backend.hold_builds()
    yield backend
    backend.release_builds()


@pytest.fixture
def two_notebooks(jp_root_dir) -> tuple[str, str]:
    write_notebook(jp_root_dir / "a" / "first.ipynb", "print('A')")
    (jp_root_dir / "a" / "a.csv").write_text("a\n")
    write_notebook(jp_root_dir / "b" / "second.ipynb", "print('B')")
    (jp_root_dir / "b" / "b.csv").write_text("b\n")
    return "a/first.ipynb", "b/second.ipynb"


async def submit(jp_fetch, path: str) -> tuple[int, dict[str, Any]]:
    return await call(jp_fetch, "jobs", method="POST", body={"path": path})


def backend_jobs(backend) -> list[dict[str, Any]]:
    """The creator's jobs as the API lists them (oldest first)."""
    body = {"page": 1, "page_size": 100, "creator": CREATOR}
    headers = {"Authorization": USER_TOKEN}
    reply = requests.post(f"{backend.url}/v1/job/query/", json=body, headers=headers, timeout=10)
    return reply.json()["jobs"]


async def eventually(check, what: str, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


def printed(backend, job: dict[str, Any]) -> str:
    """What the job's executed notebook printed (read from the backend's storage)."""
    name = job["jupyter_file_name"]
    path = backend.data_dir / "outputs" / job["uuid"] / f"out-{job['uuid']}-{name}"
    nb = nbformat.read(path, as_version=4)
    return "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))


def ended(jobs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``jobs`` once every one of them has reached a terminal status."""
    return jobs if all(j["job_status"] in (2, 5, 6, 7, 8, 9) for j in jobs) else None


def queue_folder(manatee_config) -> Path:
    return Path(manatee_config["state_dir"]) / "queue"


async def test_two_quick_submissions_each_run_their_own_notebook(jp_fetch, held, two_notebooks):
    first, second = two_notebooks
    code, a = await submit(jp_fetch, first)
    assert (code, a["msg"]) == (200, "Success")
    code, b = await submit(jp_fetch, second)
    assert (code, b["msg"], b["queued"], b["waits_for"]["id"]) == (200, "Queued", True, 1)
    assert [job["id"] for job in backend_jobs(held)] == [1]  # B is held back

    held.release_builds()
    one = await wait_for_job(jp_fetch, a["uuid"], {2, 5, 6, 7, 8, 9})
    (_, sent) = await eventually(lambda: len(jobs := backend_jobs(held)) == 2 and jobs, "B sent")
    two = await wait_for_job(jp_fetch, sent["uuid"], {2, 5, 6, 7, 8, 9})
    assert (one["job_status"], printed(held, one)) == (5, "A\n")
    assert (two["job_status"], printed(held, two)) == (5, "B\n")


class TestWithTheQueueOff:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "queue_submissions": False}

    async def test_the_second_submission_overwrites_the_first_jobs_workspace(
        self, jp_fetch, held, two_notebooks
    ):
        """What the queue prevents: job 1's build reads job 2's files."""
        first, second = two_notebooks
        _, a = await submit(jp_fetch, first)
        _, b = await submit(jp_fetch, second)
        assert (a["msg"], b["msg"]) == ("Success", "Success")
        held.release_builds()
        one = await wait_for_job(jp_fetch, a["uuid"], {2, 5, 6, 7, 8, 9})
        two = await wait_for_job(jp_fetch, b["uuid"], {2, 5, 6, 7, 8, 9})
        # as upstream: the build succeeds, the executor finds no notebook, the VM stops
        assert (one["job_status"], one["status_reason"]) == (5, NOT_AT_THE_TOP)
        assert (two["job_status"], printed(held, two)) == (5, "B\n")


async def test_the_job_list_shows_the_queued_submission_and_then_its_job(
    jp_fetch, jp_serverapp, held, two_notebooks
):
    first, second = two_notebooks
    _, a = await submit(jp_fetch, first)
    _, b = await submit(jp_fetch, second)
    _, listed = await call(jp_fetch, "jobs")
    (queued,) = listed["queued"]
    assert (queued["id"], queued["state"], queued["notebook"]) == (
        b["queue_id"],
        "queued",
        "second.ipynb",
    )
    assert queued["waits_for"] == {"id": 1, "uuid": a["uuid"]}
    held.release_builds()
    (_, job_two) = await eventually(lambda: len(jobs := backend_jobs(held)) == 2 and jobs, "B")
    # the API has the job before the sender has its reply: wait for the sender to note it
    queue = jp_serverapp.web_app.settings["manatee_manager"].queue
    await eventually(lambda: queue.entries(CREATOR)[0].state != "sending", "B's reply")
    _, listed = await call(jp_fetch, "jobs")
    (sent,) = listed["queued"]
    assert (sent["state"], sent["uuid"]) == ("sent", job_two["uuid"])
    assert [j["id"] for j in listed["jobs"]] == [2, 1]


async def test_cancel_removes_the_submission_and_its_archive(
    jp_fetch, jp_serverapp, held, two_notebooks, manatee_config
):
    first, second = two_notebooks
    _, a = await submit(jp_fetch, first)
    _, b = await submit(jp_fetch, second)
    folder = queue_folder(manatee_config)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{b['queue_id']}.json",
        f"{b['queue_id']}.tar.gz",
    ]
    code, reply = await call(jp_fetch, "queue", b["queue_id"], method="DELETE")
    assert (code, reply["queue_id"]) == (200, b["queue_id"])
    assert list(folder.iterdir()) == []
    manager = jp_serverapp.web_app.settings["manatee_manager"]
    assert manager.queue.pending(CREATOR) == []  # nothing left that could be sent
    held.release_builds()
    one = await wait_for_job(jp_fetch, a["uuid"], {2, 5, 6, 7, 8, 9})
    assert (one["job_status"], printed(held, one)) == (5, "A\n")


async def test_cancelling_an_unknown_submission_is_404(jp_fetch):
    code, reply = await call(jp_fetch, "queue", "0123456789ab", method="DELETE")
    assert code == 404 and "0123456789ab" in reply["message"]


async def test_the_job_limit_counts_queued_submissions(jp_fetch, held, two_notebooks):
    first, second = two_notebooks
    await submit(jp_fetch, first)
    await submit(jp_fetch, second)
    await submit(jp_fetch, second)
    code, reply = await submit(jp_fetch, first)
    assert code == 409
    assert reply["message"] == (
        "1 of your jobs are in progress and 2 queued, the limit is 3: wait for one to "
        "finish, or cancel a queued one, then submit again."
    )


async def test_a_queued_submission_survives_a_restart_and_is_sent(
    jp_fetch, jp_serverapp, held, two_notebooks, manatee_config
):
    first, second = two_notebooks
    await submit(jp_fetch, first)
    _, b = await submit(jp_fetch, second)
    old = jp_serverapp.web_app.settings["manatee_manager"]
    await old.close()  # the server stops: the sender with it

    config = ManateeConfig(**{k: v for k, v in manatee_config.items()})
    restarted = ManateeManager(config, jp_serverapp.root_dir, jp_serverapp.log)
    try:
        assert [e.id for e in restarted.queue.pending(CREATOR)] == [b["queue_id"]]
        restarted.start_queue()
        held.release_builds()
        await eventually(lambda: len(backend_jobs(held)) == 2, "B to be sent")
        done = await eventually(lambda: ended(backend_jobs(held)), "both jobs to end")
        assert [(j["job_status"], printed(held, j)) for j in done] == [(5, "A\n"), (5, "B\n")]
        assert not (queue_folder(manatee_config) / f"{b['queue_id']}.tar.gz").exists()
    finally:
        await restarted.close()
