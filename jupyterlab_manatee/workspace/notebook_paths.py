"""Warn when a notebook's code refers to paths outside its own folder.

Only the notebook's folder is shipped to the TEE, so ``../data/x.csv`` read in stage 1
does not exist in stage 2: the job "finishes" with a FileNotFoundError in its output. This
is a heuristic over the string literals of code cells (read with :mod:`tokenize`, never a
regex over the file): a literal whose path climbs above its starting folder (``"../x"``,
``"../"``, ``".."`` as in ``os.path.join("..", ...)`` or ``Path("..")``) is reported; URLs
(``https://x/../y``) are not. It never fails a submission: unreadable code gives no warning.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

from ..errors import MAX_QUOTED, quoted

#: Larger notebooks (embedded outputs) are not read for warnings.
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024
#: At most this many warnings per notebook (the reply stays small).
MAX_WARNINGS = 50
MAX_TEXT = MAX_QUOTED
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_STRING_PREFIX = re.compile(r"^[A-Za-z]*")


def parent_references(notebook: Path, shown_path: str) -> list[dict[str, Any]]:
    """``{"path", "cell", "text", "message"}`` for each string literal of a code cell that
    refers above the notebook's folder; ``cell`` counts code cells from 1. Blocking (reads
    the file): call it in a thread. Never raises for a bad notebook."""
    try:
        if notebook.stat().st_size > MAX_NOTEBOOK_BYTES:
            return []
        document = json.loads(notebook.read_bytes())
    except (OSError, ValueError):
        return []
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        return []
    warnings: list[dict[str, Any]] = []
    code_cell = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code_cell += 1
        seen: set[str] = set()
        for text in _references(_source(cell.get("source"))):
            if text in seen:
                continue
            seen.add(text)
            warnings.append(
                {
                    "path": shown_path,
                    "cell": code_cell,
                    "text": text,
                    "message": (
                        f"Code cell {code_cell} refers to {quoted(text)}, outside the notebook's "
                        "folder: only that folder is sent, so this path will not exist in "
                        "the TEE; move the files it needs into the notebook's folder."
                    ),
                }
            )
            if len(warnings) >= MAX_WARNINGS:
                return warnings
    return warnings


def climbs_above_start(text: str) -> bool:
    """Whether the path ``text`` leads above the folder it starts from (URLs never do)."""
    if _URL.match(text):
        return False
    depth = 0
    for part in re.split(r"[/\\]", text):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _source(source: Any) -> str:
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _references(source: str) -> list[str]:
    """The words of the cell's string literals that climb above their start."""
    found: list[str] = []
    for literal in _string_literals(_without_magics(source)):
        for word in literal.split():
            if climbs_above_start(word):
                found.append(word[:MAX_TEXT])
    return found


def _without_magics(source: str) -> str:
    """IPython's ``%magic`` and ``!shell`` lines blanked (line numbers kept) so that the
    rest tokenizes as Python."""
    lines = source.splitlines(keepends=True)
    return "".join("\n" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _string_literals(source: str) -> list[str]:
    """The values of the string literals, as far as the code tokenizes."""
    values: list[str] = []
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        for token in tokens:
            if token.type == tokenize.STRING:
                values.append(_literal_value(token.string))
            elif token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                values.append(token.string)  # Python 3.12+: an f-string's literal parts
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # unfinished code: keep what was read
    return values


def _literal_value(text: str) -> str:
    """A string token's value; for f-strings (which ``literal_eval`` refuses), its text
    between the quotes, placeholders included."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    body = text[len(_STRING_PREFIX.match(text).group()) :]  # type: ignore[union-attr]
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    return body[len(quote) : len(body) - len(quote)]
