"""The prebuilt frontend in the wheel: `pip install` of the wheel gives JupyterLab the shield
sidebar with no Node, because everything JupyterLab loads is in the wheel's shared data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jupyterlab_manatee import __version__, _jupyter_labextension_paths

REPO = Path(__file__).resolve().parent.parent
SHARE = "share/jupyter/labextensions/jupyterlab-manatee/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=REPO,
        check=True,
    )
    (path,) = out.glob("jupyterlab_manatee-*.whl")
    return zipfile.ZipFile(path)


def shared(wheel: zipfile.ZipFile) -> dict[str, str]:
    """The extension's files in the wheel, by path below its labextension folder."""
    found = {}
    for name in wheel.namelist():
        _, sep, rest = name.partition(".data/data/" + SHARE)
        if sep:
            found[rest] = name
    return found


def test_wheel_ships_the_built_extension_where_jupyterlab_looks(wheel):
    files = shared(wheel)
    assert {"package.json", "install.json", "static/style.js"} <= set(files)
    meta = json.loads(wheel.read(files["package.json"]))
    assert meta["name"] == "jupyterlab-manatee"
    entry = meta["jupyterlab"]["_build"]["load"]
    assert entry.startswith("static/remoteEntry.") and entry in files
    install = json.loads(wheel.read(files["install.json"]))
    assert install["packageName"] == "jupyterlab_manatee"


def test_wheel_ships_no_sources_node_modules_or_second_copy(wheel):
    names = wheel.namelist()
    assert not [n for n in names if "node_modules" in n or n.endswith((".ts", ".tsx"))]
    assert not [n for n in names if n.startswith("jupyterlab_manatee/labextension/")]


def test_the_frontend_version_follows_the_python_package():
    meta = json.loads((REPO / "labextension" / "package.json").read_text())
    assert meta["version"] == __version__


def test_the_labextension_path_names_the_frontend_package():
    (path,) = _jupyter_labextension_paths()
    meta = json.loads((REPO / "labextension" / "package.json").read_text())
    assert path["dest"] == meta["name"]
    assert (REPO / "jupyterlab_manatee" / path["src"]) == (
        REPO / "labextension" / meta["jupyterlab"]["outputDir"]
    ).resolve()


def test_installed_frontend_is_listed_enabled_and_ok():
    jupyter = Path(sys.executable).with_name("jupyter")
    result = subprocess.run(
        [str(jupyter), "labextension", "list"], capture_output=True, text=True, check=True
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert re.search(r"jupyterlab-manatee v[\d.]+\s+enabled\s+OK", text), text
