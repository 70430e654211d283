"""Data locations: where a DataRepo reads from, behind one small interface.

A location string names a folder-like place (``gs://bucket/prefix``, ``data``,
``file://data``, ``https://host/files``) to which a data name is joined, or a template
with one ``{name}`` placeholder (``data/{name}.s1``) into which the name is put.
Backends import their libraries only when used, so local and https data work without
the Google libraries installed.
"""

from __future__ import annotations

import abc
import io
import os
import re
from typing import BinaryIO
from urllib.parse import quote, unquote

from .errors import UnsupportedLocationError

PLACEHOLDER = "{name}"
SUPPORTED = (
    "gs://bucket[/prefix], https://host/path, file://path, or a local path "
    "(relative paths are relative to the notebook's folder)"
)
# Generous for slow links, but a dead server must not hang a kernel forever.
HTTP_TIMEOUT = (15, 300)
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def check_name(name: str) -> str:
    """Validate a data name: a relative, ``/``-separated name that stays inside its location."""
    if not isinstance(name, str):
        raise TypeError(f"a data name must be a str, not {type(name).__name__}")
    if name == "" or name.strip() != name:
        raise ValueError(f"invalid data name {name!r}: empty or surrounded by blanks")
    if "\x00" in name:
        raise ValueError(f"invalid data name {name!r}: contains a NUL character")
    if name.startswith("/") or "\\" in name:
        raise ValueError(
            f"invalid data name {name!r}: use a name relative to the location, "
            "with '/' between folders"
        )
    if ".." in name.split("/"):
        raise ValueError(f"invalid data name {name!r}: '..' would leave the location")
    return name


class Template:
    """A location text with exactly one ``{name}`` slot (added at the end when absent)."""

    def __init__(self, text: str, separator: str = "/") -> None:
        count = text.count(PLACEHOLDER)
        if count > 1:
            raise UnsupportedLocationError(
                f"location {text!r} has {count} {PLACEHOLDER} placeholders; at most one is allowed"
            )
        if count == 0:
            text = (text.rstrip(separator) + separator if text else "") + PLACEHOLDER
        self.text = text
        self.prefix, self.suffix = text.split(PLACEHOLDER)

    def fill(self, name: str) -> str:
        """Return the full key for ``name``."""
        return self.prefix + name + self.suffix

    def extract(self, key: str) -> str | None:
        """Return the name whose full key is ``key``, or ``None`` if ``key`` does not fit."""
        if len(key) <= len(self.prefix) + len(self.suffix):
            return None
        if not (key.startswith(self.prefix) and key.endswith(self.suffix)):
            return None
        return key[len(self.prefix) : len(key) - len(self.suffix)]


class Location(abc.ABC):
    """One place data is read from.

    ``reader_stage`` is the stage the process runs in (it picks the credentials);
    ``data_stage`` says which of a DataRepo's two locations this is (for messages).
    """

    scheme: str = ""

    def __init__(self, spec: str, *, reader_stage: int, data_stage: int) -> None:
        self.spec = spec
        self.reader_stage = reader_stage
        self.data_stage = data_stage

    def where(self) -> str:
        """Say which location of which stage this is, for error messages."""
        return (
            f"stage-{self.data_stage} location {self.redact(self.spec)!r}, "
            f"read in stage {self.reader_stage}"
        )

    def redact(self, text: str) -> str:
        """Hide secrets a location may carry (a signed URL's query) from messages."""
        return text

    def shown(self, name: str) -> str:
        """The full location of ``name`` as error messages show it."""
        return self.redact(self.full(name))

    def not_found(self, name: str) -> FileNotFoundError:
        """Build the error for a missing object, naming its full location."""
        return FileNotFoundError(f"{self.shown(name)} does not exist ({self.where()})")

    @abc.abstractmethod
    def full(self, name: str) -> str:
        """Return the full location of ``name`` (a path, ``gs://`` or ``https://`` URL)."""

    @abc.abstractmethod
    def get_bytes(self, name: str) -> bytes:
        """Return the whole content of ``name``."""

    @abc.abstractmethod
    def open(self, name: str) -> BinaryIO:
        """Return a binary file object that streams ``name``; the caller closes it."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Return the sorted names this location holds that start with ``prefix``."""

    def local_path(self, name: str) -> str | None:
        """Return a local file path for ``name`` when there is one (lets readers skip copies)."""
        return None


