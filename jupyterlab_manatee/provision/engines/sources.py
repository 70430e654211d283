"""Where an engine reads a table from: a local path as it is, a ``gs://`` object copied;
and the header of a CSV.

A ``gs://`` object is copied once into the engine's private temporary folder with
google-cloud-storage (already the tool's client for uploads: same credentials, same
``--gcp-project``, same ``STORAGE_EMULATOR_HOST`` for tests), streamed in bounded pieces.
The engine then reads it several times (checks, marginals, report) from local disk, and
every engine reads it the same way: DuckDB's own ``gs://`` support is an extension it
would download at run time, and Spark's needs a connector jar. Spark on a cluster is the
exception (`spark_location`): its executors read the ``gs://`` URL themselves, through
the connector, and only the CSV's header row is read here.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    _, object_name = _bucket_and_object(location)
    target = folder / f"input-{len(list(folder.glob('input-*')))}-{Path(object_name).name}"
    with _gcs(location, project) as blob:
        blob.download_to_filename(str(target))
    return target


def on_a_cluster(master: str) -> bool:
    """Whether Spark on ``master`` runs executors that may be on other machines."""
    return not master.startswith("local")


def spark_location(location: str, folder: Path, *, master: str, project: str | None = None) -> str:
    """What Spark on ``master`` reads for ``location``. On a cluster (a master that is not
    ``local...``) a ``gs://`` URL as it is: executors on other machines cannot read the
    driver's disk, so they read the bucket through Google's Cloud Storage connector
    (Dataproc has it; another cluster needs it on its classpath). Else `local_copy`."""
    if location.startswith(GS) and on_a_cluster(master):
        _bucket_and_object(location)
        return location
    return str(local_copy(location, folder, project=project))


def _bucket_and_object(location: str) -> tuple[str, str]:
    bucket_name, _, object_name = location[len(GS) :].partition("/")
    if not bucket_name or not object_name:
        raise InputError(f"{location}: a gs:// input is gs://bucket/object")
    return bucket_name, object_name


@contextlib.contextmanager
def _gcs(location: str, project: str | None) -> Iterator[Any]:
    """The ``gs://`` object's blob, its errors said in the tool's words."""
    bucket_name, object_name = _bucket_and_object(location)
    try:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth
        from google.cloud import storage
    except ImportError as error:
        raise MissingExtraError(
            "reading gs:// needs google-cloud-storage: pip install 'jupyterlab_manatee[provision]'"
        ) from error
    try:
        client = storage.Client(project=project)
        yield client.bucket(bucket_name).blob(object_name)
    except api.NotFound as error:
        raise InputError(f"cannot read {location}: no such bucket or object") from error
    except (api.Forbidden, api.Unauthorized) as error:
        raise ProvisionError(
            f"permission denied reading {location}: the account needs "
            f"roles/storage.objectViewer on the bucket ({error.message})"
        ) from error
    except (api.GoogleAPIError, auth.GoogleAuthError) as error:
        raise ProvisionError(f"cannot read {location}: {error}") from error


#: how much of a ``gs://`` CSV one request reads for its header
HEADER_CHUNK = 256 * 1024


def csv_header(where: Path | str, source: Source, *, project: str | None = None) -> list[str]:
    """The header row, read by Python's csv module (only the first row is read): of a
    local file, or of a ``gs://`` object read in pieces of `HEADER_CHUNK` bytes."""
    try:
        with contextlib.ExitStack() as stack:
            if str(where).startswith(GS):
                blob = stack.enter_context(_gcs(str(where), project))
                handle = stack.enter_context(
                    blob.open("rt", chunk_size=HEADER_CHUNK, encoding="utf-8-sig", newline="")
                )
            else:
                handle = stack.enter_context(Path(where).open(newline="", encoding="utf-8-sig"))
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
