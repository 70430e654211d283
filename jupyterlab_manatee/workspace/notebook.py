"""The notebook to submit, resolved safely under the contents root (no ``..``, no link
that leads out of the root, a name the API accepts). Blocks on the disk: run in a thread."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadRequest, ManateeError, NotFound, quoted

NOTEBOOK_SUFFIX = ".ipynb"
# The API refuses notebook file names of 128 characters or more, or holding "..".
MAX_NOTEBOOK_NAME = 127


def is_within(path: str, root: str) -> bool:
    """Whether the real path ``path`` is ``root`` or lies under it."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def real_root(root_dir: str | Path) -> str:
    root = os.path.realpath(os.fspath(root_dir))
    if not os.path.isdir(root):
        raise ManateeError(f"The contents root {quoted(root)} is not a folder.")
    return root


def resolve_notebook(root_dir: str | Path, path: str, filename: str | None = None) -> Path:
    """The notebook's absolute path (its folder resolved, its own name kept as the user sees
    it), after refusing anything that could reach outside the contents root."""
    if not isinstance(path, str) or not path.strip():
        raise BadRequest("No notebook path was given.")
    shown = quoted(path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"The notebook path {shown} is not valid UTF-8.") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadRequest(f"The notebook path {shown} contains control characters.")
    if "\\" in path:
        raise BadRequest(
            f"The notebook path {shown} contains a backslash; use '/' between folders."
        )
    if path.startswith("/"):
        raise BadRequest(
            f"The notebook path {shown} is absolute; give it relative to the contents root."
        )
    if path.endswith("/"):
        raise BadRequest(f"The notebook path {shown} names a folder, not a notebook.")
    raw_parts = path.split("/")
    if ".." in raw_parts:
        raise BadRequest(f"The notebook path {shown} contains '..'.")
    parts = [p for p in raw_parts if p not in ("", ".")]
    if not parts:
        raise BadRequest(f"The notebook path {shown} names no notebook.")
    name = parts[-1]
    if not name.endswith(NOTEBOOK_SUFFIX) or name == NOTEBOOK_SUFFIX:
        raise BadRequest(f"{quoted(name)} is not a notebook: only .ipynb files can be submitted.")
    if filename is not None and filename != name:
        raise BadRequest(
            f"The file name {quoted(filename)} does not match the notebook path {shown}."
        )
    if len(name) > MAX_NOTEBOOK_NAME:
        raise BadRequest(
            f"The notebook name is {len(name)} characters long; the ManaTEE API accepts at "
            f"most {MAX_NOTEBOOK_NAME}. Rename the notebook."
        )
    if ".." in name:
        raise BadRequest(
            f"The notebook name {quoted(name)} contains '..', which the ManaTEE API refuses. "
            "Rename the notebook."
        )

    root = real_root(root_dir)
    candidate = os.path.join(root, *parts)
    parent_real = os.path.realpath(os.path.dirname(candidate))
    real = os.path.realpath(candidate)
    if not is_within(parent_real, root) or not is_within(real, root):
        raise BadRequest(
            f"The notebook path {shown} leads outside the contents root (through a symbolic link)."
        )
    if not os.path.lexists(candidate):
        raise NotFound(f"No notebook at {shown}.")
    if os.path.isdir(real):
        raise BadRequest(f"{shown} is a folder, not a notebook.")
    if not os.path.exists(real):
        raise NotFound(f"No notebook at {shown} (a symbolic link to a missing file).")
    if not os.path.isfile(real):
        raise BadRequest(f"{shown} is not a regular file.")
    return Path(parent_real) / name
