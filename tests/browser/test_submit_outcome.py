"""The submit outcome reaches the user on a loaded machine: with the page's CPU slowed
eightfold, the API's reply comes before JupyterLab has drawn anything for the submission,
and still the outcome toast "Submitted ... as job #N" appears and no progress is left
spinning. (The outcome used to be an in-place update of an "Uploading" toast, which
react-toastify dropped when the reply beat the drawing: a spinner forever.)"""

from __future__ import annotations

import re

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_page,
    open_lab,
    toast,
)

NOTEBOOK = "getting-started.ipynb"


@pytest.fixture(scope="module")
def lab(tutorials_lab) -> LabServer:
    return tutorials_lab


def test_the_outcome_is_told_when_the_page_is_slow(browser, lab):
    page = open_lab(browser, lab)
    page.set_default_timeout(90_000)  # everything in the page runs 8 times slower
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 8})
    try:
        before = {job["uuid"] for job in lab.jobs()}
        source = page.locator(f'li.jp-manatee-Source[data-path="{NOTEBOOK}"]')
        source.get_by_role("button", name=f"Submit {NOTEBOOK}").click()
        dialog = page.locator(".jp-Dialog")
        dialog.get_by_role("button", name="Submit").click()

        notification = toast(page, f"Submitted {re.escape(NOTEBOOK)} as job #")
        new = [job for job in lab.jobs() if job["uuid"] not in before]
        assert len(new) == 1
        assert notification.inner_text().splitlines()[0] == (
            f"Submitted {NOTEBOOK} as job #{new[0]['id']}"
        )
        page.wait_for_function(
            "(name) => !document.querySelector(`[aria-label='Uploading ${name}']`)", arg=NOTEBOOK
        )
        assert page.locator(".Toastify__toast", has_text="Uploading").count() == 0
    finally:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        close_page(page)