class LocalLocation(Location):
    """A folder or ``{name}`` path template on the local disk (``file://`` or plain path)."""

    scheme = "file"

    def __init__(self, spec: str, path: str, *, reader_stage: int, data_stage: int) -> None:
        super().__init__(spec, reader_stage=reader_stage, data_stage=data_stage)
        # Resolved once, now: the current directory is the notebook's folder both in
        # JupyterLab and in the stage-2 run, and a later os.chdir must not move the data.
        self.template = Template(os.path.abspath(os.path.expanduser(path)), separator=os.sep)

    def full(self, name: str) -> str:
        check_name(name)
        return self.template.fill(name.replace("/", os.sep))

    def local_path(self, name: str) -> str:
        return self.full(name)

    def _guard(self, name: str, error: OSError) -> OSError:
        if isinstance(error, FileNotFoundError):
            return self.not_found(name)
        if isinstance(error, PermissionError):
            return PermissionError(
                f"permission denied reading {self.full(name)} as local user id "
                f"{os.getuid() if hasattr(os, 'getuid') else '?'} ({self.where()})"
            )
        return error

    def get_bytes(self, name: str) -> bytes:
        path = self.full(name)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as error:
            raise self._guard(name, error) from error

    def open(self, name: str) -> BinaryIO:
        path = self.full(name)
        try:
            return open(path, "rb")  # the caller owns and closes it
        except OSError as error:
            raise self._guard(name, error) from error

    def list(self, prefix: str = "") -> list[str]:
        head = self.template.prefix
        root = head if head.endswith(os.sep) else os.path.dirname(head)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"folder {root} does not exist ({self.where()})")
        names = []
        for folder, _dirs, files in os.walk(root):
            for file in files:
                found = self.template.extract(os.path.join(folder, file))
                if found is None:
                    continue
                found = found.replace(os.sep, "/")
                if found.startswith(prefix):
                    names.append(found)
        return sorted(names)


class HttpsLocation(Location):
    """A URL prefix or ``{name}`` URL template read with ``requests`` (no listing)."""

    scheme = "https"

    def __init__(self, spec: str, *, reader_stage: int, data_stage: int) -> None:
        super().__init__(spec, reader_stage=reader_stage, data_stage=data_stage)
        if not spec[len("https://") :].split("/", 1)[0]:
            raise UnsupportedLocationError(f"location {spec!r} has no host name")
        if PLACEHOLDER in spec:
            self.template = Template(spec)
        else:
            # Keep a query string (e.g. a token) after the name, not before it.
            base, sep, query = spec.partition("?")
            self.template = Template(base.rstrip("/") + "/" + PLACEHOLDER + sep + query)

    def full(self, name: str) -> str:
        return self.template.fill(quote(check_name(name), safe="/"))

    def redact(self, text: str) -> str:
        base, sep, _query = text.partition("?")
        return base + ("?..." if sep else "")

    def _get(self, name: str, stream: bool):  # -> requests.Response
        import requests

        url = self.full(name)
        try:
            response = requests.get(url, stream=stream, timeout=HTTP_TIMEOUT)
        except requests.RequestException as error:
            # requests' own message repeats the URL path, query included: hide the query.
            detail = re.sub(r"\?[^\s'\")]+", "?...", str(error))
            raise OSError(
                f"could not fetch {self.shown(name)}: {detail} ({self.where()})"
            ) from error
        if response.status_code == 200:
            return response
        response.close()
        if response.status_code in (404, 410):
            raise self.not_found(name)
        if response.status_code in (401, 403):
            raise PermissionError(
                f"permission denied (HTTP {response.status_code}) reading {self.shown(name)} "
                "with an "
                f"anonymous HTTPS request ({self.where()})"
            )
        raise OSError(
            f"HTTP {response.status_code} {response.reason} reading {self.shown(name)} "
            f"({self.where()})"
        )

    def get_bytes(self, name: str) -> bytes:
        return self._get(name, stream=False).content

    def open(self, name: str) -> BinaryIO:
        response = self._get(name, stream=True)
        raw = response.raw
        raw.decode_content = True  # undo Content-Encoding (gzip) like .content does
        return io.BufferedReader(raw)  # type: ignore[arg-type]

    def list(self, prefix: str = "") -> list[str]:
        raise io.UnsupportedOperation(
            f"https:// locations cannot be listed (HTTP has no standard listing): {self.spec!r}"
        )


