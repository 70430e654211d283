"""The shield panel by keyboard alone: a shortcut opens it with focus inside, Report and
Submit give focus back to the control that opened them, Tab stays inside the Report
dialog, and Enter in Delete's confirmation cancels."""

from __future__ import annotations

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_page,
    job_item,
    open_lab,
)

NOTEBOOK = "getting-started.ipynb"


@pytest.fixture(scope="module")
def lab(tutorials_lab) -> LabServer:
    server = tutorials_lab
    server.job = server.wait_for_job(server.submit(NOTEBOOK))
    return server


@pytest.fixture
def page(browser, lab):
    page = open_lab(browser, lab)
    job_item(page, lab.job["id"]).wait_for()
    yield page
    close_page(page)


def focused_label(page) -> str | None:
    return page.evaluate(
        "() => document.activeElement && (document.activeElement.getAttribute('aria-label')"
        " || document.activeElement.textContent.trim())"
    )


def focus_is_inside(page, selector: str) -> bool:
    return page.evaluate(
        "(s) => !!document.activeElement && !!document.activeElement.closest(s)", selector
    )


def test_the_shortcut_opens_the_panel_with_focus_inside(page):
    page.locator('li.lm-TabBar-tab[data-id="jp-manatee-shield"]').click()  # close the panel
    page.wait_for_selector("#jp-manatee-shield.lm-mod-hidden", state="attached")
    page.locator("#jp-main-dock-panel").click()  # focus in the main area

    page.keyboard.press("Alt+Shift+M")

    page.wait_for_selector("#jp-manatee-shield:not(.lm-mod-hidden)")
    page.wait_for_function("() => !!document.activeElement.closest('#jp-manatee-shield')")


def test_report_by_keyboard_keeps_tab_inside_and_gives_focus_back(page, lab):
    job = lab.job
    report = job_item(page, job["id"]).get_by_role("button", name=f"Report of job #{job['id']}")
    report.focus()
    page.keyboard.press("Enter")
    page.locator(".jp-Dialog .jp-manatee-Report").wait_for()

    for _ in range(8):  # the copy button, the token box, Close, and round again
        page.keyboard.press("Tab")
        assert focus_is_inside(page, ".jp-Dialog"), focused_label(page)
    page.keyboard.press("Escape")

    page.locator(".jp-Dialog").wait_for(state="detached")
    page.wait_for_function(
        "(label) => document.activeElement.getAttribute('aria-label') === label",
        arg=f"Report of job #{job['id']}",
    )


def test_enter_in_the_delete_confirmation_cancels(page, lab):
    job = lab.job
    delete = job_item(page, job["id"]).get_by_role("button", name=f"Delete job #{job['id']}")
    delete.focus()
    page.keyboard.press("Enter")
    page.locator(".jp-Dialog").get_by_text(f"Delete job #{job['id']}?").wait_for()

    page.keyboard.press("Enter")

    page.locator(".jp-Dialog").wait_for(state="detached")
    assert job["uuid"] in [j["uuid"] for j in lab.jobs()]
    page.wait_for_function(
        "(label) => document.activeElement.getAttribute('aria-label') === label",
        arg=f"Delete job #{job['id']}",
    )


def test_submit_by_keyboard_gives_focus_back_to_its_button(page, lab):
    before = len(lab.jobs())
    submit = page.get_by_role("button", name=f"Submit {NOTEBOOK}")
    submit.focus()
    page.keyboard.press("Enter")
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Submit {NOTEBOOK} to ManaTEE?").wait_for()

    page.keyboard.press("Enter")  # Submit is the default here: nothing is destroyed

    dialog.wait_for(state="detached")
    page.wait_for_function(
        "(label) => document.activeElement.getAttribute('aria-label') === label",
        arg=f"Submit {NOTEBOOK}",
    )
    assert len(lab.jobs()) == before + 1
