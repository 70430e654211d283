"""Safe extraction of a submitted workspace archive.

The archive is untrusted input. Only regular files and folders are accepted; absolute
names, ``..``, links, devices and fifos are refused before anything is written for them,
and the unpacked total is capped. As upstream's executor does, the archive must hold one
top-level folder (``<creator>-workspace/``) whose contents become the working directory.
Extraction goes to a temporary folder that is renamed into place only when complete.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
from contextlib import nullcontext
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..common.fastgzip import DECOMPRESS_ERRORS, gzip_reader
from .layout import temp_path_for

CHUNK = 1024 * 1024
#: More entries than this is not a workspace.
DEFAULT_MAX_MEMBERS = 200_000


class UnpackError(Exception):
    """The archive cannot be used as a workspace; the message says why."""


class Cancelled(Exception):
    """Extraction was stopped because the job was deleted or the backend stopped."""


def _member_parts(name: str) -> list[str]:
    """The path components of a member name, refusing anything that could escape."""
    if not name or "\0" in name:
        raise UnpackError(f"archive member {name!r} has an invalid name")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise UnpackError(f"archive member {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"archive member {name!r} points outside the workspace ('..')")
    return parts


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a fifo"
    return "a special file"


def unpack_workspace(
    archive: Path | BinaryIO,
    dest: Path,
    *,
    max_total_size: int,
    max_members: int = DEFAULT_MAX_MEMBERS,
    cancel: threading.Event | None = None,
) -> None:
    """Extract the top-level folder of ``archive`` (gzip tar; a path or an open binary
    file) so its contents are ``dest``.

    ``max_total_size`` caps the unpacked bytes: each member's size is checked before a
    byte of it is written, so a gzip bomb is refused having written at most that much.

    Raises `UnpackError` (nothing is left at ``dest``) when the archive is unusable.
    """
    if dest.exists():
        raise UnpackError(f"the workspace folder {dest} already exists")
    staging = temp_path_for(dest)
    staging.mkdir(mode=0o700)
    try:
        _extract(archive, staging, max_total_size, max_members, cancel)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _extract(
    archive: Path | BinaryIO,
    staging: Path,
    max_total_size: int,
    max_members: int,
    cancel: threading.Event | None,
) -> None:
    top: str | None = None
    total = 0
    count = 0
    root = staging.resolve()
    try:
        with (
            archive.open("rb") if isinstance(archive, Path) else nullcontext(archive) as raw,
            gzip_reader(raw) as unzipped,
            tarfile.open(fileobj=unzipped, mode="r|") as tar,
        ):
            for member in tar:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                count += 1
                if count > max_members:
                    raise UnpackError(f"the archive has more than {max_members} entries")
                parts = _member_parts(member.name)
                if not (member.isfile() or member.isdir()):
                    raise UnpackError(
                        f"archive member {member.name!r} is {_kind(member)}; "
                        "only regular files and folders are accepted"
                    )
                if not parts:
                    continue  # "./" itself
                if top is None:
                    top = parts[0]
                elif parts[0] != top:
                    raise UnpackError(
                        "the archive must hold exactly one top-level folder "
                        f"(found {top!r} and {parts[0]!r})"
                    )
                rel = parts[1:]
                if not rel:
                    if member.isfile():
                        raise UnpackError(
                            f"the archive must hold one top-level folder, not the file {top!r}"
                        )
                    continue
                target = staging.joinpath(*rel)
                if not target.resolve().is_relative_to(root):
                    raise UnpackError(
                        f"archive member {member.name!r} points outside the workspace"
                    )
                if member.isdir():
                    _make_dir(target, staging, member.name)
                    continue
                total += member.size
                if total > max_total_size:
                    raise UnpackError(
                        f"the unpacked workspace is larger than the limit of {max_total_size} "
                        "bytes (a multiple of the archive's size: see --max-expansion-ratio)"
                    )
                _make_dir(target.parent, staging, member.name)
                if target.exists():
                    raise UnpackError(f"archive member {member.name!r} appears more than once")
                source = tar.extractfile(member)
                assert source is not None
                mode = 0o755 if member.mode & 0o111 else 0o644
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(CHUNK):
                        if cancel is not None and cancel.is_set():
                            raise Cancelled()
                        out.write(chunk)
            # Read to the end so a truncated or corrupt gzip stream (CRC) is noticed.
            while rest := unzipped.read(CHUNK):
                total += len(rest)
                if total > max_total_size:
                    raise UnpackError("the archive has too much data after its last member")
    except (tarfile.TarError, EOFError, OSError, ValueError, *DECOMPRESS_ERRORS) as exc:
        raise UnpackError(f"the archive cannot be unpacked (not a valid gzip tar?): {exc}") from exc
    if top is None:
        raise UnpackError("the archive is empty: it must hold one top-level folder")


def _make_dir(path: Path, staging: Path, name: str) -> None:
    """Create ``path`` (and parents) inside ``staging``; a file in the way is an error."""
    if path.is_dir():
        return
    if path.exists():
        raise UnpackError(f"archive member {name!r} conflicts with a file of the same name")
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
