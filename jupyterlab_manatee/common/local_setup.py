"""Whether the local backend is still being set up, as ``./dev run`` tells it.

On the first start ``./dev run`` makes the stage-2 environment (the TEE image's packages)
before the local backend can answer: minutes, during which "the API is not reachable,
check DATA_CLEAN_ROOM_HOST" would send a new user looking for a mistake they did not
make. ``./dev run`` writes a small JSON file while the backend is being set up::

    {"started_at": <epoch seconds>, "expected_seconds": <from the last setup, or a default>,
     "pid": <the ./dev run process>}

and removes it once the backend answers. ``c.ManateeConfig.local_setup_file`` names it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .state_files import field_problem

#: A file larger than this is not ./dev run's (never read whole).
MAX_FILE_BYTES = 4096
FIELDS = {
    "started_at": (int, float),
    "expected_seconds": (int, float),
    "pid": (int,),
}


def setup_under_way(path: str, now: float | None = None) -> dict[str, Any] | None:
    """``{"seconds_left", "expected_seconds", "elapsed_seconds"}`` while the file says the
    backend is being set up by a process that still runs; None otherwise (no file, a file
    that is not ./dev run's, one left behind by a ./dev run that was killed). Blocking (a
    small file): call it off the event loop."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if field_problem(record, FIELDS, required=("started_at", "expected_seconds")) is not None:
        return None
    pid = record.get("pid")
    if pid is not None and not _running(pid):
        return None  # left behind by a ./dev run that no longer runs
    now = time.time() if now is None else now
    elapsed = max(0.0, now - record["started_at"])
    expected = max(0.0, float(record["expected_seconds"]))
    return {
        "seconds_left": round(max(0.0, expected - elapsed)),
        "expected_seconds": round(expected),
        "elapsed_seconds": round(elapsed),
    }


def describe(setting_up: dict[str, Any]) -> str:
    """The banner's sentence."""
    if setting_up["seconds_left"] > 0:
        return (
            f"The local ManaTEE backend is being set up: about {setting_up['seconds_left']} s left"
        )
    return (
        "The local ManaTEE backend is being set up: it takes longer than the "
        f"{setting_up['expected_seconds']} s expected ({setting_up['elapsed_seconds']} s so far)"
    )


def _running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    state = _state(pid)
    return state not in ("Z", "X")


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else None
