"""The creator's jobs: listed newest first with what raised in their outputs, deleted, and
one job found and identified (see :mod:`..jobs.job_identity`) for its output or attestation."""

from __future__ import annotations

from typing import Any

from ..attestation import JobFacts
from ..errors import ManateeError
from ..jobs.job_identity import identify_job
from ..jobs.job_list import newest_first
from ..jobs.notebook_errors import describe as describe_errors
from ..jobs.output_scan import Fetch, OutputScans
from ..remote.api_client import ManateeApiClient
from .context import Context

JOB_SEARCH_PAGES = 20
JOB_SEARCH_PAGE_SIZE = 50
#: The API's status of a job whose executor stopped (cells may still have raised).
FINISHED = 5


class Jobs:
    """Lists, deletes, finds and identifies jobs of the configured API."""

    def __init__(self, context: Context) -> None:
        self.context = context
        #: which cells raised in Finished jobs' outputs, scanned in the background
        self.scans = OutputScans(context.pool, context.log)

    async def close(self) -> None:
        await self.scans.close()

    async def list_jobs(self, creator: str, page: int, page_size: int) -> dict[str, Any]:
        """One page of the creator's jobs, newest first whatever order the API pages in."""
        client = self.context.client
        records = self.context.records  # one lookup per request, not one per job

        async def query(api_page: int, api_page_size: int) -> dict[str, Any]:
            reply = await client.query(creator=creator, page=api_page, page_size=api_page_size)
            records.learn_ids(creator, reply["jobs"])
            return reply

        reply = await newest_first(query, page, page_size)
        api = self.context.config.api_base_url or ""
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

    async def delete(self, creator: str, job_uuid: str) -> None:
        await self.context.client.delete(creator=creator, job_uuid=job_uuid)
        self.context.records.forget(job_uuid)

    async def find(self, creator: str, job_id: int) -> dict[str, Any] | None:
        """The job as the API lists it (uuid, times), searched page by page."""
        for page in range(1, JOB_SEARCH_PAGES + 1):
            reply = await self.context.client.query(
                creator=creator, page=page, page_size=JOB_SEARCH_PAGE_SIZE
            )
            self.context.records.learn_ids(creator, reply["jobs"])
            for job in reply["jobs"]:
                if job["id"] == job_id:
                    return job
            if page * JOB_SEARCH_PAGE_SIZE >= reply["total"] or not reply["jobs"]:
                break
        return None

    async def facts(self, creator: str, job_id: int) -> JobFacts:
        """The job as this server identifies it; never raises."""
        return (await self.listed(creator, job_id))[1]

    async def listed(self, creator: str, job_id: int) -> tuple[dict[str, Any] | None, JobFacts]:
        """The job's row in the API's list (None if absent) and the job as identified."""
        list_problem = None
        try:
            listed = await self.find(creator, job_id)
        except ManateeError as e:
            self.context.log.warning("ManaTEE: cannot look up job %d: %s", job_id, e.message)
            listed, list_problem = None, e.message
        listed_uuid = listed.get("uuid") if listed else None
        records = self.context.records
        return listed, identify_job(
            creator,
            job_id,
            listed=listed,
            list_problem=list_problem,
            record_uuid=records.uuid_of(creator, job_id),
            record_id_of_listed_uuid=(
                records.id_of(creator, listed_uuid) if isinstance(listed_uuid, str) else None
            ),
        )

    def record(self, creator: str, job_id: int, job: JobFacts) -> dict[str, Any] | None:
        """This server's record of the job's submission, by id or by the identified uuid."""
        records = self.context.records
        record = records.find(creator, job_id=job_id)
        if record is None and job.identified and job.uuid:
            record = records.find(creator, job_uuid=job.uuid)
        return record


def _output_fetch(client: ManateeApiClient, creator: str, job_id: int) -> Fetch:
    """Streams the job's output (through a new signed URL) into a scan's ``write``."""

    async def fetch(write) -> int:
        signed = await client.output(creator=creator, job_id=job_id)
        return await client.download(signed.url, write, what="output")

    return fetch
