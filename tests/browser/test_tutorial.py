"""The tutorial's acceptance in a real Chromium, set up as ``./dev run`` sets it up:
JupyterLab on a copy of ``tutorials/`` in stage 1, trusting the local backend's issuer;
the backend holding the real table (``examples-data/stage2``) for stage-2 runs. One user
session walks through it: submit both notebooks from the shield panel, see them finish,
open their outputs (real-data results), read their reports (local-run verdict)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.browser.lab_support import (
    LOCAL_VERDICT,
    REPO,
    TUTORIAL_NOTEBOOKS,
    LabServer,
    Submission,
    close_dialog,
    close_page,
    copy_tutorials,
    job_item,
    open_lab,
    open_output,
    open_report,
    output_text,
    poll,
    submit_from_panel,
    tutorial_backend,
    tutorial_lab_options,
    wait_until_finished,
)

STAGE1_TABLE = "data/insurance.csv.s1"
REAL_ROWS = 1338  # rows of the real table; the stage-1 table's count is a noisy estimate
STAGE2_READ = f"Stage 2: read data/insurance.csv.s2, {REAL_ROWS} rows"
MIN_STAGE2_R2 = 0.75  # XGBoost on the real table's test split scores 0.823


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with tutorial_backend(tmp_path_factory.mktemp("backend")) as running:
        yield running


@pytest.fixture(scope="module")
def lab(lab_factory, backend, tmp_path_factory) -> LabServer:
    root = copy_tutorials(tmp_path_factory.mktemp("root") / "tutorials")
    return lab_factory(root, backend.url, **tutorial_lab_options(backend.url))


@pytest.fixture(scope="module")
def page(browser, lab):
    """One browser session for the whole walkthrough, as a user would keep it."""
    page = open_lab(browser, lab)
    yield page
    close_page(page)


@pytest.fixture(scope="module")
def submissions(page) -> dict[str, Submission]:
    """Both notebooks submitted from the panel's Sources, each manifest read and confirmed."""
    return {name: submit_from_panel(page, name) for name in TUTORIAL_NOTEBOOKS}


@pytest.fixture(scope="module")
def job_ids(page, submissions) -> dict[str, int]:
    """The jobs' ids, once the panel shows them Finished (it refreshes by itself)."""
    return {name: wait_until_finished(page, s.uuid) for name, s in submissions.items()}


@dataclass
class OpenedOutput:
    saved: str  # contents path of the executed notebook
    text: str  # the text of its outputs as JupyterLab shows them
    figures: int  # images among its outputs


@pytest.fixture(scope="module")
def outputs(page, lab, job_ids) -> dict[str, OpenedOutput]:
    """Output clicked for each finished job; what the notebook it opened shows."""
    opened = {}
    for name, job_id in job_ids.items():
        saved, notebook = open_output(page, job_id)
        figures = wait_until_rendered(notebook, lab.root / saved)
        opened[name] = OpenedOutput(saved, output_text(notebook), figures)
    return opened


def wait_until_rendered(notebook, path: Path) -> int:
    """Wait until the notebook panel shows every output of the saved notebook (they render
    cell by cell, figures last); the number of figures shown."""
    saved = [o for c in nbformat.read(path, as_version=4).cells for o in c.get("outputs", [])]
    figures = sum("image/png" in o.get("data", {}) for o in saved)
    shown = notebook.locator(".jp-OutputArea-output")
    images = notebook.locator(".jp-OutputArea-output img")
    poll(
        lambda: shown.count() >= len(saved) and images.count() == figures,
        10,
        f"the {len(saved)} outputs of {path.name} to show",
    )
    return images.count()


def test_the_manifest_ships_the_stage1_table_and_no_stage2_file(submissions):
    for name, submission in submissions.items():
        assert STAGE1_TABLE in submission.files, (name, submission.files)
        assert name in submission.files
        assert not [f for f in submission.files if ".s2" in f], (name, submission.files)
        assert submission.file_count == len(submission.files)


def test_both_tutorial_jobs_reach_finished_in_the_panel(page, lab, submissions, job_ids):
    for name, job_id in job_ids.items():
        item = job_item(page, job_id)
        assert item.locator(".jp-manatee-Job-name").inner_text() == name
        assert item.locator(".jp-manatee-Chip").inner_text().strip() == "Finished"
    by_uuid = {job["uuid"]: job for job in lab.jobs()}
    assert [by_uuid[s.uuid]["job_status"] for s in submissions.values()] == [5, 5]


