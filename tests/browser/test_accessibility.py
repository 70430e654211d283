"""Accessibility of the shield panel and its dialogs in a real JupyterLab, light and dark:
axe-core finds no serious or critical violation in the extension's own DOM."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.browser.lab_support import (
    LabServer,
    close_dialog,
    close_page,
    job_item,
    open_lab,
)

AXE = (
    Path(__file__).resolve().parents[2]
    / "labextension"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
NOTEBOOK = "getting-started.ipynb"
THEMES = ("JupyterLab Light", "JupyterLab Dark")


@pytest.fixture(scope="module")
def lab(tutorials_lab) -> LabServer:
    server = tutorials_lab
    job = server.wait_for_job(server.submit(NOTEBOOK))
    server.call("POST", "output", json={"id": job["id"]})
    server.job = job
    return server


def use_theme(page, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile("^Theme")).first.hover()
    page.locator(".lm-Menu-item:visible", has_text=re.compile(f"^{theme}")).first.click()
    light = theme == "JupyterLab Light"
    page.wait_for_function(
        "(light) => document.body.dataset.jpThemeLight === String(light)", arg=light
    )


def serious_violations(page, selector: str) -> list[str]:
    """axe-core on ``selector``: each serious or critical violation, with its nodes."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async (selector) => {
            const r = await axe.run(selector, {resultTypes: ['violations']});
            return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
                .map(v => ({id: v.id, help: v.help,
                            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' +
                                                          n.failureSummary)}));
        }""",
        selector,
    )
    return [json.dumps(v) for v in result]


@pytest.mark.parametrize("theme", THEMES)
def test_the_panel_has_no_serious_violation(browser, lab, theme):
    page = open_lab(browser, lab)
    try:
        use_theme(page, theme)
        job_item(page, lab.job["id"]).wait_for()

        assert serious_violations(page, "#jp-manatee-shield") == []
    finally:
        close_page(page)


@pytest.mark.parametrize("theme", THEMES)
def test_the_report_dialog_has_no_serious_violation(browser, lab, theme):
    page = open_lab(browser, lab)
    try:
        use_theme(page, theme)
        job = lab.job
        job_item(page, job["id"]).get_by_role("button", name=f"Report of job #{job['id']}").click()
        page.locator(".jp-Dialog .jp-manatee-Report").wait_for()

        assert serious_violations(page, ".jp-Dialog") == []
        close_dialog(page)
    finally:
        close_page(page)


@pytest.mark.parametrize("theme", THEMES)
def test_the_submit_dialog_has_no_serious_violation(browser, lab, theme):
    page = open_lab(browser, lab)
    try:
        use_theme(page, theme)
        page.get_by_role("button", name=f"Submit {NOTEBOOK}").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator(".jp-manatee-Manifest").wait_for()
        dialog.locator("summary").click()  # the file list too

        assert serious_violations(page, ".jp-Dialog") == []
        dialog.get_by_role("button", name="Cancel").click()
    finally:
        close_page(page)
