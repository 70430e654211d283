"""Standard gzip at disk speed: ISA-L's deflate (the ``isal`` package) with zlib as fallback.

Single-core zlib -6 (~20-30 MiB/s) made compression the bottleneck of a submit. ISA-L
writes ordinary RFC 1952 gzip (read by GNU gzip, Go's ``compress/gzip``, zlib) about ten
times faster at a ratio within a few percent of zlib -6, and releases the GIL while it
works. zlib-ng was the alternative (about 2x zlib); ISA-L was chosen for the speed.
"""

from __future__ import annotations

import gzip
import zlib
from typing import BinaryIO

try:  # pragma: no cover - which branch runs depends on the platform's wheels
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib

    HAVE_ISAL = True
    #: Errors a corrupt stream raises (ISA-L's own class besides zlib's).
    DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _isal_zlib.error)
except ImportError:  # pragma: no cover
    _igzip = None
    HAVE_ISAL = False
    DECOMPRESS_ERRORS = (zlib.error,)


def isal_level(zlib_level: int) -> int:
    """Map ``compression_level`` (zlib's 0-9) onto ISA-L's 0-3.

    ISA-L has no "stored" level: 0 is its fastest real compression. 1-3 -> 1 (fast),
    4-6 -> 2 (ISA-L's default, near zlib -6's ratio), 7-9 -> 3 (its best).
    """
    if zlib_level <= 0:
        return 0
    if zlib_level <= 3:
        return 1
    if zlib_level <= 6:
        return 2
    return 3


def gzip_writer(out: BinaryIO, compresslevel: int = 6, *, use_isal: bool = HAVE_ISAL) -> BinaryIO:
    """A gzip stream into ``out`` with an empty file name in its header (no temp name leaks)."""
    if use_isal and _igzip is not None:
        return _igzip.IGzipFile(  # type: ignore[return-value]
            filename="", mode="wb", compresslevel=isal_level(compresslevel), fileobj=out
        )
    return gzip.GzipFile(filename="", mode="wb", compresslevel=compresslevel, fileobj=out)  # type: ignore[return-value]


def gzip_reader(raw: BinaryIO, *, use_isal: bool = HAVE_ISAL) -> BinaryIO:
    """A decompressing reader of ``raw`` (CRC and length checked at the end, as gzip's)."""
    if use_isal and _igzip is not None:
        return _igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
