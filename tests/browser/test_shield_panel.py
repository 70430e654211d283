"""The shield sidebar in a real Chromium against a real JupyterLab and the local backend:
submit from the panel, follow the job, open its output, read its report, delete it; the
banner without an API; the job limit as a notification."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.browser.lab_support import (
    LOCAL_VERDICT,
    LabServer,
    close_page,
    copy_tutorials,
    open_lab,
    poll,
    toast,
    write_notebook,
)
from tests.support import LOCAL_API_TOKEN

NOTEBOOK = "getting-started.ipynb"
FINISHED_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from jupyterlab_manatee.local_backend import LocalBackend

    server = LocalBackend(
        data_dir=tmp_path_factory.mktemp("backend"),
        max_running=2,
        job_timeout=120,
        token=LOCAL_API_TOKEN,
        reconcile_interval=0,
    )
    with server.running_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def lab(lab_factory, backend, tmp_path_factory) -> LabServer:
    root = copy_tutorials(tmp_path_factory.mktemp("root") / "tutorials")
    # as ./dev run: the backend's tokens are trusted as a local run, so reports have a verdict
    return lab_factory(root, backend.url, local_issuers=[backend.url])


@pytest.fixture(scope="module")
def finished_jobs(lab) -> list[dict]:
    """Two jobs submitted through the routes (not the browser) and run to the end."""
    uuids = [lab.submit(NOTEBOOK), lab.submit(NOTEBOOK)]
    jobs = [lab.wait_for_job(uuid) for uuid in uuids]
    assert [job["job_status"] for job in jobs] == [5, 5], jobs
    return jobs


@pytest.fixture
def page(browser, lab):
    page = open_lab(browser, lab)
    yield page
    close_page(page)


def job_item(page, job_id: int):
    return page.locator(f'li.jp-manatee-Job[data-job-id="{job_id}"]')


def test_submitting_from_the_panel_confirms_the_manifest_and_the_job_reaches_finished(
    page, lab, artifacts
):
    source = page.locator(f'li.jp-manatee-Source[data-path="{NOTEBOOK}"]')
    source.get_by_role("button", name=f"Submit {NOTEBOOK}").click()

    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Submit {NOTEBOOK} to ManaTEE?").wait_for()
    manifest = lab.call("POST", "manifest", json={"path": NOTEBOOK, "filename": NOTEBOOK})
    assert dialog.locator('[data-manifest="file-count"]').inner_text() == str(
        manifest["file_count"]
    )
    assert dialog.locator('[data-manifest="excluded-count"]').inner_text() == str(
        len(manifest["excluded"])
    )
    page.screenshot(path=artifacts / "manifest-dialog.png")
    dialog.get_by_role("button", name="Submit").click()

    notification = toast(page, f"Submitted {re.escape(NOTEBOOK)} as job #")
    job_id = re.search(r"as job #(\d+)$", notification.inner_text().splitlines()[0]).group(1)
    item = page.locator(f'li.jp-manatee-Job[data-job-id="{job_id}"]')
    item.wait_for()
    # no click on Refresh: the panel refreshes by itself while the job is in progress
    item.locator(".jp-manatee-Chip", has_text="Finished").wait_for(timeout=FINISHED_TIMEOUT_MS)
    assert item.locator(".jp-manatee-Job-name").inner_text() == NOTEBOOK
    page.locator("#jp-manatee-shield").screenshot(path=artifacts / "jobs-list.png")


def cancel_manifest_dialog(page, lab) -> None:
    """The manifest dialog is up for the notebook; cancelling it sends nothing."""
    before = len(lab.jobs())
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Submit {NOTEBOOK} to ManaTEE?").wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert len(lab.jobs()) == before


def test_the_file_browser_context_menu_submits_a_notebook(page, lab):
    item = page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text=NOTEBOOK)
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Submit to ManaTEE…").click()
    cancel_manifest_dialog(page, lab)


def test_the_notebook_toolbar_submits_its_notebook(page, lab):
    page.locator(".jp-DirListing-item", has_text=NOTEBOOK).dblclick()
    button = page.locator(".jp-NotebookPanel .jp-manatee-NotebookSubmit button")
    button.click()
    cancel_manifest_dialog(page, lab)


def saved_layout(lab) -> dict:
    """The right sidebar's part of the workspace the layout restorer saved on the server."""
    for path in (lab.home / "workspaces").glob("*.jupyterlab-workspace"):
        data = json.loads(path.read_text())["data"].get("layout-restorer:data", {})
        return data.get("right", {})
    return {}


