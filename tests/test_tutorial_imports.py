"""Every tutorial runs in the TEE's real image: each import is in the image's package list
or installed by the notebook itself, as upstream's notebooks install theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyterlab_manatee.workspace.import_check import import_warnings

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"


@pytest.mark.parametrize("name", sorted(p.name for p in TUTORIALS.glob("*.ipynb")))
def test_every_tutorial_import_is_in_the_image_or_installed_by_the_notebook(name: str):
    notebook = json.loads((TUTORIALS / name).read_text())
    workspace = [str(p.relative_to(TUTORIALS)) for p in TUTORIALS.rglob("*") if p.is_file()]
    assert import_warnings(notebook, name, [*workspace, "sdk/__init__.py"]) == []


def test_the_tutorials_are_checked():
    assert {p.name for p in TUTORIALS.glob("*.ipynb")} == {
        "getting-started.ipynb",
        "insurance.ipynb",
        "regression.ipynb",
    }
