"""A queued submission survives a restart of the real `jupyter lab` process and is sent
once the earlier job's image build has read the creator's workspace; it then runs its
own notebook (against the faithful local backend, whose builds the test holds)."""

from __future__ import annotations

import pytest

from tests.browser.lab_support import LabServer, local_backend, write_notebook
from tests.support import wait_until


@pytest.fixture
def backend(tmp_path):
    server = local_backend(tmp_path / "backend", max_running=2, job_timeout=120)
    with server.running_in_thread() as running:
        yield running


@pytest.fixture
def lab(tmp_path, backend):
    root = tmp_path / "root"
    write_notebook(root / "first" / "first.ipynb", "print('the first notebook ran')")
    write_notebook(root / "second" / "second.ipynb", "print('the second notebook ran')")
    home = tmp_path / "home"
    home.mkdir()
    server = LabServer(home, root, backend.url, creator="restarter", local_issuers=[backend.url])
    server.start()
    yield server
    server.stop()


def queue_entry(lab: LabServer, entry_id: str) -> dict | None:
    return next((e for e in lab.call("GET", "queue")["queued"] if e["id"] == entry_id), None)


def test_a_queued_submission_survives_a_jupyter_restart_and_is_sent(lab, backend):
    backend.hold_builds()  # job 1 stays in status 0: its workspace is not read yet
    first = lab.submit("first/first.ipynb")
    queued = lab.submit("second/second.ipynb", wait=False)
    entry = queue_entry(lab, queued)
    assert entry is not None and entry["state"] == "queued"
    assert [j["uuid"] for j in lab.jobs()] == [first]

    lab.stop()
    lab.start()  # the same home and state_dir: a restarted Jupyter server

    entry = queue_entry(lab, queued)
    assert entry is not None and entry["state"] == "queued"
    backend.release_builds()

    def sent() -> str | None:
        found = queue_entry(lab, queued)
        assert found is not None and found["state"] != "failed", found
        return found["uuid"] if found["state"] == "sent" else None

    second = wait_until(sent, 120, "the queued submission to be sent after the restart")
    jobs = {uuid: lab.wait_for_job(uuid, 120) for uuid in (first, second)}
    assert [jobs[first]["job_status"], jobs[second]["job_status"]] == [5, 5]
    outputs = {
        uuid: (lab.root / lab.call("POST", "output", json={"id": job["id"]})["filename"])
        for uuid, job in jobs.items()
    }
    assert "the first notebook ran" in outputs[first].read_text()
    assert "the second notebook ran" in outputs[second].read_text()
    assert "the first notebook ran" not in outputs[second].read_text()
