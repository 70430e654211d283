"""Report and "Verify ManaTEE output" check the file the user keeps, offline: with the
ManaTEE API stopped, an intact saved output is a local run and one changed by a byte is
"Not verified" (error state, the nonce check failing), each told by an icon and a word."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_dialog,
    close_page,
    copy_tutorials,
    job_item,
    local_backend,
    open_lab,
)

NOTEBOOK = "getting-started.ipynb"


class SwitchableApi:
    """The local backend on a fixed port and data directory, stopped and started again
    between steps (its keys and jobs live in the data directory)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self._stack: contextlib.ExitStack | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._stack is not None:
            return
        backend = local_backend(
            data_dir=self.data_dir, port=self.port, max_running=2, job_timeout=120
        )
        stack = contextlib.ExitStack()
        running = stack.enter_context(backend.running_in_thread())
        self.port = int(running.url.rsplit(":", 1)[1])
        self._stack = stack

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[SwitchableApi]:
    switch = SwitchableApi(tmp_path_factory.mktemp("backend"))
    switch.start()
    yield switch
    switch.stop()


@pytest.fixture(scope="module")
def lab(lab_factory, api, tmp_path_factory) -> LabServer:
    root = copy_tutorials(tmp_path_factory.mktemp("root") / "tutorials")
    return lab_factory(root, api.url, local_issuers=[api.url])


@pytest.fixture(scope="module")
def outputs(lab) -> dict[str, dict]:
    """Two finished jobs with their outputs saved; the second one's output then changed by
    one byte (a 0 in its text became a 1, as a careless edit would)."""
    jobs = {}
    for name in ("intact", "tampered"):
        job = lab.wait_for_job(lab.submit(NOTEBOOK))
        assert job["job_status"] == 5, job
        saved = lab.call("POST", "output", json={"id": job["id"]})
        assert saved["attestation"]["verdict"] == "local run, no hardware TEE", saved
        jobs[name] = {**job, "saved": saved["filename"]}
    path = lab.root / jobs["tampered"]["saved"]
    text = path.read_bytes()
    at = text.index(b"stage 2")
    path.chmod(0o644)
    path.write_bytes(text[:at] + b"Stage 2" + text[at + len(b"stage 2") :])
    return jobs


@pytest.fixture
def page_with_api_stopped(browser, lab, api, outputs):
    """The page loads its job list while the API answers; then the API stops."""
    api.start()
    page = open_lab(browser, lab)
    for job in outputs.values():
        job_item(page, job["id"]).wait_for()
    api.stop()
    yield page
    close_page(page)


def report_of(page, job_id: int):
    job_item(page, job_id).get_by_role("button", name=f"Report of job #{job_id}").click()
    report = page.locator(".jp-Dialog .jp-manatee-Report")
    report.wait_for()
    return report


def test_report_on_a_tampered_saved_output_is_not_verified_with_the_api_stopped(
    page_with_api_stopped, outputs, artifacts
):
    page = page_with_api_stopped
    job = outputs["tampered"]

    verdict = report_of(page, job["id"]).locator(".jp-manatee-Verdict")

    assert verdict.get_attribute("data-state") == "failed"
    assert "jp-mod-failed" in verdict.get_attribute("class")
    # the verdict says the state itself: said once, no separate word
    assert verdict.locator(".jp-manatee-Verdict-state").count() == 0
    assert verdict.locator(".jp-manatee-Verdict-icon svg").count() == 1
    assert verdict.locator(".jp-manatee-Verdict-verdict").text_content() == "not verified"
    assert verdict.locator('tr[data-check="nonce"] .jp-manatee-Check').inner_text() == "Fail"
    assert verdict.locator(".jp-manatee-Verdict-checked").inner_text() == (
        f"Checked {job['saved']} against {job['saved']}.attestation.json."
    )
    page.screenshot(path=artifacts / "report-tampered.png")
    close_dialog(page)


def test_report_on_an_intact_saved_output_is_a_local_run_with_the_api_stopped(
    page_with_api_stopped, outputs
):
    page = page_with_api_stopped
    job = outputs["intact"]

    verdict = report_of(page, job["id"]).locator(".jp-manatee-Verdict")

    assert verdict.get_attribute("data-state") == "local"
    assert verdict.locator(".jp-manatee-Verdict-state").count() == 0
    assert verdict.locator(".jp-manatee-Verdict-icon svg").count() == 1
    assert verdict.locator(".jp-manatee-Verdict-verdict").text_content() == (
        "local run, no hardware TEE"
    )
    assert verdict.locator('tr[data-check="nonce"] .jp-manatee-Check').inner_text() == "Pass"
    assert verdict.locator(".jp-manatee-Verdict-checked").inner_text() == (
        f"Checked {job['saved']} against {job['saved']}.attestation.json."
    )
    close_dialog(page)


def listed(page, name: str):
    """The file browser's item of this name in the folder it shows."""
    exact = page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    return page.locator("#filebrowser .jp-DirListing-item").filter(has=exact)


def context_menu_on(page, path: str):
    """Right-click the item at this contents path (outputs sit in manatee-outputs/), the
    file browser first opened at the root, then at the item's folder."""
    *folders, name = path.split("/")
    page.locator("#filebrowser .jp-BreadCrumbs-home").click()
    for folder in folders:
        listed(page, folder).dblclick()
    listed(page, name).click(button="right")
    # the file browser's own menu (lumino keeps its hidden submenus attached too)
    menu = page.locator(".lm-Menu").filter(has_text="Submit to ManaTEE…")
    menu.wait_for()
    return menu


def shown(menu, label: str):
    """The menu's items with this label that are drawn (lumino keeps hidden ones)."""
    return menu.locator(".lm-Menu-item:visible", has_text=label)


def test_verify_from_the_file_browser_checks_a_saved_output_with_the_api_stopped(
    page_with_api_stopped, outputs
):
    page = page_with_api_stopped
    job = outputs["tampered"]

    shown(context_menu_on(page, job["saved"]), "Verify ManaTEE output").click()

    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Attestation report: {job['saved'].split('/')[-1]}").wait_for()
    verdict = dialog.locator(".jp-manatee-Verdict")
    assert verdict.get_attribute("data-state") == "failed"
    assert verdict.locator(".jp-manatee-Verdict-verdict").text_content() == "not verified"
    assert verdict.locator('tr[data-check="nonce"] .jp-manatee-Check').inner_text() == "Fail"
    close_dialog(page)


def test_the_file_browser_offers_verify_only_beside_a_saved_attestation(
    page_with_api_stopped, outputs
):
    page = page_with_api_stopped

    menu = context_menu_on(page, outputs["intact"]["saved"])
    assert shown(menu, "Verify ManaTEE output").count() == 1
    page.keyboard.press("Escape")
    menu.wait_for(state="detached")

    menu = context_menu_on(page, NOTEBOOK)
    assert shown(menu, "Verify ManaTEE output").count() == 0
    page.keyboard.press("Escape")
