"""A new user's first hour (issue #27): toasts never cover the panel's lists and close by
themselves, the report is readable at 1280 px in both themes, a stopped API is told before
the confirm dialog, and a page reloaded during an upload shows it and the job it became."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_page,
    copy_tutorials,
    job_item,
    local_backend,
    open_lab,
    open_report,
    toast,
    write_notebook,
)

NOTEBOOK = "getting-started.ipynb"
THEMES = ("JupyterLab Light", "JupyterLab Dark")


@pytest.fixture(scope="module")
def lab(tutorials_lab) -> LabServer:
    return tutorials_lab


@pytest.fixture(scope="module")
def finished(lab) -> dict[str, Any]:
    """One finished job of the tutorials' first notebook."""
    return lab.wait_for_job(lab.submit(NOTEBOOK), timeout=180)


def small_page(browser: Any, lab: LabServer, **options: Any) -> Any:
    return open_lab(browser, lab, width=1280, height=720, **options)


def notify(page: Any, count: int) -> None:
    """Raise ``count`` error notifications that stay, with JupyterLab's own command."""
    page.evaluate(
        """async (count) => {
            for (let i = 1; i <= count; i++) {
                await window.jupyterapp.commands.execute('apputils:notify', {
                    message: `Problem ${i} of ${count}`, type: 'error',
                    options: {autoClose: false}});
            }
        }""",
        count,
    )
    # each slides in from the right edge: wait until all have come to rest
    page.wait_for_function(
        """(count) => {
            const toasts = [...document.querySelectorAll('.Toastify__toast')];
            return toasts.length >= count && toasts.every(t => t.getAnimations().length === 0);
        }""",
        arg=count,
    )


def test_ten_notifications_leave_the_jobs_list_clickable(browser, lab, finished, artifacts):
    page = small_page(browser, lab)
    try:
        report = job_item(page, finished["id"]).get_by_role(
            "button", name=f"Report of job #{finished['id']}"
        )
        report.wait_for()
        notify(page, 10)
        page.screenshot(path=artifacts / "first-hour-ten-toasts.png")
        panel = page.locator("#jp-manatee-shield").bounding_box()
        for box in page.locator(".Toastify__toast").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().toJSON())"
        ):
            assert box["right"] <= panel["x"], (box, panel)

        report.click(timeout=5_000)  # fails if a toast intercepts the click

        dialog = page.locator(".jp-Dialog")
        dialog.locator(".jp-manatee-Report").wait_for()
        # by the keyboard: toasts may sit over the dialog's button
        dialog.get_by_role("button", name="Close").press("Enter")
        dialog.wait_for(state="detached")
    finally:
        close_page(page)


def test_a_success_toast_closes_by_itself_within_seconds(browser, lab, finished):
    page = small_page(browser, lab)
    try:
        job_item(page, finished["id"]).get_by_role(
            "button", name=f"Output of job #{finished['id']}"
        ).click()
        saved = toast(page, f"Saved the output of job #{finished['id']} as ")
        shown = time.monotonic()
        page.mouse.move(0, 0)  # a toast under the pointer waits
        saved.wait_for(state="detached", timeout=15_000)
        assert time.monotonic() - shown < 10
    finally:
        close_page(page)


def test_a_jobs_problem_stays_on_its_card_after_its_toast_has_closed(browser, lab):
    job = lab.wait_for_job(lab.submit(NOTEBOOK), timeout=180)
    page = small_page(browser, lab)
    try:
        card = job_item(page, job["id"])
        output = card.get_by_role("button", name=f"Output of job #{job['id']}")
        output.wait_for()
        # another tab deletes the job: this page still lists it (nothing is in progress,
        # so it does not poll) and its Output fails
        lab.call("DELETE", f"jobs/{job['uuid']}")
        output.click()

        problem = card.locator(".jp-manatee-Job-problem")
        problem.wait_for()
        text = problem.locator("p").inner_text()
        assert text == (
            f"Cannot fetch the output of job #{job['id']}: ManaTEE API: "
            "failed to query jobs or it doesn't exist: record not found"
        )
        failed = toast(page, f"Cannot fetch the output of job #{job['id']}")
        page.mouse.move(0, 0)  # a toast under the pointer waits
        failed.wait_for(state="detached", timeout=20_000)
        assert problem.locator("p").inner_text() == text  # the toast went; the card keeps it

        card.get_by_role("button", name=f"Dismiss the problem of job #{job['id']}").click()
        problem.wait_for(state="detached")
    finally:
        close_page(page)


