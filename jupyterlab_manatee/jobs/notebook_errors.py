"""Which cells of an executed notebook raised.

The real executor runs ``nbconvert --execute --allow-errors``: a notebook whose cells raise
still ends "Finished" (status 5), with the tracebacks in its outputs. So the status alone
cannot tell a user their analysis failed; the saved output can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..common.state_files import Fields, field_problem

#: Parsing a notebook costs a few times its size in memory: larger outputs are not scanned
#: (the reply says so), so saving a 500 MB output keeps the server's memory bounded.
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
MAX_EVALUE = 300
#: The shape :func:`cell_errors` returns (checked when read back from a state file).
ERRORS_FIELDS: Fields = {
    "count": (int, type(None)),
    "first": (dict, type(None)),
    "unchecked": (str,),
}
FIRST_ERROR_FIELDS: Fields = {"cell": (int,), "ename": (str,), "evalue": (str,)}


def cell_errors(path: Path) -> dict[str, Any] | None:
    """``{"count", "first": {"cell", "ename", "evalue"}}`` for the code cells whose outputs
    hold an error (``cell`` counts code cells from 1, as JupyterLab's prompts do not);
    ``{"count": None, "first": None, "unchecked": <why>}`` for an output too large to scan;
    None when the file is not a readable notebook (blocking: call it in a thread)."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return {
            "count": None,
            "first": None,
            "unchecked": f"the output is {size // (1024 * 1024)} MiB, over the "
            f"{MAX_NOTEBOOK_BYTES // (1024 * 1024)} MiB this server scans: open it to see "
            "whether cells raised",
        }
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return errors_in(data)


def errors_in(data: bytes | bytearray) -> dict[str, Any] | None:
    """:func:`cell_errors` of a notebook's bytes (already known to be within the limit);
    None when they are not a notebook (blocking: call it in a thread)."""
    try:
        notebook = json.loads(data)
    except ValueError:
        return None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return None
    failed: list[dict[str, Any]] = []
    code_cell = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code_cell += 1
        outputs = cell.get("outputs")
        errors = [
            o for o in outputs or [] if isinstance(o, dict) and o.get("output_type") == "error"
        ]
        if errors:
            error = errors[0]
            failed.append(
                {
                    "cell": code_cell,
                    "ename": str(error.get("ename") or "Error"),
                    "evalue": str(error.get("evalue") or "")[:MAX_EVALUE],
                }
            )
    return {"count": len(failed), "first": failed[0] if failed else None}


def errors_problem(errors: Any) -> str | None:
    """What makes ``errors`` (read back from a file) unlike :func:`cell_errors`' result, so
    that :func:`describe` would fail on it; None when it is usable."""
    if errors is None:
        return None
    problem = field_problem(errors, ERRORS_FIELDS, required=("count", "first"))
    if problem is None and errors["first"] is not None:
        problem = field_problem(errors["first"], FIRST_ERROR_FIELDS, required=("cell", "ename"))
        problem = problem and f"its first error: {problem}"
    if problem is None and errors["count"] and errors["first"] is None:
        problem = "it counts cells that raised but names no first one"
    return problem


def describe(errors: dict[str, Any] | None) -> str | None:
    """One sentence for a person, or None when no cell raised."""
    if errors and errors.get("unchecked"):
        return f"cells were not checked for errors: {errors['unchecked']}"
    if not errors or not errors["count"]:
        return None
    first = errors["first"]
    cells = "1 cell" if errors["count"] == 1 else f"{errors['count']} cells"
    return (
        f"{cells} raised an error in the stage-2 run; the first: {first['ename']} in code "
        f"cell {first['cell']}"
    )
