"""The local backend's unpacking refuses each hostile archive for its own reason.

Every archive here is a valid workspace (``alice-workspace/nb.ipynb``, a real notebook,
comes first) plus one hostile member, so a refusal can only come from the check the case
is about; the control test shows the same archive without that member unpacks. Each case
asserts the refusal's reason, that nothing is left at the destination or beside it, and
that nothing was written outside.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import nbformat
import pytest

from jupyterlab_manatee.local_backend.unpack import UnpackError, unpack_workspace

TOP = "alice-workspace"
LIMIT = 10 * 1024 * 1024


def notebook_bytes() -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print(1)"))
    return nbformat.writes(nb).encode()


NOTEBOOK = notebook_bytes()


def member(
    name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", **pax: str
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    info.pax_headers = dict(pax)
    return info


def archive_bytes(extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A gzip tar (PAX format) of the notebook first, then ``extra``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in [(member(f"{TOP}/nb.ipynb"), NOTEBOOK), *extra]:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def hostile(outside: Path) -> dict[str, tuple[list[tuple[tarfile.TarInfo, bytes | None]], str]]:
    """case -> (members after the notebook, the refusal's reason, literally)."""
    dotdot = "points outside the workspace ('..')"
    special = "only regular files and folders are accepted"
    return {
        "dotdot-inside-top": (
            [(member(f"{TOP}/../../outside/x.py"), b"x")],
            f"archive member '{TOP}/../../outside/x.py' {dotdot}",
        ),
        "dotdot-after-a-folder": (
            [(member(f"{TOP}/sub/../../../outside/x.py"), b"x")],
            f"archive member '{TOP}/sub/../../../outside/x.py' {dotdot}",
        ),
        "dotdot-behind-dot": (
            [(member(f"{TOP}/./../outside/x.py"), b"x")],
            f"archive member '{TOP}/./../outside/x.py' {dotdot}",
        ),
        "dotdot-folder": (
            [(member(f"{TOP}/..", tarfile.DIRTYPE), None)],
            f"archive member '{TOP}/..' {dotdot}",
        ),
        "dotdot-in-a-pax-path": (
            [(member(f"{TOP}/innocent.py", path=f"{TOP}/../../outside/pax.py"), b"x")],
            f"archive member '{TOP}/../../outside/pax.py' {dotdot}",
        ),
        "absolute": (
            [(member(str(outside / "abs.py")), b"x")],
            f"archive member '{outside / 'abs.py'}' has an absolute path",
        ),
        "symlink-out": (
            [
                (member(f"{TOP}/link", tarfile.SYMTYPE, str(outside)), None),
                (member(f"{TOP}/link/through.py"), b"x"),
            ],
            f"archive member '{TOP}/link' is a symbolic link; {special}",
        ),
        "relative-symlink-out": (
            [(member(f"{TOP}/link", tarfile.SYMTYPE, "../../outside"), None)],
            f"archive member '{TOP}/link' is a symbolic link; {special}",
        ),
        "symlink-inside": (
            [(member(f"{TOP}/sdk.py", tarfile.SYMTYPE, "nb.ipynb"), None)],
            f"archive member '{TOP}/sdk.py' is a symbolic link; {special}",
        ),
        "hardlink-out": (
            [(member(f"{TOP}/hard", tarfile.LNKTYPE, "/etc/passwd"), None)],
            f"archive member '{TOP}/hard' is a hard link; {special}",
        ),
        "hardlink-inside": (
            [(member(f"{TOP}/hard", tarfile.LNKTYPE, f"{TOP}/nb.ipynb"), None)],
            f"archive member '{TOP}/hard' is a hard link; {special}",
        ),
        "char-device": (
            [(member(f"{TOP}/dev", tarfile.CHRTYPE), None)],
            f"archive member '{TOP}/dev' is a device; {special}",
        ),
        "block-device": (
            [(member(f"{TOP}/disk", tarfile.BLKTYPE), None)],
            f"archive member '{TOP}/disk' is a device; {special}",
        ),
        "fifo": (
            [(member(f"{TOP}/pipe", tarfile.FIFOTYPE), None)],
            f"archive member '{TOP}/pipe' is a fifo; {special}",
        ),
        "second-top-folder": (
            [(member("bob-workspace/x.py"), b"x")],
            "the archive must hold exactly one top-level folder "
            "(found 'alice-workspace' and 'bob-workspace')",
        ),
        "duplicate-notebook": (
            [(member(f"{TOP}/nb.ipynb"), b"{}")],
            f"archive member '{TOP}/nb.ipynb' appears more than once",
        ),
    }


CASES = sorted(hostile(Path("/x")))


def every_path(root: Path) -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(root):
        found.update((Path(folder) / name).relative_to(root).as_posix() for name in (*dirs, *files))
    return found


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``jobs/`` (where the workspace goes), ``outside/`` (what the archive aims at)."""
    jobs, outside = tmp_path / "jobs", tmp_path / "outside"
    jobs.mkdir()
    outside.mkdir()
    return tmp_path, jobs, outside


def test_the_archives_are_valid_workspaces_without_their_hostile_member(layout):
    """The control: the notebook alone unpacks, so each refusal below is the hostile
    member's and not a missing notebook's."""
    tmp_path, jobs, _ = layout
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(archive_bytes([]))
    unpack_workspace(archive, jobs / "ws", max_total_size=LIMIT)
    assert every_path(jobs) == {"ws", "ws/nb.ipynb"}
    assert (jobs / "ws/nb.ipynb").read_bytes() == NOTEBOOK


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_archive_holding_the_notebook_is_refused_for_its_own_reason(layout, case):
    tmp_path, jobs, outside = layout
    extra, reason = hostile(outside)[case]
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(archive_bytes(extra))
    with tarfile.open(archive) as tar:  # the notebook is really in there
        assert tar.getnames()[0] == f"{TOP}/nb.ipynb"
    with pytest.raises(UnpackError) as refused:
        unpack_workspace(archive, jobs / "ws", max_total_size=LIMIT)
    assert str(refused.value) == reason
    assert every_path(jobs) == set()  # no workspace, no staging folder left beside it
    assert every_path(outside) == set()
    assert every_path(tmp_path) == {"a.tar.gz", "jobs", "outside"}
