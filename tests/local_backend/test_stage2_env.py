"""Stage-2 runs in an environment with the TEE image's packages (``--stage2-python``): a
notebook that would fail in the real image for want of a package fails here the same way.

These need that environment: ``./dev test`` makes it (``.manatee-stage2``, from
``jupyterlab_manatee/tee-image-packages.txt``) and passes its python as
``MANATEE_STAGE2_PYTHON``; without it they are skipped."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from lb_support import Api, notebook_bytes, workspace_archive

from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.local_backend.runner import interpreter_for
from jupyterlab_manatee.workspace import tee_image

STAGE2_PYTHON = os.environ.get("MANATEE_STAGE2_PYTHON", "")
needs_env = pytest.mark.skipif(
    not STAGE2_PYTHON, reason="MANATEE_STAGE2_PYTHON (the TEE-like environment) is not set"
)


def _wheel() -> bytes:
    """``tiny-0.1-py3-none-any.whl``: one module, ``tiny.VALUE = 42`` (no network needed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("tiny.py", "VALUE = 42\n")
        wheel.writestr(
            "tiny-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: tiny\nVersion: 0.1\n"
        )
        wheel.writestr(
            "tiny-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(
            "tiny-0.1.dist-info/RECORD",
            "tiny.py,,\ntiny-0.1.dist-info/METADATA,,\ntiny-0.1.dist-info/WHEEL,,\n"
            "tiny-0.1.dist-info/RECORD,,\n",
        )
    return buffer.getvalue()


def _run(
    start_backend: Callable[..., LocalBackend] | LocalBackend,
    notebook: bytes,
    files: dict[str, bytes] | None = None,
    **kwargs: Any,
) -> list[str]:
    """Run ``notebook`` as a stage-2 job; the text of each cell's outputs."""
    backend = start_backend if isinstance(start_backend, LocalBackend) else start_backend(**kwargs)
    api = Api(backend.url)
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": notebook, **(files or {})}))
    job = api.wait(job_uuid, {2, 5, 6, 7, 8, 9}, timeout=120)
    assert job["job_status"] == 5, job
    signed = api.download(job["id"])["signed_url"]
    executed = nbformat.reads(requests.get(signed, timeout=30).text, as_version=4)
    return [json.dumps(cell.get("outputs", [])) for cell in executed.cells]


@needs_env
def test_importing_xgboost_without_installing_it_fails_in_the_tee_like_environment(
    start_backend,
):
    [imported] = _run(start_backend, notebook_bytes("import xgboost"), stage2_python=STAGE2_PYTHON)
    assert "ModuleNotFoundError" in imported and "No module named 'xgboost'" in imported


@needs_env
def test_a_notebooks_pip_install_serves_its_own_run_only(start_backend):
    """As in the TEE (a fresh VM per job), what one job installs is gone for the next."""
    backend = start_backend(stage2_python=STAGE2_PYTHON)
    installs = notebook_bytes(
        "%pip install --no-index --quiet ./tiny-0.1-py3-none-any.whl",
        "import tiny\nprint(tiny.VALUE)",
    )
    _, printed = _run(backend, installs, {"tiny-0.1-py3-none-any.whl": _wheel()})
    [imported] = _run(backend, notebook_bytes("import tiny"))
    assert '"42\\n"' in printed
    assert "No module named 'tiny'" in imported


@needs_env
def test_the_image_packages_are_there_at_their_pinned_versions(start_backend):
    source = "import pandas, sklearn\nprint(pandas.__version__, sklearn.__version__)"
    [printed] = _run(start_backend, notebook_bytes(source), stage2_python=STAGE2_PYTHON)
    packages = tee_image.image_packages()
    assert f"{packages['pandas']} {packages['scikit-learn']}" in printed


@needs_env
def test_the_modules_file_lists_what_the_environment_provides():
    listed = [
        line
        for line in tee_image.MODULES_FILE.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert listed == tee_image.list_modules(STAGE2_PYTHON)


def test_a_stage2_python_without_the_executors_packages_is_refused(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True
    )
    with pytest.raises(ValueError, match="needs ipykernel, nbclient and nbformat"):
        interpreter_for(tmp_path / "bare" / "bin" / "python")


def test_the_default_stage2_python_is_the_backends_own(start_backend):
    [imported] = _run(start_backend, notebook_bytes("import xgboost\nprint('ok')"))
    assert '"ok\\n"' in imported
