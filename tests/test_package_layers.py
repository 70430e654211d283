"""The package's layers import downwards only, and its modules stay readable.

handlers -> manager -> actions/ -> {jobs/, workspace/, remote/} -> common/, with
``config``, ``errors`` and ``_version`` shared by all. Read with ast, so an import only
under ``TYPE_CHECKING`` or inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jupyterlab_manatee

PACKAGE = Path(jupyterlab_manatee.__file__).parent
NAME = PACKAGE.name
SHARED = {"_version", "config", "errors", "common"}
# What each part may import besides itself. attestation/ and local_backend/ are below
# the server's layers (the attestation CLI and the local API run without the server).
MAY_IMPORT: dict[str, set[str]] = {
    "_version": set(),
    "errors": set(),
    "config": set(),
    "common": {"_version", "config", "errors"},
    "remote": SHARED,
    "attestation": SHARED | {"remote"},
    "local_backend": SHARED | {"remote"},
    "workspace": SHARED | {"attestation"},
    "jobs": SHARED | {"remote", "attestation"},
    "actions": SHARED | {"remote", "attestation", "workspace", "jobs"},
    "manager": SHARED | {"actions", "jobs"},
    "handlers": SHARED | {"manager", "jobs"},
    "extension": SHARED | {"manager", "handlers"},
    "__init__": {"_version", "extension"},
}
#: A tool of its own (the data owner's), apart from the server: it imports what it
#: likes of the shared helpers, and nothing imports it.
APART = {"provision"}
LONG = 500


def part_of(module: str) -> str:
    """``jupyterlab_manatee.remote.wire`` -> ``remote``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """The package's modules ``path`` imports (``from . import x`` names module x)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # a submodule named in `from package import name`
                candidate = f"{target}.{alias.name}"
                as_path = PACKAGE.parent / candidate.replace(".", "/")
                if as_path.with_suffix(".py").is_file() or as_path.is_dir():
                    found.add(candidate)
    return {m for m in found if m == NAME or m.startswith(NAME + ".")}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts)


def climbing_imports() -> list[str]:
    """Every import that goes up or sideways, as ``importer -> imported``."""
    problems = []
    for path in modules():
        importer = part_of(module_name(path))
        for target in sorted(imported(path)):
            part = part_of(target)
            if part == importer or (target == NAME and importer == "__init__"):
                continue
            if part in APART:
                problems.append(f"{module_name(path)} -> {target}")
            elif importer in APART:
                if part not in SHARED:
                    problems.append(f"{module_name(path)} -> {target}")
            elif part not in MAY_IMPORT.get(importer, set()):
                problems.append(f"{module_name(path)} -> {target}")
    return problems


def test_every_part_of_the_package_has_a_place_in_the_layers():
    parts = {part_of(module_name(path)) for path in modules()}
    assert parts - set(MAY_IMPORT) - APART == set()


def test_no_import_climbs_back_up_the_layers():
    assert climbing_imports() == []


def test_the_api_routes_are_written_in_the_wire_module_only():
    holders = [
        module_name(path)
        for path in modules()
        if "/v1/job/" in path.read_text("utf-8") and "provision" not in path.parts
    ]
    assert holders == [f"{NAME}.remote.wire"]


def test_a_module_over_500_lines_says_why_in_its_docstring():
    unexplained = []
    for path in modules():
        text = path.read_text("utf-8")
        if "provision" in path.parts or text.count("\n") <= LONG:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if f"Over {LONG} lines because" not in docstring:
            unexplained.append(module_name(path))
    assert unexplained == []
