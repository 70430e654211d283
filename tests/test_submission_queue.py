"""The submission queue: a creator's workspace is never sent while an earlier job of theirs
is in status 0 or 1, because the real API keeps one workspace object per creator and reads
it only when the job's image build starts (manatee-api.md, section 5.1).

The API here is a stand-in that speaks the contract and does what the real one does with
workspaces: submit overwrites ``<creator>/<creator>-workspace.tar.gz``; the build, started
by the test, reads whatever that object holds then.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import threading
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from jupyterlab_manatee.config import ManateeConfig
from jupyterlab_manatee.manager import ManateeManager
from tests.attestation_support import ServedOnAThread, ThreadedServer
from tests.conftest import call, write_notebook


class _Api(web.RequestHandler):
    def initialize(self, api: OneWorkspaceApi) -> None:
        self.api = api

    def post(self, route: str) -> None:
        if route == "submit/":
            head = f"Content-Type: {self.request.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + self.request.body)
            form = {
                part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in message.iter_parts()
            }
            self.write(self.api.submit(form["creator"].decode(), form["file"]))
        elif route == "query/":
            body = json.loads(self.request.body)
            self.write(self.api.query(body["creator"], body["page"], body["page_size"]))
        else:
            self.write({"code": 10001, "msg": "not part of this stand-in"})


class OneWorkspaceApi(ServedOnAThread):
    """Jobs stay in status 0 until :meth:`build` reads the creator's one workspace object."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workspaces: dict[str, bytes] = {}
        self.jobs: list[dict[str, Any]] = []
        self.built: dict[int, list[str]] = {}
        self._server = ThreadedServer([(r"/v1/job/(.*)", _Api, {"api": self})])

    def submit(self, creator: str, archive: bytes) -> dict[str, Any]:
        with self.lock:
            self.workspaces[creator] = archive  # the real API's overwrite
            job_id = len(self.jobs) + 1
            job = {
                "id": job_id,
                "uuid": f"00000000-0000-4000-8000-{job_id:012d}",
                "creator": creator,
                "job_status": 0,
                "jupyter_file_name": "nb.ipynb",
                "created_at": "2026-12-05 10:00:00",
                "updated_at": "2026-12-05 10:00:00",
            }
            self.jobs.append(job)
            return {"code": 0, "msg": "Success", "uuid": job["uuid"]}

    def query(self, creator: str, page: int, page_size: int) -> dict[str, Any]:
        with self.lock:
            mine = [dict(j) for j in self.jobs if j["creator"] == creator]  # oldest first
        rows = mine[(page - 1) * page_size : page * page_size]
        return {"code": 0, "msg": "Success", "jobs": rows, "total": len(mine)}

    def build(self, job_id: int) -> list[str]:
        """Start job ``job_id``'s build: it reads the workspace object as it is now."""
        with self.lock:
            job = self.jobs[job_id - 1]
            archive = tarfile.open(fileobj=io.BytesIO(self.workspaces[job["creator"]]))
            with archive:
                self.built[job_id] = sorted(
                    m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()
                )
            job["job_status"] = 3
            return self.built[job_id]

    def status(self, job_id: int) -> int:
        with self.lock:
            return self.jobs[job_id - 1]["job_status"]


@pytest.fixture
def one_workspace_api():
    api = OneWorkspaceApi().start()
    yield api
    api.stop()


@pytest.fixture
def api_url(one_workspace_api) -> str:
    return one_workspace_api.url


@pytest.fixture
def manatee_config(manatee_config):
    return {**manatee_config, "queue_poll_interval": 0.05}


@pytest.fixture
def two_notebooks(jp_root_dir) -> tuple[str, str]:
    write_notebook(jp_root_dir / "a" / "first.ipynb", "print('A')")
    (jp_root_dir / "a" / "a.csv").write_text("a\n")
    write_notebook(jp_root_dir / "b" / "second.ipynb", "print('B')")
    (jp_root_dir / "b" / "b.csv").write_text("b\n")
    return "a/first.ipynb", "b/second.ipynb"


async def submit(jp_fetch, path: str) -> tuple[int, dict[str, Any]]:
    return await call(jp_fetch, "jobs", method="POST", body={"path": path})


