"""The dry run warns when a notebook's code refers to paths outside its folder: only the
folder is shipped, so ``../data`` read in stage 1 does not exist in the TEE."""

from __future__ import annotations

import nbformat
import pytest

from tests.conftest import call, write_notebook


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def message(cell: int, text: str) -> str:
    return (
        f"Code cell {cell} refers to {text!r}, outside the notebook's folder: only that "
        "folder is sent, so this path will not exist in the TEE; move the files it needs "
        "into the notebook's folder."
    )


async def warnings_for(jp_fetch, jp_root_dir, *sources: str) -> list[dict]:
    """The manifest's warnings for ``analysis/nb.ipynb`` holding these code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = jp_root_dir / "analysis" / "nb.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb))
    code, reply = await call(
        jp_fetch, "manifest", method="POST", body={"path": "analysis/nb.ipynb"}
    )
    assert code == 200, reply
    return reply["warnings"]


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("df = pd.read_csv('../data/x.csv')", "../data/x.csv"),
        ('path = base + "../" + name', "../"),
        ("path = os.path.join('..', 'data', 'x.csv')", ".."),
        ("path = Path('..') / 'data'", ".."),
        ("open(r'..\\data\\x.csv')", "..\\data\\x.csv"),
        ("open('data/../../x.csv')", "data/../../x.csv"),
    ],
)
async def test_each_form_of_a_parent_reference_is_warned_about(
    jp_fetch, fault_server, jp_root_dir, source, text
):
    assert await warnings_for(jp_fetch, jp_root_dir, source) == [
        {"path": "analysis/nb.ipynb", "cell": 1, "text": text, "message": message(1, text)}
    ]


@pytest.mark.parametrize(
    "source",
    [
        "df = pd.read_csv('./data/x.csv')",
        "df = pd.read_csv('data/x.csv')",
        "r = requests.get('https://x/../y')",
        "r = requests.get('https://x/../../../y')",
        "open('data/../x.csv')",
        "print('...')",
        "# a comment about ../data, not a string\nx = 1",
    ],
)
async def test_paths_inside_the_folder_and_urls_are_not_warned_about(
    jp_fetch, fault_server, jp_root_dir, source
):
    assert await warnings_for(jp_fetch, jp_root_dir, source) == []


async def test_the_cell_is_counted_among_code_cells_from_one(jp_fetch, fault_server, jp_root_dir):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Data comes from '../data/x.csv'"),
        nbformat.v4.new_code_cell("import pandas as pd"),
        nbformat.v4.new_markdown_cell("Now read it"),
        nbformat.v4.new_code_cell("df = pd.read_csv('../data/x.csv')"),
    ]
    path = write_notebook(jp_root_dir / "analysis" / "nb.ipynb")
    path.write_text(nbformat.writes(nb))
    code, reply = await call(
        jp_fetch, "manifest", method="POST", body={"path": "analysis/nb.ipynb"}
    )
    assert (code, [(w["cell"], w["text"]) for w in reply["warnings"]]) == (
        200,
        [(2, "../data/x.csv")],
    )


async def test_magic_and_shell_lines_do_not_hide_the_rest_of_the_cell(
    jp_fetch, fault_server, jp_root_dir
):
    """Shell text is not Python: an unbalanced quote there must not swallow the code."""
    source = "%matplotlib inline\n!echo '''\ndf = pd.read_csv('../x.csv')"
    warnings = await warnings_for(jp_fetch, jp_root_dir, source)
    assert [w["text"] for w in warnings] == ["../x.csv"]


async def test_code_that_does_not_tokenize_still_gives_a_manifest(
    jp_fetch, fault_server, jp_root_dir
):
    warnings = await warnings_for(
        jp_fetch, jp_root_dir, "x = '../a.csv'\ny = (\n", "open('../b.csv')"
    )
    assert [(w["cell"], w["text"]) for w in warnings] == [(1, "../a.csv"), (2, "../b.csv")]


async def test_a_notebook_that_is_not_json_gives_no_warning_and_no_error(
    jp_fetch, fault_server, jp_root_dir
):
    (jp_root_dir / "broken.ipynb").write_text("not json '../x.csv'")
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "broken.ipynb"})
    assert (code, reply["warnings"]) == (200, [])


async def test_a_notebook_at_the_root_is_named_by_its_file_name(
    jp_fetch, fault_server, jp_root_dir
):
    write_notebook(jp_root_dir / "nb.ipynb", source="open('../x.csv')")
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "nb.ipynb"})
    assert (code, [w["path"] for w in reply["warnings"]]) == (200, ["nb.ipynb"])


async def test_a_submission_is_not_refused_for_a_warning(jp_fetch, fault_server, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb", source="open('../x.csv')")
    code, reply = await call(
        jp_fetch, "jobs", method="POST", body={"path": "nb.ipynb", "filename": "nb.ipynb"}
    )
    assert (code, reply["code"]) == (200, 0)