def test_the_regression_output_opens_with_the_stage2_r2(outputs, lab):
    output = outputs["regression.ipynb"]
    assert re.fullmatch(r"manatee-outputs/out-\d+-regression\.ipynb", output.saved)
    assert (lab.root / output.saved).is_file()
    assert STAGE2_READ in output.text
    assert "Stage 2 results on the test split:" in output.text
    r2 = float(re.search(r"R\^2: (-?[\d.]+)", output.text).group(1))
    assert r2 >= MIN_STAGE2_R2
    assert output.figures >= 1  # predicted against actual


def test_the_insurance_output_opens_with_the_real_tables_row_count(outputs, lab):
    output = outputs["insurance.ipynb"]
    assert re.fullmatch(r"manatee-outputs/out-\d+-insurance\.ipynb", output.saved)
    assert (lab.root / output.saved).is_file()
    assert STAGE2_READ in output.text
    assert f"rows, columns: ({REAL_ROWS}, 7)" in output.text
    assert f"Stage 2 reads the real table: {REAL_ROWS} rows" in output.text
    assert output.figures >= 2  # the histograms and the heatmap


@pytest.mark.parametrize("notebook", TUTORIAL_NOTEBOOKS)
def test_report_leads_with_the_local_run_verdict_its_checks_and_this_jobs_nonce(
    page, lab, submissions, job_ids, outputs, notebook
):
    nonce = hashlib.md5((lab.root / outputs[notebook].saved).read_bytes()).hexdigest()

    report = open_report(page, job_ids[notebook])
    try:
        first = report.locator("section").first
        assert "jp-manatee-Verdict" in first.get_attribute("class")
        verdict = first.locator(".jp-manatee-Verdict-verdict").text_content()
        assert verdict == LOCAL_VERDICT
        checks = {
            row.get_attribute("data-check"): row.locator(".jp-manatee-Check").inner_text()
            for row in first.locator("tr[data-check]").all()
        }
        for name in ("token", "algorithm", "issuer", "signature", "audience", "nonce"):
            assert checks[name] == "Pass", checks
        assert checks["instance_name"] == "Pass"
        assert checks["swname"] == "N/A"  # no hardware TEE to attest
        claim = report.locator('tr[data-claim="eat_nonce"] .jp-manatee-Claims-value')
        assert claim.inner_text() == nonce
        instance = report.locator('tr[data-claim="submods.gce.instance_name"] td')
        assert instance.inner_text() == f"{lab.creator}-{submissions[notebook].uuid}"
    finally:
        close_dialog(page)


def test_each_output_has_its_proof_saved_beside_it_with_the_local_verdict(outputs, lab):
    for output in outputs.values():
        data = (lab.root / output.saved).read_bytes()
        record = json.loads((lab.root / f"{output.saved}.attestation.json").read_text())
        assert record["output_md5"] == hashlib.md5(data).hexdigest()
        assert record["verification"]["verdict"] == LOCAL_VERDICT


def verify_on_the_command_line(lab: LabServer, saved: str, *options: str):
    output = lab.root / saved
    command = [sys.executable, "-m", "jupyterlab_manatee.attestation", "verify"]
    return subprocess.run(
        [*command, str(output), f"{output}.attestation.json", *options],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_the_command_line_reports_a_saved_output_as_a_local_run_when_told_the_issuer(
    outputs, lab, backend
):
    done = verify_on_the_command_line(
        lab,
        outputs["regression.ipynb"].saved,
        "--local-issuer",
        backend.url,
        "--project-id=manatee-local",
        "--service-account=manatee-local-tee@manatee-local.iam.gserviceaccount.com",
    )
    assert done.stdout.splitlines()[0] == f"verdict: {LOCAL_VERDICT}", done.stdout + done.stderr
    assert re.search(r"pass\s+nonce\s", done.stdout)
    assert done.returncode == 3  # a local run: told apart from verified (0) and not (1)


def test_the_command_line_does_not_trust_the_local_backend_unless_told(outputs, lab, backend):
    done = verify_on_the_command_line(lab, outputs["regression.ipynb"].saved)
    lines = done.stdout.splitlines()
    assert lines[0] == "verdict: not verified", done.stdout + done.stderr
    assert f"--local-issuer {backend.url} " in lines[1], lines  # the one flag it needs
    assert done.returncode == 1


def test_an_opened_output_is_not_marked_modified_so_autosave_keeps_it_as_attested(page, outputs):
    name = outputs["regression.ipynb"].saved.split("/")[-1]  # the tab shows the file name
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=name).click()
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current", has_text=name)
    tab.wait_for()
    # opened without a kernel: starting one would rewrite the kernelspec and mark it modified
    page.locator("#jp-main-statusbar", has_text="No Kernel").wait_for()

    def modified() -> bool:
        return "jp-mod-dirty" in (tab.get_attribute("class") or "")

    with contextlib.suppress(AssertionError):  # give JupyterLab a moment to mark it
        poll(modified, 3, "the output to be marked modified")
    assert not modified()
