"""Worker threads for bulk work (scanning and compressing workspaces) at a lower priority.

On a busy machine the compression thread and the server's event-loop thread queue for the
same CPUs: the loop waited about as long on the run queue as it ran during a 1 GiB
submit, and ``GET /api/status`` stalled 30-60 ms. At nice 19 the compressor yields the CPU
to the loop (and to kernels) whenever both want it; it loses nothing when the CPU is free.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor


def background_executor(workers: int, nice: int, name: str) -> ThreadPoolExecutor:
    """A pool whose threads run ``nice`` steps below the server (Linux; elsewhere as is)."""
    return ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=name, initializer=_lower_priority, initargs=(nice,)
    )


def _lower_priority(nice: int) -> None:
    # Linux keeps a nice value per thread; elsewhere PRIO_PROCESS with a thread id would
    # name some process, so nothing is changed there.
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):  # a sandbox may forbid it: run at the usual priority
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
