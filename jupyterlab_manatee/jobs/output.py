"""Saving a job's output into the user's contents root.

The bytes are streamed to a hidden temporary file beside the destination and only then
linked into place under a name that does not exist yet, so a broken transfer leaves
nothing behind and an existing file is never overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath

from ..errors import (
    ApiUnavailable,
    BadRequest,
    Conflict,
    InsufficientStorage,
    ManateeError,
    quoted,
)

TEMP_PREFIX = ".manatee-download-"
READ_ONLY = 0o444
MAX_NAME_LENGTH = 200
NOTEBOOK_SUFFIX = ".ipynb"
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f]")

Download = Callable[[Callable[[bytes], None]], Awaitable[int]]


def output_name(job_id: int, notebook: str | None) -> str:
    """``out-<id>-<notebook>``, always a ``.ipynb``: the name a saved output gets.

    ``notebook`` is the job's notebook as this server recorded its submission, else as the
    job list names it; the API's download ``filename`` is never used, so a hostile API
    cannot drop ``sdk.py`` (run by the next ``import sdk``) or any other kind of file
    beside the user's notebooks. Only the base name counts, and anything that is not a
    plain ``.ipynb`` name gives ``out-<id>.ipynb``.
    """
    fallback = f"out-{job_id}.ipynb"
    base = PurePosixPath((notebook or "").replace("\\", "/")).name
    if (
        not base.endswith(NOTEBOOK_SUFFIX)
        or base == NOTEBOOK_SUFFIX
        or base.startswith(".")
        or _UNSAFE_CHARS.search(base)
    ):
        return fallback
    name = f"out-{job_id}-{base}"
    if len(name) > MAX_NAME_LENGTH:
        name = name[: MAX_NAME_LENGTH - len(NOTEBOOK_SUFFIX)] + NOTEBOOK_SUFFIX
    return name


def candidate_names(name: str):
    """``name``, then ``stem-1.ext``, ``stem-2.ext``, ..."""
    yield name
    path = PurePosixPath(name)
    stem, suffix = path.stem, path.suffix
    n = 1
    while True:
        yield f"{stem}-{n}{suffix}"
        n += 1


def resolve_folder(root_dir: Path, folder: str) -> Path:
    """The absolute folder for a contents path, refusing anything that leaves the root."""
    relative = PurePosixPath(folder.strip("/"))
    if ".." in relative.parts or "\x00" in folder:
        raise BadRequest(f"Output folder {quoted(folder)} leaves the contents root")
    target = (root_dir / relative).resolve()
    if target != root_dir and root_dir not in target.parents:
        raise BadRequest(f"Output folder {quoted(folder)} leads outside the contents root")
    return target


async def save_output(
    download: Download,
    root_dir: Path,
    folder: str,
    name: str,
    *,
    create: bool = False,
    companion_suffix: str = "",
) -> str:
    """Stream ``download`` into ``folder/name`` (renamed if taken); return the contents path.

    ``download(write)`` must call ``write`` with the bytes in order and raise on failure.
    With ``companion_suffix``, a name also counts as taken when ``name + companion_suffix``
    exists, so a file that follows the output (its attestation) gets a free name too.
    """
    loop = asyncio.get_running_loop()
    target, fd, temp = await loop.run_in_executor(None, _open_temp, root_dir, folder, create)
    disk_errors: list[OSError] = []

    def write(chunk: bytes) -> None:
        try:
            view = memoryview(chunk)
            while view:  # a raw file may write less than asked
                view = view[f.write(view) :]
        except OSError as e:  # ENOSPC, EDQUOT, EIO: the user's disk, not a broken API
            disk_errors.append(e)
            raise

    try:
        # unbuffered: the network hands over large chunks, and a full disk then fails in
        # write() (reported below) rather than again when the file is closed
        with os.fdopen(fd, "wb", buffering=0) as f:
            try:
                await download(write)
                await loop.run_in_executor(None, _flush, f)
            except OSError as e:
                raise _disk_full(folder, disk_errors[0] if disk_errors else e) from None
            except ManateeError:
                if disk_errors:
                    raise _disk_full(folder, disk_errors[0]) from None
                raise
        final = await loop.run_in_executor(
            None, _place_without_overwrite, temp, target, name, companion_suffix
        )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return final.relative_to(root_dir).as_posix()


def _disk_full(folder: str, error: OSError) -> InsufficientStorage:
    return InsufficientStorage(
        f"Could not write the output into '{folder or '/'}': {error.strerror or error}. "
        "Nothing was saved; free some space there (or ask for another "
        "c.ManateeConfig.output_dir) and download it again."
    )


def _open_temp(root_dir: Path, folder: str, create: bool) -> tuple[Path, int, Path]:
    """The checked destination folder and a new hidden temporary file in it."""
    target = resolve_folder(root_dir, folder)
    if create:
        _make_folder(root_dir, target)
    elif not target.is_dir():
        raise BadRequest(f"Output folder {quoted(folder)} does not exist")
    fd, temp_name = tempfile.mkstemp(dir=target, prefix=TEMP_PREFIX, suffix=".part")
    return target, fd, Path(temp_name)


def _flush(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _make_folder(root_dir: Path, target: Path) -> None:
    shown = target.relative_to(root_dir).as_posix()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise Conflict(
            f"Cannot save the output into '{shown}': a file of that name is in the way. "
            "Rename or move that file, then fetch the output again."
        ) from None
    except OSError as e:
        raise ManateeError(
            f"Cannot create the output folder '{shown}': {e.strerror or e}. Nothing was "
            "saved; fix the folder's permissions, then fetch the output again."
        ) from None
    if resolve_folder(root_dir, target.relative_to(root_dir).as_posix()) != target:
        raise BadRequest("The output folder leads outside the contents root")


def _place_without_overwrite(
    temp: Path, folder: Path, name: str, companion_suffix: str = ""
) -> Path:
    """Give ``temp`` the first free name; a hard link fails instead of replacing a file.

    The file is made read-only first: its bytes are what the attestation token proves, so
    JupyterLab must not autosave over them (a copy can be saved under another name).
    """
    os.chmod(temp, READ_ONLY)
    for attempt, candidate in enumerate(candidate_names(name)):
        if attempt > 10_000:
            break
        final = folder / candidate
        if companion_suffix and os.path.lexists(folder / (candidate + companion_suffix)):
            continue
        try:
            os.link(temp, final)
        except FileExistsError:
            continue
        except OSError:
            # File systems without hard links: claim the name exclusively, then replace it.
            try:
                with open(final, "x"):
                    pass
            except FileExistsError:
                continue
            os.replace(temp, final)
            return final
        temp.unlink()
        return final
    raise ApiUnavailable(f"No free file name for {quoted(name)} in {quoted(folder.name)}")