def test_the_panel_and_its_sections_come_back_after_a_reload(page, lab):
    sources = page.locator("#jp-manatee-shield .lm-AccordionPanel-title", has_text="Sources")
    sources.click()
    page.locator("#jp-manatee-sources").wait_for(state="hidden")
    poll(
        lambda: (
            (right := saved_layout(lab)).get("current") == "jupyterlab-manatee:shield"
            and right["widgetStates"]["jp-manatee-shield"]["expansionStates"] == [False, True]
        ),
        10,
        "the layout restorer to save the panel",
    )

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.locator("#jp-manatee-shield").wait_for(state="visible")
    page.locator("#jp-manatee-jobs").wait_for(state="visible")
    assert page.locator("#jp-manatee-sources").is_hidden()


def test_jobs_are_listed_newest_first_with_times_in_the_browser_zone(browser, lab, finished_jobs):
    context = browser.new_context(timezone_id="Asia/Tokyo", locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.click('li.lm-TabBar-tab[data-id="jp-manatee-shield"]')
        items = page.locator("li.jp-manatee-Job")
        items.first.wait_for()
        ids = [int(i) for i in items.evaluate_all("els => els.map(e => e.dataset.jobId)")]
        assert ids == sorted(ids, reverse=True) and len(ids) >= 2
        job = finished_jobs[0]
        created = job_item(page, job["id"]).locator("time").first
        assert created.get_attribute("title") == f"{job['created_at']} UTC"
        hour = (int(job["created_at"][11:13]) + 9) % 24
        assert f"{hour:02d}:{job['created_at'][14:16]}" in created.inner_text()
        assert "GMT+9" in created.inner_text() or "JST" in created.inner_text()
        # the summary's "updated" time is in the same format: the browser's zone, shown
        summary = page.locator(".jp-manatee-Jobs-summary")
        summary.filter(has_text="updated").wait_for()
        updated = summary.inner_text().split("updated ", 1)[1]
        assert "GMT+9" in updated or "JST" in updated, updated
    finally:
        context.close()


def test_output_saves_the_executed_notebook_and_opens_it(page, lab, finished_jobs, artifacts):
    job = finished_jobs[0]
    job_item(page, job["id"]).get_by_role("button", name=f"Output of job #{job['id']}").click()

    notification = toast(page, f"Saved the output of job #{job['id']} as ")
    saved = re.search(r" as (\S+\.ipynb)", notification.inner_text()).group(1)
    assert saved.startswith(f"manatee-outputs/out-{job['id']}-")
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text=saved.split("/")[-1]).wait_for()
    notebook = page.locator("#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)")
    notebook.locator(".jp-OutputArea-output", has_text="This is stage 2").first.wait_for()
    assert "This is stage 2" in (lab.root / saved).read_text()
    # the file browser shows the outputs folder where the notebook is
    page.locator(
        '#filebrowser .jp-DirListing-item[data-file-type="directory"]', has_text="manatee-outputs"
    ).wait_for()
    page.screenshot(path=artifacts / "output-opened.png")


