"""Browser end-to-end support: Debian's chromium driven by playwright against a real
`jupyter lab` (the installed extension, prebuilt) talking to the local ManaTEE backend.

Nothing is faked: the JupyterLab server is a subprocess started as a user would, with its
own settings, workspaces, runtime and state folders under the test's temporary folder.
Screenshots go to ``tests/browser/artifacts/`` (gitignored; ``MANATEE_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import LOCAL_API_TOKEN, LOCAL_PIN_ENV, free_port, notebook_text, wait_until

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MANATEE_ARTIFACTS", REPO / "tests" / "browser" / "artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: JupyterLab's news/update toast covers the notifications this suite reads.
NO_NEWS = {"fetchNews": "false", "checkForUpdates": False}
#: Notebooks start their kernel without asking which one (run_all_cells needs it).
NOTEBOOK_SETTINGS = {"autoStartDefaultKernel": True}
PANEL_TAB = 'li.lm-TabBar-tab[data-id="jp-manatee-shield"]'
TUTORIALS = REPO / "tutorials"
#: the real (stage-2) tables the local backend hands to stage-2 runs (``./dev run``'s default)
STAGE2_DATA = REPO / "examples-data" / "stage2"
#: the tutorial's notebooks, in the order the walkthrough submits them
TUTORIAL_NOTEBOOKS = ("insurance.ipynb", "regression.ipynb")
CURRENT_NOTEBOOK = "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)"
#: the checkout's own frontend build (``npm run build:prod``), served before the installed
#: one: a worktree tests its own code, not the environment's
CHECKOUT_LABEXTENSION = REPO / "jupyterlab_manatee" / "labextension"
LOCAL_VERDICT = "local run, no hardware TEE"


def require_browser() -> None:
    """Skip without chromium on a developer machine; under CI a missing browser fails."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message + "; CI must run them", pytrace=False)
        pytest.skip(message)


# one way to find ports and to poll, shared with the other tests that start processes
poll = wait_until


class LabServer:
    """`jupyter lab` in a subprocess, isolated under ``home``; REST helpers with its token."""

    def __init__(
        self,
        home: Path,
        root: Path,
        api_url: str | None,
        creator: str = "tester",
        local_issuers: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.root = root
        self.api_url = api_url
        self.creator = creator
        #: issuers trusted as "local run, no hardware TEE" (``./dev run`` gives the backend's URL)
        self.local_issuers = list(local_issuers)
        #: extra environment of the server and its kernels (``./dev run`` sets EXECUTION_STAGE=1)
        self.env = dict(env or {})
        self.token = f"browser-{os.getpid()}-{free_port()}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        self.process: subprocess.Popen | None = None
        self.log_path = home / "jupyter-lab.log"

    def start(self) -> LabServer:
        settings = self.home / "settings"
        notification = (
            settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        )
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text(json.dumps(NO_NEWS))
        tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps(NOTEBOOK_SETTINGS))
        env = {
            key: value
            for key, value in os.environ.items()
            if key != "DATA_CLEAN_ROOM_HOST" and not key.startswith("JUPYTER")
        }
        env.update(LOCAL_PIN_ENV)
        env["USER_TOKEN"] = LOCAL_API_TOKEN  # the tests' local backends require it
        env.update(
            MANATEE_CREATOR=self.creator,
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
        )
        env.update(self.env)
        if self.api_url:
            env["DATA_CLEAN_ROOM_HOST"] = self.api_url
        command = [
            str(Path(sys.executable).with_name("jupyter")),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--ManateeConfig.state_dir={self.home / 'state'}",
            f"--ManateeConfig.temp_dir={self.home}",
            "--LabApp.news_url=None",
            # window.jupyterapp: tests run JupyterLab's own commands (notify, change-theme)
            "--LabApp.expose_app_in_browser=True",
        ]
        command += [f"--ManateeConfig.local_issuers={issuer}" for issuer in self.local_issuers]
        if (CHECKOUT_LABEXTENSION / "package.json").exists():
            extensions = self.home / "labextensions"
            extensions.mkdir(exist_ok=True)
            link = extensions / "jupyterlab-manatee"
            if not link.is_symlink():
                link.symlink_to(CHECKOUT_LABEXTENSION, target_is_directory=True)
            command.append(f"--LabApp.extra_labextensions_path={extensions}")
        if os.geteuid() == 0:
            command.append("--allow-root")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            html = poll(self._lab_page, 60, "jupyter lab to answer")
        except AssertionError:
            self.stop()
            raise AssertionError(f"jupyter lab did not start:\n{self.log()}") from None
        if "jupyterlab-manatee" not in html:
            self.stop()
            raise AssertionError(
                "the jupyterlab-manatee frontend is not installed in this environment "
                "(pip install -e . builds and installs it)"
            )
        return self

    def _lab_page(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"jupyter lab exited:\n{self.log()}")
        response = self.session.get(f"{self.url}/lab", timeout=5)
        return response.text if response.ok else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    # --- the manatee routes, for setting up and checking what the browser did ---------

    def call(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}/manatee/{route}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def submit(self, path: str, timeout: float = 120, wait: bool = True) -> str:
        """The job's uuid; a submission queued behind an earlier job's image build is
        waited for until the queue has sent it (``wait``), else its queue id is returned."""
        reply = self.call("POST", "jobs", json={"path": path, "filename": path.split("/")[-1]})
        if not reply.get("queued"):
            return reply["uuid"]
        if not wait:
            return reply["queue_id"]

        def sent() -> str | None:
            entries = self.call("GET", "queue")["queued"]
            entry = next(e for e in entries if e["id"] == reply["queue_id"])
            assert entry["state"] != "failed", entry
            return entry["uuid"] if entry["state"] == "sent" else None

        return poll(sent, timeout, f"queued submission {reply['queue_id']} to be sent")

    def jobs(self) -> list[dict[str, Any]]:
        return self.call("GET", "jobs", params={"page_size": 100})["jobs"]

    def wait_for_job(self, uuid: str, timeout: float = 90) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            job = next((j for j in self.jobs() if j["uuid"] == uuid), None)
            return job if job and job["job_status"] not in (0, 1, 3, 4) else None

        return poll(ended, timeout, f"job {uuid} to end")


