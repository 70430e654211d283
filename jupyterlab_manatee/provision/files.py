"""Reading the input table, writing outputs whole, and putting files at their locations.

Every file is written to a temporary name beside its destination and then linked or
renamed into place: a failure leaves nothing half-written, and an existing file is
replaced only when asked (``overwrite``).

A location is what a notebook's ``sdk.DataRepo`` reads: a folder (``data``,
``file:///srv/data``) or a ``gs://bucket[/prefix]``, to which the data name is joined, or
either with one ``{name}`` placeholder (``data/{name}.s1``, ``gs://bucket/{name}``).
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO

from sdk.locations import PLACEHOLDER, Template, check_name

from .errors import InputError, MissingExtraError, ProvisionError

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def read_table(
    path: str | os.PathLike[str], delimiter: str = ","
) -> tuple[list[str], dict[str, list[str]]]:
    """Read a CSV with a header row; values stay text (the domain parses them)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if not header:
                raise InputError(f"{path} is empty: a CSV with a header row is expected")
            header = [name.strip() for name in header]
            if len(set(header)) != len(header):
                raise InputError(f"{path}: the header names a column twice: {header}")
            columns: dict[str, list[str]] = {name: [] for name in header}
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(
                        f"{path}, line {line}: {len(row)} values for {len(header)} columns"
                        + f" (values are split at {delimiter!r}; see --delimiter)"
                    )
                for name, value in zip(header, row, strict=True):
                    columns[name].append(value.strip())
    except OSError as error:
        raise InputError(f"cannot read the input {path}: {error.strerror}") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path} is not a UTF-8 CSV file: {error}") from error
    if not columns[header[0]]:
        raise InputError(f"{path} has a header but no rows")
    return header, columns


