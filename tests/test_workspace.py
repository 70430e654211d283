"""Workspace resolution, manifest and archive: real folders, real tar files, no mocks."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from jupyterlab_manatee.config import DEFAULT_EXCLUDES
from jupyterlab_manatee.errors import BadRequest, ManateeError, NotFound, WorkspaceTooLarge
from jupyterlab_manatee.workspace.archive import write_archive
from jupyterlab_manatee.workspace.manifest import Excluded, Manifest
from jupyterlab_manatee.workspace.notebook import resolve_notebook
from jupyterlab_manatee.workspace.scan import scan_workspace

TOP = "alice-workspace"
NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def make(root: Path, files: dict[str, bytes | str]) -> None:
    """Create files (parents too); a value ending in '/' path key makes an empty folder."""
    for rel, content in files.items():
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    contents = tmp_path / "contents"
    contents.mkdir()
    return contents


def scan(
    root: Path, nb: str = "nb.ipynb", exclude: list[str] | None = None, **kw: object
) -> Manifest:
    notebook = resolve_notebook(root, nb)
    excl = DEFAULT_EXCLUDES if exclude is None else exclude
    return scan_workspace(notebook, root_dir=root, exclude=list(excl), **kw)  # type: ignore[arg-type]


def archive(manifest: Manifest, dest: Path, **kw: object) -> Path:
    """What the submit path does: write the scanned manifest into a fresh archive file."""
    out = dest / "workspace.tar.gz"
    with open(out, "wb") as f:
        write_archive(manifest, TOP, f, **kw)  # type: ignore[arg-type]
    return out


def names(path: Path) -> list[str]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getnames()


def shipped(m: Manifest) -> list[str]:
    return [f.path for f in m.files]


def reasons(m: Manifest) -> dict[str, str]:
    return {e.path: e.reason for e in m.excluded}


# --- the archive for a notebook in a sub-folder ------------------------------------------


@pytest.fixture
def project(root: Path) -> Path:
    make(
        root,
        {
            "top.txt": "root file",
            "other/x.txt": "sibling tree",
            "proj/sibling.txt": "parent's neighbour",
            "proj/next/nb2.ipynb": NB,
            "proj/analysis/nb.ipynb": NB,
            "proj/analysis/helper.py": "X = 1\n",
            "proj/analysis/data/x.csv": "a,b\n1,2\n",
            "proj/analysis/sub/deep/d.txt": "deep",
            "proj/analysis/results/": "",
        },
    )
    return root


def test_archive_holds_exactly_the_notebooks_folder_under_the_top_folder(
    project: Path, tmp_path: Path
) -> None:
    m = scan(project, "proj/analysis/nb.ipynb")
    assert names(archive(m, tmp_path)) == [
        TOP,
        f"{TOP}/data",
        f"{TOP}/results",
        f"{TOP}/sub",
        f"{TOP}/sub/deep",
        f"{TOP}/data/x.csv",
        f"{TOP}/helper.py",
        f"{TOP}/nb.ipynb",
        f"{TOP}/sub/deep/d.txt",
    ]


def test_manifest_names_the_folder_as_a_contents_path_and_counts_bytes(project: Path) -> None:
    m = scan(project, "proj/analysis/nb.ipynb")
    assert m.folder == (project / "proj/analysis").resolve()
    assert m.folder_path == "proj/analysis"
    assert m.notebook == "nb.ipynb"
    assert m.total_bytes == len(NB) + len("X = 1\n") + len("a,b\n1,2\n") + len("deep")
    assert m.to_json() == {
        "notebook": "nb.ipynb",
        "folder": "proj/analysis",
        "file_count": 4,
        "total_bytes": m.total_bytes,
        "files": [
            {"path": "data/x.csv", "size": 8},
            {"path": "helper.py", "size": 6},
            {"path": "nb.ipynb", "size": len(NB)},
            {"path": "sub/deep/d.txt", "size": 4},
        ],
        "excluded": [],
        "added": [],
    }


def test_notebook_at_the_contents_root_has_an_empty_folder_path(root: Path) -> None:
    make(root, {"nb.ipynb": NB, "a.txt": "a"})
    m = scan(root)
    assert m.folder_path == ""
    assert shipped(m) == ["a.txt", "nb.ipynb"]


def test_archived_bytes_equal_the_source_bytes(root: Path, tmp_path: Path) -> None:
    blob = os.urandom(300_000)
    make(root, {"nb.ipynb": NB, "data/blob.bin": blob, "empty.txt": b""})
    path = archive(scan(root), tmp_path)
    with tarfile.open(path, "r:gz") as tar:
        assert tar.extractfile(f"{TOP}/data/blob.bin").read() == blob  # type: ignore[union-attr]
        assert tar.extractfile(f"{TOP}/empty.txt").read() == b""  # type: ignore[union-attr]
        assert tar.extractfile(f"{TOP}/nb.ipynb").read() == NB  # type: ignore[union-attr]


def test_members_have_neutral_owner_and_keep_mtime_and_permission_bits(
    root: Path, tmp_path: Path
) -> None:
    make(root, {"nb.ipynb": NB, "run.sh": "#!/bin/sh\n", "secret.txt": "s"})
    os.chmod(root / "run.sh", 0o4755)  # setuid must not survive
    os.chmod(root / "secret.txt", 0o640)
    os.utime(root / "secret.txt", (1_600_000_000, 1_600_000_000))
    path = archive(scan(root), tmp_path)
    with tarfile.open(path, "r:gz") as tar:
        run = tar.getmember(f"{TOP}/run.sh")
        secret = tar.getmember(f"{TOP}/secret.txt")
        top = tar.getmember(TOP)
    assert run.isreg() and stat.S_IMODE(run.mode) == 0o755
    assert stat.S_IMODE(secret.mode) == 0o640 and secret.mtime == 1_600_000_000
    assert top.isdir()
    for member in (run, secret, top):
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")


def test_archive_is_a_standard_gzip_tar_that_gnu_tar_lists(project: Path, tmp_path: Path) -> None:
    path = archive(scan(project, "proj/analysis/nb.ipynb"), tmp_path)
    listed = subprocess.run(
        ["tar", "-tzf", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert [name.rstrip("/") for name in listed] == names(path)


def test_archive_top_folder_must_be_a_single_name(root: Path, tmp_path: Path) -> None:
    make(root, {"nb.ipynb": NB})
    m = scan(root)
    for top in ("", "..", "a/b", "/abs"):
        with pytest.raises(BadRequest):
            write_archive(m, top, io.BytesIO())


# --- default exclusions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "left_out", "reason"),
    [
        ({".env": "TOKEN=x"}, ".env", "hidden file"),
        ({".git/config": "[core]"}, ".git/", "hidden folder"),
        (
            {".ipynb_checkpoints/nb-checkpoint.ipynb": NB},
            ".ipynb_checkpoints/",
            "notebook checkpoints",
        ),
        ({"__pycache__/m.cpython-311.pyc": b"\0"}, "__pycache__/", "Python bytecode cache"),
        ({"lib/__pycache__/m.pyc": b"\0"}, "lib/__pycache__/", "Python bytecode cache"),
        ({"node_modules/x/index.js": ""}, "node_modules/", "Node.js packages (node_modules)"),
        ({"venv/bin/python": ""}, "venv/", "virtual environment"),
        ({"env/lib/x.py": ""}, "env/", "virtual environment"),
        ({"tools/pyvenv.cfg": "home = /usr", "tools/x.py": ""}, "tools/", "virtual environment"),
        ({"sub/.venv/pyvenv.cfg": "home = /usr"}, "sub/.venv/", "virtual environment"),
    ],
)
def test_default_exclusion_leaves_out_with_its_reason(
    root: Path, files: dict[str, str], left_out: str, reason: str
) -> None:
    make(root, {"nb.ipynb": NB, **files})
    m = scan(root)
    assert Excluded(left_out, reason) in m.excluded
    assert not [p for p in shipped(m) if p == left_out or p.startswith(left_out)]


def test_excluded_folder_is_reported_once_not_file_by_file(root: Path) -> None:
    make(root, {"nb.ipynb": NB, **{f"node_modules/p{i}/index.js": "" for i in range(20)}})
    assert scan(root).excluded == [Excluded("node_modules/", "Node.js packages (node_modules)")]


def test_folder_with_pyvenv_cfg_is_left_out_even_with_no_exclusion_patterns(root: Path) -> None:
    make(root, {"nb.ipynb": NB, "tools/pyvenv.cfg": "home = /usr", "tools/bin/python": ""})
    m = scan(root, exclude=[])
    assert reasons(m) == {"tools/": "virtual environment"}
    assert shipped(m) == ["nb.ipynb"]


def test_configured_pattern_reason_names_the_pattern(root: Path) -> None:
    make(root, {"nb.ipynb": NB, "model.bin": "x", "model.txt": "y"})
    m = scan(root, exclude=["*.bin"])
    assert reasons(m) == {
        "model.bin": "matches exclusion pattern '*.bin' (c.ManateeConfig.exclude)"
    }


def test_invalid_configured_pattern_is_a_server_error_naming_it(root: Path) -> None:
    make(root, {"nb.ipynb": NB})
    with pytest.raises(ManateeError, match=r"exclude has an invalid pattern '!'") as caught:
        scan(root, exclude=["!"])
    assert caught.value.status == 500


# --- .manateeignore -------------------------------------------------------------------------


def test_manateeignore_pattern_leaves_out_matching_files_only(root: Path) -> None:
    make(
        root,
        {
            "nb.ipynb": NB,
            ".manateeignore": "data/*.tmp\n",
            "data/a.tmp": "t",
            "data/a.csv": "c",
            "other/data/b.tmp": "kept: pattern with a slash is anchored",
        },
    )
    m = scan(root)
    assert reasons(m)["data/a.tmp"] == "matches .manateeignore pattern 'data/*.tmp'"
    assert shipped(m) == ["data/a.csv", "nb.ipynb", "other/data/b.tmp"]


def test_manateeignore_negation_keeps_a_file_back(root: Path) -> None:
    make(
        root,
        {
            "nb.ipynb": NB,
            ".manateeignore": "*.csv\n!keep.csv\n",
            "big.csv": "b",
            "keep.csv": "k",
            "sub/keep.csv": "k",
            "sub/other.csv": "o",
        },
    )
    m = scan(root)
    assert shipped(m) == ["keep.csv", "nb.ipynb", "sub/keep.csv"]
    assert reasons(m)["big.csv"] == "matches .manateeignore pattern '*.csv'"


def test_manateeignore_folder_pattern_leaves_out_folders_at_any_depth_but_not_files(
    root: Path,
) -> None:
    make(
        root,
        {
            "nb.ipynb": NB,
            ".manateeignore": "# raw dumps\n\nraw/\n",
            "raw/a.bin": "a",
            "raw/b.bin": "b",
            "sub/raw/c.bin": "c",
            "notes/raw": "a file called raw is kept",
        },
    )
    m = scan(root)
    assert reasons(m) == {
        ".manateeignore": "hidden file",
        "raw/": "matches .manateeignore pattern 'raw/'",
        "sub/raw/": "matches .manateeignore pattern 'raw/'",
    }
    assert shipped(m) == ["nb.ipynb", "notes/raw"]


def test_manateeignore_cannot_bring_back_a_file_of_a_left_out_folder(root: Path) -> None:
    """As in git: a file inside an excluded folder cannot be re-included."""
    make(root, {"nb.ipynb": NB, ".manateeignore": "raw/\n!raw/keep.txt\n", "raw/keep.txt": "k"})
    m = scan(root)
    assert shipped(m) == ["nb.ipynb"]
    assert "raw/" in reasons(m)


def test_manateeignore_leading_slash_anchors_to_the_notebooks_folder(root: Path) -> None:
    make(root, {"nb.ipynb": NB, ".manateeignore": "/big.bin\n", "big.bin": "x", "s/big.bin": "y"})
    assert shipped(scan(root)) == ["nb.ipynb", "s/big.bin"]


def test_manateeignore_file_is_left_out_even_with_no_exclusion_patterns(root: Path) -> None:
    make(root, {"nb.ipynb": NB, ".manateeignore": "*.tmp\n", "a.tmp": "t", ".hidden": "h"})
    m = scan(root, exclude=[])
    assert reasons(m) == {
        ".manateeignore": "the .manateeignore file itself",
        "a.tmp": "matches .manateeignore pattern '*.tmp'",
    }
    assert shipped(m) == [".hidden", "nb.ipynb"]


def test_manateeignore_with_an_invalid_pattern_is_a_bad_request_naming_it(root: Path) -> None:
    make(root, {"nb.ipynb": NB, ".manateeignore": "ok.txt\nbad\\\n"})
    with pytest.raises(BadRequest, match=r"\.manateeignore file has an invalid pattern 'bad"):
        scan(root)


def test_notebook_matched_by_a_pattern_is_refused_not_left_out(root: Path) -> None:
    make(root, {"nb.ipynb": NB, ".manateeignore": "nb*.ipynb\n"})
    with pytest.raises(BadRequest, match=r"'nb\.ipynb' would be left out of its own workspace"):
        scan(root)


# --- symlinks and special files ------------------------------------------------------------


def test_file_symlink_inside_the_workspace_is_shipped_as_a_regular_file(
    root: Path, tmp_path: Path
) -> None:
    make(root, {"nb.ipynb": NB, "data/real.csv": "1,2\n"})
    (root / "alias.csv").symlink_to("data/real.csv")
    m = scan(root)
    assert shipped(m) == ["alias.csv", "data/real.csv", "nb.ipynb"]
    with tarfile.open(archive(m, tmp_path), "r:gz") as tar:
        member = tar.getmember(f"{TOP}/alias.csv")
        assert member.isreg()
        assert tar.extractfile(member).read() == b"1,2\n"  # type: ignore[union-attr]


def test_symlink_leading_outside_the_workspace_is_left_out(root: Path, tmp_path: Path) -> None:
    make(root, {"proj/nb.ipynb": NB, "secret.txt": "outside the workspace, inside the root"})
    (root / "proj/secret.txt").symlink_to(root / "secret.txt")
    (root / "proj/passwd").symlink_to("/etc/passwd")
    m = scan(root, "proj/nb.ipynb")
    assert reasons(m) == {
        "passwd": "symlink leads outside the workspace",
        "secret.txt": "symlink leads outside the workspace",
    }
    assert shipped(m) == ["nb.ipynb"]


def test_folder_symlink_is_not_followed(root: Path) -> None:
    make(root, {"nb.ipynb": NB, "data/x.csv": "x"})
    (root / "data-link").symlink_to("data")
    (root / "loop").symlink_to(".")
    m = scan(root)
    assert reasons(m) == {
        "data-link": "symlink to a folder (not followed)",
        "loop": "symlink to a folder (not followed)",
    }
    assert shipped(m) == ["data/x.csv", "nb.ipynb"]


def test_symlink_to_a_left_out_file_is_left_out_too(root: Path) -> None:
    make(root, {"nb.ipynb": NB, ".env": "TOKEN=x"})
    (root / "settings.txt").symlink_to(".env")
    assert reasons(scan(root))["settings.txt"] == (
        "symlink leads to a left-out file ('.env': hidden file)"
    )


def test_broken_symlink_is_left_out(root: Path) -> None:
    make(root, {"nb.ipynb": NB})
    (root / "gone.csv").symlink_to("missing.csv")
    assert reasons(scan(root)) == {"gone.csv": "broken symlink"}


def test_fifo_is_left_out_as_not_a_regular_file(root: Path) -> None:
    make(root, {"nb.ipynb": NB})
    os.mkfifo(root / "pipe")
    assert reasons(scan(root)) == {"pipe": "not a regular file"}


def test_file_name_that_is_not_utf8_is_left_out_and_reported_printably(root: Path) -> None:
    make(root, {"nb.ipynb": NB})
    with open(os.path.join(os.fsencode(root), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")
    m = scan(root)
    assert m.excluded == [Excluded("bad\\xff.txt", "name is not valid UTF-8")]
    assert m.to_json()["excluded"][0]["path"].encode("utf-8")


# --- resolve_notebook ------------------------------------------------------------------


@pytest.fixture
def escape_setup(tmp_path: Path, root: Path) -> Path:
    """A root with notebooks inside and a tempting notebook just outside it."""
    make(tmp_path, {"x.ipynb": NB, "outside/x.ipynb": NB})
    make(root, {"nb.ipynb": NB, "a/nb.ipynb": NB, "data.csv": "c", "dir.ipynb/": ""})
    (root / "out-link").symlink_to(tmp_path / "outside")
    (root / "nb-link.ipynb").symlink_to(tmp_path / "x.ipynb")
    return root


@pytest.mark.parametrize(
    "path",
    [
        "",
        "   ",
        "../x.ipynb",
        "a/../../x.ipynb",
        "a/../nb.ipynb",
        "/etc/x.ipynb",
        "/nb.ipynb",
        "..\\x.ipynb",
        "a\\..\\..\\x.ipynb",
        "nb.ipynb\x00.txt",
        "a/\nnb.ipynb",
        "out-link/x.ipynb",
        "nb-link.ipynb",
        "data.csv",
        "nb.IPYNB",
        ".ipynb",
        "dir.ipynb",
        "a/",
        "a/nb.ipynb/",
        "x" * 122 + ".ipynb",
        "my..nb.ipynb",
    ],
)
def test_resolve_notebook_refuses_bad_or_escaping_paths(escape_setup: Path, path: str) -> None:
    with pytest.raises(BadRequest):
        resolve_notebook(escape_setup, path)


def test_resolve_notebook_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(NotFound):
        resolve_notebook(root, "nowhere/nb.ipynb")


def test_resolve_notebook_refuses_a_file_name_that_differs_from_the_path(root: Path) -> None:
    make(root, {"a/nb.ipynb": NB})
    with pytest.raises(BadRequest, match="does not match"):
        resolve_notebook(root, "a/nb.ipynb", "other.ipynb")


def test_resolve_notebook_returns_the_absolute_path_inside_the_root(root: Path) -> None:
    make(root, {"a/b/nb.ipynb": NB})
    assert resolve_notebook(root, "a/b/nb.ipynb", "nb.ipynb") == (root / "a/b/nb.ipynb").resolve()


def test_resolve_notebook_follows_a_folder_symlink_that_stays_inside_the_root(root: Path) -> None:
    make(root, {"real/nb.ipynb": NB})
    (root / "alias").symlink_to("real")
    assert resolve_notebook(root, "alias/nb.ipynb") == (root / "real/nb.ipynb").resolve()


# --- size cap -------------------------------------------------------------------------


def test_workspace_over_the_cap_is_refused_before_any_archive_is_written(
    root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    make(root, {"proj/nb.ipynb": NB, "proj/big.bin": b"\0" * (3 * 1024 * 1024)})
    with pytest.raises(WorkspaceTooLarge) as caught:
        archive(scan(root, "proj/nb.ipynb", max_bytes=2 * 1024 * 1024), out)
    assert list(out.iterdir()) == []
    message = str(caught.value)
    assert caught.value.status == 413
    assert "3.0 MiB" in message and "2.0 MiB" in message
    assert "'proj'" in message
    assert ".manateeignore" in message and "c.ManateeConfig.max_workspace_size" in message


def test_workspace_exactly_at_the_cap_is_accepted(root: Path) -> None:
    make(root, {"nb.ipynb": NB, "a.bin": b"\0" * 100})
    assert scan(root, max_bytes=len(NB) + 100).total_bytes == len(NB) + 100


def test_left_out_files_do_not_count_towards_the_cap(root: Path) -> None:
    make(root, {"nb.ipynb": NB, ".manateeignore": "big.bin\n", "big.bin": b"\0" * 10_000})
    assert scan(root, max_bytes=len(NB)).total_bytes == len(NB)


# --- bundled folders --------------------------------------------------------------------


@pytest.fixture
def sdk(tmp_path: Path) -> Path:
    src = tmp_path / "site-packages/sdk"
    make(
        src,
        {
            "__init__.py": "VERSION = 1\n",
            "io/read.py": "def read(): ...\n",
            "__pycache__/__init__.cpython-311.pyc": b"\0",
            "old.pyc": b"\0",
        },
    )
    return src


def test_bundled_sdk_is_added_when_the_workspace_has_none(
    root: Path, sdk: Path, tmp_path: Path
) -> None:
    make(root, {"nb.ipynb": NB})
    m = scan(root, bundled={"sdk": sdk})
    assert m.added == ["sdk"]
    assert shipped(m) == ["nb.ipynb", "sdk/__init__.py", "sdk/io/read.py"]
    assert m.total_bytes == len(NB) + len("VERSION = 1\n") + len("def read(): ...\n")
    path = archive(m, tmp_path)
    assert {f"{TOP}/sdk", f"{TOP}/sdk/io", f"{TOP}/sdk/__init__.py"} <= set(names(path))


def test_workspace_own_sdk_wins_over_the_bundled_one(root: Path, sdk: Path) -> None:
    make(root, {"nb.ipynb": NB, "sdk/__init__.py": "MINE = True\n"})
    m = scan(root, bundled={"sdk": sdk})
    assert m.added == []
    sdk_files = [f for f in m.files if f.path.startswith("sdk/")]
    assert [(f.path, f.source) for f in sdk_files] == [
        ("sdk/__init__.py", (root / "sdk/__init__.py").resolve())
    ]


# --- changes between scan and archive --------------------------------------------------------


def test_file_that_grew_after_the_scan_makes_archiving_fail(root: Path, tmp_path: Path) -> None:
    make(root, {"nb.ipynb": NB, "data.csv": "a,b\n"})
    m = scan(root)
    with open(root / "data.csv", "ab") as f:
        f.write(b"1,2\n")
    with pytest.raises(BadRequest, match=r"'data\.csv' changed while it was being archived"):
        archive(m, tmp_path)


def test_file_removed_after_the_scan_makes_archiving_fail(root: Path, tmp_path: Path) -> None:
    make(root, {"nb.ipynb": NB, "data.csv": "a,b\n"})
    m = scan(root)
    (root / "data.csv").unlink()
    with pytest.raises(BadRequest, match="submit again"):
        archive(m, tmp_path)


def test_file_replaced_by_a_symlink_after_the_scan_makes_archiving_fail(
    root: Path, tmp_path: Path
) -> None:
    make(root, {"nb.ipynb": NB, "data.csv": "xxxx", "elsewhere.csv": "yyyy"})
    m = scan(root)
    (root / "data.csv").unlink()
    (root / "data.csv").symlink_to(root / "elsewhere.csv")
    with pytest.raises(BadRequest, match="changed"):
        archive(m, tmp_path)


def test_failed_archive_is_not_a_readable_tar(root: Path, tmp_path: Path) -> None:
    """A half-written archive must never pass for a complete (smaller) workspace."""
    make(root, {"nb.ipynb": NB, "z.csv": "a,b\n"})
    m = scan(root)
    (root / "z.csv").write_text("a,b,c\n")
    out = tmp_path / "broken.tar.gz"
    with open(out, "wb") as f, pytest.raises(BadRequest):
        write_archive(m, TOP, f)
    with pytest.raises((EOFError, tarfile.TarError, gzip.BadGzipFile)):
        names(out)


# --- bounded memory ---------------------------------------------------------------------


def test_write_archive_memory_stays_bounded_for_a_200_mb_file(root: Path) -> None:
    make(root, {"nb.ipynb": NB})
    with open(root / "big.bin", "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1024 * 1024))
    m = scan(root)
    assert m.total_bytes > 200 * 1024 * 1024
    with open(os.devnull, "wb") as sink:
        tracemalloc.start()
        try:
            write_archive(m, TOP, sink, compresslevel=1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