def write_notebook(path: Path, *sources: str) -> Path:
    """A Python 3 notebook at ``path`` with one code cell per source."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(*sources))
    return path


def copy_tutorials(root: Path) -> Path:
    shutil.copytree(TUTORIALS, root)
    return root


def local_backend(data_dir: Path, **options: Any) -> Any:
    """A local backend for a test module: the token the labs send, builds started as soon
    as a slot is free (``reconcile_interval=0``), and ``options``."""
    from jupyterlab_manatee.local_backend import LocalBackend

    return LocalBackend(data_dir=data_dir, token=LOCAL_API_TOKEN, reconcile_interval=0, **options)


@contextlib.contextmanager
def tutorial_backend(data_dir: Path) -> Iterator[Any]:
    """The local backend as ``./dev run`` starts it: the real tables of
    ``examples-data/stage2`` are copied into each stage-2 run, never shown to JupyterLab."""
    from jupyterlab_manatee.local_backend import LocalBackend

    backend = LocalBackend(
        data_dir=data_dir,
        max_running=2,
        job_timeout=300,
        stage2_data_dir=STAGE2_DATA,
        token=LOCAL_API_TOKEN,
        reconcile_interval=0,
    )
    with backend.running_in_thread() as running:
        yield running


def tutorial_lab_options(backend_url: str) -> dict[str, Any]:
    """``./dev run``'s JupyterLab settings: stage 1, and the backend's tokens trusted as a
    local run (the tokens' issuer is the backend's URL)."""
    return {"local_issuers": [backend_url], "env": {"EXECUTION_STAGE": "1"}}


def open_lab(
    browser: Any,
    server: LabServer,
    width: int = 1400,
    height: int = 900,
    prepare: Callable[[Any], None] | None = None,
) -> Any:
    """A fresh browser page on /lab (workspace reset), shell ready, shield panel open;
    ``prepare(context)`` runs before the page loads (routes, init scripts)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    if prepare is not None:
        prepare(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server.url}/lab?reset&token={server.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.click(PANEL_TAB)
    page.wait_for_selector("#jp-manatee-shield:not(.lm-mod-hidden)")
    return page


def close_page(page: Any) -> None:
    page.context.close()


def toast(page: Any, pattern: str) -> Any:
    """The notification toast whose text matches ``pattern`` (a regular expression)."""
    locator = page.locator(".Toastify__toast").filter(has_text=re.compile(pattern))
    locator.first.wait_for()
    return locator.first


def dismiss_toasts(page: Any) -> None:
    """Close every notification toast (they cover the panel's lower part); the
    notifications stay in JupyterLab's notification centre."""
    for button in page.locator(".Toastify__toast .jp-Notification-Toast-Close").all():
        with contextlib.suppress(Exception):  # it may be gone by itself meanwhile
            button.click(timeout=1_000)
    page.mouse.move(0, 0)  # a toast under the pointer never closes by itself
    page.wait_for_function("() => !document.querySelector('.Toastify__toast')")


def job_item(page: Any, job_id: int) -> Any:
    return page.locator(f'li.jp-manatee-Job[data-job-id="{job_id}"]')


@dataclass
class Submission:
    """What the manifest dialog showed before a submission from the panel, and the job."""

    notebook: str
    uuid: str
    file_count: int
    files: list[str]
    excluded: list[str]


def submit_from_panel(page: Any, notebook: str) -> Submission:
    """Click the notebook's Submit in the panel's Sources, read the manifest dialog, confirm
    it, and take the new job from the panel's job list (what the user acts on next)."""
    jobs = page.locator("li.jp-manatee-Job")
    before = set(jobs.evaluate_all("els => els.map(e => e.dataset.jobUuid)"))
    source = page.locator(f'li.jp-manatee-Source[data-path="{notebook}"]')
    source.get_by_role("button", name=f"Submit {notebook}").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Submit {notebook} to ManaTEE?").wait_for()
    manifest = dialog.locator(".jp-manatee-Manifest")
    file_count = int(manifest.locator('[data-manifest="file-count"]').inner_text())
    files = manifest.locator(".jp-manatee-Manifest-files li code").all_text_contents()
    excluded = manifest.locator(".jp-manatee-Manifest-excluded td code").all_text_contents()
    dialog.get_by_role("button", name="Submit").click()
    dialog.wait_for(state="detached")

    def new_job() -> str | None:
        error = source.locator(".jp-manatee-Error")
        if error.count():
            raise AssertionError(f"submitting {notebook} failed: {error.inner_text()}")
        listed = jobs.evaluate_all(
            """els => els.map(e => [e.dataset.jobUuid,
                e.querySelector('.jp-manatee-Job-name').textContent])"""
        )
        return next((u for u, name in listed if name == notebook and u not in before), None)

    uuid = poll(new_job, 60, f"the job of {notebook} in the panel's list")
    return Submission(notebook, uuid, file_count, files, excluded)


def wait_until_finished(page: Any, uuid: str, timeout: float = 120) -> int:
    """Wait (without clicking Refresh: the panel polls) for the job's Finished chip; its id."""
    item = page.locator(f'li.jp-manatee-Job[data-job-uuid="{uuid}"]')
    item.wait_for()
    item.locator(".jp-manatee-Chip", has_text="Finished").wait_for(timeout=timeout * 1000)
    return int(item.get_attribute("data-job-id"))


def open_output(page: Any, job_id: int) -> tuple[str, Any]:
    """Click the job's Output; the saved name and the notebook panel it opened in."""
    job_item(page, job_id).get_by_role("button", name=f"Output of job #{job_id}").click()
    notification = toast(page, f"Saved the output of job #{job_id} as ")
    match = re.search(r" as (\S+\.ipynb)", notification.inner_text())
    assert match, notification.inner_text()
    saved = match.group(1)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text=saved.split("/")[-1]).wait_for()
    notebook = page.locator(CURRENT_NOTEBOOK)
    notebook.locator(".jp-OutputArea-output").first.wait_for()
    return saved, notebook


