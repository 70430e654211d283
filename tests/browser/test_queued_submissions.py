"""Queued submissions in the Jobs list: while the creator's earlier job has not had its
image built (the faithful local backend's builds held), a second submission is announced
in the confirm dialog, listed with why it waits and a Cancel button, and told when it is
sent; Cancel removes it and its archive."""

from __future__ import annotations

import re

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_page,
    local_backend,
    open_lab,
    toast,
    write_notebook,
)

FIRST = "first/first.ipynb"
SECOND = "second/second.ipynb"


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = local_backend(tmp_path_factory.mktemp("backend"), max_running=2, job_timeout=120)
    with server.running_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def lab(lab_factory, backend, tmp_path_factory) -> LabServer:
    root = tmp_path_factory.mktemp("root")
    write_notebook(root / FIRST, "print('first')")
    write_notebook(root / SECOND, "print('second')")
    return lab_factory(root, backend.url, local_issuers=[backend.url])


@pytest.fixture
def held(lab, backend):
    """The first notebook submitted, its build held (status 0); released at the end."""
    backend.hold_builds()
    first = lab.submit(FIRST)
    job = next(j for j in lab.jobs() if j["uuid"] == first)
    yield job
    backend.release_builds()
    for entry in lab.call("GET", "queue")["queued"]:
        if entry["state"] == "queued":
            lab.call("DELETE", f"queue/{entry['id']}")
    lab.wait_for_job(first, 120)


def submit_second_from_the_panel(page, blocker: dict) -> None:
    page.get_by_role("button", name="Submit second.ipynb").click()
    dialog = page.locator(".jp-Dialog")
    note = dialog.locator('[data-manifest="queued"]')
    note.wait_for()
    assert note.inner_text().startswith(
        f"It will be queued: job #{blocker['id']}'s image build has not read its workspace yet"
    )
    dialog.get_by_role("button", name="Submit").click()
    dialog.wait_for(state="detached")


def test_a_queued_submission_is_listed_then_told_when_sent(browser, lab, backend, held):
    page = open_lab(browser, lab)
    try:
        submit_second_from_the_panel(page, held)

        toast(page, f"Queued second.ipynb: waits for job #{held['id']}'s image build")
        entry = page.locator("li.jp-manatee-Queued")
        entry.wait_for()
        assert entry.locator(".jp-manatee-Queued-why").inner_text() == (
            f"Queued: waits for job #{held['id']}'s image build"
        )
        assert entry.get_by_role("button", name="Cancel queued second.ipynb").is_enabled()

        backend.release_builds()

        sent = toast(page, re.escape("Sent second.ipynb from the queue as job #"))
        job_id = re.search(r"as job #(\d+)", sent.inner_text()).group(1)
        entry.wait_for(state="detached")
        page.locator(f'li.jp-manatee-Job[data-job-id="{job_id}"]').wait_for()
    finally:
        close_page(page)


def test_cancel_removes_a_queued_submission_and_its_archive(browser, lab, held):
    page = open_lab(browser, lab)
    try:
        submit_second_from_the_panel(page, held)
        entry = page.locator("li.jp-manatee-Queued")
        entry.wait_for()
        queue_id = entry.get_attribute("data-queue-id")
        archives = list((lab.home / "state" / "queue").glob(f"{queue_id}*"))
        assert archives, "the queued archive is kept under state_dir/queue"

        entry.get_by_role("button", name="Cancel queued second.ipynb").click()

        entry.wait_for(state="detached")
        toast(page, "Cancelled the queued submission of second.ipynb")
        assert [e for e in lab.call("GET", "queue")["queued"] if e["id"] == queue_id] == []
        assert list((lab.home / "state" / "queue").glob(f"{queue_id}*")) == []
    finally:
        close_page(page)
