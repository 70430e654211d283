"""Reading the files a user keeps (outputs, records, bundles) without being blocked by them."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading only if it is a regular file.

    Opened non-blocking and checked with fstat before any read: a FIFO named like a record
    would otherwise block a worker thread (and with it every route that shares the pool)
    until someone writes to it. Raises ValueError for anything but a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
