"""The shield panel's actions, independent of HTTP: the handlers only call this.

Blocking work (walking and archiving a workspace, file system checks) runs on a small
thread pool so the Jupyter server's event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from . import import_check, workspace
from ._version import __version__
from .api_client import ManateeApiClient
from .api_session import ApiSession
from .archive_stream import ArchiveStream
from .attestation import (
    NOT_VERIFIED,
    RECORD_SUFFIX,
    JobFacts,
    KeyStore,
    Policy,
    describe_token,
    file_md5,
    make_record,
    parse_token,
    read_record,
    record_name,
    verify_token,
    write_new_record,
)
from .background import background_executor
from .config import (
    ManateeConfig,
    creator_problem,
    creator_warning,
    redact_url,
    safe_creator,
)
from .creator_notice import CreatorNotices
from .errors import (
    ApiNotConfigured,
    BadRequest,
    Conflict,
    Forbidden,
    JobLimitReached,
    ManateeError,
    NotFound,
    quoted,
)
from .job_identity import identify_job, identify_saved_job
from .job_list import newest_first
from .job_records import JobRecords
from .job_uuid import CANONICAL_FORM, canonical_uuid
from .local_setup import describe as describe_setup
from .local_setup import setup_under_way
from .notebook_errors import cell_errors
from .notebook_errors import describe as describe_errors
from .notebook_paths import parent_references
from .offload import OffLoop
from .output import output_name, resolve_folder, save_output
from .output_scan import Fetch, OutputScans
from .submission_queue import IN_PROGRESS, Entry, SubmissionQueue, blocking_job, now_text

ARCHIVE_PREFIX = "manatee-workspace-"
MANIFEST_FILE_LIMIT = 1000
JOB_SEARCH_PAGES = 20
JOB_SEARCH_PAGE_SIZE = 50
#: How many of the newest jobs are looked at for jobs in progress (the API allows 3).
RECENT_JOBS = 50
TOKEN_UNAVAILABLE = "token unavailable"
#: The API's status of a job whose executor stopped (cells may still have raised).
FINISHED = 5


class ManateeManager:
    """Submits workspaces, lists and deletes jobs, saves outputs, reads tokens."""

    def __init__(
        self,
        config: ManateeConfig,
        root_dir: str | Path,
        log: logging.Logger,
        contents_manager: Any = None,
    ) -> None:
        self.config = config
        #: the server's ContentsManager: its ``allow_hidden`` also governs what is shipped
        self.contents_manager = contents_manager
        self.root_dir = Path(root_dir).resolve()
        self.log = log
        self._records: dict[str, JobRecords] = {}
        self._pool = background_executor(2, config.background_nice, "manatee-workspace")
        self._warned_creators: set[str] = set()
        self.creator_notices = CreatorNotices(config.state_dir, log)
        self._keys: KeyStore | None = None
        self._keys_settings: tuple[Any, ...] = ()
        self.queue = SubmissionQueue(
            Path(config.state_dir) / "queue", poll_interval=config.queue_poll_interval
        )
        self._queue_task: asyncio.Future[None] | None = None
        #: which cells raised in Finished jobs' outputs, scanned in the background
        self.scans = OutputScans(self._pool, log)
        #: uploads under way, per creator: a page reloaded meanwhile shows them until they
        #: become jobs (the upload goes on without the page)
        self._sending: dict[str, dict[str, dict[str, str]]] = {}
        #: the JSON calls' pooled connections to the API, closed by :meth:`close`
        self.api_session = ApiSession()

    @property
    def records(self) -> JobRecords:
        """The records of jobs submitted to the configured API. Kept per API URL: job ids
        are the API's, and another API (a reset local backend) numbers from 1 again, so a
        record from one must never identify a job of the other."""
        api = self.config.api_base_url or ""
        if api not in self._records:
            self._records[api] = JobRecords(Path(self.config.state_dir) / records_file(api))
        return self._records[api]

    async def close(self) -> None:
        """At server stop: the queue's sender, the worker threads, the API connections."""
        if self._queue_task is not None:
            self._queue_task.cancel()
        await self.scans.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.api_session.close()

    # --- identity and configuration ----------------------------------------------------

    @property
    def client(self) -> ManateeApiClient:
        base_url = self.config.api_base_url
        problem = self.config.problem  # a bad URL, or a token a header cannot carry
        if base_url is None or problem:
            raise ApiNotConfigured(problem or "ManaTEE API is not configured")
        return ManateeApiClient(
            base_url,
            self.config.user_token,
            connect_timeout=self.config.connect_timeout,
            request_timeout=self.config.request_timeout,
            upload_timeout=self.config.upload_timeout,
            session=self.api_session,
        )

    @property
    def keys(self) -> KeyStore:
        """The issuers' signing keys, cached across requests (rebuilt if settings change)."""
        settings = (
            self.config.jwks_cache_ttl,
            self.config.jwks_file,
            self.config.connect_timeout,
            self.config.request_timeout,
        )
        if self._keys is None or settings != self._keys_settings:
            self._keys = KeyStore(
                ttl=self.config.jwks_cache_ttl,
                jwks_file=self.config.jwks_file,
                connect_timeout=self.config.connect_timeout,
                request_timeout=self.config.request_timeout,
            )
            self._keys_settings = settings
        return self._keys

    @property
    def policy(self) -> Policy:
        return Policy.from_config(self.config)

    def creator(self, username: str) -> str:
        """The creator name the API sees for this user: the override, else the user name."""
        name = self.config.creator or (
            safe_creator(username) if self.config.creator_mapping == "safe" else username
        )
        problem = creator_problem(name)
        if problem:
            hint = (
                "an operator can set c.ManateeConfig.creator_mapping = 'safe' to map user "
                "names to valid creators, or c.ManateeConfig.creator (MANATEE_CREATOR) to a "
                "short lowercase name"
                if not self.config.creator
                else "fix c.ManateeConfig.creator / MANATEE_CREATOR"
            )
            raise Forbidden(
                f"{quoted(name)} cannot be used as the ManaTEE creator: {problem}; {hint}"
            )
        warning = creator_warning(name)
        if warning and name not in self._warned_creators:
            self._warned_creators.add(name)
            self.log.warning("ManaTEE: %s", warning)
        return name

    async def status(self, username: str) -> dict[str, Any]:
        """What the frontend needs for its banner; never raises for a missing API."""
        problem = self.config.problem
        url_problem = self.config.api_url_problem
        reply: dict[str, Any] = {
            "version": __version__,
            # while ./dev run sets the local backend up: {"seconds_left", ...}
            "setting_up": None,
            # the banner shows "not configured" with the problem, also for the token
            "configured": problem is None,
            "api_url": None if url_problem else redact_url(self.config.api_base_url or ""),
            "problem": problem,
            "reachable": None,
            "creator": None,
            "creator_problem": None,
            "creator_warning": None,
            # {"old", "new"}: the safe mapping changed the user's creator (their earlier
            # jobs are listed under the old one), until they dismiss it
            "creator_notice": None,
            "max_workspace_size": self.config.max_workspace_size,
            # the panel counts jobs in progress and queued against it before it asks
            "job_limit": self.config.job_limit if self.config.queue_submissions else None,
            "queue_submissions": self.config.queue_submissions,
            # the folder beside each notebook that holds its saved outputs ('' if none):
            # never shipped, so the panel can leave it out of its Sources list too
            "outputs_folder": self.config.outputs_folder,
        }
        try:
            reply["creator"] = self.creator(username)
            reply["creator_warning"] = creator_warning(reply["creator"])
            reply["creator_notice"] = self.creator_notices.pending(self.config, username)
        except Forbidden as e:
            reply["creator_problem"] = e.message
        if problem is None and self.config.check_health:
            try:
                await self.client.health()
                reply["reachable"] = True
            except ManateeError as e:
                reply["reachable"] = False
                reply["problem"] = e.message
                setting_up = await asyncio.get_running_loop().run_in_executor(
                    None, setup_under_way, self.config.local_setup_file
                )
                if setting_up is not None:  # not a mistake of the user's: say so
                    reply["setting_up"] = setting_up
                    reply["problem"] = describe_setup(setting_up)
        return reply

    def dismiss_creator_notice(self, username: str) -> None:
        """The user has read that their creator changed: stop telling them."""
        self.creator_notices.dismiss(self.config, username)

    # --- submission --------------------------------------------------------------------

    async def manifest(self, path: str, filename: str | None) -> workspace.Manifest:
        """What a submission of this notebook would ship (raises when it may not be shipped)."""
        loop = asyncio.get_running_loop()
        notebook = await loop.run_in_executor(
            self._pool, workspace.resolve_notebook, self.root_dir, path, filename
        )
        return await loop.run_in_executor(self._pool, self._scan, notebook)

    async def import_warnings(self, manifest: workspace.Manifest) -> list[dict[str, Any]]:
        """Imports the TEE's image lacks and the notebook does not install (dry run only)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool,
            import_check.notebook_import_warnings,
            manifest.folder / manifest.notebook,
            str(PurePosixPath(manifest.folder_path) / manifest.notebook),
            [entry.path for entry in manifest.files],
        )

    @property
    def _hidden_allowed(self) -> bool:
        return bool(getattr(self.contents_manager, "allow_hidden", True))

    def _scan(self, notebook: Path) -> workspace.Manifest:
        return workspace.scan_workspace(
            notebook,
            root_dir=self.root_dir,
            exclude=list(self.config.exclude) + ([] if self._hidden_allowed else [".*"]),
            ignore_file=self.config.ignore_file,
            max_bytes=self.config.max_workspace_size,
            bundled=bundled_dirs(),
            outputs_folder=self.config.outputs_folder,
        )

    async def preview(self, path: str, filename: str | None) -> dict[str, Any]:
        """The dry run the confirm dialog shows: the manifest (its file list capped) and
        warnings: code that refers outside the notebook's folder, imports the TEE's image
        lacks."""
        manifest = await self.manifest(path, filename)
        shown = str(PurePosixPath(manifest.folder_path or ".") / manifest.notebook)
        warnings = await asyncio.get_running_loop().run_in_executor(
            self._pool, parent_references, manifest.folder / manifest.notebook, shown
        )
        reply = manifest.to_json()
        files = reply["files"]
        reply["files"] = files[:MANIFEST_FILE_LIMIT]
        reply["files_truncated"] = len(files) > MANIFEST_FILE_LIMIT
        # what makes a large workspace large, and the line that would leave each out
        large = manifest.total_bytes > self.config.large_workspace_size
        reply["largest"] = workspace.largest_items(manifest) if large else []
        reply["ignore_file"] = self.config.ignore_file
        reply["warnings"] = [*warnings, *await self.import_warnings(manifest)]
        return reply

    async def submit(self, username: str, path: str, filename: str | None) -> dict[str, Any]:
        """Send the notebook's folder now, or queue it while the creator's workspace slot is
        taken (see :mod:`.submission_queue`); refuse past the job limit, queued included."""
        creator = self.creator(username)
        client = self.client
        manifest = await self.manifest(path, filename)
        if not self.config.queue_submissions:
            return await self._send_now(client, creator, manifest)
        async with self.queue.lock(creator):
            jobs = await self._recent_jobs(creator)
            pending = self.queue.pending(creator)
            in_progress = sum(1 for job in jobs if job["job_status"] in IN_PROGRESS)
            if in_progress + len(pending) >= self.config.job_limit:
                raise JobLimitReached(
                    f"{in_progress} of your jobs are in progress and {len(pending)} queued, "
                    f"the limit is {self.config.job_limit}: wait for one to finish, or cancel "
                    "a queued one, then submit again."
                )
            blocker = blocking_job(jobs)
            if blocker is None and not pending:
                return await self._send_now(client, creator, manifest)
            entry = await self._hold(creator, manifest, blocker, pending)
        self.start_queue()
        return {
            "code": 0,
            "msg": "Queued",
            "queued": True,
            "queue_id": entry.id,
            "waits_for": entry.waits_for,
            "file_count": entry.file_count,
            "total_bytes": entry.total_bytes,
            "excluded_count": entry.excluded_count,
        }

    async def _hold(
        self,
        creator: str,
        manifest: workspace.Manifest,
        blocker: dict[str, Any] | None,
        pending: list[Entry],
    ) -> Entry:
        """Archive now (what the user confirmed is what will be sent) and queue it."""
        entry_id, archive = self.queue.new_archive_path()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._write_archive_to, manifest, creator, archive)
        waits_for = (
            {"id": blocker.get("id"), "uuid": blocker.get("uuid")}
            if blocker is not None
            else {"queue_id": pending[-1].id}
        )
        entry = Entry(
            id=entry_id,
            creator=creator,
            notebook=manifest.notebook,
            path=str(PurePosixPath(manifest.folder_path) / manifest.notebook),
            folder=manifest.folder_path,
            envs=self.extra_envs(),
            file_count=len(manifest.files),
            total_bytes=manifest.total_bytes,
            excluded_count=len(manifest.excluded),
            created_at=now_text(),
            waits_for=waits_for,
        )
        self.log.info("ManaTEE: queued %s of %s (waits for %s)", entry.notebook, creator, waits_for)
        return self.queue.add(entry)

    def _write_archive_to(self, manifest: workspace.Manifest, creator: str, path: Path) -> None:
        temp = self._write_archive(manifest, creator)
        try:
            os.replace(temp, path)
        except OSError:  # another file system: copy, then drop the temporary archive
            shutil.copyfile(temp, path)
            temp.unlink(missing_ok=True)

    async def _recent_jobs(self, creator: str) -> list[dict[str, Any]]:
        """The creator's newest jobs (a job still in status 0 or 1 is always recent)."""
        client = self.client

        async def query(api_page: int, api_page_size: int) -> dict[str, Any]:
            return await client.query(creator=creator, page=api_page, page_size=api_page_size)

        return (await newest_first(query, 1, RECENT_JOBS))["jobs"]

    async def _send_queued(self, entry: Entry, archive: Path) -> dict[str, Any]:
        """The queue's sender: upload a held archive once, remember where it came from."""
        reply = await self.client.submit(
            archive, creator=entry.creator, filename=entry.notebook, envs=entry.envs
        )
        if self._recordable(reply, entry.notebook) is None:
            self.records.add(
                reply["uuid"], creator=entry.creator, folder=entry.folder, notebook=entry.notebook
            )
        return reply

    def start_queue(self) -> None:
        """Start the queue's sender on the running loop, unless it runs or nothing waits."""
        if not self.queue.has_queued():
            return
        if self._queue_task is None or self._queue_task.done():
            self._queue_task = asyncio.ensure_future(
                self.queue.run(self._recent_jobs, self._send_queued)
            )

    def queued(self, username: str) -> list[dict[str, Any]]:
        """The user's queued submissions and the outcome of recently sent ones."""
        return [entry.to_json() for entry in self.queue.entries(self.creator(username))]

    def cancel_queued(self, username: str, entry_id: str) -> None:
        try:
            entry = self.queue.cancel(self.creator(username), entry_id)
        except RuntimeError as e:
            raise Conflict(f"The queued submission {entry_id} cannot be cancelled: {e}") from None
        if entry is None:
            raise NotFound(f"No queued submission {entry_id}")

    def submitting(self, username: str) -> list[dict[str, str]]:
        """The user's submissions being uploaded now, oldest first (each until the API has
        answered it: then it is a job, or its error went to the page that sent it)."""
        return list(self._sending.get(self.creator(username), {}).values())

    @contextmanager
    def _under_way(self, creator: str, manifest: workspace.Manifest) -> Iterator[None]:
        entry_id = uuid.uuid4().hex
        entries = self._sending.setdefault(creator, {})
        entries[entry_id] = {
            "id": entry_id,
            "notebook": manifest.notebook,
            "path": str(PurePosixPath(manifest.folder_path) / manifest.notebook),
            "started_at": now_text(),
        }
        try:
            yield
        finally:
            del entries[entry_id]
            if not entries:
                self._sending.pop(creator, None)

    async def _send_now(
        self, client: ManateeApiClient, creator: str, manifest: workspace.Manifest
    ) -> dict[str, Any]:
        """Archive the notebook's folder off the loop while uploading it (see
        :mod:`.archive_stream`), once, and remember where it came from."""
        with self._under_way(creator, manifest):
            return await self._stream(client, creator, manifest)

    async def _stream(
        self, client: ManateeApiClient, creator: str, manifest: workspace.Manifest
    ) -> dict[str, Any]:
        stream = await ArchiveStream.start(
            lambda out: workspace.write_archive(
                manifest, f"{creator}-workspace", out, compresslevel=self.config.compression_level
            ),
            self._pool,
            self.config.temp_dir,
            ARCHIVE_PREFIX,
        )
        try:
            reply = await client.submit_stream(
                stream, creator=creator, filename=manifest.notebook, envs=self.extra_envs()
            )
        finally:
            await stream.close()
        warning = self._recordable(reply, manifest.notebook)
        if warning is None:
            self.records.add(
                reply["uuid"],
                creator=creator,
                folder=manifest.folder_path,
                notebook=manifest.notebook,
            )
        else:
            reply = {**reply, "warning": warning}
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

    def _recordable(self, reply: dict[str, Any], notebook: str) -> str | None:
        """None when the submit reply's uuid may be recorded as ours, else a warning.

        The API took the job, so the submission stands (a 502 would invite a second
        submission of the same work); but a uuid that is not canonical is never kept as
        ours: recorded, it would vouch for that uuid, and ``<creator>-bob-<u>`` is another
        creator's VM. Without a record the job's output goes to ``output_dir`` and its
        attestation fails the job check ("job not identified").
        """
        job_uuid = reply.get("uuid")
        if canonical_uuid(job_uuid) is not None:
            return None
        warning = (
            f"The ManaTEE API accepted {notebook} but gave the job the uuid {job_uuid!r}, "
            f"which is not a canonical job uuid ({CANONICAL_FORM}): this server keeps no "
            "record of it, so its output is saved in the default output folder and its "
            "attestation cannot be verified (job not identified)."
        )
        self.log.warning("ManaTEE: %s", warning)
        return warning

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
        """One page of the creator's jobs, newest first whatever order the API pages in."""
        creator = self.creator(username)
        client = self.client
        records = self.records  # one lookup per request, not one per job

        async def query(api_page: int, api_page_size: int) -> dict[str, Any]:
            reply = await client.query(creator=creator, page=api_page, page_size=api_page_size)
            records.learn_ids(creator, reply["jobs"])
            return reply

        reply = await newest_first(query, page, page_size)
        api = self.config.api_base_url or ""
        for job in reply["jobs"]:
            saved = records.output_facts(creator, job["id"])
            if saved is not None:
                job["output"] = {**saved, "errors_message": describe_errors(saved["errors"])}
            job["cells_raised"] = None
            job["cells_raised_pending"] = False
            if job["job_status"] == FINISHED:
                key = (api, creator, job["id"], str(job.get("uuid")))
                if saved is not None:  # scanned when it was saved: no download needed
                    self.scans.remember(key, saved["errors"])
                job["cells_raised"] = self.scans.cells_raised(
                    key, _output_fetch(client, creator, job["id"])
                )
                # the panel asks again while this is true, as for a job in progress
                job["cells_raised_pending"] = self.scans.pending(key)
        return reply

    async def delete_job(self, username: str, job_uuid: str) -> None:
        creator = self.creator(username)
        await self.client.delete(creator=creator, job_uuid=job_uuid)
        self.records.forget(job_uuid)

    async def save_output(self, username: str, job_id: int) -> dict[str, Any]:
        """Download the executed notebook into the outputs folder beside its source notebook
        (see :meth:`_output_folder`), then its token, and save the token with its
        verification beside the output.

        The MD5 verified is that of the bytes as they arrive; a missing token never costs
        the output (the reply says why there is no attestation).
        """
        creator = self.creator(username)
        client = self.client
        signed = await client.output(creator=creator, job_id=job_id)
        listed, job = await self._listed_job(creator, job_id)
        record = self._record(creator, job_id, job)
        folder, create = await self._output_folder(job_id, record)
        name = output_name(job_id, _notebook_of(record, listed, job))
        digest = hashlib.md5(usedforsecurity=False)

        async def download(write) -> int:
            def hash_and_write(chunk: bytes) -> None:
                digest.update(chunk)
                write(chunk)

            off_loop = OffLoop(hash_and_write)  # hashing and disk writes leave the loop
            received = await client.download(signed.url, off_loop, what="output")
            await off_loop.drain()
            return received

        saved = await save_output(
            download, self.root_dir, folder, name, create=create, companion_suffix=RECORD_SUFFIX
        )
        self.log.info("ManaTEE: saved the output of job %d to %s", job_id, saved)
        errors = await asyncio.get_running_loop().run_in_executor(
            None, cell_errors, self.root_dir / saved
        )
        self.records.remember_output(creator, job_id, saved, errors)
        attestation = await self._save_attestation(
            client, creator, job_id, saved, digest.hexdigest(), job
        )
        return {
            "filename": saved,
            "path": saved,
            "attestation": attestation,
            "errors": errors,
            "errors_message": describe_errors(errors),
        }

    async def _save_attestation(
        self,
        client: ManateeApiClient,
        creator: str,
        job_id: int,
        saved: str,
        output_md5: str,
        job: JobFacts,
    ) -> dict[str, Any]:
        """Fetch, verify and save the token of a just-saved output; never raises."""
        try:
            token = await self._token(client, creator, job_id)
        except ManateeError as e:
            self.log.warning("ManaTEE: no attestation token for job %d: %s", job_id, e.message)
            return {
                "path": None,
                "verdict": TOKEN_UNAVAILABLE,
                "verified": False,
                "problem": f"The output is saved, but its attestation token is unavailable: "
                f"{e.message}",
            }
        output = PurePosixPath(saved)
        record_path = str(output.with_name(record_name(output.name)))
        verdict = NOT_VERIFIED
        try:
            verification = await verify_token(token, output_md5, self.policy, self.keys, job=job)
            verdict = verification.verdict
            record = make_record(
                output_name=output.name,
                output_md5=output_md5,
                token=token,
                verification=verification,
                job=job,
            )
            target = self.root_dir / record_path
            await asyncio.get_running_loop().run_in_executor(None, write_new_record, target, record)
        except FileExistsError:
            problem = f"{record_path} already exists and was not overwritten"
        except Exception as e:  # the output is saved: report, never lose it to a 500
            self.log.exception("ManaTEE: saving the attestation of job %d failed", job_id)
            problem = f"The attestation could not be saved: {e}"
        else:
            self.log.info(
                "ManaTEE: attestation of job %d: %s (%s)", job_id, verification.verdict, record_path
            )
            return {
                "path": record_path,
                "verdict": verification.verdict,
                "verified": verification.verified,
            }
        return {
            "path": None,
            "verdict": verdict,
            "verified": False,
            "problem": problem,
        }

    def _record(self, creator: str, job_id: int, job: JobFacts) -> dict[str, Any] | None:
        """This server's record of the job's submission, by id or by the identified uuid."""
        record = self.records.find(creator, job_id=job_id)
        if record is None and job.identified and job.uuid:
            record = self.records.find(creator, job_uuid=job.uuid)
        return record

    async def _output_folder(self, job_id: int, record: dict[str, Any] | None) -> tuple[str, bool]:
        """Where the output goes, and whether that folder may be created. In order:
        ``<notebook's folder>/<outputs_folder>`` when this server submitted the job and the
        folder still exists (the notebook's folder itself when ``outputs_folder`` is '');
        else ``output_dir`` under the contents root. Outputs kept apart are never shipped
        back (the workspace scan leaves ``outputs_folder`` out)."""
        if record is not None:
            try:
                folder = await asyncio.get_running_loop().run_in_executor(
                    None, _existing_folder, self.root_dir, record["folder"]
                )
                if folder is not None:
                    name = self.config.outputs_folder
                    if not name:
                        return folder, False
                    return str(PurePosixPath(folder) / name), True
            except BadRequest:
                self.log.warning("ManaTEE: recorded folder of job %d left the root", job_id)
        return self.config.output_dir, True

    async def _find_job(self, creator: str, job_id: int) -> dict[str, Any] | None:
        """The job as the API lists it (uuid, times), searched page by page."""
        for page in range(1, JOB_SEARCH_PAGES + 1):
            reply = await self.client.query(
                creator=creator, page=page, page_size=JOB_SEARCH_PAGE_SIZE
            )
            self.records.learn_ids(creator, reply["jobs"])
            for job in reply["jobs"]:
                if job["id"] == job_id:
                    return job
            if page * JOB_SEARCH_PAGE_SIZE >= reply["total"] or not reply["jobs"]:
                break
        return None

    async def _job_facts(self, creator: str, job_id: int) -> JobFacts:
        """The job as this server identifies it (see :mod:`.job_identity`); never raises."""
        return (await self._listed_job(creator, job_id))[1]

    async def _listed_job(
        self, creator: str, job_id: int
    ) -> tuple[dict[str, Any] | None, JobFacts]:
        """The job's row in the API's list (None if absent) and the job as identified."""
        list_problem = None
        try:
            listed = await self._find_job(creator, job_id)
        except ManateeError as e:
            self.log.warning("ManaTEE: cannot look up job %d: %s", job_id, e.message)
            listed, list_problem = None, e.message
        listed_uuid = listed.get("uuid") if listed else None
        return listed, identify_job(
            creator,
            job_id,
            listed=listed,
            list_problem=list_problem,
            record_uuid=self.records.uuid_of(creator, job_id),
            record_id_of_listed_uuid=(
                self.records.id_of(creator, listed_uuid) if isinstance(listed_uuid, str) else None
            ),
        )

    async def _token(self, client: ManateeApiClient, creator: str, job_id: int) -> str:
        signed = await client.attestation(creator=creator, job_id=job_id)
        token = await client.fetch_text(signed.url, what="attestation token")
        if not token.strip():
            raise NotFound(f"The attestation token of job {job_id} is empty")
        return token

    async def _output_md5(
        self, client: ManateeApiClient, creator: str, job_id: int
    ) -> tuple[str | None, str]:
        """MD5 hex of the output as downloaded (not kept), or None and why."""
        digest = hashlib.md5(usedforsecurity=False)
        try:
            signed = await client.output(creator=creator, job_id=job_id)
            await client.download(signed.url, digest.update, what="output")
        except ManateeError as e:
            return None, e.message
        return digest.hexdigest(), ""

    async def attestation(self, username: str, job_id: int) -> dict[str, Any]:
        """The token, its decoded parts and its verification against the job's output.

        When this server saved the job's output, the file the user keeps is verified against
        the token saved beside it, offline; otherwise the API's copy is.
        """
        creator = self.creator(username)
        saved = self.records.saved_output(creator, job_id)
        if saved is not None:
            try:
                return {
                    "source": "saved",
                    **(await self.verify_saved(username, saved, job_id=job_id)),
                }
            except NotFound:
                self.log.info("ManaTEE: the saved output of job %d is gone; asking the API", job_id)
        client = self.client
        token = await self._token(client, creator, job_id)
        job = await self._job_facts(creator, job_id)
        if parse_token(token).kind == "unknown":
            md5, problem = None, "not downloaded: the token cannot be read"
        else:
            md5, problem = await self._output_md5(client, creator, job_id)
        verification = await verify_token(
            token, md5, self.policy, self.keys, job=job, output_problem=problem
        )
        return {
            "source": "api",
            "path": None,
            "attestation_path": None,
            "token": token,
            **describe_token(token),
            "job": job.to_json(),
            "verification": verification.to_json(),
        }

    async def verify_saved(
        self, username: str, path: str, *, job_id: int | None = None
    ) -> dict[str, Any]:
        """Re-verify a saved output against the token saved beside it (no API call).

        The job is the logged-in user's, identified as Report identifies it (see
        :func:`.job_identity.identify_saved_job`): the saved file's job facts are used only
        where this server has nothing better, and the job check says which. ``job_id`` is
        the job whose output Report knows this is; else this server's record of where it
        saved outputs, else the file.
        """
        creator = self.creator(username)
        loop = asyncio.get_running_loop()
        output, record_file = await loop.run_in_executor(
            None, _saved_output_paths, self.root_dir, path
        )
        try:
            record = await loop.run_in_executor(None, read_record, record_file)
        except FileNotFoundError:
            raise NotFound(
                f"No saved attestation beside {_relative(self.root_dir, output)}: expected "
                f"{record_file.name}"
            ) from None
        except ValueError as e:
            raise BadRequest(str(e)) from None
        except OSError as e:
            raise BadRequest(f"Cannot read {record_file.name}: {e.strerror or e}") from None
        try:
            md5 = await loop.run_in_executor(None, file_md5, output)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        except OSError as e:
            raise BadRequest(f"Cannot read {output.name}: {e.strerror or e}") from None
        token = record["token"]
        relative = _relative(self.root_dir, output)
        records = self.records
        job = identify_saved_job(
            creator,
            JobFacts.from_json(record.get("job")),
            file_name=record_file.name,
            output_job_id=job_id
            if job_id is not None
            else records.output_job_id(creator, relative),
            record_uuid_of=lambda number: records.uuid_of(creator, number),
            record_id_of=lambda job_uuid: records.id_of(creator, job_uuid),
        )
        verification = await verify_token(token, md5, self.policy, self.keys, job=job)
        saved = record.get("verification")
        return {
            "path": relative,
            "attestation_path": _relative(self.root_dir, record_file),
            "token": token,
            **describe_token(token),
            "job": job.to_json(),
            "saved_at": record.get("saved_at"),
            "saved_verdict": saved.get("verdict") if isinstance(saved, dict) else None,
            "verification": verification.to_json(),
        }


