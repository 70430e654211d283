"""The HTTP layer depends on the backend's interface, never on the backend itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jupyterlab_manatee.local_backend as local_backend

PACKAGE = Path(local_backend.__path__[0])


def test_importing_the_http_layer_does_not_import_the_backend():
    code = (
        "import sys, jupyterlab_manatee.local_backend.app\n"
        "print('jupyterlab_manatee.local_backend.backend' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parents[1],
    )
    assert result.stdout == "False\n"


def test_the_http_layer_names_the_backend_in_no_import_not_even_for_typing():
    tree = ast.parse((PACKAGE / "app.py").read_text())
    modules = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "backend" not in modules