def change_theme(page: Any, theme: str) -> None:
    page.evaluate(
        "(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    page.wait_for_function(
        "(theme) => document.body.dataset.jpThemeName === theme", arg=theme, timeout=30_000
    )


#: Each cell of the report's tables that is clipped: wider than its box, or past the dialog.
CLIPPED_CELLS = """(report) => {
    const dialog = report.closest('.jp-Dialog-content').getBoundingClientRect();
    return [...report.querySelectorAll('table th, table td')]
        .filter(cell => cell.scrollWidth > cell.clientWidth + 1
            || cell.getBoundingClientRect().right > dialog.right + 0.5)
        .map(cell => ({text: cell.textContent.slice(0, 60), scroll: cell.scrollWidth,
            client: cell.clientWidth, right: cell.getBoundingClientRect().right,
            dialog: dialog.right}));
}"""


@pytest.mark.parametrize("theme", THEMES)
def test_every_cell_of_the_report_is_readable_at_1280_px(browser, lab, finished, theme, artifacts):
    page = small_page(browser, lab)
    try:
        change_theme(page, theme)
        report = open_report(page, finished["id"])
        report.locator(".jp-manatee-Checks").wait_for()
        page.screenshot(path=artifacts / f"first-hour-report-{theme.split()[-1].lower()}.png")

        assert report.evaluate(CLIPPED_CELLS) == []
        assert report.locator("table td").count() > 10
    finally:
        close_page(page)


def test_the_report_says_its_verdict_once_under_no_other_icon(browser, lab, finished):
    page = small_page(browser, lab)
    try:
        report = open_report(page, finished["id"])
        title = report.locator(".jp-manatee-Verdict-title")
        assert title.evaluate("el => el.textContent") == "local run, no hardware TEE"
        # shown with its first letter capitalized
        assert (
            title.locator(".jp-manatee-Verdict-verdict").evaluate(
                "el => getComputedStyle(el, '::first-letter').textTransform"
            )
            == "uppercase"
        )
        # one icon: the verdict's own, beside it on its line
        icons = report.locator(".jp-manatee-Verdict svg")
        assert icons.count() == 1
        icon, text = (
            title.locator(selector).bounding_box()
            for selector in (".jp-manatee-Verdict-icon", ".jp-manatee-Verdict-verdict")
        )
        assert icon["y"] < text["y"] + text["height"] and text["y"] < icon["y"] + icon["height"]
    finally:
        close_page(page)


