"""The manifest reply stays small: at most 1000 files are listed, and it says when more
would be shipped (the upstream frontend parses only the first chunk of a reply)."""

from __future__ import annotations

from tests.conftest import call, write_notebook


async def test_a_manifest_of_1001_files_lists_1000_and_says_it_is_truncated(jp_fetch, jp_root_dir):
    folder = jp_root_dir / "many"
    write_notebook(folder / "nb.ipynb")
    for i in range(1000):
        (folder / f"part-{i:04d}.csv").write_text("x\n")
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "many/nb.ipynb"})
    assert code == 200, reply
    assert reply["file_count"] > 1000
    assert len(reply["files"]) == 1000
    assert reply["files_truncated"] is True


async def test_a_small_manifest_lists_every_file(jp_fetch, jp_root_dir):
    folder = jp_root_dir / "few"
    write_notebook(folder / "nb.ipynb")
    for i in range(10):
        (folder / f"part-{i:04d}.csv").write_text("x\n")
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": "few/nb.ipynb"})
    assert code == 200, reply
    assert len(reply["files"]) == reply["file_count"] > 11
    assert reply["files_truncated"] is False
