"""The shield panel's lists scroll inside their sections: with 12 jobs, the oldest job on
page 1 and the pager are reachable and work, in a window of ordinary height."""

from __future__ import annotations

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_page,
    job_item,
    local_backend,
    open_lab,
    write_notebook,
)

QUICK = "quick.ipynb"
JOBS = 12


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = local_backend(
        data_dir=tmp_path_factory.mktemp("backend"), max_running=2, job_timeout=120
    )
    with server.running_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def lab(lab_factory, backend, tmp_path_factory) -> LabServer:
    root = tmp_path_factory.mktemp("root")
    write_notebook(root / QUICK, "print('quick')")
    for index in range(8):  # enough notebooks for Sources to need its own scrolling
        write_notebook(root / f"notebook-{index}.ipynb", "print('quick')")
    server = lab_factory(root, backend.url, local_issuers=[backend.url])
    # one at a time: the API allows 3 jobs in flight per creator
    jobs = [server.wait_for_job(server.submit(QUICK)) for _ in range(JOBS)]
    assert {job["job_status"] for job in jobs} == {5}, jobs
    return server


@pytest.fixture
def page(browser, lab):
    page = open_lab(browser, lab, height=700)
    yield page
    close_page(page)


def test_the_last_job_of_a_full_page_is_reachable_and_its_output_opens(page, lab):
    job_item(page, JOBS).wait_for()
    oldest_on_page = JOBS - 9  # 10 a page, newest first

    job_item(page, oldest_on_page).get_by_role(
        "button", name=f"Output of job #{oldest_on_page}"
    ).click()

    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text=f"out-{oldest_on_page}-quick.ipynb").wait_for()


def test_the_pager_is_reachable_and_shows_the_oldest_job(page, lab):
    job_item(page, JOBS).wait_for()

    page.get_by_role("button", name="Older jobs").click()

    job_item(page, 1).get_by_role("button", name="Output of job #1").click()
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text="out-1-quick.ipynb").wait_for()


def test_the_last_notebook_in_sources_is_reachable(page, lab):
    source = page.locator('li.jp-manatee-Source[data-path="quick.ipynb"]')
    source.wait_for()

    source.get_by_role("button", name="Submit quick.ipynb").click()

    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Submit quick.ipynb to ManaTEE?").wait_for()
    dialog.get_by_role("button", name="Cancel").click()
