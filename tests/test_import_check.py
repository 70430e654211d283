"""The dry run warns about imports the TEE's image lacks and the notebook does not install
(the real image has no xgboost nor Google libraries: such a job fails at that import)."""

from __future__ import annotations

import nbformat

from jupyterlab_manatee.workspace.import_check import import_warnings, imports, installed_packages
from tests.conftest import call, write_notebook


def _nb(*cells: str) -> dict:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# title")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    return notebook


def test_an_import_missing_from_the_image_is_warned_with_its_cell_and_text():
    warnings = import_warnings(
        _nb("import pandas", "from xgboost import XGBRegressor"), "a/nb.ipynb"
    )
    assert warnings == [
        {
            "path": "a/nb.ipynb",
            "cell": 2,
            "text": "from xgboost import XGBRegressor",
            "message": "The TEE's image has no module 'xgboost' and the notebook does not "
            "install it: add '%pip install xgboost' to its first cell, or stage 2 fails at "
            "this import.",
        }
    ]


def test_image_modules_and_the_standard_library_are_not_warned():
    notebook = _nb("import os, json\nimport numpy as np\nfrom sklearn.metrics import r2_score")
    assert import_warnings(notebook, "nb.ipynb") == []


def test_an_install_cell_anywhere_in_the_notebook_silences_the_warning():
    notebook = _nb("from xgboost import XGBRegressor", "!pip install xgboost > /dev/null")
    assert import_warnings(notebook, "nb.ipynb") == []


def test_google_cloud_storage_is_missing_though_protobuf_makes_google_importable():
    [warning] = import_warnings(_nb("from google.cloud import storage"), "nb.ipynb")
    assert "'%pip install google-cloud-storage'" in warning["message"]


def test_installing_google_cloud_storage_covers_its_import():
    notebook = _nb("%pip install google-cloud-storage\nfrom google.cloud import storage")
    assert import_warnings(notebook, "nb.ipynb") == []


def test_a_module_of_the_workspace_itself_is_not_warned():
    notebook = _nb("import helpers\nfrom mylib.core import f")
    assert import_warnings(notebook, "nb.ipynb", ["helpers.py", "mylib/core.py"]) == []


def test_install_lines_name_packages_without_options_specifiers_or_redirects():
    line = "!pip install -q google-auth 'xgboost-cpu>=2.1; sys_platform == \"linux\"' > /dev/null"
    assert installed_packages(line) == ["google-auth", 'xgboost-cpu>=2.1; sys_platform == "linux"']


def test_imports_inside_blocks_and_after_magics_are_found():
    source = "%matplotlib inline\nif True:\n    %pip install x\n    import scipy.stats as st"
    assert imports(source) == [("scipy.stats", "import scipy.stats as st")]


async def test_the_dry_run_manifest_carries_the_import_warning(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "work" / "nb.ipynb", "import xgboost")
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "work/nb.ipynb"})
    assert code == 200, reply
    assert [(w["path"], w["cell"], w["text"]) for w in reply["warnings"]] == [
        ("work/nb.ipynb", 1, "import xgboost")
    ]


async def test_a_notebook_that_installs_what_it_imports_has_no_warnings(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "work" / "nb.ipynb", "%pip install xgboost\nimport xgboost")
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "work/nb.ipynb"})
    assert code == 200, reply
    assert reply["warnings"] == []