def _output_fetch(client: ManateeApiClient, creator: str, job_id: int) -> Fetch:
    """Streams the job's output (through a new signed URL) into a scan's ``write``."""

    async def fetch(write) -> int:
        signed = await client.output(creator=creator, job_id=job_id)
        return await client.download(signed.url, write, what="output")

    return fetch


def records_file(api_url: str) -> str:
    """``jobs-<hash of the API URL>.json``: one record file per API."""
    return f"jobs-{hashlib.sha256(api_url.encode()).hexdigest()[:12]}.json"


def bundled_dirs() -> dict[str, Path]:
    """Folders shipped with every workspace that lacks them: the data SDK.

    The SDK is the ``sdk`` package installed beside this one (the TEE's stock image does
    not have it); an unrelated ``sdk`` elsewhere on the path is never shipped.
    """
    sdk = Path(__file__).resolve().parent.parent / "sdk"
    return {"sdk": sdk} if (sdk / "__init__.py").is_file() else {}


def _notebook_of(
    record: dict[str, Any] | None, listed: dict[str, Any] | None, job: JobFacts
) -> str | None:
    """The job's notebook name: our record's, else the list's for a job listed as ours."""
    if record is not None and isinstance(record.get("notebook"), str):
        return record["notebook"]
    if listed is not None and job.problem is None:
        name = listed.get("jupyter_file_name")
        return name if isinstance(name, str) else None
    return None


