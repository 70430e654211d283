"""Synthetic inputs: workspaces of mixed CSV text and incompressible binary, a large
executed notebook, sizes like ``64M`` or ``1G``."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import nbformat

FILE_PIECE = 64 << 20  # no single file larger than this
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``64M`` -> 67108864 (K, M, G are binary units; a bare number is bytes)."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size like 64M, 500M or 1G")
    value = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive size")
    return value


def format_size(n: float) -> str:
    """Bytes in the units the command line takes (``1G``, ``64M``, ``1.5M``)."""
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{n:.0f}B"


def notebook_text(source: str = "print('hello from the benchmark')") -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def _csv_block(seed: int, rows: int = 40_000) -> bytes:
    """Insurance-like CSV rows (gzip -6 shrinks them to about a third)."""
    rng = random.Random(seed)
    regions = ("northeast", "northwest", "southeast", "southwest")
    lines = [
        f"{i},{rng.randint(18, 64)},{rng.choice(('male', 'female'))},{rng.uniform(15, 50):.2f},"
        f"{rng.randint(0, 5)},{rng.choice(('yes', 'no'))},{rng.choice(regions)},"
        f"{rng.uniform(1000, 60000):.4f}\n"
        for i in range(rows)
    ]
    return "".join(lines).encode()


def _write_repeating(path: Path, size: int, block: bytes) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = block[:left]
            f.write(piece)
            left -= len(piece)


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = os.urandom(min(left, 8 << 20))
            f.write(piece)
            left -= len(piece)


def build_workspace(parent: Path, name: str, size: int, seed: int = 0) -> Path:
    """``parent/name/`` holding ``nb.ipynb``, ``data/*.csv`` (half the bytes) and
    ``blobs/*.bin`` (random, the other half); returns the notebook's path."""
    folder = parent / name
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    notebook = folder / "nb.ipynb"
    notebook.write_text(notebook_text())
    left = max(0, size - notebook.stat().st_size)
    text_bytes = left // 2
    block = _csv_block(seed)
    header = b"index,age,sex,bmi,children,smoker,region,charges\n"
    for i, offset in enumerate(range(0, text_bytes, FILE_PIECE)):
        piece = min(FILE_PIECE, text_bytes - offset)
        _write_repeating(folder / "data" / f"table-{i:03d}.csv", piece, header + block)
    binary_bytes = left - text_bytes
    for i, offset in enumerate(range(0, binary_bytes, FILE_PIECE)):
        _write_random(
            folder / "blobs" / f"blob-{i:03d}.bin", min(FILE_PIECE, binary_bytes - offset)
        )
    return notebook


def tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_big_notebook(path: Path, size: int) -> None:
    """An executed notebook of about ``size`` bytes: one cell whose stream output is that
    many bytes of printed lines. Written as JSON text piece by piece (bounded memory)."""
    nb = json.loads(notebook_text("for i in range(N):\n    print(line(i))"))
    cell = nb["cells"][0]
    cell["execution_count"] = 1
    marker = "@@OUTPUT@@"
    cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": marker}]
    head, _, tail = json.dumps(nb, indent=1).partition(json.dumps(marker))
    rng = random.Random(size)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
    line = "".join(rng.choice(alphabet) for _ in range(4000))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(head + "[\n")
        written = len(head) + 2
        i = 0
        while True:
            entry = json.dumps(f"{i:09d} {line[: 120 + (i * 37) % 3800]}\n")
            if written + len(entry) + 2 > size - len(tail) - 2:
                break
            f.write(("" if i == 0 else ",\n") + entry)
            written += len(entry) + (0 if i == 0 else 2)
            i += 1
        f.write("\n]" + tail)
    os.replace(tmp, path)
