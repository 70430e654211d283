"""A saved output never gets a kernel: opened from the file browser, or restored by
JupyterLab after a reload, it stays kernel-less (a kernel would rewrite its bytes and a Run
All would replace its stage-2 results). Running its cells asks, once, to save a copy; the
copy is an ordinary notebook."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.browser.lab_support import (
    CURRENT_NOTEBOOK,
    LabServer,
    close_page,
    open_lab,
    output_text,
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


@pytest.fixture
def page(browser, lab):
    """A fresh JupyterLab page of its own for each test, closed after it."""
    page = open_lab(browser, lab)
    yield page
    close_page(page)


def test_an_output_opened_from_the_file_browser_has_no_kernel(page, lab, saved):
    open_from_file_browser(page, saved)

    settled_without_kernel(page)
    assert page.locator(".jp-Dialog").count() == 0  # nor is a kernel offered
    assert sessions_of(lab, saved) == []


def test_a_restored_output_has_no_kernel_after_a_reload(page, lab, saved):
    open_from_file_browser(page, saved)
    settled_without_kernel(page)
    poll(lambda: saved_in_layout(lab, saved), 30, "JupyterLab to save its layout")

    page.goto(f"{lab.url}/lab?token={lab.token}")  # no reset: the layout is restored

    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=saved.split("/")[-1])
    tab.wait_for()
    tab.click()
    settled_without_kernel(page)
    assert sessions_of(lab, saved) == []


def test_a_source_notebook_still_gets_its_kernel(page, lab, saved):
    """The control: only outputs are kept kernel-less."""
    page.locator(".jp-LauncherCard", has_text="Python 3").first.wait_for(state="attached")
    notebook = open_from_file_browser(page, NOTEBOOK)

    notebook.locator(".jp-KernelName", has_text="Python 3").wait_for()
    poll(lambda: sessions_of(lab, NOTEBOOK) or None, 60, "the notebook's kernel session")


# --- running an output: one dialog, nothing touched; its Save a copy gives a notebook ---

COPY = "copy-of-output.ipynb"
#: JupyterLab's own dialog for a notebook without a kernel (what an output must not show)
KERNEL_DIALOG = re.compile("Select Kernel")


def explained(page, saved: str):
    """The one ManaTEE dialog a run in this output shows; it is the only dialog."""
    name = saved.split("/")[-1]
    dialog = page.locator(".jp-Dialog", has_text=f"{name} is a ManaTEE output")
    dialog.wait_for()
    assert page.locator(".jp-Dialog").count() == 1, page.locator(".jp-Dialog").all_inner_texts()
    assert page.get_by_text(KERNEL_DIALOG).count() == 0
    text = dialog.inner_text()
    assert "attestation token covers them as they are" in text, text
    assert "Save a copy to run it" in text, text
    return dialog


def outputs_shown(notebook, lab: LabServer, path: str) -> None:
    """Every text output saved in the file at ``path`` is shown in this notebook panel
    (waits: JupyterLab renders cells as they come into view)."""
    cells = json.loads((lab.root / path).read_text())["cells"]
    texts = [
        "".join(output.get("text") or output.get("data", {}).get("text/plain", "")).strip()
        for cell in cells
        for output in cell.get("outputs", [])
    ]
    texts = [text for text in texts if text]
    assert texts, f"{path} has no text outputs"
    poll(
        lambda: all(text in output_text(notebook) for text in texts) or None,
        30,
        f"the outputs of {path} to be shown",
    )


def untouched(notebook, lab: LabServer, saved: str, original: bytes) -> None:
    """The output still shows its results, has no kernel, and its file is unchanged."""
    outputs_shown(notebook, lab, saved)
    assert sessions_of(lab, saved) == []
    assert (lab.root / saved).read_bytes() == original


def cancelled(page, dialog) -> None:
    dialog.get_by_role("button", name="Cancel").click()
    page.locator(".jp-Dialog").wait_for(state="detached")


def from_run_menu(page, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    # Lumino menus keep their hidden items in the page
    page.locator(".lm-Menu-item:visible", has_text=re.compile(f"^{re.escape(item)}")).click()


def test_run_all_in_an_output_asks_once_and_touches_nothing(page, lab, saved):
    original = (lab.root / saved).read_bytes()
    notebook = open_from_file_browser(page, saved)
    settled_without_kernel(page)
    outputs_shown(notebook, lab, saved)

    from_run_menu(page, "Run All Cells")

    dialog = explained(page, saved)
    cancelled(page, dialog)
    assert page.get_by_text(KERNEL_DIALOG).count() == 0
    settled_without_kernel(page)
    untouched(notebook, lab, saved, original)


def test_shift_enter_in_an_output_asks_and_gives_the_focus_back(page, lab, saved):
    original = (lab.root / saved).read_bytes()
    notebook = open_from_file_browser(page, saved)
    settled_without_kernel(page)
    outputs_shown(notebook, lab, saved)
    cell = notebook.locator(".jp-CodeCell").first
    cell.locator(".cm-content").click()  # edit mode, the cursor in the cell

    page.keyboard.press("Shift+Enter")

    dialog = explained(page, saved)
    cancelled(page, dialog)
    focused = cell.evaluate("cell => cell.contains(document.activeElement)")
    assert focused, "the focus did not come back to the cell"
    untouched(notebook, lab, saved, original)


def test_save_a_copy_of_an_output_gives_a_notebook_that_runs(page, lab, saved):
    original = (lab.root / saved).read_bytes()
    page.locator(".jp-LauncherCard", has_text="Python 3").first.wait_for(state="attached")
    open_from_file_browser(page, saved)
    settled_without_kernel(page)
    from_run_menu(page, "Run All Cells")
    explained(page, saved).get_by_role("button", name="Save a copy…").click()

    save_as = page.locator(".jp-Dialog", has_text="Save File As")
    save_as.locator("input").fill(COPY)
    save_as.get_by_role("button", name="Save").click()

    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text=COPY).wait_for()
    assert (lab.root / COPY).exists()
    assert (lab.root / saved).read_bytes() == original
    copy = page.locator(CURRENT_NOTEBOOK)
    cells = copy.locator(".jp-Cell")
    before = len(json.loads(original)["cells"])
    expect(cells).to_have_count(before, timeout=20_000)  # all rendered: B adds the last
    cells.last.locator(".cm-content").click()
    page.keyboard.press("Escape")  # command mode: B adds a cell below
    page.keyboard.press("b")
    expect(cells).to_have_count(before + 1, timeout=20_000)  # each key landed
    new_cell = copy.locator(".jp-CodeCell.jp-mod-active .cm-content")
    expect(new_cell).to_have_text("", timeout=20_000)
    new_cell.click()
    page.keyboard.type("print(6 * 7)")
    expect(new_cell).to_have_text("print(6 * 7)", timeout=20_000)
    page.keyboard.press("Shift+Enter")
    kernels = page.locator(".jp-Dialog", has_text=KERNEL_DIALOG)
    answer = copy.locator(".jp-OutputArea-output", has_text=re.compile(r"^\s*42\s*$"))
    answer.or_(kernels).first.wait_for(timeout=60_000)
    if kernels.count():  # JupyterLab may ask which kernel, as for any notebook
        kernels.get_by_role("button", name="Select").click()
    answer.wait_for(timeout=60_000)
    assert page.locator(".jp-Dialog", has_text="ManaTEE output").count() == 0
    assert sessions_of(lab, COPY)
    assert sessions_of(lab, saved) == []
    assert (lab.root / saved).read_bytes() == original


def test_an_output_renamed_out_of_the_pattern_is_a_notebook_again(page, lab, saved):
    """Renamed while open, the document keeps its panel: its kernel preference comes back."""
    folder = saved.rsplit("/", 1)[0]
    twin, renamed = f"{folder}/out-999-twin.ipynb", f"{folder}/twin.ipynb"
    shutil.copyfile(lab.root / saved, lab.root / twin)
    page.locator(".jp-LauncherCard", has_text="Python 3").first.wait_for(state="attached")
    notebook = open_from_file_browser(page, twin)
    settled_without_kernel(page)

    listed(page, twin.split("/")[-1]).click(button="right")
    page.locator(".lm-Menu-item:visible", has_text=re.compile("^Rename")).click()
    editor = page.locator(".jp-DirListing-editor")
    editor.fill(renamed.split("/")[-1])
    editor.press("Enter")
    current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    current.locator(".lm-TabBar-tabLabel", has_text=re.compile(r"^twin\.ipynb$")).wait_for()

    cell = notebook.locator(".jp-CodeCell").first.locator(".cm-content")
    cell.click()
    # the key goes where focus is: on a busy machine the editor takes it a moment later
    expect(cell).to_be_focused(timeout=20_000)
    page.keyboard.press("Shift+Enter")
    kernel = notebook.locator(".jp-KernelName", has_text="Python 3")
    kernels = page.locator(".jp-Dialog", has_text=KERNEL_DIALOG)
    kernel.or_(kernels).first.wait_for(timeout=60_000)
    assert page.locator(".jp-Dialog", has_text="ManaTEE output").count() == 0
    if kernels.count():  # JupyterLab may ask which kernel, as for any notebook
        kernels.get_by_role("button", name="Select").click()
    kernel.wait_for(timeout=60_000)
    # JupyterLab starts the first session of a document renamed kernel-less under the
    # path it was opened with (its SessionContext keeps that path): either will do here
    poll(
        lambda: sessions_of(lab, renamed) or sessions_of(lab, twin) or None,
        60,
        "the renamed notebook's kernel",
    )
