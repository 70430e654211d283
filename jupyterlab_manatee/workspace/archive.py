"""A manifest streamed into a gzip tar: the notebook's folder as the archive's single top
folder, each file checked against the scan (a file that changed is refused, never shipped
half-written). Blocks on the disk: run in a thread."""

from __future__ import annotations

import os
import stat
import tarfile
import time
from pathlib import Path
from typing import BinaryIO

from ..common.fastgzip import gzip_writer
from ..errors import BadRequest, quoted
from .manifest import Manifest, ManifestEntry
from .scan import valid_utf8


class _Sink:
    """Forwards writes to the caller's file until an error, then drops them, so that a
    failed archive is left truncated (unreadable) instead of looking complete."""

    def __init__(self, out: BinaryIO) -> None:
        self._out: BinaryIO | None = out

    def write(self, data: bytes) -> int:
        if self._out is not None:
            self._out.write(data)
        return len(data)

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    def detach(self) -> None:
        self._out = None


class _ExactReader:
    """Reads a file that must still hold ``size`` bytes; a short read means it changed."""

    def __init__(self, f: BinaryIO, size: int, path: str) -> None:
        self._f = f
        self._left = size
        self._path = path

    def read(self, n: int = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(want)
        if len(data) < want:
            raise _changed(self._path)
        self._left -= len(data)
        return data


def _changed(path: str) -> BadRequest:
    return BadRequest(
        f"The file {quoted(path)} changed while it was being archived (or was removed); "
        "submit again."
    )


def _check_top(top: str) -> None:
    if (
        not top
        or "/" in top
        or "\\" in top
        or "\x00" in top
        or top in (".", "..")
        or not valid_utf8(top)
    ):
        raise BadRequest(f"{quoted(top)} cannot be the archive's top folder name.")


def _dir_info(name: str, real: Path | None, now: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode, info.mtime = 0o755, now
    if real is not None:
        try:
            st = os.lstat(real)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            info.mode = (st.st_mode & 0o777) | 0o700
            info.mtime = int(st.st_mtime)
    return _normalise_owner(info)


def _normalise_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _all_dirs(manifest: Manifest) -> list[str]:
    dirs = set(manifest.folders)
    for entry in manifest.files:
        parts = entry.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)


def write_archive(manifest: Manifest, top: str, out: BinaryIO, *, compresslevel: int = 6) -> None:
    """Stream the manifest into ``out`` as a gzip tar under ``top/``, in bounded memory.
    Raises BadRequest if a file changed since the scan; ``out`` must then be discarded."""
    _check_top(top)
    sink = _Sink(out)
    gz = gzip_writer(sink, compresslevel)  # type: ignore[arg-type]
    done = False
    try:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            now = int(time.time())
            tar.addfile(_dir_info(top, manifest.folder, now))
            for rel in _all_dirs(manifest):
                tar.addfile(_dir_info(f"{top}/{rel}", manifest.folder / rel, now))
            for entry in sorted(manifest.files, key=lambda e: e.path):
                _add_file(tar, f"{top}/{entry.path}", entry)
        done = True
    finally:
        if not done:
            sink.detach()
        gz.close()


def _add_file(tar: tarfile.TarFile, name: str, entry: ManifestEntry) -> None:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(entry.source, flags)
    except FileNotFoundError:
        raise _changed(entry.path) from None
    except PermissionError:
        raise BadRequest(
            f"The file {quoted(entry.path)} cannot be read (permission denied)."
        ) from None
    except OSError as exc:
        # ELOOP: the file was replaced by a symlink since the scan.
        raise _changed(entry.path) from exc
    with os.fdopen(fd, "rb") as f:
        before = os.fstat(f.fileno())
        if not stat.S_ISREG(before.st_mode) or before.st_size != entry.size:
            raise _changed(entry.path)
        info = _normalise_owner(tarfile.TarInfo(name))
        info.size = entry.size
        info.mtime = int(before.st_mtime)
        info.mode = stat.S_IMODE(before.st_mode) & 0o777
        tar.addfile(info, _ExactReader(f, entry.size, entry.path))  # type: ignore[arg-type]
        after = os.fstat(f.fileno())
        if after.st_size != before.st_size or after.st_mtime_ns != before.st_mtime_ns:
            raise _changed(entry.path)