def _existing_folder(root_dir: Path, folder: str) -> str | None:
    return folder.strip("/") if resolve_folder(root_dir, folder).is_dir() else None


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _saved_output_paths(root_dir: Path, path: str) -> tuple[Path, Path]:
    """The saved output (a file under the root) and its attestation record's path.

    ``path`` may name the output or its ``.attestation.json``.
    """
    if not isinstance(path, str) or not path.strip("/"):
        raise BadRequest("Missing 'path': the saved output's path from the contents root")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadRequest(f"The path {quoted(path)} contains control characters")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"The path {quoted(path)} is not valid UTF-8") from None
    relative = PurePosixPath(path.strip("/"))
    if relative.name.endswith(RECORD_SUFFIX) and len(relative.name) > len(RECORD_SUFFIX):
        relative = relative.with_name(relative.name[: -len(RECORD_SUFFIX)])
    try:
        folder = resolve_folder(root_dir, str(relative.parent))
        output = _inside_root(root_dir, folder / relative.name, path)
        if not output.exists():
            raise NotFound(f"No saved output at {quoted(relative.as_posix())}")
        if not output.is_file():
            raise BadRequest(f"{quoted(relative.as_posix())} is not a file")
    except OSError as e:  # e.g. a name longer than the file system allows
        shown = quoted(relative.as_posix())
        raise BadRequest(f"Cannot look at {shown}: {e.strerror or e}") from None
    return output, _inside_root(root_dir, folder / record_name(relative.name), path)


def _inside_root(root_dir: Path, path: Path, asked: str) -> Path:
    """``path`` with links resolved, refused when it leads out of the contents root."""
    resolved = path.resolve()
    if root_dir not in resolved.parents:
        raise BadRequest(f"{quoted(asked)} leads outside the contents root")
    return resolved


def _relative(root_dir: Path, path: Path) -> str:
    return path.relative_to(root_dir).as_posix()
