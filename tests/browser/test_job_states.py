"""What the Jobs list tells about jobs the way the real API runs them: a job in progress
is not stopped by Delete (the dialog warns), and a notebook whose cell raised still ends
"Finished" (Output and the job card say which cell raised)."""

from __future__ import annotations

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_page,
    job_item,
    local_backend,
    open_lab,
    poll,
    toast,
    write_notebook,
)

SLOW = "slow/slow.ipynb"
RAISES = "raises/raises.ipynb"
PARENT = "sub/reads_parent.ipynb"
#: What the job card and the Output notification say of RAISES (its second code cell).
RAISED = "1 cell raised an error in the stage-2 run; the first: ZeroDivisionError in code cell 2"
#: What its card says once the server scanned its output, before Output is pressed.
SCANNED = (
    "Finished, but 1 cell raised; the first: ZeroDivisionError: division by zero (code cell 2)"
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = local_backend(
        data_dir=tmp_path_factory.mktemp("backend"), max_running=2, job_timeout=600
    )
    with server.running_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def lab(lab_factory, backend, tmp_path_factory) -> LabServer:
    root = tmp_path_factory.mktemp("root")
    write_notebook(root / SLOW, "import time\ntime.sleep(600)")
    write_notebook(root / RAISES, "x = 1", "x / 0", "print('never reached')")
    write_notebook(root / PARENT, "import pandas", "rows = open('../data/x.csv').read()")
    return lab_factory(root, backend.url, local_issuers=[backend.url])


@pytest.fixture
def page(browser, lab):
    page = open_lab(browser, lab)
    yield page
    close_page(page)


def test_deleting_a_running_job_warns_that_the_run_may_go_on(lab, browser):
    uuid = lab.submit(SLOW)
    poll(
        lambda: next((j for j in lab.jobs() if j["uuid"] == uuid and j["job_status"] == 4), None),
        120,
        "the slow job to be running",
    )
    job = next(j for j in lab.jobs() if j["uuid"] == uuid)
    page = open_lab(browser, lab)
    try:
        job_item(page, job["id"]).get_by_role("button", name=f"Delete job #{job['id']}").click()

        dialog = page.locator(".jp-Dialog")
        dialog.get_by_text(f"Delete job #{job['id']}?").wait_for()
        body = dialog.locator(".jp-Dialog-body").inner_text()
        assert body.startswith(
            "This job is still in progress: ManaTEE does not stop it, the run may go on."
        )
        assert "its stored output and report may remain there" in body
        dialog.get_by_role("button", name="Cancel").click()
        dialog.wait_for(state="detached")
        assert uuid in [j["uuid"] for j in lab.jobs()]
    finally:
        close_page(page)


def test_deleting_a_finished_job_does_not_warn_of_a_run(lab, page):
    job = lab.wait_for_job(lab.submit(RAISES))
    page.reload()
    page.wait_for_selector("#jp-manatee-shield:not(.lm-mod-hidden)")
    job_item(page, job["id"]).get_by_role("button", name=f"Delete job #{job['id']}").click()

    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Delete job #{job['id']}?").wait_for()
    body = dialog.locator(".jp-Dialog-body").inner_text()
    assert "still in progress" not in body
    assert body.startswith(f"raises.ipynb (job {job['uuid']}) leaves your job list.")
    dialog.get_by_role("button", name="Cancel").click()


def test_a_finished_card_says_which_cell_raised_before_output_and_output_too(lab, page):
    job = lab.wait_for_job(lab.submit(RAISES))
    assert job["job_status"] == 5  # Finished, as the real API's --allow-errors run ends
    page.reload()
    page.wait_for_selector("#jp-manatee-shield:not(.lm-mod-hidden)")
    item = job_item(page, job["id"])
    note = item.locator(".jp-manatee-Job-errors")
    note.wait_for()  # the server's background scan: no Output pressed
    assert note.inner_text() == SCANNED
    assert note.get_attribute("data-error-count") == "1"

    item.get_by_role("button", name=f"Output of job #{job['id']}").click()

    notification = toast(page, f"Job #{job['id']} finished, but ")
    assert notification.inner_text().startswith(f"Job #{job['id']} finished, but {RAISED}")
    assert "Toastify__toast--warning" in notification.get_attribute("class")
    assert note.inner_text() == SCANNED


def test_the_confirm_dialog_warns_of_code_reading_outside_the_folder(page):
    page.get_by_role("button", name="Submit reads_parent.ipynb").click()

    dialog = page.locator(".jp-Dialog")
    warning = dialog.locator(".jp-manatee-Manifest-warnings li")
    warning.wait_for()
    assert warning.count() == 1
    assert warning.get_attribute("data-cell") == "2"
    assert warning.inner_text().startswith(
        "Code cell 2 refers to '../data/x.csv', outside the notebook's folder"
    )
    dialog.get_by_role("button", name="Cancel").click()


def test_sources_leave_out_saved_outputs(lab, page):
    job = lab.wait_for_job(lab.submit(RAISES))
    saved = lab.call("POST", "output", json={"id": job["id"]})["filename"]
    assert saved.startswith("raises/manatee-outputs/")

    page.reload()
    page.wait_for_selector("#jp-manatee-shield:not(.lm-mod-hidden)")
    page.locator(f'li.jp-manatee-Source[data-path="{RAISES}"]').wait_for()

    paths = page.locator("li.jp-manatee-Source").evaluate_all("els => els.map(e => e.dataset.path)")
    assert saved not in paths and not [p for p in paths if "manatee-outputs" in p], paths
