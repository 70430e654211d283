"""A saved output never gets a kernel: opened from the file browser, or restored by
JupyterLab after a reload, it stays kernel-less (a kernel would rewrite its bytes and a Run
All would replace its stage-2 results)."""

from __future__ import annotations

import re

import pytest

from tests.browser.lab_support import (
    CURRENT_NOTEBOOK,
    LabServer,
    close_page,
    open_lab,
    poll,
)

NOTEBOOK = "getting-started.ipynb"


@pytest.fixture(scope="module")
def lab(tutorials_lab) -> LabServer:
    return tutorials_lab


@pytest.fixture(scope="module")
def saved(lab) -> str:
    job = lab.wait_for_job(lab.submit(NOTEBOOK))
    return lab.call("POST", "output", json={"id": job["id"]})["filename"]


def sessions_of(lab: LabServer, path: str) -> list[dict]:
    response = lab.session.get(f"{lab.url}/api/sessions", timeout=10)
    response.raise_for_status()
    return [s for s in response.json() if s["path"] == path]


def settled_without_kernel(page) -> None:
    """The current notebook's session has settled with no kernel: "No Kernel | Unknown"
    (while a kernel is on its way the status bar says "Initializing", then its name)."""
    page.locator("#jp-main-statusbar", has_text=re.compile(r"No Kernel \| Unknown")).wait_for()


def saved_in_layout(lab: LabServer, path: str) -> bool:
    """Whether JupyterLab's saved layout (its workspace) reopens ``path``."""
    response = lab.session.get(f"{lab.url}/lab/api/workspaces", timeout=10)
    response.raise_for_status()
    return f"notebook:{path}" in response.text


def listed(page, name: str):
    """The file browser's item of this name in the folder it shows."""
    exact = page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    return page.locator("#filebrowser .jp-DirListing-item").filter(has=exact)


def open_from_file_browser(page, path: str):
    """Double-click the item at this contents path (outputs sit in manatee-outputs/)."""
    *folders, name = path.split("/")
    page.locator("#filebrowser .jp-BreadCrumbs-home").click()
    for folder in [*folders, name]:
        listed(page, folder).dblclick()
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text=name).wait_for()
    return page.locator(CURRENT_NOTEBOOK)


def test_an_output_opened_from_the_file_browser_has_no_kernel(browser, lab, saved):
    page = open_lab(browser, lab)
    try:
        open_from_file_browser(page, saved)

        settled_without_kernel(page)
        assert page.locator(".jp-Dialog").count() == 0  # nor is a kernel offered
        assert sessions_of(lab, saved) == []
    finally:
        close_page(page)


def test_a_restored_output_has_no_kernel_after_a_reload(browser, lab, saved):
    page = open_lab(browser, lab)
    try:
        open_from_file_browser(page, saved)
        settled_without_kernel(page)
        poll(lambda: saved_in_layout(lab, saved), 30, "JupyterLab to save its layout")

        page.goto(f"{lab.url}/lab?token={lab.token}")  # no reset: the layout is restored

        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=saved.split("/")[-1])
        tab.wait_for()
        tab.click()
        settled_without_kernel(page)
        assert sessions_of(lab, saved) == []
    finally:
        close_page(page)


def test_a_source_notebook_still_gets_its_kernel(browser, lab, saved):
    """The control: only outputs are kept kernel-less."""
    page = open_lab(browser, lab)
    try:
        page.locator(".jp-LauncherCard", has_text="Python 3").first.wait_for(state="attached")
        notebook = open_from_file_browser(page, NOTEBOOK)

        notebook.locator(".jp-KernelName", has_text="Python 3").wait_for()
        poll(lambda: sessions_of(lab, NOTEBOOK) or None, 60, "the notebook's kernel session")
    finally:
        close_page(page)