def check_writable(target: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written: an existing file
    (without ``overwrite``), a folder, or a path under a file or an unwritable folder."""
    target = Path(target)
    if target.is_dir():
        raise ProvisionError(f"{target} is a folder: give a file name")
    if target.exists() and not overwrite:
        raise ProvisionError(f"{target} exists; pass --overwrite to replace it")
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ProvisionError(f"cannot write {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ProvisionError(f"cannot write {target}: no permission to write in {parent}")


#: files written so far, and whether a Ctrl-C waits for a write to end
_written: list[str] = []
_shelter = {"depth": 0, "pending": False}


@contextlib.contextmanager
def _sheltered() -> Iterator[None]:
    """A write that Ctrl-C lets finish (or fail) before it stops the program."""
    _shelter["depth"] += 1
    try:
        yield
    finally:
        _shelter["depth"] -= 1
    if _shelter["depth"] == 0 and _shelter["pending"]:
        _shelter["pending"] = False
        raise KeyboardInterrupt


def interrupted_message() -> str:
    """What a Ctrl-C leaves behind, in words."""
    if not _written:
        return "interrupted; no output was written"
    return "interrupted; written before: " + ", ".join(_written)


#: Temporary folders that may hold private data (an engine's spill files and its copy of
#: a gs:// input): removed by `on_interrupt` too, which ends the program without unwinding.
private_folders: set[Path] = set()


def on_interrupt(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler of the command: stop at once, but never in the middle of a write.

    A KeyboardInterrupt raised at a random point can land in one of JAX's callbacks, which
    ignores it (the run then goes on); so outside a write the program ends here."""
    if _shelter["depth"]:
        _shelter["pending"] = True
        return
    for folder in list(private_folders):
        shutil.rmtree(folder, ignore_errors=True)
    sys.stderr.write(f"manatee-provision: {interrupted_message()}\n")
    sys.stderr.flush()
    os._exit(130)


def checkpoint() -> None:
    """Inside a long write, a safe point to stop at if Ctrl-C was pressed meanwhile (the
    temporary file is then removed, as for any failure)."""
    if _shelter["pending"]:
        _shelter["pending"] = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def placed(target: Path, *, overwrite: bool, mode: int = 0o644) -> Iterator[Path]:
    """A temporary file beside ``target`` to write, put in place when the block ends
    without error (then synced to disk), removed otherwise. A Ctrl-C meanwhile takes
    effect at the block's end or at its next `checkpoint`."""
    target = Path(target)
    with _sheltered():
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            yield temp
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _put_in_place(temp, target, overwrite)
            _written.append(str(target))
        finally:
            temp.unlink(missing_ok=True)


def write_whole(
    target: Path, write: Callable[[IO[str]], None], *, overwrite: bool, mode: int = 0o644
) -> None:
    """Write a text file through ``write`` under a temporary name, then put it in place."""
    with placed(target, overwrite=overwrite, mode=mode) as temp:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            write(handle)


def _put_in_place(temp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails if the target exists: nothing is replaced
    except FileExistsError:
        raise ProvisionError(f"{target} exists; pass --overwrite to replace it") from None


def write_csv(
    target: Path, header: list[str], rows: Iterable[list[str]], *, overwrite: bool
) -> None:
    """Write rows as CSV (``\\n`` line ends), whole or not at all."""

    def write(handle: IO[str]) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)

    write_whole(target, write, overwrite=overwrite)


def content_type(path: str | os.PathLike[str]) -> str:
    """The media type of a table file, by its name."""
    if str(path).lower().endswith((".parquet", ".pq")):
        return "application/vnd.apache.parquet"
    return "text/csv"


def destination(location: str, name: str) -> str:
    """The full path or ``gs://`` URL where ``name`` goes at ``location``."""
    check_name(name)
    match = _SCHEME_RE.match(location)
    scheme = match.group(1).lower() if match else ""
    if scheme == "gs":
        bucket, _, rest = location[len("gs://") :].partition("/")
        if not bucket or PLACEHOLDER in bucket:
            raise ProvisionError(f"location {location!r} names no bucket: gs://bucket[/prefix]")
        return f"gs://{bucket}/{Template(rest.lstrip('/')).fill(name)}"
    if scheme == "file":
        location = location[len("file://") :]
    elif scheme:
        raise ProvisionError(
            f"cannot upload to {location!r}: a location is a folder or gs://bucket[/prefix]"
        )
    if not location:
        raise ProvisionError("empty location")
    return Template(os.path.expanduser(location), separator=os.sep).fill(name.replace("/", os.sep))


def upload(
    source: Path, location: str, name: str, *, overwrite: bool, gcp_project: str | None = None
) -> str:
    """Put ``source`` at ``location`` under ``name``; returns where it went."""
    target = destination(location, name)
    if target.startswith("gs://"):
        _upload_gcs(source, target, overwrite=overwrite, project=gcp_project)
        return target
    target_path = Path(target)
    if target_path.resolve() == Path(source).resolve():
        return target  # already there

    with placed(target_path, overwrite=overwrite) as temp:
        shutil.copyfile(source, temp)
    return target


def _upload_gcs(source: Path, target: str, *, overwrite: bool, project: str | None) -> None:
    try:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth
        from google.cloud import storage
    except ImportError as error:
        raise MissingExtraError(
            "uploading to gs:// needs google-cloud-storage: "
            "pip install 'jupyterlab_manatee[provision]'"
        ) from error
    bucket_name, _, object_name = target[len("gs://") :].partition("/")
    try:
        client = storage.Client(project=project)
        blob = client.bucket(bucket_name).blob(object_name)
        if not overwrite and blob.exists():
            raise ProvisionError(f"{target} exists; pass --overwrite to replace it")
        # if_generation_match=0: the object must not exist (checked by the server too)
        blob.upload_from_filename(
            str(source),
            content_type=content_type(source),
            if_generation_match=None if overwrite else 0,
        )
    except api.PreconditionFailed:
        raise ProvisionError(f"{target} exists; pass --overwrite to replace it") from None
    except api.NotFound as error:
        raise ProvisionError(f"cannot upload to {target}: no such bucket ({error})") from error
    except (api.Forbidden, api.Unauthorized) as error:
        raise ProvisionError(
            f"permission denied uploading to {target}: the account needs "
            f"roles/storage.objectCreator on the bucket ({error.message})"
        ) from error
    except (api.GoogleAPIError, auth.GoogleAuthError) as error:
        raise ProvisionError(f"cannot upload to {target}: {error}") from error