def test_report_shows_the_decoded_claims_with_this_jobs_nonce(page, lab, finished_jobs, artifacts):
    job = finished_jobs[0]
    saved = lab.call("POST", "output", json={"id": job["id"]})["filename"]
    nonce = hashlib.md5((lab.root / saved).read_bytes()).hexdigest()
    expected = lab.call("GET", "attestation", params={"id": job["id"]})

    job_item(page, job["id"]).get_by_role("button", name=f"Report of job #{job['id']}").click()

    report = page.locator(".jp-Dialog .jp-manatee-Report")
    report.wait_for()
    claim = report.locator('tr[data-claim="eat_nonce"] .jp-manatee-Claims-value')
    assert claim.inner_text() == nonce
    assert report.locator('tr[data-claim="iss"]').count() == 1
    assert report.locator(".jp-manatee-Token-text").inner_text() == expected["token"].strip()
    # the dialog leads with the verdict, then the checks, before the claims
    assert "jp-manatee-Verdict" in report.locator("section").first.get_attribute("class")
    verdict = report.locator(".jp-manatee-Verdict")
    assert verdict.locator(".jp-manatee-Verdict-verdict").text_content() == LOCAL_VERDICT
    assert expected["verification"]["verdict"] == LOCAL_VERDICT
    checks = verdict.locator("tr[data-check]")
    assert checks.count() == len(expected["verification"]["checks"])
    assert verdict.locator('tr[data-check="nonce"] .jp-manatee-Check').inner_text() == "Pass"
    page.screenshot(path=artifacts / "report-dialog.png")
    page.locator(".jp-Dialog").get_by_role("button", name="Close").click()


def test_delete_asks_first_then_removes_the_job(page, lab, finished_jobs):
    job = finished_jobs[1]
    item = job_item(page, job["id"])
    item.get_by_role("button", name=f"Delete job #{job['id']}").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Delete job #{job['id']}?").wait_for()
    dialog.get_by_role("button", name="Delete").click()

    item.wait_for(state="detached")
    assert job["uuid"] not in [j["uuid"] for j in lab.jobs()]


def test_banner_says_what_to_set_when_no_api_is_configured(
    browser, lab_factory, tmp_path_factory, artifacts
):
    root = copy_tutorials(tmp_path_factory.mktemp("root-no-api") / "tutorials")
    server = lab_factory(root, api_url=None)
    page = open_lab(browser, server)
    try:
        banner = page.locator(".jp-manatee-Banner")
        banner.wait_for()
        text = banner.inner_text()
        assert "The ManaTEE API is not configured" in text
        assert "DATA_CLEAN_ROOM_HOST" in text
        submit = page.get_by_role("button", name=f"Submit {NOTEBOOK}")
        assert submit.is_disabled()
        page.locator("#jp-manatee-shield").screenshot(path=artifacts / "banner-no-api.png")
    finally:
        close_page(page)


def test_the_job_limit_is_told_before_the_confirm_dialog(
    browser, lab_factory, tmp_path_factory, artifacts
):
    from jupyterlab_manatee.local_backend import LocalBackend

    root = copy_tutorials(tmp_path_factory.mktemp("root-limit") / "tutorials")
    write_notebook(root / "slow" / "slow.ipynb", "import time\ntime.sleep(120)")
    backend = LocalBackend(
        data_dir=tmp_path_factory.mktemp("backend-limit"),
        max_running=1,
        token=LOCAL_API_TOKEN,
        reconcile_interval=0,
    )
    with backend.running_in_thread() as running:
        server = lab_factory(root, running.url, creator="limiter")
        for _ in range(3):  # one runs, two queued behind it: three, the most allowed
            server.submit("slow/slow.ipynb", wait=False)
        page = open_lab(browser, server)
        try:
            page.get_by_role("button", name=f"Submit {NOTEBOOK}").click()

            notification = toast(page, f"Cannot submit {re.escape(NOTEBOOK)} yet")
            assert notification.inner_text().splitlines()[0] == (
                f"Cannot submit {NOTEBOOK} yet: 3 jobs in progress or queued is the most "
                "ManaTEE allows; submit again when one has finished."
            )
            assert "Toastify__toast--warning" in notification.get_attribute("class")
            assert page.locator(".jp-Dialog").count() == 0  # nothing asked first
            # transient: nothing stays in Sources
            source = page.locator(f'li.jp-manatee-Source[data-path="{NOTEBOOK}"]')
            assert source.locator(".jp-manatee-Error").count() == 0
            page.screenshot(path=artifacts / "job-limit.png")
            queued = server.call("GET", "queue")["queued"]
            waiting = [e for e in queued if e["state"] in ("queued", "sending")]
            assert len(server.jobs()) + len(waiting) == 3
        finally:
            close_page(page)
            server.stop()