def open_report(page: Any, job_id: int) -> Any:
    """Click the job's Report; the report inside its dialog."""
    dismiss_toasts(page)  # a toast over the button would delay the click until it goes
    job_item(page, job_id).get_by_role("button", name=f"Report of job #{job_id}").click()
    report = page.locator(".jp-Dialog .jp-manatee-Report")
    report.wait_for()
    return report


def close_dialog(page: Any) -> None:
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")


def output_text(notebook: Any) -> str:
    """The text of every output of a notebook panel, joined (also of cells scrolled out
    of view, which JupyterLab does not render)."""
    return "\n".join(notebook.locator(".jp-OutputArea-output").all_text_contents())


def run_all_cells(page: Any, name: str, timeout: float = 120) -> Any:
    """Open a notebook from the file browser, run all its cells in its kernel, and wait
    until every code cell has run; the notebook panel."""
    # the launcher lists the kernels once JupyterLab knows them: a notebook opened before
    # that comes up without a kernel
    page.locator(".jp-LauncherCard", has_text="Python 3").first.wait_for(state="attached")
    exact_name = page.locator(
        ".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")
    )
    page.locator(".jp-DirListing-item").filter(has=exact_name).dblclick()
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    tab.filter(has_text=name).wait_for()
    notebook = page.locator(CURRENT_NOTEBOOK)
    status = page.locator("#jp-main-statusbar", has_text=re.compile(r"Python 3 .*\| Idle"))
    status.wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile("^Run All Cells")).first.click()
    page.wait_for_function(
        r"""(selector) => {
            const prompts = [...document.querySelectorAll(
                selector + ' .jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent));
        }""",
        arg=CURRENT_NOTEBOOK,
        timeout=timeout * 1000,
    )
    return notebook


def scroll_to(locator: Any) -> None:
    """Scroll the element to the top of its scrolling container."""
    locator.evaluate("el => el.scrollIntoView({block: 'start'})")
