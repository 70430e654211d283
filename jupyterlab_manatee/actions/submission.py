"""Sending a notebook's folder to the API: now, or queued while the creator's slot is taken.

A submission sent now is archived while it uploads (:meth:`Packing.stream`) and is shown
as under way until the API answers; a queued one is archived at once (what the user
confirmed is what will be sent) and sent by the queue's sender (see
:mod:`..jobs.submission_queue`) when the job it waits for has started.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import Conflict, JobLimitReached, NotFound
from ..jobs.job_list import newest_first
from ..jobs.submission_queue import IN_PROGRESS, Entry, SubmissionQueue, blocking_job, now_text
from ..remote.api_client import ManateeApiClient
from ..remote.job_uuid import CANONICAL_FORM, canonical_uuid
from ..workspace.manifest import Manifest
from .context import Context
from .packing import Packing

#: How many of the newest jobs are looked at for jobs in progress (the API allows 3).
RECENT_JOBS = 50


class Submission:
    """Submits, queues, and tells what is queued or being uploaded, per creator."""

    def __init__(self, context: Context, packing: Packing) -> None:
        self.context = context
        self.packing = packing
        config = context.config
        self.queue = SubmissionQueue(
            Path(config.state_dir) / "queue", poll_interval=config.queue_poll_interval
        )
        self._queue_task: asyncio.Future[None] | None = None
        #: uploads under way, per creator: a page reloaded meanwhile shows them until they
        #: become jobs (the upload goes on without the page)
        self._sending: dict[str, dict[str, dict[str, str]]] = {}

    async def submit(self, creator: str, path: str, filename: str | None) -> dict[str, Any]:
        """Send the notebook's folder now, or queue it while the creator's workspace slot is
        taken; refuse past the job limit, queued included."""
        config = self.context.config
        client = self.context.client
        manifest = await self.packing.manifest(path, filename)
        if not config.queue_submissions:
            return await self._send_now(client, creator, manifest)
        async with self.queue.lock(creator):
            jobs = await self._recent_jobs(creator)
            pending = self.queue.pending(creator)
            in_progress = sum(1 for job in jobs if job["job_status"] in IN_PROGRESS)
            if in_progress + len(pending) >= config.job_limit:
                raise JobLimitReached(
                    f"{in_progress} of your jobs are in progress and {len(pending)} queued, "
                    f"the limit is {config.job_limit}: wait for one to finish, or cancel "
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

    # --- the queue ---------------------------------------------------------------------

    async def _hold(
        self,
        creator: str,
        manifest: Manifest,
        blocker: dict[str, Any] | None,
        pending: list[Entry],
    ) -> Entry:
        """Archive now (what the user confirmed is what will be sent) and queue it."""
        entry_id, archive = self.queue.new_archive_path()
        await self.packing.archive_to(manifest, creator, archive)
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
        self.context.log.info(
            "ManaTEE: queued %s of %s (waits for %s)", entry.notebook, creator, waits_for
        )
        return self.queue.add(entry)

    async def _recent_jobs(self, creator: str) -> list[dict[str, Any]]:
        """The creator's newest jobs (a job still in status 0 or 1 is always recent)."""
        client = self.context.client

        async def query(api_page: int, api_page_size: int) -> dict[str, Any]:
            return await client.query(creator=creator, page=api_page, page_size=api_page_size)

        return (await newest_first(query, 1, RECENT_JOBS))["jobs"]

    async def _send_queued(self, entry: Entry, archive: Path) -> dict[str, Any]:
        """The queue's sender: upload a held archive once, remember where it came from."""
        reply = await self.context.client.submit(
            archive, creator=entry.creator, filename=entry.notebook, envs=entry.envs
        )
        if self._recordable(reply, entry.notebook) is None:
            self.context.records.add(
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

    def stop_queue(self) -> None:
        """At server stop: the queue's sender stops (what it holds stays queued on disk)."""
        if self._queue_task is not None:
            self._queue_task.cancel()

    def queued(self, creator: str) -> list[dict[str, Any]]:
        """The creator's queued submissions and the outcome of recently sent ones."""
        return [entry.to_json() for entry in self.queue.entries(creator)]

    def cancel_queued(self, creator: str, entry_id: str) -> None:
        try:
            entry = self.queue.cancel(creator, entry_id)
        except RuntimeError as e:
            raise Conflict(f"The queued submission {entry_id} cannot be cancelled: {e}") from None
        if entry is None:
            raise NotFound(f"No queued submission {entry_id}")

    # --- sending now -------------------------------------------------------------------

    def submitting(self, creator: str) -> list[dict[str, str]]:
        """The creator's submissions being uploaded now, oldest first (each until the API
        has answered it: then it is a job, or its error went to the page that sent it)."""
        return list(self._sending.get(creator, {}).values())

    @contextmanager
    def _under_way(self, creator: str, manifest: Manifest) -> Iterator[None]:
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
        self, client: ManateeApiClient, creator: str, manifest: Manifest
    ) -> dict[str, Any]:
        """Archive the notebook's folder off the loop while uploading it, once, and
        remember where it came from."""
        with self._under_way(creator, manifest):
            return await self._stream(client, creator, manifest)

    async def _stream(
        self, client: ManateeApiClient, creator: str, manifest: Manifest
    ) -> dict[str, Any]:
        stream = await self.packing.stream(manifest, creator)
        try:
            reply = await client.submit_stream(
                stream, creator=creator, filename=manifest.notebook, envs=self.extra_envs()
            )
        finally:
            await stream.close()
        warning = self._recordable(reply, manifest.notebook)
        if warning is None:
            self.context.records.add(
                reply["uuid"],
                creator=creator,
                folder=manifest.folder_path,
                notebook=manifest.notebook,
            )
        else:
            reply = {**reply, "warning": warning}
        self.context.log.info(
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
        self.context.log.warning("ManaTEE: %s", warning)
        return warning

    def extra_envs(self) -> list[dict[str, str]]:
        """``MANATEE_EXTRA_ENV_<KEY>=<value>`` variables as the API's ``envs`` entries."""
        prefix = self.context.config.extra_env_prefix
        allow = self.context.config.extra_env_allow
        envs = []
        for name, value in sorted(os.environ.items()):
            if not prefix or not name.startswith(prefix) or len(name) == len(prefix):
                continue
            key = name[len(prefix) :]
            if allow is None or key in allow:
                envs.append({"key": key, "value": value})
        return envs
