"""The submit dialog's import warning: a module the TEE's image lacks, never installed.

Stage 2 runs in the executor's image (see `tee_image`), which has none of xgboost,
google-auth or google-cloud-storage; upstream's notebooks install what they need in their
first cell. A notebook that imports such a module without installing it fails in the TEE
at that import, after a build and a VM start: better said before sending. The check reads
the notebook only (no kernel): ``import``/``from`` statements in code cells, and the
packages of ``%pip install``/``!pip install`` lines anywhere in it. Modules of the
workspace itself (``x.py``, ``x/``) count as present.

Each warning has the shape of the dry-run manifest's ``warnings``: ``{"path": <notebook>,
"cell": <1-based code cell>, "text": <the import>, "message": <one sentence>}``.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import tee_image

_INSTALL_RE = re.compile(
    r"^\s*(?:%|!)\s*(?:(?:python3?|\S*/python3?)\s+-m\s+)?(?:pip3?|uv\s+pip|mamba|conda)\s+install\s+(.*)$"
)
_SHELL_STOP = (">", "|", "&", ";", "<", "2>")


def _cells(notebook: dict[str, Any]) -> list[str]:
    """The notebook's code cells' sources, in order."""
    cells = []
    for cell in notebook.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def installed_packages(source: str) -> list[str]:
    """The package names a cell's install lines (``%pip install a b>=2 > /dev/null``) name."""
    names = []
    for line in source.splitlines():
        match = _INSTALL_RE.match(line)
        if match is None:
            continue
        try:
            words = shlex.split(match.group(1), comments=True)
        except ValueError:
            words = match.group(1).split()
        for word in words:
            if word.startswith(_SHELL_STOP):
                break
            if word.startswith("-") or "/" in word or word.startswith("."):
                continue  # options, requirement files, local paths
            names.append(word)
    return names


def _python(source: str) -> str:
    """The cell as Python: IPython's magic and shell lines become ``pass`` (same indent,
    same line numbers); a cell magic other than ``%%capture`` makes the cell not Python."""
    if source.lstrip().startswith("%%"):
        first, _, rest = source.lstrip().partition("\n")
        return "\n" + _python(rest) if first.startswith("%%capture") else ""
    lines = []
    for line in source.splitlines():
        body = line.lstrip()
        magic = body.startswith(("%", "!"))
        lines.append(line[: len(line) - len(body)] + "pass" if magic else line)
    return "\n".join(lines)


def imports(source: str) -> list[tuple[str, str]]:
    """``(module, statement text)`` of each absolute import in a cell (unparsable: none).

    ``from a.b import c`` gives ``a.b.c``: ``c`` may be a module (``from google.cloud
    import storage``), and a name inside ``a.b`` is found through its prefix anyway.
    """
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
            modules = modules or [node.module]
        else:
            continue
        text = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        found.extend((module, text) for module in modules)
    return sorted(found, key=lambda item: source.find(item[1]))


def _local_modules(files: Iterable[str]) -> set[str]:
    """Top-level names the workspace itself provides (``x.py``, ``x/...``)."""
    names = set()
    for path in files:
        first = path.split("/", 1)
        if len(first) == 2:
            names.add(first[0])
        elif first[0].endswith(".py"):
            names.add(first[0][:-3])
    return names


def import_warnings(
    notebook: dict[str, Any], path: str, workspace_files: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One warning per import of a module that neither the image, the notebook's install
    lines nor the workspace provide (the first import of each module only)."""
    cells = _cells(notebook)
    available = set(tee_image.image_modules()) | _local_modules(workspace_files)
    for source in cells:
        for package in installed_packages(source):
            available.update(tee_image.pip_modules(package))
    warnings: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, source in enumerate(cells, start=1):
        for module, text in imports(source):
            if tee_image.provides(module, available):
                continue
            missing = _missing_part(module, available)
            if missing in seen:
                continue
            seen.add(missing)
            package = _suggested_package(module)
            warnings.append(
                {
                    "path": path,
                    "cell": number,
                    "text": text,
                    "message": (
                        f"The TEE's image has no module {missing!r} and the notebook does "
                        f"not install it: add '%pip install {package}' to its first cell, "
                        "or stage 2 fails at this import."
                    ),
                }
            )
    return warnings


def _missing_part(module: str, available: set[str]) -> str:
    """The shortest prefix of ``module`` that nothing available provides or starts with
    (``xgboost`` of ``xgboost.XGBRegressor``; ``google.cloud`` of ``google.cloud.storage``
    where only ``google.protobuf`` is there)."""
    parts = module.split(".")
    for n in range(1, len(parts) + 1):
        prefix = ".".join(parts[:n])
        if not any(name.startswith(prefix + ".") for name in available):
            return prefix
    return module


def _suggested_package(module: str) -> str:
    """The pip package to name for ``module`` (the reverse of `tee_image.PIP_MODULES`)."""
    for package, modules in tee_image.PIP_MODULES.items():
        if any(module == m or module.startswith(m + ".") for m in modules):
            return package
    return module.split(".")[0].replace("_", "-")


def notebook_import_warnings(
    notebook_file: Path, path: str, workspace_files: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """`import_warnings` for a notebook on disk; an unreadable notebook gives none."""
    try:
        notebook = json.loads(notebook_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(notebook, dict):
        return []
    return import_warnings(notebook, path, workspace_files)
