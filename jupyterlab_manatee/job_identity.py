"""Which job an output belongs to, established on this side rather than taken from the API.

A hostile or confused API can leave a job out of its list, list it under another creator or
give it another job's uuid; each would let another run's genuine token pass for this job's.
So the creator is the one this server computes for the logged-in user, the uuid is this
server's own record of the submission when there is one, and the API's list only supplies
what we cannot know (the times, the uuid of a job submitted elsewhere). Anything that does
not add up leaves the job unidentified, which the verifier reports as a failed check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .attestation import JobFacts

FROM_RECORD = "uuid from this server's record of the submission"
FROM_API = "uuid from the API's job list (submitted elsewhere)"


def identify_job(
    creator: str,
    job_id: int,
    *,
    listed: Mapping[str, Any] | None,
    list_problem: str | None = None,
    record_uuid: str | None = None,
    record_id_of_listed_uuid: int | None = None,
) -> JobFacts:
    """The job facts the verifier compares a token with.

    ``listed`` is the job as the API lists it for ``creator`` (None: not found, or the list
    could not be read, then ``list_problem`` says why); ``record_uuid`` is the uuid this
    server recorded for job ``job_id``; ``record_id_of_listed_uuid`` the id this server
    recorded for the uuid the API gives, if it submitted that job.
    """
    unknown = JobFacts(id=job_id, creator=creator, uuid=record_uuid)
    if listed is None:
        why = (
            f"the API's job list could not be read ({list_problem})"
            if list_problem
            else f"job #{job_id} is not in the API's job list for {creator}"
        )
        return _unidentified(unknown, f"job not identified: {why}")
    listed_creator = listed.get("creator")
    if isinstance(listed_creator, str) and listed_creator and listed_creator != creator:
        return _unidentified(
            unknown,
            f"job not identified: the API lists job #{job_id} under creator "
            f"{listed_creator!r}, not {creator!r}",
        )
    listed_uuid = listed.get("uuid") if isinstance(listed.get("uuid"), str) else None
    if record_uuid is not None and listed_uuid != record_uuid:
        return _unidentified(
            unknown,
            f"job not identified: the API gives job #{job_id} the uuid {listed_uuid!r}, but "
            f"this server submitted it as {record_uuid}",
        )
    if record_id_of_listed_uuid is not None and record_id_of_listed_uuid != job_id:
        return _unidentified(
            unknown,
            f"job not identified: the API gives job #{job_id} the uuid {listed_uuid}, which "
            f"this server recorded as job #{record_id_of_listed_uuid}",
        )
    if not listed_uuid:
        return _unidentified(unknown, f"job not identified: the API lists job #{job_id} no uuid")
    times = {
        k: listed.get(k) if isinstance(listed.get(k), str) else None
        for k in ("created_at", "updated_at")
    }
    return JobFacts(
        id=job_id,
        uuid=listed_uuid,
        creator=creator,
        source=FROM_RECORD if record_uuid is not None else FROM_API,
        **times,
    )


def _unidentified(job: JobFacts, problem: str) -> JobFacts:
    return JobFacts(id=job.id, uuid=job.uuid, creator=job.creator, problem=problem)
