"""What a submission ships: the notebook's folder scanned, previewed and archived.

The scan and the archive run on the context's worker threads (at a low priority) so the
server's loop keeps answering while a large workspace is walked or compressed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..remote.archive_stream import ArchiveStream
from ..workspace import archive, import_check
from ..workspace.largest import largest_items
from ..workspace.manifest import Manifest
from ..workspace.notebook import resolve_notebook
from ..workspace.notebook_paths import parent_references
from ..workspace.scan import scan_workspace
from .context import Context

ARCHIVE_PREFIX = "manatee-workspace-"
MANIFEST_FILE_LIMIT = 1000


class Packing:
    """Turns a notebook's path into a manifest, a dry run, or an archive of its folder."""

    def __init__(self, context: Context) -> None:
        self.context = context

    async def manifest(self, path: str, filename: str | None) -> Manifest:
        """What a submission of this notebook would ship (raises when it may not be shipped)."""
        ctx = self.context
        loop = asyncio.get_running_loop()
        notebook = await loop.run_in_executor(
            ctx.pool, resolve_notebook, ctx.root_dir, path, filename
        )
        return await loop.run_in_executor(ctx.pool, self._scan, notebook)

    async def import_warnings(self, manifest: Manifest) -> list[dict[str, Any]]:
        """Imports the TEE's image lacks and the notebook does not install (dry run only)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.context.pool,
            import_check.notebook_import_warnings,
            manifest.folder / manifest.notebook,
            str(PurePosixPath(manifest.folder_path) / manifest.notebook),
            [entry.path for entry in manifest.files],
        )

    def _scan(self, notebook: Path) -> Manifest:
        ctx = self.context
        hidden_allowed = bool(getattr(ctx.contents_manager, "allow_hidden", True))
        return scan_workspace(
            notebook,
            root_dir=ctx.root_dir,
            exclude=list(ctx.config.exclude) + ([] if hidden_allowed else [".*"]),
            ignore_file=ctx.config.ignore_file,
            max_bytes=ctx.config.max_workspace_size,
            bundled=bundled_dirs(),
            outputs_folder=ctx.config.outputs_folder,
        )

    async def preview(self, path: str, filename: str | None) -> dict[str, Any]:
        """The dry run the confirm dialog shows: the manifest (its file list capped) and
        warnings: code that refers outside the notebook's folder, imports the TEE's image
        lacks."""
        config = self.context.config
        manifest = await self.manifest(path, filename)
        shown = str(PurePosixPath(manifest.folder_path or ".") / manifest.notebook)
        warnings = await asyncio.get_running_loop().run_in_executor(
            self.context.pool, parent_references, manifest.folder / manifest.notebook, shown
        )
        reply = manifest.to_json()
        files = reply["files"]
        reply["files"] = files[:MANIFEST_FILE_LIMIT]
        reply["files_truncated"] = len(files) > MANIFEST_FILE_LIMIT
        # what makes a large workspace large, and the line that would leave each out
        large = manifest.total_bytes > config.large_workspace_size
        reply["largest"] = largest_items(manifest) if large else []
        reply["ignore_file"] = config.ignore_file
        reply["warnings"] = [*warnings, *await self.import_warnings(manifest)]
        return reply

    async def stream(self, manifest: Manifest, creator: str) -> ArchiveStream:
        """The archive, written off the loop while it is read (:mod:`..remote.archive_stream`)."""
        config = self.context.config
        return await ArchiveStream.start(
            lambda out: archive.write_archive(
                manifest, f"{creator}-workspace", out, compresslevel=config.compression_level
            ),
            self.context.pool,
            config.temp_dir,
            ARCHIVE_PREFIX,
        )

    async def archive_to(self, manifest: Manifest, creator: str, path: Path) -> None:
        """Write the whole archive to ``path`` (a queued submission's), off the loop."""
        await asyncio.get_running_loop().run_in_executor(
            self.context.pool, self._write_archive_to, manifest, creator, path
        )

    def _write_archive_to(self, manifest: Manifest, creator: str, path: Path) -> None:
        temp = self._write_archive(manifest, creator)
        try:
            os.replace(temp, path)
        except OSError:  # another file system: copy, then drop the temporary archive
            shutil.copyfile(temp, path)
            temp.unlink(missing_ok=True)

    def _write_archive(self, manifest: Manifest, creator: str) -> Path:
        """A uniquely named temporary archive; removed here if writing it fails."""
        config = self.context.config
        fd, name = tempfile.mkstemp(prefix=ARCHIVE_PREFIX, suffix=".tar.gz", dir=config.temp_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                archive.write_archive(
                    manifest,
                    f"{creator}-workspace",
                    out,
                    compresslevel=config.compression_level,
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path


def bundled_dirs() -> dict[str, Path]:
    """Folders shipped with every workspace that lacks them: the data SDK.

    The SDK is the ``sdk`` package installed beside this one (the TEE's stock image does
    not have it); an unrelated ``sdk`` elsewhere on the path is never shipped.
    """
    sdk = Path(__file__).resolve().parents[2] / "sdk"
    return {"sdk": sdk} if (sdk / "__init__.py").is_file() else {}
