"""The shield panel's actions, independent of HTTP: the handlers only call this.

A facade: each capability is a class of its own under :mod:`.actions` (packing and
submission, jobs, outputs, verification, creators, the banner's status); this maps a
user to their creator and hands each request to the one that does it. Blocking work
runs on the context's small thread pool so the server's event loop keeps answering.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .actions.context import Context
from .actions.creators import Creators
from .actions.jobs import Jobs
from .actions.outputs import Outputs
from .actions.packing import Packing
from .actions.status import status
from .actions.submission import Submission
from .actions.verification import Verification
from .config import ManateeConfig
from .jobs.job_records import JobRecords
from .jobs.submission_queue import SubmissionQueue


class ManateeManager:
    """Submits workspaces, lists and deletes jobs, saves outputs, reads tokens."""

    def __init__(
        self,
        config: ManateeConfig,
        root_dir: str | Path,
        log: logging.Logger,
        contents_manager: Any = None,
    ) -> None:
        self.context = Context(config, root_dir, log, contents_manager)
        self.creators = Creators(config, log)
        self.packing = Packing(self.context)
        self.submission = Submission(self.context, self.packing)
        self.jobs = Jobs(self.context)
        self.verification = Verification(self.context, self.jobs)
        self.outputs = Outputs(self.context, self.jobs, self.verification)

    @property
    def config(self) -> ManateeConfig:
        return self.context.config

    @property
    def root_dir(self) -> Path:
        return self.context.root_dir

    @property
    def log(self) -> logging.Logger:
        return self.context.log

    @property
    def records(self) -> JobRecords:
        """The records of jobs submitted to the configured API (one file per API URL)."""
        return self.context.records

    @property
    def queue(self) -> SubmissionQueue:
        return self.submission.queue

    async def close(self) -> None:
        """At server stop: the queue's sender, the worker threads, the API connections."""
        self.submission.stop_queue()
        await self.jobs.close()
        await self.context.close()

    # --- identity and configuration ----------------------------------------------------

    def creator(self, username: str) -> str:
        """The creator name the API sees for this user (raises Forbidden when unusable)."""
        return self.creators.creator(username)

    async def status(self, username: str) -> dict[str, Any]:
        """What the frontend needs for its banner; never raises for a missing API."""
        return await status(self.context, self.creators, username)

    def dismiss_creator_notice(self, username: str) -> None:
        """The user has read that their creator changed: stop telling them."""
        self.creators.dismiss_notice(username)

    # --- submission --------------------------------------------------------------------

    async def preview(self, path: str, filename: str | None) -> dict[str, Any]:
        """The dry run the confirm dialog shows (see :meth:`.Packing.preview`)."""
        return await self.packing.preview(path, filename)

    async def submit(self, username: str, path: str, filename: str | None) -> dict[str, Any]:
        """Send the notebook's folder now, or queue it (see :class:`.Submission`)."""
        return await self.submission.submit(self.creator(username), path, filename)

    def start_queue(self) -> None:
        """Start the queue's sender on the running loop, unless it runs or nothing waits."""
        self.submission.start_queue()

    def queued(self, username: str) -> list[dict[str, Any]]:
        """The user's queued submissions and the outcome of recently sent ones."""
        return self.submission.queued(self.creator(username))

    def cancel_queued(self, username: str, entry_id: str) -> None:
        self.submission.cancel_queued(self.creator(username), entry_id)

    def submitting(self, username: str) -> list[dict[str, str]]:
        """The user's submissions being uploaded now, oldest first."""
        return self.submission.submitting(self.creator(username))

    def extra_envs(self) -> list[dict[str, str]]:
        """``MANATEE_EXTRA_ENV_<KEY>=<value>`` variables as the API's ``envs`` entries."""
        return self.submission.extra_envs()

    # --- jobs, outputs, attestation ----------------------------------------------------

    async def list_jobs(self, username: str, page: int, page_size: int) -> dict[str, Any]:
        """One page of the user's jobs, newest first whatever order the API pages in."""
        return await self.jobs.list_jobs(self.creator(username), page, page_size)

    async def delete_job(self, username: str, job_uuid: str) -> None:
        await self.jobs.delete(self.creator(username), job_uuid)

    async def save_output(self, username: str, job_id: int) -> dict[str, Any]:
        """Save the job's output and its verified token (see :class:`.Outputs`)."""
        return await self.outputs.save_output(self.creator(username), job_id)

    async def attestation(self, username: str, job_id: int) -> dict[str, Any]:
        """The job's token and its verification (see :meth:`.Verification.attestation`)."""
        return await self.verification.attestation(self.creator(username), job_id)

    async def verify_saved(
        self, username: str, path: str, *, job_id: int | None = None
    ) -> dict[str, Any]:
        """Re-verify a saved output against the token saved beside it (no API call)."""
        return await self.verification.verify_saved(self.creator(username), path, job_id=job_id)
