"""Where an engine reads a table from: a local path as it is, a ``gs://`` object copied;
and the header of a CSV.

A ``gs://`` object is copied once into the engine's private temporary folder with
google-cloud-storage (already the tool's client for uploads: same credentials, same
``--gcp-project``, same ``STORAGE_EMULATOR_HOST`` for tests), streamed in bounded pieces.
The engine then reads it several times (checks, marginals, report) from local disk, and
every engine reads it the same way: DuckDB's own ``gs://`` support is an extension it
would download at run time, and Spark's needs a connector jar.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import InputError, MissingExtraError, ProvisionError
from .base import Source

GS = "gs://"


def local_copy(location: str, folder: Path, *, project: str | None = None) -> Path:
    """The local file to read for ``location``; a ``gs://`` object is copied into ``folder``."""
    if not location.startswith(GS):
        path = Path(location[len("file://") :] if location.startswith("file://") else location)
        if not path.is_file():
            reason = "no such file" if not path.exists() else "not a file"
            raise InputError(f"cannot read the input {location}: {reason}")
        return path
    bucket_name, _, object_name = location[len(GS) :].partition("/")
    if not bucket_name or not object_name:
        raise InputError(f"{location}: a gs:// input is gs://bucket/object")
    try:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth
        from google.cloud import storage
    except ImportError as error:
        raise MissingExtraError(
            "reading gs:// needs google-cloud-storage: pip install 'jupyterlab_manatee[provision]'"
        ) from error
    target = folder / f"input-{len(list(folder.glob('input-*')))}-{Path(object_name).name}"
    try:
        client = storage.Client(project=project)
        client.bucket(bucket_name).blob(object_name).download_to_filename(str(target))
    except api.NotFound as error:
        raise InputError(f"cannot read {location}: no such bucket or object") from error
    except (api.Forbidden, api.Unauthorized) as error:
        raise ProvisionError(
            f"permission denied reading {location}: the account needs "
            f"roles/storage.objectViewer on the bucket ({error.message})"
        ) from error
    except (api.GoogleAPIError, auth.GoogleAuthError) as error:
        raise ProvisionError(f"cannot read {location}: {error}") from error
    return target


def csv_header(path: Path, source: Source) -> list[str]:
    """The header row, read by Python's csv module (only the first row is read)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle, delimiter=source.delimiter), None)
    except OSError as error:
        raise InputError(f"cannot read the input {source.location}: {error.strerror}") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{source.location} is not a UTF-8 CSV file: {error}") from error
    if not header:
        raise InputError(f"{source.location} is empty: a CSV with a header row is expected")
    return [name.strip() for name in header]


def checked_header(header: list[str], label: str) -> list[str]:
    if len(set(header)) != len(header):
        raise InputError(f"{label}: the header names a column twice: {header}")
    return header
