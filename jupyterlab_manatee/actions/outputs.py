"""A job's output saved into the contents root, beside the notebook that was submitted,
with its attestation token verified and saved beside it."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from ..attestation import RECORD_SUFFIX, JobFacts
from ..common.offload import OffLoop
from ..errors import BadRequest
from ..jobs.notebook_errors import cell_errors
from ..jobs.notebook_errors import describe as describe_errors
from ..jobs.output import output_name, resolve_folder, save_output
from .context import Context
from .jobs import Jobs
from .verification import Verification


class Outputs:
    """Downloads outputs into the outputs folder; the token comes with them."""

    def __init__(self, context: Context, jobs: Jobs, verification: Verification) -> None:
        self.context = context
        self.jobs = jobs
        self.verification = verification

    async def save_output(self, creator: str, job_id: int) -> dict[str, Any]:
        """Download the executed notebook into the outputs folder beside its source notebook
        (see :meth:`_output_folder`), then its token, and save the token with its
        verification beside the output.

        The MD5 verified is that of the bytes as they arrive; a missing token never costs
        the output (the reply says why there is no attestation).
        """
        ctx = self.context
        client = ctx.client
        signed = await client.output(creator=creator, job_id=job_id)
        listed, job = await self.jobs.listed(creator, job_id)
        record = self.jobs.record(creator, job_id, job)
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
            download, ctx.root_dir, folder, name, create=create, companion_suffix=RECORD_SUFFIX
        )
        ctx.log.info("ManaTEE: saved the output of job %d to %s", job_id, saved)
        errors = await asyncio.get_running_loop().run_in_executor(
            None, cell_errors, ctx.root_dir / saved
        )
        ctx.records.remember_output(creator, job_id, saved, errors)
        attestation = await self.verification.save_attestation(
            client, creator, job_id, saved, digest.hexdigest(), job
        )
        return {
            "filename": saved,
            "path": saved,
            "attestation": attestation,
            "errors": errors,
            "errors_message": describe_errors(errors),
        }

    async def _output_folder(self, job_id: int, record: dict[str, Any] | None) -> tuple[str, bool]:
        """Where the output goes, and whether that folder may be created. In order:
        ``<notebook's folder>/<outputs_folder>`` when this server submitted the job and the
        folder still exists (the notebook's folder itself when ``outputs_folder`` is '');
        else ``output_dir`` under the contents root. Outputs kept apart are never shipped
        back (the workspace scan leaves ``outputs_folder`` out)."""
        config = self.context.config
        if record is not None:
            try:
                folder = await asyncio.get_running_loop().run_in_executor(
                    None, _existing_folder, self.context.root_dir, record["folder"]
                )
                if folder is not None:
                    name = config.outputs_folder
                    if not name:
                        return folder, False
                    return str(PurePosixPath(folder) / name), True
            except BadRequest:
                self.context.log.warning("ManaTEE: recorded folder of job %d left the root", job_id)
        return config.output_dir, True


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
