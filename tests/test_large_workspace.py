"""A workspace past c.ManateeConfig.large_workspace_size (50 MiB): the submit dialog's
manifest names its largest files and folders, each with the .manateeignore line that
leaves it out, and that line, added, really does."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyterlab_manatee.workspace.largest import ignore_line
from jupyterlab_manatee.workspace.scan import scan_workspace
from tests.conftest import call, write_notebook

MB = 1000 * 1000


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (the scan counts st_size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)
    return path


async def test_a_60_mb_file_is_named_with_its_ignore_line_and_the_line_leaves_it_out(
    jp_fetch, jp_root_dir
):
    write_notebook(jp_root_dir / "study" / "nb.ipynb")
    sparse_file(jp_root_dir / "study" / "data" / "raw" / "scans.bin", 60 * MB)
    (jp_root_dir / "study" / "data" / "small.csv").write_text("a,b\n1,2\n")

    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "study/nb.ipynb"})

    assert code == 200, reply
    assert reply["ignore_file"] == ".manateeignore"
    named = {item["path"]: item for item in reply["largest"]}
    assert named["data/raw/scans.bin"] == {
        "path": "data/raw/scans.bin",
        "kind": "file",
        "size": 60 * MB,
        "ignore_line": "/data/raw/scans.bin",
    }
    assert named["data/raw/"]["ignore_line"] == "/data/raw/"
    assert named["data/"]["size"] == 60 * MB + 8
    assert reply["largest"][0]["path"] == "data/"  # largest first

    (jp_root_dir / "study" / ".manateeignore").write_text(
        named["data/raw/scans.bin"]["ignore_line"] + "\n"
    )
    code, after = await call(jp_fetch, "manifest", method="POST", body={"path": "study/nb.ipynb"})

    assert code == 200, after
    assert "data/raw/scans.bin" not in [f["path"] for f in after["files"]]
    assert {
        "path": "data/raw/scans.bin",
        "reason": "matches .manateeignore pattern '/data/raw/scans.bin'",
    } in after["excluded"]
    assert after["largest"] == []  # now under 50 MiB


async def test_a_workspace_under_the_threshold_names_nothing(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "small" / "nb.ipynb")
    sparse_file(jp_root_dir / "small" / "data.bin", 40 * MB)

    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "small/nb.ipynb"})

    assert code == 200, reply
    assert reply["largest"] == []


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("a*b.bin", "/a\\*b.bin"),
        ("run[1]?.csv", "/run\\[1\\]\\?.csv"),
        ("#notes.txt", "/#notes.txt"),
        ("!important.bin", "/!important.bin"),
        ("trailing ", "/trailing\\ "),
        ("back\\slash.bin", "/back\\\\slash.bin"),
    ],
)
def test_an_ignore_line_leaves_out_exactly_that_file_whatever_its_name(tmp_path, name, line):
    folder = tmp_path / "ws"
    write_notebook(folder / "nb.ipynb")
    (folder / name).write_text("x")
    (folder / "other.bin").write_text("y")  # a pattern that leaks would take this too
    assert ignore_line(name, is_dir=False) == line

    (folder / ".manateeignore").write_text(line + "\n")
    manifest = scan_workspace(folder / "nb.ipynb", root_dir=tmp_path, exclude=[])

    shipped = [entry.path for entry in manifest.files]
    assert name not in shipped
    assert "other.bin" in shipped


def test_a_name_with_a_line_break_has_no_ignore_line():
    assert ignore_line("two\nlines.bin", is_dir=False) is None


def test_a_folder_line_leaves_out_all_it_holds(tmp_path):
    folder = tmp_path / "ws"
    write_notebook(folder / "nb.ipynb")
    (folder / "out" / "deep").mkdir(parents=True)
    (folder / "out" / "deep" / "x.bin").write_text("x")
    (folder / "outside.bin").write_text("y")
    (folder / ".manateeignore").write_text(ignore_line("out", is_dir=True) + "\n")

    manifest = scan_workspace(folder / "nb.ipynb", root_dir=tmp_path, exclude=[])

    assert [entry.path for entry in manifest.files] == ["nb.ipynb", "outside.bin"]
    assert [entry.path for entry in manifest.excluded] == [".manateeignore", "out/"]
