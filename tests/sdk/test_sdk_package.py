"""The sdk/ folder travels with notebooks: pure Python, self-contained, light to import."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import sdk

SDK_DIR = Path(sdk.__file__).parent
# Only these may be imported from outside the package (all lazily, except the stdlib).
ALLOWED_THIRD_PARTY = {"google", "requests", "pandas"}


def test_reading_local_data_imports_no_google_library(tmp_path: Path) -> None:
    (tmp_path / "insurance.csv").write_text("a,b\n1,2\n")
    script = (
        "import sys, sdk\n"
        "repo = sdk.DataRepo('.', 'gs://stage2-bucket')\n"
        "assert repo.get_data('insurance.csv') == 'a,b\\n1,2\\n'\n"
        "print(repo.read_csv('insurance.csv').shape)\n"
        "print(sorted(m for m in sys.modules if m == 'google' or m.startswith('google.')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SDK_DIR.parent), "EXECUTION_STAGE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shape, google_modules = done.stdout.splitlines()
    assert shape == "(1, 2)"
    assert "google.cloud.storage" not in google_modules
    assert google_modules == "[]"


def test_the_package_is_pure_python() -> None:
    files = [p for p in SDK_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    assert {p.suffix for p in files} == {".py"}


def test_the_package_imports_only_itself_the_stdlib_and_its_three_libraries() -> None:
    outside = set()
    for path in SDK_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                outside.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                outside.add(node.module.split(".")[0])
    third_party = outside - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party <= ALLOWED_THIRD_PARTY
    assert "jupyterlab_manatee" not in outside
