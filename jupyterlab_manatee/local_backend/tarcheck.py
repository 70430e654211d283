"""The submit-time reading of the workspace archive, as upstream's API reads it.

Upstream's submit re-writes the uploaded archive (adding its Dockerfile) with Go's
``compress/gzip`` and ``archive/tar`` before it makes the job: a file that is not a gzip,
or a gzip that is not a tar, is refused then, with Go's error text behind the API's own
words, and no job is made. This walks the archive the way Go's readers do (header
blocks, checksums, entry sizes) without unpacking anything, and returns the same text.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

BLOCK = 512
_ZERO = bytes(BLOCK)
_SKIP_CHUNK = 1024 * 1024


class _ReadFailed(Exception):
    """A read of the decompressed stream failed; the text is Go's."""


def _go_read_error(exc: BaseException) -> str:
    """Go's error text for what Python's gzip reader raised mid-stream."""
    if isinstance(exc, EOFError):
        return "unexpected EOF"
    if isinstance(exc, gzip.BadGzipFile):
        text = str(exc)
        if "CRC" in text or "length" in text:
            return "gzip: invalid checksum"
        return "gzip: invalid header"
    return "flate: corrupt input"


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Go's io.ReadFull: b"" at a clean end, "unexpected EOF" on a partial read."""
    try:
        data = stream.read(size)
    except (EOFError, OSError, zlib.error) as exc:
        raise _ReadFailed(_go_read_error(exc)) from None
    if data and len(data) < size:
        raise _ReadFailed("unexpected EOF")
    return data


def _parse_octal(field: bytes) -> int | None:
    text = field.strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _parse_numeric(field: bytes) -> int | None:
    """A tar number: octal text, or base-256 when the first byte's high bit is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return -value if field[0] & 0x40 else value
    return _parse_octal(field)


def _checksum_ok(block: bytes) -> bool:
    """Go's getFormat: the stored checksum equals the unsigned or the signed sum."""
    stored = _parse_octal(block[148:156])
    if stored is None:
        return False
    spaced = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(spaced)
    signed = sum(b - 256 if b > 127 else b for b in spaced)
    return stored in (unsigned, signed)


def _skip(stream: BinaryIO, size: int) -> None:
    while size > 0:
        data = _read_full(stream, min(size, _SKIP_CHUNK))
        if len(data) == 0:
            raise _ReadFailed("unexpected EOF")
        size -= len(data)


def refusal(path: Path) -> str | None:
    """Upstream's error text for this archive at submit, or None when it reads as a tar."""
    with open(path, "rb") as raw:
        head = raw.read(10)
        if not head:
            return "failed to create gzip reader: EOF"
        if len(head) < 10:
            return "failed to create gzip reader: unexpected EOF"
        if head[:3] != b"\x1f\x8b\x08":
            return "failed to create gzip reader: gzip: invalid header"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
        try:
            return _walk(stream)
        except _ReadFailed as exc:
            return f"failed to read tar entry: {exc}"


def _walk(stream: BinaryIO) -> str | None:
    while True:
        block = _read_full(stream, BLOCK)
        if not block:
            return None  # io.EOF before a header: the end
        if block == _ZERO:
            following = _read_full(stream, BLOCK)
            if not following or following == _ZERO:
                return None
            return "failed to read tar entry: archive/tar: invalid tar header"
        if not _checksum_ok(block):
            return "failed to read tar entry: archive/tar: invalid tar header"
        size = _parse_numeric(block[124:136])
        if size is None or size < 0:
            return "failed to read tar entry: archive/tar: invalid tar header"
        kind = block[156:157]
        if kind in (b"1", b"2", b"3", b"4", b"5", b"6"):
            size = 0  # links, devices, folders and fifos carry no data
        try:
            _skip(stream, size)  # Go copies the entry's data out: a write step
        except _ReadFailed as exc:
            return f"failed to write tar entry: {exc}"
        _skip(stream, -size % BLOCK)  # the padding is read with the next header
