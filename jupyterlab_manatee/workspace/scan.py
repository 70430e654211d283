"""What a submission ships: the notebook's own folder, resolved safely under the contents
root, filtered (exclusion patterns, ``.manateeignore``, virtual environments, symlinks that
leave the folder) and listed in a :mod:`.manifest`, which :mod:`.archive` then streams
into a gzip tar.

The executor copies the archive's single top folder into its working directory and runs the
notebook there, so the notebook sits at the top of the archive with its neighbours beside it
exactly as in JupyterLab. Every function here blocks on the disk: callers run them in a
thread, never on the event loop.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pathspec

from ..attestation.record import RECORD_SUFFIX
from ..errors import BadRequest, ManateeError, NotFound, WorkspaceTooLarge, quoted
from .manifest import Excluded, Manifest, ManifestEntry
from .notebook import is_within, real_root

VENV_MARKER = "pyvenv.cfg"
#: Why a saved-outputs folder (ManateeConfig.outputs_folder) is never shipped.
OUTPUTS_REASON = "saved ManaTEE outputs (stage-2 results are never sent back)"
#: Why an output saved beside its notebook (by an earlier version) is never shipped.
OUTPUT_FILE_REASON = "a saved ManaTEE output (stage-2 results are never sent back)"

# Reasons shown for the default exclusion patterns (config.DEFAULT_EXCLUDES): words a
# data scientist recognises rather than the glob that matched.
_DEFAULT_REASONS: dict[str, str] = {
    ".ipynb_checkpoints/": "notebook checkpoints",
    "__pycache__/": "Python bytecode cache",
    "node_modules/": "Node.js packages (node_modules)",
    "venv/": "virtual environment",
    "env/": "virtual environment",
}


# --- exclusion rules ----------------------------------------------------------------------


def _compile(lines: list[str], what: str, error: type[ManateeError]) -> pathspec.GitIgnoreSpec:
    """Compile gitignore lines, naming the offending line when one is invalid."""
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError:
        for line in lines:
            try:
                pathspec.GitIgnoreSpec.from_lines([line])
            except ValueError:
                raise error(f"{what} has an invalid pattern {quoted(line)}.") from None
        raise


def _deciding_pattern(spec: pathspec.GitIgnoreSpec, path: str) -> str | None:
    """The pattern that leaves ``path`` out (the last matching one, as in git), or None."""
    if not spec.match_file(path):
        return None
    for pattern in reversed(spec.patterns):
        if pattern.include and pattern.match_file(path) is not None:
            return str(pattern.pattern)
    return "?"  # pragma: no cover - match_file said yes, so some pattern matched


class _Rules:
    """The exclusion decision for one workspace folder; dirs are given as ``"rel/"``."""

    def __init__(
        self, folder: Path, exclude: list[str], ignore_file: str, outputs_folder: str = ""
    ) -> None:
        self.folder = folder
        self.ignore_file = ignore_file
        self.outputs_folder = outputs_folder
        self.exclude = _compile(list(exclude), "c.ManateeConfig.exclude", ManateeError)
        lines: list[str] = []
        if ignore_file:
            ignore_path = folder / ignore_file
            if ignore_path.is_file():
                try:
                    text = ignore_path.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    raise BadRequest(f"Cannot read {ignore_file}: {exc.strerror}.") from None
                lines = text.splitlines()
        self.ignore = _compile(lines, f"The {ignore_file} file", BadRequest)

    def pattern_reason(self, rel: str, is_dir: bool) -> str | None:
        probe = rel + "/" if is_dir else rel
        pattern = _deciding_pattern(self.exclude, probe)
        if pattern is not None:
            if pattern == ".*":
                return "hidden folder" if is_dir else "hidden file"
            return _DEFAULT_REASONS.get(
                pattern, f"matches exclusion pattern '{pattern}' (c.ManateeConfig.exclude)"
            )
        if not is_dir and rel == self.ignore_file:
            return f"the {self.ignore_file} file itself"
        pattern = _deciding_pattern(self.ignore, probe)
        if pattern is not None:
            return f"matches {self.ignore_file} pattern '{pattern}'"
        return None

    def dir_reason(self, rel: str) -> str | None:
        # at any depth: a sub-folder's notebook keeps its outputs there too
        if self.outputs_folder and rel.rsplit("/", 1)[-1] == self.outputs_folder:
            return OUTPUTS_REASON
        if os.path.isfile(self.folder / rel / VENV_MARKER):
            return "virtual environment"
        return self.pattern_reason(rel, is_dir=True)

    def saved_output_reason(self, rel: str) -> str | None:
        """An output and its ``.attestation.json`` (a pair, as the extension saves them)
        left beside a notebook before outputs had their folder: left out too."""
        if not self.outputs_folder:
            return None
        if rel.endswith(RECORD_SUFFIX) and len(rel) > len(RECORD_SUFFIX):
            paired = os.path.lexists(self.folder / rel[: -len(RECORD_SUFFIX)])
        else:
            paired = os.path.lexists(self.folder / (rel + RECORD_SUFFIX))
        return OUTPUT_FILE_REASON if paired else None

    def path_reason(self, rel: str) -> str | None:
        """Why a real path inside the folder (a symlink's target) is left out, if it is."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            reason = self.dir_reason("/".join(parts[:i]))
            if reason is not None:
                return reason
        return self.pattern_reason(rel, is_dir=False)


# --- scanning -----------------------------------------------------------------------------


def format_size(n: int) -> str:
    """``n`` bytes in binary units, as people read sizes."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _printable(rel: str) -> str:
    """A name safe to show and to put in JSON even when it is not valid UTF-8."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def valid_utf8(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Collector:
    """Accumulates entries and enforces the size cap as soon as it is crossed."""

    def __init__(
        self, max_bytes: int | None, too_large: Callable[[int], WorkspaceTooLarge]
    ) -> None:
        self.files: list[ManifestEntry] = []
        self.excluded: list[Excluded] = []
        self.folders: list[str] = []
        self.total = 0
        self.max_bytes = max_bytes
        self.too_large = too_large

    def add(self, path: str, size: int, source: str | Path) -> None:
        self.files.append(ManifestEntry(path=path, size=size, source=Path(source)))
        self.total += size
        if self.max_bytes is not None and self.total > self.max_bytes:
            raise self.too_large(self.total)

    def leave_out(self, path: str, reason: str) -> None:
        self.excluded.append(Excluded(path=_printable(path), reason=reason))


def scan_workspace(
    notebook: Path,
    *,
    root_dir: str | Path,
    exclude: list[str],
    ignore_file: str = ".manateeignore",
    max_bytes: int | None = None,
    bundled: dict[str, Path] | None = None,
    outputs_folder: str = "",
) -> Manifest:
    """List what a submission of ``notebook`` ships: its folder minus what is left out, plus
    bundled folders the workspace lacks. Raises WorkspaceTooLarge before anything is written.
    Folders named ``outputs_folder`` hold saved outputs and are always left out."""
    root = real_root(root_dir)
    notebook = Path(notebook)
    folder = os.path.realpath(notebook.parent)
    name = notebook.name
    nb_real = os.path.realpath(notebook)
    if not is_within(folder, root) or not is_within(nb_real, root):
        raise BadRequest(f"The notebook {quoted(name)} is outside the contents root.")
    try:
        nb_stat = os.stat(nb_real)
    except FileNotFoundError:
        raise NotFound(f"The notebook {quoted(name)} no longer exists.") from None
    if not stat.S_ISREG(nb_stat.st_mode):
        raise BadRequest(f"The notebook {quoted(name)} is not a regular file.")

    folder_path = Path(os.path.relpath(folder, root)).as_posix()
    folder_path = "" if folder_path == "." else folder_path
    where = f"folder {quoted(folder_path)}" if folder_path else "the contents root folder"
    rules = _Rules(Path(folder), exclude, ignore_file, outputs_folder)

    if outputs_folder and folder_path and folder_path.rsplit("/", 1)[-1] == outputs_folder:
        raise BadRequest(
            f"The notebook {quoted(name)} is in {quoted(folder_path)}, a folder of saved ManaTEE "
            "outputs: submitting it would send stage-2 results back. Copy the notebook "
            "into its source folder and submit it from there."
        )
    reason = rules.pattern_reason(name, is_dir=False)
    if reason is not None:
        raise BadRequest(
            f"The notebook {quoted(name)} would be left out of its own workspace ({reason}). "
            "Rename the notebook or change the pattern."
        )

    def too_large(total: int) -> WorkspaceTooLarge:
        hint = f"a {ignore_file} file in that folder" if ignore_file else "exclusion patterns"
        assert max_bytes is not None
        return WorkspaceTooLarge(
            f"The workspace ({where}) holds at least {format_size(total)} ({total:,} bytes), "
            f"over the limit of {format_size(max_bytes)} ({max_bytes:,} bytes); nothing was "
            f"sent. Leave large files out with {hint} (gitignore patterns), or ask the "
            "server's operator to raise c.ManateeConfig.max_workspace_size."
        )

    out = _Collector(max_bytes, too_large)
    out.add(name, nb_stat.st_size, nb_real)
    _walk(Path(folder), rules, name, out)
    added = _add_bundled(Path(folder), bundled or {}, out)

    return Manifest(
        folder=Path(folder),
        folder_path=folder_path,
        notebook=name,
        files=sorted(out.files, key=lambda e: e.path),
        excluded=sorted(out.excluded, key=lambda e: e.path),
        added=added,
        total_bytes=out.total,
        folders=sorted(out.folders),
    )


def _walk(folder: Path, rules: _Rules, notebook: str, out: _Collector) -> None:
    """Depth-first walk that never follows a folder symlink (no loops, no escapes)."""
    real_folder = str(folder)
    stack: list[str] = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(folder / rel_dir if rel_dir else folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not rel_dir:
                raise BadRequest(f"Cannot read the notebook's folder: {exc.strerror}.") from None
            out.leave_out(rel_dir + "/", f"cannot be read ({exc.strerror})")
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if rel == notebook:
                continue  # already added; never excluded
            if not valid_utf8(rel):
                out.leave_out(rel, "name is not valid UTF-8")
                continue
            try:
                _visit(entry, rel, real_folder, rules, out, stack)
            except FileNotFoundError:
                continue  # removed while we looked: it is simply not part of the workspace


def _visit(
    entry: os.DirEntry[str],
    rel: str,
    real_folder: str,
    rules: _Rules,
    out: _Collector,
    stack: list[str],
) -> None:
    if entry.is_symlink():
        reason = rules.pattern_reason(rel, is_dir=False)
        if reason is not None:
            out.leave_out(rel, reason)
            return
        target = os.path.realpath(entry.path)
        if not is_within(target, real_folder):
            out.leave_out(rel, "symlink leads outside the workspace")
        elif not os.path.exists(target):
            out.leave_out(rel, "broken symlink")
        elif os.path.isdir(target):
            out.leave_out(rel, "symlink to a folder (not followed)")
        elif not os.path.isfile(target):
            out.leave_out(rel, "not a regular file")
        else:
            target_rel = Path(os.path.relpath(target, real_folder)).as_posix()
            reason = rules.path_reason(target_rel)
            if reason is not None:
                out.leave_out(rel, f"symlink leads to a left-out file ('{target_rel}': {reason})")
            else:
                out.add(rel, os.stat(target).st_size, target)
        return
    if entry.is_dir(follow_symlinks=False):
        reason = rules.dir_reason(rel)
        if reason is not None:
            out.leave_out(rel + "/", reason)
        else:
            out.folders.append(rel)
            stack.append(rel)
        return
    reason = rules.pattern_reason(rel, is_dir=False) or rules.saved_output_reason(rel)
    if reason is not None:
        out.leave_out(rel, reason)
    elif not entry.is_file(follow_symlinks=False):
        out.leave_out(rel, "not a regular file")
    elif not os.access(entry.path, os.R_OK):
        out.leave_out(rel, "cannot be read (permission denied)")
    else:
        out.add(rel, entry.stat(follow_symlinks=False).st_size, entry.path)


def _add_bundled(folder: Path, bundled: dict[str, Path], out: _Collector) -> list[str]:
    """Ship our own helper packages (e.g. ``sdk``) unless the workspace has its own."""
    added: list[str] = []
    for name, source in sorted(bundled.items()):
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"bundled name {quoted(name)} must be a single path component")
        if os.path.lexists(folder / name) or not Path(source).is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rel_dir = Path(os.path.relpath(dirpath, source)).as_posix()
            prefix = name if rel_dir == "." else f"{name}/{rel_dir}"
            out.folders.append(prefix)
            for fname in sorted(filenames):
                if fname.endswith(".pyc"):
                    continue
                path = os.path.join(dirpath, fname)
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode):
                    out.add(f"{prefix}/{fname}", st.st_size, path)
        added.append(name)
    return added
