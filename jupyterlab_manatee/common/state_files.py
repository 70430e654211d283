"""The extension's own state files under ``state_dir``, read defensively.

A state file that does not parse, or holds a field of the wrong type (a crash mid-write on
another file system, a hand edit, an older or newer version), must not turn every route
that reads it into a 500 until someone finds and deletes it. The module that owns a file
checks each record's fields where it reads them (with :func:`field_problem`); a file that
fails is renamed :func:`set_aside` to ``<name>.corrupt-<UTC time>`` beside it, with one
warning, so nothing is lost and the file is read as absent from then on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CORRUPT_INFIX = ".corrupt-"
#: Sortable UTC time (microseconds keep two set-asides in one second apart).
TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"

#: ``field -> the types it may hold`` (``type(None)`` for null).
Fields = Mapping[str, tuple[type, ...]]


def field_problem(
    record: Any, fields: Fields, *, required: tuple[str, ...] = (), known_only: bool = False
) -> str | None:
    """What is wrong with ``record`` (a JSON object whose ``fields`` have these types), or
    None. ``bool`` is never an ``int`` here (JSON ``true`` is not a count); with
    ``known_only`` a field not in ``fields`` is a problem too."""
    if not isinstance(record, dict):
        return f"it is {_json_type(record)}, not an object"
    for name in required:
        if name not in record:
            return f"it has no {name!r}"
    for name, value in record.items():
        allowed = fields.get(name)
        if allowed is None:
            if known_only:
                return f"it has an unknown field {name[:40]!r}"
            continue
        if isinstance(value, bool) and bool not in allowed:
            wrong = True
        else:
            wrong = not isinstance(value, allowed)
        if wrong:
            return f"its {name!r} is {_json_type(value)}, not {_names(allowed)}"
    return None


def set_aside(
    path: Path, problem: str, log: logging.Logger, then: str = "read as absent"
) -> Path | None:
    """Rename the untrustworthy ``path`` to ``<name>.corrupt-<UTC time>`` beside it and log
    one warning naming the file, what was wrong, where it went and ``then`` (what happens
    instead); the new path, or None when it could not be renamed (the warning says so)."""
    stamp = _stamp()
    target = path.with_name(f"{path.name}{CORRUPT_INFIX}{stamp}")
    n = 1
    while os.path.lexists(target):  # never over an earlier set-aside copy
        target = path.with_name(f"{path.name}{CORRUPT_INFIX}{stamp}-{n}")
        n += 1
    try:
        os.rename(path, target)
    except OSError as e:
        log.warning(
            "ManaTEE: the state file %s is unusable (%s) and could not be moved aside (%s); %s",
            path,
            problem,
            e.strerror or e,
            then,
        )
        return None
    log.warning(
        "ManaTEE: the state file %s is unusable (%s); moved aside to %s and %s",
        path,
        problem,
        target.name,
        then,
    )
    return target


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _names(types: tuple[type, ...]) -> str:
    words = {
        type(None): "null",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "an object",
    }
    return " or ".join(words.get(t, t.__name__) for t in types)
