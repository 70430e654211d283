"""Regenerate the tutorial's screenshots (``docs/tutorial-N-*.png``) from the real product.

    python -m tests.browser.make_screenshots [--out DIR]

The same harness as the browser tests: the local backend with the stage-2 folder
``examples-data/stage2``, ``jupyter lab`` on a temporary copy of ``tutorials/`` in stage 1
trusting the backend's issuer (as ``./dev run`` starts them), and Debian's chromium. It
runs both notebooks in stage 1, submits them from the shield panel, opens the stage-2
output and its report, and screenshots each step of ``tutorials/README.md``. Nothing in
the repository but the PNG files is touched, and those only when every screenshot was
taken (no mix of old and new). Takes about half a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.browser.lab_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CURRENT_NOTEBOOK,
    REPO,
    TUTORIAL_NOTEBOOKS,
    LabServer,
    close_dialog,
    copy_tutorials,
    dismiss_toasts,
    open_lab,
    open_output,
    open_report,
    run_all_cells,
    scroll_to,
    submit_from_panel,
    tutorial_backend,
    tutorial_lab_options,
    wait_until_finished,
)

#: Screenshots are committed: past this size they are reduced to a 256-colour palette.
MAX_BYTES = 250_000
VIEWPORT = {"width": 1400, "height": 1000}
SHOTS = (
    "tutorial-1-start.png",
    "tutorial-2-histograms.png",
    "tutorial-3-heatmap.png",
    "tutorial-4-regression-stage1.png",
    "tutorial-5-jobs.png",
    "tutorial-6-regression-stage2.png",
    "tutorial-7-report.png",
    "tutorial-8-report-claims.png",
)


def part_path(path: Path) -> Path:
    """Where a screenshot waits until all of them are taken."""
    return path.with_name(f".{path.name}.part")


def save_png(target: Any, path: Path) -> int:
    """Screenshot a page or an element for ``path`` (into its part file), small enough to
    commit; its size."""
    data = target.screenshot()
    if len(data) > MAX_BYTES:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
            data = buffer.getvalue()
    part_path(path).write_bytes(data)
    print(f"{path.name}: {len(data) // 1000} KB", flush=True)
    return len(data)


def toggle_sidebar(page: Any, tab_id: str, *, open_: bool) -> None:
    """Open or close the sidebar panel behind the tab ``tab_id`` (file browser, shield)."""
    tab = page.locator(f'li.lm-TabBar-tab[data-id="{tab_id}"]')
    if ("lm-mod-current" in (tab.get_attribute("class") or "")) != open_:
        tab.click()
    state = "visible" if open_ else "hidden"
    page.locator(f"#{tab_id}").wait_for(state=state)


def cell_with(notebook: Any, text: str) -> Any:
    """The first cell of ``notebook`` whose text contains ``text``."""
    return notebook.locator(".jp-Cell", has_text=text).first


def collapse_input(cell: Any) -> None:
    """Click the cell's input collapser (the bar left of its code), as a reader would."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    handle = cell.element_handle()  # the locator matches by its code, which folding hides
    for _ in range(3):  # a click while the notebook is still settling only selects the cell
        handle.query_selector(".jp-Cell-inputCollapser").click()
        with contextlib.suppress(PlaywrightTimeout):
            handle.wait_for_selector(".jp-InputPlaceholder", timeout=3_000)
            return
    raise AssertionError("the cell's input did not fold")


def wait_for_images(notebook: Any) -> None:
    """Every figure of the notebook decoded, so the screenshot does not catch it half drawn."""
    notebook.page.wait_for_function(
        """(selector) => [...document.querySelectorAll(selector + ' .jp-OutputArea img')]
            .every(img => img.complete && img.naturalWidth > 0)""",
        arg=CURRENT_NOTEBOOK,
    )


