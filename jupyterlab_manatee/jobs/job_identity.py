"""Which job an output belongs to, established on this side rather than taken from the API.

A hostile or confused API can leave a job out of its list, list it under another creator or
give it another job's uuid; each would let another run's genuine token pass for this job's.
So the creator is the one this server computes for the logged-in user, the uuid is this
server's own record of the submission when there is one, and the API's list only supplies
what we cannot know (the times, the uuid of a job submitted elsewhere). Anything that does
not add up leaves the job unidentified, which the verifier reports as a failed check. A
uuid counts only in canonical form (:func:`..remote.job_uuid.canonical_uuid`).

A saved output is re-verified the same way (:func:`identify_saved_job`): the creator is
the logged-in user's, the job id and uuid this server's records where it has them; the
``.attestation.json`` beside the output (which anyone who can write the folder can edit)
only fills in what this server does not know, and the job check's reason says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..attestation import JobFacts
from ..remote.job_uuid import CANONICAL_FORM, canonical_uuid

FROM_RECORD = "uuid from this server's record of the submission"
FROM_API = "uuid from the API's job list (submitted elsewhere)"
CREATOR_FROM_USER = "creator from the logged-in user"
ID_FROM_OUTPUTS = "job id from this server's record of the saved output"


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
    if listed_uuid and canonical_uuid(listed_uuid) is None:
        return _unidentified(
            unknown,
            f"job not identified: the API lists job #{job_id} with the uuid {listed_uuid!r}, "
            f"which is not a canonical job uuid ({CANONICAL_FORM})",
        )
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


def identify_saved_job(
    creator: str,
    saved: JobFacts,
    *,
    file_name: str,
    output_job_id: int | None = None,
    record_uuid_of: Callable[[int], str | None] | None = None,
    record_id_of: Callable[[str], int | None] | None = None,
) -> JobFacts:
    """The job a saved output is re-verified against.

    ``saved`` is the job as the output's ``.attestation.json`` (``file_name``) states it;
    ``output_job_id`` the id this server recorded when it saved the output (None: not
    known); ``record_uuid_of(job_id)`` and ``record_id_of(uuid)`` look up this server's
    record of its submissions (None: no record). The file's ``source`` is never believed.
    """
    from_file = f"the saved file {file_name}"
    job_id = output_job_id if output_job_id is not None else saved.id
    sources = [
        CREATOR_FROM_USER,
        ID_FROM_OUTPUTS if output_job_id is not None else f"job id from {from_file}",
    ]
    unknown = JobFacts(id=job_id, uuid=saved.uuid, creator=creator)
    if saved.creator is not None and saved.creator != creator:
        return _unidentified(
            unknown,
            f"job not identified: saved for creator {saved.creator!r}, you are {creator!r} "
            "(a reviewer checks another creator's output with the command line: python -m "
            "jupyterlab_manatee.attestation verify)",
        )
    if output_job_id is not None and saved.id is not None and saved.id != output_job_id:
        return _unidentified(
            unknown,
            f"job not identified: this server saved this output as job #{output_job_id}'s, "
            f"but {from_file} says job #{saved.id}",
        )
    if saved.problem is not None:
        return _unidentified(unknown, f"{saved.problem} (as {from_file} says)")
    record_uuid = record_uuid_of(job_id) if record_uuid_of and job_id is not None else None
    record_id = record_id_of(saved.uuid) if record_id_of and saved.uuid else None
    if record_uuid is not None:
        job_uuid = record_uuid
        differs = f" ({from_file} says {saved.uuid!r})" if saved.uuid != record_uuid else ""
        sources.append(f"{FROM_RECORD}{differs}")
    elif record_id is not None and job_id is not None and record_id != job_id:
        return _unidentified(
            unknown,
            f"job not identified: {from_file} gives job #{job_id} the uuid {saved.uuid}, "
            f"which this server recorded as job #{record_id}",
        )
    elif record_id is not None:
        if job_id is None:
            job_id, sources[1] = record_id, "job id from this server's record of the submission"
        job_uuid = saved.uuid
        sources.append(FROM_RECORD)
    else:
        job_uuid = saved.uuid
        sources.append(f"uuid from {from_file} (not confirmed by this server)")
    sources.append(f"times from {from_file}")
    return JobFacts(
        id=job_id,
        uuid=job_uuid,
        creator=creator,
        created_at=saved.created_at,
        updated_at=saved.updated_at,
        source="; ".join(sources),
    )