async def eventually(check, what: str, timeout: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


def queue_folder(manatee_config) -> Path:
    return Path(manatee_config["state_dir"]) / "queue"


async def test_two_quick_submissions_each_build_their_own_notebook(
    jp_fetch, one_workspace_api, two_notebooks
):
    first, second = two_notebooks
    code, a = await submit(jp_fetch, first)
    assert (code, a["msg"]) == (200, "Success")
    code, b = await submit(jp_fetch, second)
    assert (code, b["msg"], b["queued"], b["waits_for"]["id"]) == (200, "Queued", True, 1)
    assert len(one_workspace_api.jobs) == 1  # B is held back while A's build has not read

    built = one_workspace_api.build(1)
    assert {"first.ipynb", "a.csv"} <= set(built) and "second.ipynb" not in built
    await eventually(lambda: len(one_workspace_api.jobs) == 2, "B to be sent")
    built = one_workspace_api.build(2)
    assert {"second.ipynb", "b.csv"} <= set(built) and "first.ipynb" not in built


class TestWithTheQueueOff:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "queue_submissions": False}

    async def test_the_second_submission_overwrites_the_first_jobs_workspace(
        self, jp_fetch, one_workspace_api, two_notebooks
    ):
        """What the queue prevents: job 1 builds job 2's notebook."""
        first, second = two_notebooks
        await submit(jp_fetch, first)
        await submit(jp_fetch, second)
        built = one_workspace_api.build(1)
        assert "second.ipynb" in built and "first.ipynb" not in built


async def test_the_job_list_shows_the_queued_submission_and_then_its_job(
    jp_fetch, one_workspace_api, two_notebooks
):
    first, second = two_notebooks
    await submit(jp_fetch, first)
    _, b = await submit(jp_fetch, second)
    _, listed = await call(jp_fetch, "jobs")
    (queued,) = listed["queued"]
    assert (queued["id"], queued["state"], queued["notebook"]) == (
        b["queue_id"],
        "queued",
        "second.ipynb",
    )
    assert queued["waits_for"] == {"id": 1, "uuid": "00000000-0000-4000-8000-000000000001"}
    one_workspace_api.build(1)
    await eventually(lambda: len(one_workspace_api.jobs) == 2, "B to be sent")
    _, listed = await call(jp_fetch, "jobs")
    (sent,) = listed["queued"]
    assert (sent["state"], sent["uuid"]) == ("sent", "00000000-0000-4000-8000-000000000002")
    assert [j["id"] for j in listed["jobs"]] == [2, 1]


async def test_cancel_removes_the_submission_and_its_archive(
    jp_fetch, one_workspace_api, two_notebooks, manatee_config
):
    first, second = two_notebooks
    await submit(jp_fetch, first)
    _, b = await submit(jp_fetch, second)
    folder = queue_folder(manatee_config)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{b['queue_id']}.json",
        f"{b['queue_id']}.tar.gz",
    ]
    code, reply = await call(jp_fetch, "queue", b["queue_id"], method="DELETE")
    assert (code, reply["queue_id"]) == (200, b["queue_id"])
    assert list(folder.iterdir()) == []
    one_workspace_api.build(1)
    await asyncio.sleep(0.5)  # several poll intervals: nothing may be sent
    assert len(one_workspace_api.jobs) == 1


async def test_cancelling_an_unknown_submission_is_404(jp_fetch, one_workspace_api):
    code, reply = await call(jp_fetch, "queue", "0123456789ab", method="DELETE")
    assert code == 404 and "0123456789ab" in reply["message"]


async def test_the_job_limit_counts_queued_submissions(jp_fetch, one_workspace_api, two_notebooks):
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
    jp_fetch, jp_serverapp, one_workspace_api, two_notebooks, manatee_config
):
    first, second = two_notebooks
    await submit(jp_fetch, first)
    _, b = await submit(jp_fetch, second)
    old = jp_serverapp.web_app.settings["manatee_manager"]
    old.close()  # the server stops: the sender with it

    config = ManateeConfig(**{k: v for k, v in manatee_config.items()})
    restarted = ManateeManager(config, jp_serverapp.root_dir, jp_serverapp.log)
    try:
        assert [e.id for e in restarted.queue.pending("alice")] == [b["queue_id"]]
        restarted.start_queue()
        await asyncio.sleep(0.3)
        assert len(one_workspace_api.jobs) == 1  # A still holds the slot
        one_workspace_api.build(1)
        await eventually(lambda: len(one_workspace_api.jobs) == 2, "B to be sent")
        assert "second.ipynb" in one_workspace_api.build(2)
        assert not (queue_folder(manatee_config) / f"{b['queue_id']}.tar.gz").exists()
    finally:
        restarted.close()