class GcsLocation(Location):
    """A bucket, a bucket prefix, or a ``{name}`` object template in Google Cloud Storage.

    Objects are addressed directly (``client.bucket(name)`` makes no request), so a
    reader with only object-viewer rights works: no bucket metadata is read.
    """

    scheme = "gs"

    def __init__(self, spec: str, *, reader_stage: int, data_stage: int) -> None:
        super().__init__(spec, reader_stage=reader_stage, data_stage=data_stage)
        bucket, _, rest = spec[len("gs://") :].partition("/")
        if not bucket:
            raise UnsupportedLocationError(
                f"location {spec!r} names no bucket: gs://bucket[/prefix]"
            )
        if PLACEHOLDER in bucket:
            raise UnsupportedLocationError(
                f"location {spec!r}: {PLACEHOLDER} may appear in the object part only"
            )
        self.bucket = bucket
        self.template = Template(rest.lstrip("/"))

    def full(self, name: str) -> str:
        return f"gs://{self.bucket}/{self.object_name(name)}"

    def object_name(self, name: str) -> str:
        """Return the object name for ``name``: joined with ``/``, no leading slash."""
        return self.template.fill(check_name(name))

    def _client(self):  # -> google.cloud.storage.Client
        from . import gcp

        return gcp.storage_client(self.reader_stage)

    def _translate(self, full: str, error: Exception) -> Exception:
        """Turn Google exceptions into the built-in ones a notebook author can act on."""
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        from . import gcp
        from .errors import CredentialsError

        if isinstance(error, api.NotFound):
            return FileNotFoundError(
                f"{full} does not exist, or its bucket does not ({self.where()})"
            )
        if isinstance(error, (api.Forbidden, api.Unauthorized)):
            return PermissionError(
                f"permission denied reading {full} as "
                f"{gcp.identity(self.reader_stage)} ({self.where()}): {error.message}"
            )
        if isinstance(error, auth.GoogleAuthError):
            return CredentialsError(
                f"could not get stage-{self.reader_stage} credentials "
                f"({gcp.identity(self.reader_stage)}) to read {full}: {error}"
            )
        return error

    def _run(self, full: str, action):
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        try:
            return action()
        except (api.GoogleAPIError, auth.GoogleAuthError) as error:
            raise self._translate(full, error) from error

    def _blob(self, name: str):
        return self._client().bucket(self.bucket).blob(self.object_name(name))

    def get_bytes(self, name: str) -> bytes:
        blob = self._blob(name)
        return self._run(self.full(name), blob.download_as_bytes)

    def open(self, name: str) -> BinaryIO:
        """Stream the object in chunks; a missing or forbidden object fails here, at open
        (later read errors, e.g. a role revoked mid-read, surface as Google exceptions)."""
        blob = self._blob(name)
        # Object metadata (not bucket metadata): fails early on a missing object and pins
        # the generation, so a concurrent overwrite cannot mix two versions in one read.
        self._run(self.full(name), blob.reload)
        return blob.open("rb")

    def list(self, prefix: str = "") -> list[str]:
        start = self.template.prefix + prefix

        def names() -> list[str]:
            found = []
            for blob in self._client().list_blobs(self.bucket, prefix=start):
                name = self.template.extract(blob.name)
                if name is not None and not name.endswith("/"):
                    found.append(name)
            return sorted(found)

        return self._run(f"gs://{self.bucket}/{start}", names)


def parse_location(spec: str | os.PathLike[str], *, reader_stage: int, data_stage: int) -> Location:
    """Build the backend for a location string; unknown schemes get a clear error."""
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(f"a data location must be a str or path, not {type(spec).__name__}")
    if spec.strip() == "":
        raise UnsupportedLocationError(f"empty data location; supported are {SUPPORTED}")
    stages = {"reader_stage": reader_stage, "data_stage": data_stage}
    match = _SCHEME_RE.match(spec)
    if match is None:
        return LocalLocation(spec, spec, **stages)
    scheme = match.group(1).lower()
    if scheme == "gs":
        return GcsLocation(spec, **stages)
    if scheme == "https":
        return HttpsLocation(spec, **stages)
    if scheme == "file":
        # file:///abs/path is absolute; file://data/x is taken as relative to the
        # notebook's folder, as local paths are (no host part: file://host/ is not used).
        return LocalLocation(spec, unquote(spec[len("file://") :]), **stages)
    hint = " (plain http is not supported: use https)" if scheme == "http" else ""
    raise UnsupportedLocationError(
        f"unsupported data location {spec!r}{hint}; supported are {SUPPORTED}"
    )
