"""The manifest: the exact content of a submission, decided before any byte is archived
or sent (what the scan in :mod:`.scan` finds, what :mod:`.archive` writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ManifestEntry:
    """One file shipped: its path inside the workspace, its size at scan time, where to read it."""

    path: str
    size: int
    source: Path


@dataclass(frozen=True)
class Excluded:
    """One file or folder (``"name/"``) left out, with the reason in words."""

    path: str
    reason: str


@dataclass
class Manifest:
    """The exact content of a submission, decided before any byte is archived or sent."""

    folder: Path
    folder_path: str
    notebook: str
    files: list[ManifestEntry]
    excluded: list[Excluded]
    added: list[str]
    total_bytes: int
    # Non-excluded sub-folders (also empty ones, which a notebook may write into).
    folders: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The manifest as the frontend shows it (no absolute server paths)."""
        return {
            "notebook": self.notebook,
            "folder": self.folder_path,
            "file_count": len(self.files),
            "total_bytes": self.total_bytes,
            "files": [{"path": f.path, "size": f.size} for f in self.files],
            "excluded": [{"path": e.path, "reason": e.reason} for e in self.excluded],
            "added": list(self.added),
        }