def test_a_stopped_api_is_told_before_the_confirm_dialog(
    browser, lab_factory, tmp_path_factory, artifacts
):
    root = copy_tutorials(tmp_path_factory.mktemp("stopped") / "tutorials")
    backend = local_backend(tmp_path_factory.mktemp("stopped-backend"))
    with backend.running_in_thread() as running:
        url = running.url
        stopped_lab = lab_factory(root, url, local_issuers=[url])
        checks: list[int] = []

        def seen(response: Any) -> None:
            if "/manatee/config" in response.url:
                checks.append(response.status)

        page = small_page(browser, stopped_lab, prepare=lambda c: c.on("response", seen))
        source = page.locator(f'li.jp-manatee-Source[data-path="{NOTEBOOK}"]')
        submit = source.get_by_role("button", name=f"Submit {NOTEBOOK}")
        submit.wait_for()
        page.wait_for_function(
            "() => !document.querySelector('.jp-manatee-Source-submit[disabled]')"
        )
        # the panel's first check of the API (after 3 s) is done: the next one is 30 s away
        for _ in range(150):  # events reach `seen` while playwright waits
            if len(checks) >= 2:
                break
            page.wait_for_timeout(200)
        assert checks[:2] == [200, 200], checks
    try:
        # the API stopped after the page had seen it answer: Submit is still enabled
        submit.click()

        dialog = page.locator(".jp-Dialog")
        dialog.get_by_text(f"Cannot submit {NOTEBOOK}").wait_for()
        page.screenshot(path=artifacts / "first-hour-api-stopped.png")
        port = url.rsplit(":", 1)[1]
        assert dialog.locator(".jp-manatee-ApiDown-heading").inner_text() == (
            f"The ManaTEE API at {url} is not answering"
        )
        assert (
            dialog.locator(".jp-manatee-ApiDown-problem")
            .inner_text()
            .startswith(
                f"Cannot reach {url} for /health: nothing is listening at 127.0.0.1:{port} "
                "(connection refused). Start the ManaTEE API"
            )
        )
        assert dialog.get_by_role("button").all_inner_texts() == ["Close"]
        dialog.get_by_role("button", name="Close").click()
        dialog.wait_for(state="detached")
        banner = page.locator(".jp-manatee-Banner-item[data-problem='reachable']")
        assert banner.locator(".jp-manatee-Banner-heading").inner_text() == (
            f"The ManaTEE API at {url} is not reachable"
        )
        text = banner.locator(".jp-manatee-Banner-text").inner_text()
        assert text.endswith("then try again.") and "Check that" not in text  # advice once
    finally:
        close_page(page)


def big_folder(root: Path, megabytes: int) -> str:
    """``upload/upload.ipynb`` beside ``megabytes`` of incompressible data: its upload takes
    seconds."""
    notebook = write_notebook(root / "upload" / "upload.ipynb", "print('uploaded')")
    with (notebook.parent / "noise.bin").open("wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1024 * 1024))
    return "upload/upload.ipynb"


def new_job_count(page: Any, name: str) -> int:
    names = page.locator("li.jp-manatee-Job .jp-manatee-Job-name", has_text=re.compile(f"^{name}$"))
    return names.count()


def test_a_reload_during_an_upload_shows_it_then_the_job_it_became(browser, lab, backend, finished):
    path = big_folder(lab.root, 200)
    name = path.split("/")[-1]
    before = {job["uuid"] for job in lab.jobs()}
    page = small_page(browser, lab)
    # the API answers no submit until released: the reload surely comes before the job,
    # whatever the machine's speed (else a quick upload would end before the page is back)
    backend.hold_submits()
    try:
        source = page.locator(f'li.jp-manatee-Source[data-path="{path}"]')
        source.get_by_role("button", name=f"Submit {name}").click()
        dialog = page.locator(".jp-Dialog")
        dialog.get_by_role("button", name="Submit").click()
        source.get_by_text("Packing and uploading the folder…").wait_for()

        page.reload()
        page.wait_for_selector("#jupyterlab-splash", state="detached")
        # the page's URL resets the layout (a user's reload keeps the panel open): open it
        # by its command, which never closes it (its tab toggles)
        page.wait_for_function("() => window.jupyterapp?.commands.hasCommand('manatee:open')")
        page.evaluate("() => window.jupyterapp.commands.execute('manatee:open')")
        page.wait_for_selector("#jp-manatee-shield:not(.lm-mod-hidden)")
        upload = page.locator("li.jp-manatee-Upload", has_text=f"Submitting {name}…")
        upload.wait_for(timeout=90_000)  # a reloaded page on a busy machine takes a while
        assert new_job_count(page, name) == 0
        backend.release_submits()

        # no Refresh pressed: the panel polls while the upload is under way
        def new_job() -> Any:
            return page.locator("li.jp-manatee-Job").filter(
                has=page.locator(".jp-manatee-Job-name", has_text=re.compile(f"^{name}$"))
            )

        new_job().wait_for(timeout=120_000)
        assert upload.count() == 0
        uuids = {job["uuid"] for job in lab.jobs() if job["jupyter_file_name"] == name}
        assert len(uuids - before) == 1
        assert new_job().get_attribute("data-job-uuid") in uuids
    finally:
        backend.release_submits()
        close_page(page)
