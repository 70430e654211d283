"""What `pip install .` gives: the server extension enabled by itself, the sdk package,
the jupyter-config file and the `manatee-local` command."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_server_extension_is_listed_enabled_and_ok():
    jupyter = Path(sys.executable).with_name("jupyter")
    result = subprocess.run(
        [str(jupyter), "server", "extension", "list"], capture_output=True, text=True, check=True
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert re.search(r"jupyterlab_manatee\s+enabled", text), text
    assert re.search(r"jupyterlab_manatee [\d.]+\s+OK", text), text


def test_wheel_ships_the_extension_the_sdk_the_config_and_the_command(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=REPO,
        check=True,
    )
    (wheel,) = tmp_path.glob("jupyterlab_manatee-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jupyterlab_manatee/handlers.py" in names
    assert "jupyterlab_manatee/local_backend/app.py" in names
    assert "sdk/__init__.py" in names
    # the TEE image's package and module lists (the import warning reads the latter)
    assert "jupyterlab_manatee/tee-image-packages.txt" in names
    assert "jupyterlab_manatee/tee-image-modules.txt" in names
    assert any(
        n.endswith(".data/data/etc/jupyter/jupyter_server_config.d/jupyterlab_manatee.json")
        for n in names
    )
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "manatee-local = jupyterlab_manatee.local_backend.cli:main" in (
        zipfile.ZipFile(wheel).read(entry_points).decode()
    )