def stage1(page: Any, out: Path) -> None:
    """Steps 1 to 3 of the tutorial: JupyterLab on the tutorials, both notebooks run."""
    page.locator("#filebrowser .jp-DirListing-item", has_text="regression.ipynb").wait_for()
    save_png(page, out / SHOTS[0])

    toggle_sidebar(page, "jp-manatee-shield", open_=False)
    notebook = run_all_cells(page, "insurance.ipynb")
    toggle_sidebar(page, "filebrowser", open_=False)
    wait_for_images(notebook)
    histograms = cell_with(notebook, "One histogram per column")
    scroll_to(histograms)
    save_png(page, out / SHOTS[1])
    heatmap = cell_with(notebook, "corr = encoded.corr()")
    collapse_input(heatmap)
    scroll_to(cell_with(notebook, "Categories become numbers first"))
    save_png(page, out / SHOTS[2])

    toggle_sidebar(page, "filebrowser", open_=True)
    notebook = run_all_cells(page, "regression.ipynb")
    toggle_sidebar(page, "filebrowser", open_=False)
    results_and_plot(notebook)
    save_png(page, out / SHOTS[3])


def results_and_plot(notebook: Any) -> None:
    """The regression notebook scrolled to its scores, with the plot cell's code folded so
    the plot fits below them."""
    wait_for_images(notebook)
    collapse_input(cell_with(notebook, "fig, ax = plt.subplots"))
    scroll_to(cell_with(notebook, "model = XGBRegressor()").locator(".jp-OutputArea"))


def stage2(page: Any, out: Path) -> None:
    """Steps 4 and 5: submit both notebooks, fetch the regression's output and report."""
    toggle_sidebar(page, "jp-manatee-shield", open_=True)
    submissions = [submit_from_panel(page, name) for name in TUTORIAL_NOTEBOOKS]
    job_ids = [wait_until_finished(page, s.uuid) for s in submissions]
    dismiss_toasts(page)
    save_png(page, out / SHOTS[4])

    saved, notebook = open_output(page, job_ids[1])
    notebook.locator(".jp-OutputArea-output", has_text=re.compile(r"R\^2: \d")).wait_for()
    dismiss_toasts(page)
    results_and_plot(notebook)
    save_png(page, out / SHOTS[5])

    report = open_report(page, job_ids[1])
    report.locator(".jp-manatee-Verdict").wait_for()
    save_png(page, out / SHOTS[6])
    scroll_to(report.locator("#jp-manatee-claims-title"))
    save_png(page, out / SHOTS[7])
    close_dialog(page)
    print(f"the stage-2 output in these screenshots: {saved}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.browser.make_screenshots", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="default: docs/")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("playwright") is None:
        print("error: needs the playwright package (pip install '.[test]')", file=sys.stderr)
        return 2
    if not CHROMIUM.exists():
        print(f"error: needs {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        take_screenshots(args.out)
    finally:
        for name in SHOTS:
            part_path(args.out / name).unlink(missing_ok=True)
    print(f"wrote {len(SHOTS)} screenshots to {args.out} in {time.monotonic() - started:.0f} s")
    return 0


def take_screenshots(out: Path) -> None:
    """Run the walkthrough and screenshot it; replace the PNGs in ``out`` once all are taken."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="manatee-screenshots-") as temp:
        home = Path(temp)
        with tutorial_backend(home / "backend") as backend:
            root = copy_tutorials(home / "root" / "tutorials")
            (home / "lab").mkdir()
            options = tutorial_lab_options(backend.url)
            lab = LabServer(home / "lab", root, backend.url, "alice", **options).start()
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(
                        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                    )
                    page = open_lab(browser, lab, **VIEWPORT)
                    try:
                        stage1(page, out)
                        stage2(page, out)
                    except Exception:
                        failure = Path(tempfile.gettempdir()) / "manatee-screenshots-failure.png"
                        page.screenshot(path=failure)
                        print(f"failed; the page at that moment: {failure}", file=sys.stderr)
                        raise
                    finally:
                        browser.close()
            finally:
                lab.stop()
    for name in SHOTS:
        os.replace(part_path(out / name), out / name)


if __name__ == "__main__":
    sys.exit(main())
