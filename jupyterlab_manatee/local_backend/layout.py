"""Where the local backend keeps things under its data directory, and how it writes them.

Every file the backend produces is written to a temporary name in the same folder and
renamed into place, so a stop at any moment leaves either the old state or the new one,
never half a file. Temporary names all start with ``.tmp-`` so a restart can sweep them.

Layout (all private to the user running the backend)::

    <data_dir>/manatee.db                     SQLite job store
    <data_dir>/url-signing.key                HMAC secret for signed download URLs
    <data_dir>/token-signing-key.pem          RSA key for attestation tokens
    <data_dir>/api-token                      the API token every job route requires
    <data_dir>/uploads/                       uploads being received (swept at start)
    <data_dir>/storage/<creator>/<creator>-workspace.tar.gz
                                              the creator's one workspace object, as
                                              upstream's bucket: each submit replaces it,
                                              a build reads it when it starts
    <data_dir>/jobs/<uuid>/executor.log       the executor's stderr, kept for diagnosis
    <data_dir>/outputs/<uuid>/out-<uuid>-<notebook>   executed notebook (upstream's name)
    <data_dir>/outputs/<uuid>/<uuid>-token            attestation token (upstream's name)

A running job's workspace is not here: jobs must not reach this folder (see `runner`).
"""

from __future__ import annotations

import os
import shutil
import uuid as uuid_module
from pathlib import Path
from urllib.parse import quote

TMP_PREFIX = ".tmp-"


class DataLayout:
    """Paths under one data directory; creating it makes the folders (mode 0700)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    # -- top-level entries -------------------------------------------------------------
    @property
    def db(self) -> Path:
        return self.root / "manatee.db"

    @property
    def lock(self) -> Path:
        return self.root / "backend.lock"

    @property
    def url_secret(self) -> Path:
        return self.root / "url-signing.key"

    @property
    def token_key(self) -> Path:
        return self.root / "token-signing-key.pem"

    @property
    def api_token(self) -> Path:
        return self.root / "api-token"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def legacy_archives(self) -> Path:
        """Per-job archives of older versions (removed at start)."""
        return self.root / "archives"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def create(self) -> None:
        """Make the data directory and its folders, private to this user."""
        for folder in (self.root, self.uploads, self.storage, self.jobs, self.outputs):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    # -- per creator -------------------------------------------------------------------
    def workspace_archive(self, creator: str) -> Path:
        """Upstream's ``<creator>/<creator>-workspace.tar.gz``, one per creator.

        The creator is percent-encoded into one path component (``/`` and the like
        cannot make it a different path); a plain name like ``alice`` stays as it is.
        """
        name = quote(creator, safe="-_.~@+=,")
        if name in (".", ".."):
            name = name.replace(".", "%2E")
        return self.storage / name / f"{name}-workspace.tar.gz"

    # -- per job -----------------------------------------------------------------------

    def job_dir(self, job_uuid: str) -> Path:
        return self.jobs / job_uuid

    def executor_log(self, job_uuid: str) -> Path:
        return self.job_dir(job_uuid) / "executor.log"

    def output_dir(self, job_uuid: str) -> Path:
        return self.outputs / job_uuid

    @staticmethod
    def output_key(job_uuid: str, notebook: str) -> str:
        """Storage key of the executed notebook (upstream: ``out-<uuid>-<notebook>``)."""
        return f"outputs/{job_uuid}/out-{job_uuid}-{notebook}"

    @staticmethod
    def token_key_for(job_uuid: str) -> str:
        """Storage key of the attestation token (upstream: ``<uuid>-token``)."""
        return f"outputs/{job_uuid}/{job_uuid}-token"

    def resolve_key(self, key: str) -> Path | None:
        """The file a storage key names, or None when the key points outside ``outputs/``."""
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "outputs":
            return None
        if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
            return None
        path = (self.root / key).resolve()
        try:
            path.relative_to(self.outputs.resolve())
        except ValueError:
            return None
        return path


def temp_path_for(target: Path) -> Path:
    """A unique temporary name beside ``target`` (same file system, so rename is atomic)."""
    return target.with_name(f"{TMP_PREFIX}{uuid_module.uuid4().hex}-{target.name}")


def atomic_write_bytes(target: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``target`` all at once: temp file, fsync, rename."""
    tmp = temp_path_for(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a file or folder if it is there; never follows a symlink out."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
