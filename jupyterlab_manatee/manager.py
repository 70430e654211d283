"""The shield panel's actions, independent of HTTP: the handlers only call this.

Blocking work (walking and archiving a workspace, file system checks) runs on a small
thread pool so the Jupyter server's event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import workspace
from ._version import __version__
from .api_client import ManateeApiClient
from .attestation import describe_token
from .config import ManateeConfig, creator_problem, creator_warning, redact_url
from .errors import ApiNotConfigured, BadRequest, Forbidden, ManateeError, NotFound
from .job_records import JobRecords
from .output import resolve_folder, safe_output_name, save_output

ARCHIVE_PREFIX = "manatee-workspace-"
MANIFEST_FILE_LIMIT = 1000
JOB_SEARCH_PAGES = 20
JOB_SEARCH_PAGE_SIZE = 50


class ManateeManager:
    """Submits workspaces, lists and deletes jobs, saves outputs, reads tokens."""

    def __init__(self, config: ManateeConfig, root_dir: str | Path, log: logging.Logger) -> None:
        self.config = config
        self.root_dir = Path(root_dir).resolve()
        self.log = log
        self.records = JobRecords(Path(config.state_dir) / "jobs.json")
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="manatee-workspace")
        self._warned_creators: set[str] = set()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- identity and configuration ----------------------------------------------------

    @property
    def client(self) -> ManateeApiClient:
        base_url = self.config.api_base_url
        if base_url is None:
            raise ApiNotConfigured(self.config.api_url_problem or "ManaTEE API is not configured")
        return ManateeApiClient(
            base_url,
            self.config.user_token,
            connect_timeout=self.config.connect_timeout,
            request_timeout=self.config.request_timeout,
            upload_timeout=self.config.upload_timeout,
        )

    def creator(self, username: str) -> str:
        """The creator name the API sees for this user: the override, else the user name."""
        name = self.config.creator or username
        problem = creator_problem(name)
        if problem:
            hint = (
                "set c.ManateeConfig.creator (or MANATEE_CREATOR) to a short lowercase name"
                if not self.config.creator
                else "fix c.ManateeConfig.creator / MANATEE_CREATOR"
            )
            raise Forbidden(f"{name!r} cannot be used as the ManaTEE creator: {problem}; {hint}")
        warning = creator_warning(name)
        if warning and name not in self._warned_creators:
            self._warned_creators.add(name)
            self.log.warning("ManaTEE: %s", warning)
        return name

    async def status(self, username: str) -> dict[str, Any]:
        """What the frontend needs for its banner; never raises for a missing API."""
        problem = self.config.api_url_problem
        reply: dict[str, Any] = {
            "version": __version__,
            "configured": problem is None,
            "api_url": None if problem else redact_url(self.config.api_base_url or ""),
            "problem": problem,
            "reachable": None,
            "creator": None,
            "creator_problem": None,
            "creator_warning": None,
            "max_workspace_size": self.config.max_workspace_size,
        }
        try:
            reply["creator"] = self.creator(username)
            reply["creator_warning"] = creator_warning(reply["creator"])
        except Forbidden as e:
            reply["creator_problem"] = e.message
        if problem is None and self.config.check_health:
            try:
                await self.client.health()
                reply["reachable"] = True
            except ManateeError as e:
                reply["reachable"] = False
                reply["problem"] = e.message
        return reply

    # --- submission --------------------------------------------------------------------

    async def manifest(self, path: str, filename: str | None) -> workspace.Manifest:
        """What a submission of this notebook would ship (raises when it may not be shipped)."""
        loop = asyncio.get_running_loop()
        notebook = await loop.run_in_executor(
            self._pool, workspace.resolve_notebook, self.root_dir, path, filename
        )
        return await loop.run_in_executor(self._pool, self._scan, notebook)

    def _scan(self, notebook: Path) -> workspace.Manifest:
        return workspace.scan_workspace(
            notebook,
            root_dir=self.root_dir,
            exclude=list(self.config.exclude),
            ignore_file=self.config.ignore_file,
            max_bytes=self.config.max_workspace_size,
            bundled=bundled_dirs(),
        )

    async def submit(self, username: str, path: str, filename: str | None) -> dict[str, Any]:
        """Archive the notebook's folder off the loop, upload it once, remember where it was."""
        creator = self.creator(username)
        client = self.client
        manifest = await self.manifest(path, filename)
        loop = asyncio.get_running_loop()
        archive = await loop.run_in_executor(self._pool, self._write_archive, manifest, creator)
        try:
            reply = await client.submit(
                archive, creator=creator, filename=manifest.notebook, envs=self.extra_envs()
            )
        finally:
            await loop.run_in_executor(None, _unlink, archive)
        self.records.add(
            reply["uuid"], creator=creator, folder=manifest.folder_path, notebook=manifest.notebook
        )
        self.log.info(
            "ManaTEE: submitted %s (%d files, %d bytes) as job %s",
            manifest.notebook,
            len(manifest.files),
            manifest.total_bytes,
            reply["uuid"],
        )
        return {
            **reply,
            "file_count": len(manifest.files),
            "total_bytes": manifest.total_bytes,
            "excluded_count": len(manifest.excluded),
        }

    def _write_archive(self, manifest: workspace.Manifest, creator: str) -> Path:
        """A uniquely named temporary archive; removed here if writing it fails."""
        fd, name = tempfile.mkstemp(
            prefix=ARCHIVE_PREFIX, suffix=".tar.gz", dir=self.config.temp_dir
        )
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                workspace.write_archive(
                    manifest,
                    f"{creator}-workspace",
                    out,
                    compresslevel=self.config.compression_level,
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def extra_envs(self) -> list[dict[str, str]]:
        """``MANATEE_EXTRA_ENV_<KEY>=<value>`` variables as the API's ``envs`` entries."""
        prefix = self.config.extra_env_prefix
        allow = self.config.extra_env_allow
        envs = []
        for name, value in sorted(os.environ.items()):
            if not prefix or not name.startswith(prefix) or len(name) == len(prefix):
                continue
            key = name[len(prefix) :]
            if allow is None or key in allow:
                envs.append({"key": key, "value": value})
        return envs

    # --- jobs --------------------------------------------------------------------------

    async def list_jobs(self, username: str, page: int, page_size: int) -> dict[str, Any]:
        creator = self.creator(username)
        reply = await self.client.query(creator=creator, page=page, page_size=page_size)
        self.records.learn_ids(creator, reply["jobs"])
        return reply

    async def delete_job(self, username: str, job_uuid: str) -> None:
        creator = self.creator(username)
        await self.client.delete(creator=creator, job_uuid=job_uuid)
        self.records.forget(job_uuid)

    async def save_output(self, username: str, job_id: int) -> dict[str, Any]:
        """Download the executed notebook beside its source notebook (or the output folder)."""
        creator = self.creator(username)
        client = self.client
        signed = await client.output(creator=creator, job_id=job_id)
        folder = await self._output_folder(creator, job_id)
        name = safe_output_name(signed.filename, fallback=f"out-{job_id}.ipynb")

        async def download(write) -> int:
            return await client.download(signed.url, write, what="output")

        create = folder == self.config.output_dir
        saved = await save_output(download, self.root_dir, folder, name, create=create)
        self.log.info("ManaTEE: saved the output of job %d to %s", job_id, saved)
        return {"filename": saved, "path": saved}

    async def _output_folder(self, creator: str, job_id: int) -> str:
        """The submitting notebook's folder when this server submitted the job."""
        record = self.records.find(creator, job_id=job_id)
        if record is None:
            record = await self._record_by_search(creator, job_id)
        if record is not None:
            try:
                folder = await asyncio.get_running_loop().run_in_executor(
                    None, _existing_folder, self.root_dir, record["folder"]
                )
                if folder is not None:
                    return folder
            except BadRequest:
                self.log.warning("ManaTEE: recorded folder of job %d left the root", job_id)
        return self.config.output_dir

    async def _record_by_search(self, creator: str, job_id: int) -> dict[str, Any] | None:
        """Find the job's uuid in the API's list (for records written before we saw its id)."""
        for page in range(1, JOB_SEARCH_PAGES + 1):
            reply = await self.client.query(
                creator=creator, page=page, page_size=JOB_SEARCH_PAGE_SIZE
            )
            self.records.learn_ids(creator, reply["jobs"])
            for job in reply["jobs"]:
                if job["id"] == job_id:
                    return self.records.find(creator, job_uuid=job["uuid"])
            if page * JOB_SEARCH_PAGE_SIZE >= reply["total"] or not reply["jobs"]:
                break
        return None

    async def attestation(self, username: str, job_id: int) -> dict[str, Any]:
        creator = self.creator(username)
        client = self.client
        signed = await client.attestation(creator=creator, job_id=job_id)
        token = await client.fetch_text(signed.url, what="attestation token")
        if not token.strip():
            raise NotFound(f"The attestation token of job {job_id} is empty")
        return {"token": token, **describe_token(token)}


def bundled_dirs() -> dict[str, Path]:
    """Folders shipped with every workspace that lacks them: the data SDK.

    The SDK is the ``sdk`` package installed beside this one (the TEE's stock image does
    not have it); an unrelated ``sdk`` elsewhere on the path is never shipped.
    """
    sdk = Path(__file__).resolve().parent.parent / "sdk"
    return {"sdk": sdk} if (sdk / "__init__.py").is_file() else {}


def _existing_folder(root_dir: Path, folder: str) -> str | None:
    return folder.strip("/") if resolve_folder(root_dir, folder).is_dir() else None


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
