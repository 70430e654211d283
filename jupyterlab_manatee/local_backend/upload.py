"""Streaming parse of the submit form: the archive goes to disk, never whole into memory.

The handler feeds each received chunk to `MultipartUpload.feed` (parsing only, on the
event loop) and hands the collected file bytes to `MultipartUpload.write_pending` in a
worker thread, which appends them to a temporary file and hashes them as they come.
Text fields are kept in memory with a size cap.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "file"
MAX_FIELD_SIZE = 64 * 1024
MAX_FIELDS_TOTAL = 1024 * 1024
#: Room for the multipart framing and the text fields on top of the archive size.
FORM_OVERHEAD = MAX_FIELDS_TOTAL + 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class UploadError(Exception):
    """The body is not the submit form the API expects."""


class UploadTooLarge(UploadError):
    """The archive is over the size limit (HTTP 413)."""


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a ``multipart/form-data`` Content-Type."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(
            "submit expects a multipart/form-data body with the fields "
            "file, creator, filename and envs"
        )
    return boundary


class MultipartUpload:
    """One submit form being received."""

    def __init__(self, content_type: str | None, temp_path: Path, max_file_size: int) -> None:
        self.temp_path = temp_path
        self.max_file_size = max_file_size
        self.fields: dict[str, str] = {}
        self.file_name: str | None = None
        self.file_size = 0
        self.has_file = False
        self.complete = False
        self._sha256 = hashlib.sha256()
        self._head = b""
        self._handle: BinaryIO | None = None
        # A client may hang up while a write runs in a worker thread: discard waits for it.
        self._file_lock = threading.Lock()
        self._discarded = False
        self._pending: list[bytes] = []
        self._fields_total = 0
        # state of the part being parsed
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[str, bytes] = {}
        self._part_name: str | None = None
        self._part_is_file = False
        self._part_text = bytearray()
        self._parser = MultipartParser(
            boundary_of(content_type),
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    # -- parser callbacks --------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._part_name = None
        self._part_is_file = False
        self._part_text = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").strip().lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition"))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise UploadError("every part of the form needs a Content-Disposition with a name")
        self._part_name = name.decode("utf-8", "replace")
        if self._part_name == FILE_FIELD:
            if self.has_file:
                raise UploadError("the form has more than one 'file' part")
            self.has_file = True
            self._part_is_file = True
            filename = options.get(b"filename")
            self.file_name = filename.decode("utf-8", "replace") if filename else None
        elif b"filename" in options:
            raise UploadError(f"unexpected file field {self._part_name!r}: only 'file' is accepted")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part_is_file:
            self.file_size += end - start
            if self.file_size > self.max_file_size:
                raise UploadTooLarge(
                    f"the workspace archive is larger than the limit of {self.max_file_size} bytes"
                )
            self._pending.append(data[start:end])
            return
        self._part_text += data[start:end]
        self._fields_total += end - start
        if len(self._part_text) > MAX_FIELD_SIZE or self._fields_total > MAX_FIELDS_TOTAL:
            raise UploadError(f"the form field {self._part_name!r} is too large")

    def _on_part_end(self) -> None:
        if not self._part_is_file and self._part_name is not None:
            try:
                self.fields[self._part_name] = self._part_text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UploadError(f"the form field {self._part_name!r} is not UTF-8 text") from exc

    def _on_end(self) -> None:
        self.complete = True

    # -- driving -----------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        """Parse one chunk of the body (CPU only); file bytes wait in a pending list."""
        try:
            self._parser.write(chunk)
        except UploadError:
            raise
        except FormParserError as exc:
            raise UploadError(f"the body is not valid multipart/form-data: {exc}") from exc

    def take_pending(self) -> list[bytes]:
        pieces, self._pending = self._pending, []
        return pieces

    def write_pending(self, pieces: list[bytes]) -> None:
        """Append file bytes to the temporary file and the hash (blocking: run in a thread)."""
        with self._file_lock:
            if self._discarded:
                return
            if self._handle is None:
                fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                self._handle = os.fdopen(fd, "wb")
            for piece in pieces:
                if len(self._head) < len(GZIP_MAGIC):
                    self._head += piece[: len(GZIP_MAGIC) - len(self._head)]
                self._sha256.update(piece)
                self._handle.write(piece)

    def close_file(self) -> None:
        """Flush the archive to disk (blocking: run in a thread)."""
        with self._file_lock:
            if self._handle is None:
                return
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        """Close and delete the temporary file; later writes are ignored."""
        with self._file_lock:
            self._discarded = True
            if self._handle is not None:
                self._handle.close()
                self._handle = None
            self.temp_path.unlink(missing_ok=True)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def looks_gzipped(self) -> bool:
        return self._head == GZIP_MAGIC
