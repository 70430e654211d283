"""The submit-time reading of the workspace archive, as upstream's API reads it.

Upstream's submit re-writes the uploaded archive (adding its Dockerfile) with Go's
``compress/gzip`` and ``archive/tar`` before it makes the job: a file that is not a gzip,
or a gzip that is not a tar, is refused then, with Go's error text behind the API's own
words, and no job is made. This reads the archive through the same way with Python's
``gzip`` and ``tarfile`` (streaming, each entry's data read out in chunks, nothing
unpacked) and returns Go's text for what they raise.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import Path

_CHUNK = 1024 * 1024
_INVALID_TAR_HEADER = "archive/tar: invalid tar header"
_FAILURES = (EOFError, OSError, zlib.error, tarfile.TarError)


class _ReadsAsGo:
    """A gzip stream that hands over what it decoded before failing, then the failure.

    Go's readers return the data they have and the error on the next read, so a cut-off
    archive fails where the tar reader first needs the missing bytes (a header or an
    entry's data); ``GzipFile.read`` would drop the partial data and fail at once.
    """

    def __init__(self, stream: gzip.GzipFile) -> None:
        self._stream = stream
        self._failure: BaseException | None = None

    def read(self, size: int) -> bytes:
        if self._failure is not None:
            raise self._failure
        parts: list[bytes] = []
        got = 0
        while got < size:
            try:
                data = self._stream.read1(size - got)
            except (EOFError, OSError, zlib.error) as exc:
                if not parts:
                    raise
                self._failure = exc
                break
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)


class _EndsAsGo(tarfile.TarInfo):
    """tarfile's header reading, with the archive's end where Go's reader puts it.

    tarfile ends an archive quietly at its first zero block, and at a cut-off or invalid
    header after the first entry. Go's reader ends it at two zero blocks, or where the data
    ends before a header, and refuses the rest; tarfile's own ``frombuf`` tells which.
    """

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError as zero_block:
            try:
                cls.frombuf(tar.fileobj.read(tarfile.BLOCKSIZE), tar.encoding, tar.errors)
            except (tarfile.EOFHeaderError, tarfile.EmptyHeaderError):
                raise zero_block from None  # a second zero block, or no more data: the end
            except tarfile.TruncatedHeaderError:
                raise tarfile.ReadError("truncated header") from None
            except tarfile.HeaderError:
                pass
            raise tarfile.ReadError("invalid header") from None
        except tarfile.TruncatedHeaderError:
            raise tarfile.ReadError("truncated header") from None
        except tarfile.InvalidHeaderError as exc:
            raise tarfile.ReadError(str(exc)) from None


def _go_error(exc: BaseException, step: str) -> str | None:
    """Go's error text for what gzip or tarfile raised at this step; None for Go's io.EOF."""
    if isinstance(exc, EOFError):
        return "unexpected EOF"
    if isinstance(exc, gzip.BadGzipFile):
        text = str(exc)
        if "CRC" in text or "length" in text:
            return "gzip: invalid checksum"
        return "gzip: invalid header"
    if isinstance(exc, tarfile.ReadError):
        text = str(exc)
        if text == "empty file":
            return None  # a gzip of nothing: Go's first Next() meets io.EOF, the end
        if text == "unexpected end of data" and step == "read":
            return None  # the last entry's padding cut short: Go's Next() meets io.EOF too
        if text in ("truncated header", "unexpected end of data", "empty header"):
            return "unexpected EOF"  # "empty header": the data ends after a PAX or GNU header
        if text.startswith("zlib error"):
            return "flate: corrupt input"
        return _INVALID_TAR_HEADER
    if isinstance(exc, tarfile.TarError):
        return _INVALID_TAR_HEADER
    return "flate: corrupt input"  # zlib.error, or the gzip stream's own OSError


def refusal(path: Path) -> str | None:
    """Upstream's error text for this archive at submit, or None when it reads as a tar."""
    with open(path, "rb") as raw:
        head = raw.read(10)  # gzip.NewReader reads the 10-byte header first
        if not head:
            return "failed to create gzip reader: EOF"
        if len(head) < 10:
            return "failed to create gzip reader: unexpected EOF"
        if head[:3] != b"\x1f\x8b\x08":
            return "failed to create gzip reader: gzip: invalid header"
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            return _read_through(_ReadsAsGo(stream))


def _read_through(stream: _ReadsAsGo) -> str | None:
    """Each entry's header (Go's Next), then its data (Go's io.Copy: a write step)."""
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", tarinfo=_EndsAsGo)
    except _FAILURES as exc:
        return _failed("read", exc)
    with tar:
        while True:
            try:
                member = tar.next()
            except _FAILURES as exc:
                return _failed("read", exc)
            if member is None:
                return None
            tar.members.clear()  # stream mode would keep every header otherwise
            if member.islnk() or member.issym():
                continue  # header-only in Go; tarfile would look for the link's target
            try:
                data = tar.extractfile(member)
                while data is not None and data.read(_CHUNK):
                    pass
            except _FAILURES as exc:
                return _failed("write", exc)


def _failed(step: str, exc: BaseException) -> str | None:
    text = _go_error(exc, step)
    return None if text is None else f"failed to {step} tar entry: {text}"
