"""What makes a workspace large: its largest files and folders, each with the
``.manateeignore`` line that would leave it out."""

from __future__ import annotations

import pathspec

from .manifest import Manifest

#: How many of the largest files, and of the largest folders, a large workspace names.
LARGEST_SHOWN = 5
_GITIGNORE_SPECIAL = frozenset("\\*?[]")


def ignore_line(rel: str, is_dir: bool) -> str | None:
    """The ``.manateeignore`` line that leaves out exactly ``rel`` (a folder and all it
    holds when ``is_dir``), anchored to the notebook's folder with gitignore's special
    characters escaped; None when no line can (a name with a line break), as checked with
    the same parser the scan uses."""
    if "\n" in rel or "\r" in rel:
        return None
    escaped = "".join("\\" + c if c in _GITIGNORE_SPECIAL else c for c in rel)
    if escaped.endswith(" "):  # gitignore drops trailing spaces unless escaped
        stripped = escaped.rstrip(" ")
        escaped = stripped + "\\ " * (len(escaped) - len(stripped))
    line = f"/{escaped}/" if is_dir else f"/{escaped}"
    try:
        spec = pathspec.GitIgnoreSpec.from_lines([line])
    except ValueError:
        return None
    return line if spec.match_file(rel + "/" if is_dir else rel) else None


def largest_items(manifest: Manifest, count: int = LARGEST_SHOWN) -> list[dict]:
    """The ``count`` largest files and ``count`` largest folders the user's folder ships
    (not the notebook, not what is added for the TEE), largest first, each with the
    ``.manateeignore`` line that would leave it out (see :func:`ignore_line`)."""
    added = tuple(f"{name}/" for name in manifest.added)
    own = [
        entry
        for entry in manifest.files
        if entry.path != manifest.notebook and not entry.path.startswith(added)
    ]
    folders: dict[str, int] = {}
    for entry in own:
        parts = entry.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            folders[prefix] = folders.get(prefix, 0) + entry.size
    files = sorted(own, key=lambda e: (-e.size, e.path))[:count]
    biggest_folders = sorted(folders.items(), key=lambda item: (-item[1], item[0]))[:count]
    items = [
        {"path": e.path, "kind": "file", "size": e.size, "ignore_line": ignore_line(e.path, False)}
        for e in files
    ] + [
        {"path": f"{path}/", "kind": "folder", "size": size, "ignore_line": ignore_line(path, True)}
        for path, size in biggest_folders
    ]
    return sorted(items, key=lambda item: (-item["size"], item["kind"] == "file", item["path"]))
