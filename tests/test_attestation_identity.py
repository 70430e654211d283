"""Whose job an output is: a job uuid counts only in canonical form, wherever it enters (the
API's list, its submit reply, our records, a saved file), and re-verifying a saved output
takes the creator from the logged-in user and the job from this server's records, the
saved ``.attestation.json`` only filling in what the server does not know.

The attack these hold: a hostile API lists alice's job 7 with the uuid ``bob-<u>`` and
serves the genuine token of the VM ``alice-bob-<u>`` (creator ``alice-bob``, job ``<u>``):
``<creator>-<uuid>`` matches, so without these guards both routes said "verified".
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_manatee.attestation import JobFacts
from jupyterlab_manatee.jobs.job_identity import FROM_API, identify_job, identify_saved_job
from jupyterlab_manatee.jobs.job_records import records_file
from jupyterlab_manatee.remote.job_uuid import canonical_uuid
from tests.attestation_support import (
    IMAGE_DIGEST,
    IMAGE_REPOSITORY,
    JOB_UUID,
    NOT_CANONICAL,
    OTHER_UUID,
    OUTPUT,
    PINS,
    FakeApi,
    issuer_fixture,  # noqa: F401 - the "issuer" fixture
    job_around,
    md5,
    production_claims,
)
from tests.conftest import call, write_notebook

SAVED = "manatee-outputs/out-7-nb.ipynb"
RECORD = SAVED + ".attestation.json"
RECORD_NAME = "out-7-nb.ipynb.attestation.json"
FORM = "lowercase 8-4-4-4-12 hex, 36 characters"


@pytest.fixture
def fake_api():
    api = FakeApi().start()
    yield api
    api.stop()


@pytest.fixture
def api_url(fake_api) -> str:
    return fake_api.url


@pytest.fixture
def manatee_config(manatee_config, issuer):
    return {**manatee_config, "trusted_issuers": [issuer.url], **PINS}


# --- helpers ---------------------------------------------------------------------------


def token_of_vm(issuer, instance_name: str, job_id: int = 7) -> tuple[str, JobFacts]:
    """A genuine production token for OUTPUT from the VM ``instance_name`` (its image named
    the same), and the job as an API would list it with the uuid after ``alice-``."""
    issued = time.time() - 60
    claims = production_claims(issuer.url, md5(OUTPUT), issued)
    claims["submods"]["gce"]["instance_name"] = instance_name
    claims["submods"]["container"]["image_reference"] = (
        f"{IMAGE_REPOSITORY}/{instance_name}@{IMAGE_DIGEST}"
    )
    around = job_around(issued)
    job = JobFacts(
        id=job_id,
        uuid=instance_name.removeprefix("alice-"),
        creator="alice",
        created_at=around.created_at,
        updated_at=around.updated_at,
    )
    return issuer.mint(claims), job


def serve_job_listed_as(fake_api: FakeApi, issuer, listed_uuid: str) -> str:
    """The API lists job 7 with ``listed_uuid`` and serves the token of VM alice-<that>."""
    token, job = token_of_vm(issuer, f"alice-{listed_uuid}")
    fake_api.output, fake_api.token, fake_api.job = OUTPUT, token, job
    return token


def checks_of(verification: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in verification["checks"]}


def assert_listed_uuid_refused(verification: dict[str, Any], listed_uuid: str) -> None:
    assert (verification["verdict"], verification["verified"]) == ("not verified", False)
    checks = checks_of(verification)
    assert checks["job"] == {
        "name": "job",
        "status": "fail",
        "reason": f"job not identified: the API lists job #7 with the uuid {listed_uuid!r}, "
        f"which is not a canonical job uuid ({FORM})",
    }
    for name in ("instance_name", "image"):
        assert checks[name]["status"] == "fail", checks[name]
        assert "job not identified" in checks[name]["reason"], checks[name]


async def save(jp_fetch):
    return await call(jp_fetch, "output", method="POST", body={"id": 7})


async def reverify(jp_fetch, path: str = SAVED):
    return await call(jp_fetch, "attestation", "verify", method="POST", body={"path": path})


def records_path(manatee_config, fake_api) -> Path:
    return Path(manatee_config["state_dir"]) / records_file(fake_api.url)


def write_records(manatee_config, fake_api, records: dict[str, dict[str, Any]]) -> None:
    records_path(manatee_config, fake_api).write_text(json.dumps(records))


def records_on_disk(manatee_config, fake_api) -> dict[str, Any]:
    path = records_path(manatee_config, fake_api)
    return json.loads(path.read_text()) if path.exists() else {}


def ours(job_id: int) -> dict[str, Any]:
    """A record of a job this server submitted from the contents root's nb.ipynb."""
    return {"creator": "alice", "folder": "", "notebook": "nb.ipynb", "id": job_id}


# --- the one test of a uuid --------------------------------------------------------------


@pytest.mark.parametrize("value", [JOB_UUID, OTHER_UUID, "00000000-0000-0000-0000-000000000000"])
def test_a_canonical_uuid_is_accepted_as_it_is(value):
    assert canonical_uuid(value) == value


@pytest.mark.parametrize("value", [*NOT_CANONICAL, None, 7, b"x", ""])
def test_anything_else_is_not_a_uuid_and_is_never_repaired(value):
    assert canonical_uuid(value) is None


# --- the API's list ----------------------------------------------------------------------


async def test_control_a_canonical_uuid_listed_with_its_own_token_verifies(
    jp_fetch, fake_api, issuer
):
    """The stand-in and token below are sound: only the uuid's form changes in the table."""
    serve_job_listed_as(fake_api, issuer, OTHER_UUID)
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == "verified"
    _, saved = await save(jp_fetch)
    assert saved["attestation"]["verdict"] == "verified"


@pytest.mark.parametrize("listed_uuid", NOT_CANONICAL)
async def test_the_attestation_route_refuses_a_job_listed_with_a_non_canonical_uuid(
    jp_fetch, fake_api, issuer, listed_uuid
):
    serve_job_listed_as(fake_api, issuer, listed_uuid)
    code, reply = await call(jp_fetch, "attestation", id="7")
    assert code == 200, reply
    assert_listed_uuid_refused(reply["verification"], listed_uuid)


@pytest.mark.parametrize("listed_uuid", NOT_CANONICAL)
async def test_the_output_route_saves_the_output_but_refuses_a_non_canonical_listed_uuid(
    jp_fetch, fake_api, issuer, jp_root_dir, listed_uuid
):
    serve_job_listed_as(fake_api, issuer, listed_uuid)
    code, reply = await save(jp_fetch)
    assert code == 200, reply
    assert (jp_root_dir / reply["filename"]).read_bytes() == OUTPUT
    assert (reply["attestation"]["verdict"], reply["attestation"]["verified"]) == (
        "not verified",
        False,
    )
    record = json.loads((jp_root_dir / reply["attestation"]["path"]).read_text())
    assert_listed_uuid_refused(record["verification"], listed_uuid)


async def test_the_relabel_attack_is_not_verified_by_either_route(jp_fetch, fake_api, issuer):
    """alice's job 7 listed as bob-<u>, with the genuine token of the VM alice-bob-<u>:
    creator alice-bob's job <u>, not alice's."""
    token, job = token_of_vm(issuer, f"alice-bob-{JOB_UUID}")
    assert (job.id, job.creator, job.uuid) == (7, "alice", f"bob-{JOB_UUID}")
    fake_api.output, fake_api.token, fake_api.job = OUTPUT, token, job
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert_listed_uuid_refused(reply["verification"], f"bob-{JOB_UUID}")
    _, saved = await save(jp_fetch)
    assert saved["attestation"]["verdict"] == "not verified"


# --- the submit reply and our records ----------------------------------------------------


async def submit(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "analysis" / "nb.ipynb")
    return await call(jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb"})


async def test_control_a_canonical_submit_reply_is_recorded_as_ours(
    jp_fetch, fake_api, jp_root_dir, manatee_config
):
    fake_api.submit_uuid = OTHER_UUID
    code, reply = await submit(jp_fetch, jp_root_dir)
    assert (code, reply["uuid"], "warning" in reply) == (200, OTHER_UUID, False)
    assert records_on_disk(manatee_config, fake_api) == {
        OTHER_UUID: {"creator": "alice", "folder": "analysis", "notebook": "nb.ipynb"}
    }


@pytest.mark.parametrize("reply_uuid", [f"bob-{JOB_UUID}", JOB_UUID.upper(), JOB_UUID + "\n"])
async def test_a_submit_reply_with_a_non_canonical_uuid_stands_but_is_not_recorded_and_warns(
    jp_fetch, fake_api, jp_root_dir, manatee_config, reply_uuid
):
    """The API took the job: the submission is not turned into an error (which would invite
    a second submission), but the uuid is never kept as ours, and the user is told."""
    fake_api.submit_uuid = reply_uuid
    code, reply = await submit(jp_fetch, jp_root_dir)
    assert (code, reply["code"], reply["uuid"]) == (200, 0, reply_uuid)
    assert reply["warning"] == (
        f"The ManaTEE API accepted nb.ipynb but gave the job the uuid {reply_uuid!r}, which "
        f"is not a canonical job uuid ({FORM}): this server keeps no record of it, so its "
        "output is saved in the default output folder and its attestation cannot be "
        "verified (job not identified)."
    )
    assert records_on_disk(manatee_config, fake_api) == {}


async def test_the_relabel_attack_through_the_submit_reply_is_not_verified(
    jp_fetch, fake_api, issuer, jp_root_dir
):
    """The API answers the submission with bob-<u>, lists the job so, and serves the token
    of the VM alice-bob-<u>."""
    fake_api.submit_uuid = f"bob-{JOB_UUID}"
    code, _ = await submit(jp_fetch, jp_root_dir)
    assert code == 200
    serve_job_listed_as(fake_api, issuer, f"bob-{JOB_UUID}")
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert_listed_uuid_refused(reply["verification"], f"bob-{JOB_UUID}")
    _, saved = await save(jp_fetch)
    assert saved["attestation"]["verdict"] == "not verified"
    # no record: the output goes to output_dir, not beside the notebook in analysis/
    assert saved["filename"] == "manatee-outputs/out-7.ipynb"


async def test_a_non_canonical_uuid_kept_in_our_record_does_not_verify_either(
    jp_fetch, fake_api, issuer, manatee_config
):
    """A record written before this check (or by hand) holding bob-<u> as job 7."""
    write_records(manatee_config, fake_api, {f"bob-{JOB_UUID}": ours(7)})
    serve_job_listed_as(fake_api, issuer, f"bob-{JOB_UUID}")
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert_listed_uuid_refused(reply["verification"], f"bob-{JOB_UUID}")


async def test_a_record_whose_uuid_is_not_canonical_is_ignored(
    jp_fetch, fake_api, issuer, manatee_config
):
    """Ignored, the record neither vouches for its uuid nor contradicts the API's list: the
    job is identified as one submitted elsewhere."""
    write_records(manatee_config, fake_api, {JOB_UUID.upper(): ours(7)})
    serve_job_listed_as(fake_api, issuer, JOB_UUID)
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == "verified"
    assert checks_of(reply["verification"])["job"]["reason"] == (
        f"job #7 {JOB_UUID} of alice (uuid from the API's job list (submitted elsewhere))"
    )


# --- re-verifying a saved output -----------------------------------------------------------


async def save_job_7(jp_fetch, fake_api, issuer, jp_root_dir) -> Path:
    """Job 7 (JOB_UUID) saved with a genuine token, verified; the path of its record."""
    serve_job_listed_as(fake_api, issuer, JOB_UUID)
    code, reply = await save(jp_fetch)
    assert (code, reply["filename"], reply["attestation"]["verdict"]) == (200, SAVED, "verified")
    return jp_root_dir / RECORD


def edit(record: Path, token: str | None = None, **job: Any) -> None:
    """Change the saved file as anyone who can write the folder can."""
    data = json.loads(record.read_text())
    data["job"].update(job)
    if token is not None:
        data["token"] = token
    record.write_text(json.dumps(data))


def from_file(uuid_source: str) -> str:
    return (
        f"creator from the logged-in user; job id from this server's record of the saved "
        f"output; {uuid_source}; times from the saved file {RECORD_NAME}"
    )


async def test_reverify_says_which_facts_came_from_the_saved_file(
    jp_fetch, fake_api, issuer, jp_root_dir
):
    await save_job_7(jp_fetch, fake_api, issuer, jp_root_dir)
    _, reply = await reverify(jp_fetch)
    assert reply["verification"]["verdict"] == "verified"
    uuid_source = f"uuid from the saved file {RECORD_NAME} (not confirmed by this server)"
    assert checks_of(reply["verification"])["job"]["reason"] == (
        f"job #7 {JOB_UUID} of alice ({from_file(uuid_source)})"
    )


async def test_reverify_of_another_creators_saved_output_is_not_identified(
    jp_fetch, fake_api, issuer, jp_root_dir
):
    saved_output = await save_job_7(jp_fetch, fake_api, issuer, jp_root_dir)
    """bob's genuine output and token, the file saying creator bob: alice's server does not
    vouch for it (a reviewer uses the command line)."""
    token, _ = token_of_vm(issuer, f"bob-{OTHER_UUID}")
    edit(saved_output, token=token, creator="bob", uuid=OTHER_UUID)
    _, reply = await reverify(jp_fetch)
    verification = reply["verification"]
    assert verification["verdict"] == "not verified"
    job = checks_of(verification)["job"]
    assert job["status"] == "fail"
    assert job["reason"].startswith(
        "job not identified: saved for creator 'bob', you are 'alice' (a reviewer checks "
        "another creator's output with the command line"
    ), job
    assert reply["job"]["creator"] == "alice"


async def test_reverify_takes_the_uuid_from_our_record_over_the_saved_file(
    jp_fetch, fake_api, issuer, manatee_config, jp_root_dir
):
    """This server submitted job 7 as JOB_UUID; the saved file is edited to name OTHER_UUID
    and hold OTHER_UUID's genuine token: the record's uuid wins, so it is another job's."""
    write_records(manatee_config, fake_api, {JOB_UUID: ours(7)})
    serve_job_listed_as(fake_api, issuer, JOB_UUID)
    _, saved = await save(jp_fetch)
    assert (saved["filename"], saved["attestation"]["verdict"]) == (SAVED, "verified")
    other_token, _ = token_of_vm(issuer, f"alice-{OTHER_UUID}")
    edit(jp_root_dir / RECORD, token=other_token, uuid=OTHER_UUID)

    _, reply = await reverify(jp_fetch)
    checks = checks_of(reply["verification"])
    assert reply["verification"]["verdict"] == "not verified"
    assert reply["job"]["uuid"] == JOB_UUID
    assert checks["instance_name"]["status"] == "fail"
    assert "another job's token" in checks["instance_name"]["reason"]
    uuid_source = (
        f"uuid from this server's record of the submission (the saved file {RECORD_NAME} "
        f"says {OTHER_UUID!r})"
    )
    assert checks["job"] == {
        "name": "job",
        "status": "pass",
        "reason": f"job #7 {JOB_UUID} of alice ({from_file(uuid_source)})",
    }
    # Report (which knows the job id from the request) says the same
    _, report = await call(jp_fetch, "attestation", id="7")
    assert (report["source"], report["verification"]["verdict"]) == ("saved", "not verified")


async def test_without_our_record_the_edited_uuid_is_all_there_is_and_the_reply_says_so(
    jp_fetch, fake_api, issuer, jp_root_dir
):
    saved_output = await save_job_7(jp_fetch, fake_api, issuer, jp_root_dir)
    """The control for the test above: nothing here contradicts the file, and the job check
    names the file as the uuid's source."""
    other_token, _ = token_of_vm(issuer, f"alice-{OTHER_UUID}")
    edit(saved_output, token=other_token, uuid=OTHER_UUID)
    _, reply = await reverify(jp_fetch)
    assert reply["verification"]["verdict"] == "verified"
    uuid_source = f"uuid from the saved file {RECORD_NAME} (not confirmed by this server)"
    assert checks_of(reply["verification"])["job"]["reason"] == (
        f"job #7 {OTHER_UUID} of alice ({from_file(uuid_source)})"
    )


async def test_reverify_takes_the_job_id_from_our_record_of_the_saved_output(
    jp_fetch, fake_api, issuer, manatee_config, jp_root_dir
):
    """The file saved as job 7's output is edited to claim job 8 (also ours), with job 8's
    uuid and token."""
    write_records(manatee_config, fake_api, {JOB_UUID: ours(7), OTHER_UUID: ours(8)})
    serve_job_listed_as(fake_api, issuer, JOB_UUID)
    _, saved = await save(jp_fetch)
    assert saved["attestation"]["verdict"] == "verified"
    other_token, _ = token_of_vm(issuer, f"alice-{OTHER_UUID}", job_id=8)
    edit(jp_root_dir / RECORD, token=other_token, id=8, uuid=OTHER_UUID)
    _, reply = await reverify(jp_fetch)
    assert reply["verification"]["verdict"] == "not verified"
    assert checks_of(reply["verification"])["job"]["reason"] == (
        f"job not identified: this server saved this output as job #7's, but the saved file "
        f"{RECORD_NAME} says job #8"
    )


async def test_reverify_refuses_a_saved_uuid_that_is_not_canonical(
    jp_fetch, fake_api, issuer, jp_root_dir
):
    saved_output = await save_job_7(jp_fetch, fake_api, issuer, jp_root_dir)
    token, _ = token_of_vm(issuer, f"alice-{JOB_UUID.upper()}")
    edit(saved_output, token=token, uuid=JOB_UUID.upper())
    _, reply = await reverify(jp_fetch)
    assert reply["verification"]["verdict"] == "not verified"
    job = checks_of(reply["verification"])["job"]
    assert job["status"] == "fail"
    uuid_source = f"uuid from the saved file {RECORD_NAME} (not confirmed by this server)"
    assert job["reason"] == (
        f"job not identified: the uuid {JOB_UUID.upper()!r} is not a canonical job uuid "
        f"({FORM}) ({from_file(uuid_source)})"
    )


async def test_report_checks_the_saved_output_as_the_job_it_was_asked_about(
    jp_fetch, fake_api, issuer, manatee_config, jp_root_dir
):
    """Report on job 7 knows the job from the request, even where the saved path no longer
    leads back to it (the outputs folder was moved and a link left in its place, so the
    file resolves elsewhere): an edited file naming job 8 (also ours) with job 8's token is
    not job 7's proof."""
    write_records(manatee_config, fake_api, {JOB_UUID: ours(7), OTHER_UUID: ours(8)})
    await save_job_7(jp_fetch, fake_api, issuer, jp_root_dir)
    (jp_root_dir / "manatee-outputs").rename(jp_root_dir / "moved")
    (jp_root_dir / "manatee-outputs").symlink_to(jp_root_dir / "moved")
    other_token, _ = token_of_vm(issuer, f"alice-{OTHER_UUID}", job_id=8)
    edit(jp_root_dir / "moved" / RECORD_NAME, token=other_token, id=8, uuid=OTHER_UUID)
    _, report = await call(jp_fetch, "attestation", id="7")
    assert (report["source"], report["path"]) == ("saved", "moved/out-7-nb.ipynb")
    assert report["verification"]["verdict"] == "not verified"
    assert checks_of(report["verification"])["job"]["reason"] == (
        f"job not identified: this server saved this output as job #7's, but the saved file "
        f"{RECORD_NAME} says job #8"
    )


async def test_reverify_refuses_a_saved_uuid_that_we_recorded_as_another_job(
    jp_fetch, fake_api, issuer, manatee_config, jp_root_dir
):
    """No record of job 7 here, but the uuid the edited file gives it is our job 8's."""
    write_records(manatee_config, fake_api, {OTHER_UUID: ours(8)})
    record = await save_job_7(jp_fetch, fake_api, issuer, jp_root_dir)
    other_token, _ = token_of_vm(issuer, f"alice-{OTHER_UUID}", job_id=8)
    edit(record, token=other_token, uuid=OTHER_UUID)
    _, reply = await reverify(jp_fetch)
    assert reply["verification"]["verdict"] == "not verified"
    assert checks_of(reply["verification"])["job"]["reason"] == (
        f"job not identified: the saved file {RECORD_NAME} gives job #7 the uuid {OTHER_UUID}, "
        "which this server recorded as job #8"
    )


async def test_a_job_unidentified_when_saved_stays_unidentified_on_reverify(
    jp_fetch, fake_api, issuer
):
    serve_job_listed_as(fake_api, issuer, JOB_UUID)
    fake_api.relabel = {"creator": "bob"}
    _, saved = await save(jp_fetch)
    assert saved["attestation"]["verdict"] == "not verified"
    _, reply = await reverify(jp_fetch, saved["filename"])
    assert reply["verification"]["verdict"] == "not verified"
    assert checks_of(reply["verification"])["job"]["reason"] == (
        "job not identified: the API lists job #7 under creator 'bob', not 'alice' (as the "
        "saved file out-7.ipynb.attestation.json says)"
    )


class TestAQueuedSubmission:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "queue_poll_interval": 0.05}

    @pytest.mark.parametrize(
        ("reply_uuid", "recorded"),
        [
            (
                OTHER_UUID,
                {OTHER_UUID: {"creator": "alice", "folder": "analysis", "notebook": "nb.ipynb"}},
            ),
            (f"bob-{JOB_UUID}", {}),
        ],
        ids=["control: canonical, recorded", "not canonical, not recorded"],
    )
    async def test_its_submit_reply_is_recorded_only_with_a_canonical_uuid(
        self, jp_fetch, fake_api, jp_root_dir, manatee_config, reply_uuid, recorded
    ):
        """Held while job 7 waits for its build (status 0), sent once it has ended."""
        fake_api.submit_uuid = reply_uuid
        fake_api.relabel = {"job_status": 0}
        code, reply = await submit(jp_fetch, jp_root_dir)
        assert (code, reply["msg"]) == (200, "Queued")
        fake_api.relabel = {}
        deadline = time.monotonic() + 30
        while True:
            _, queue = await call(jp_fetch, "queue")
            if queue["queued"] and queue["queued"][0]["state"] == "sent":
                break
            assert time.monotonic() < deadline, queue
            await asyncio.sleep(0.05)
        assert queue["queued"][0]["uuid"] == reply_uuid
        assert records_on_disk(manatee_config, fake_api) == recorded


# --- identify_job and identify_saved_job, rule by rule (the whole facts written out) -------

U = "11111111-2222-4333-8444-555555555555"  # the uuid the API lists
R = "99999999-8888-4777-8666-555555555555"  # this server's record of the submission
FILE = "out-7-nb.ipynb.attestation.json"
IN_FILE = f"the saved file {FILE}"
NOT_LISTED = "job not identified: job #7 is not in the API's job list for alice"


def listed_job(**fields: Any) -> dict[str, Any]:
    return {"creator": "alice", "uuid": U, "created_at": "t1", "updated_at": "t2", **fields}


def test_a_job_missing_from_the_list_is_unidentified_and_keeps_the_recorded_uuid():
    assert identify_job("alice", 7, listed=None, record_uuid=R) == JobFacts(
        id=7, uuid=R, creator="alice", problem=NOT_LISTED
    )


def test_an_unreadable_job_list_is_named_as_the_reason_the_job_is_unidentified():
    assert identify_job("alice", 7, listed=None, list_problem="HTTP 502") == JobFacts(
        id=7,
        creator="alice",
        problem="job not identified: the API's job list could not be read (HTTP 502)",
    )


def test_a_job_listed_under_another_creator_is_unidentified():
    assert identify_job("alice", 7, listed=listed_job(creator="bob")) == JobFacts(
        id=7,
        creator="alice",
        problem="job not identified: the API lists job #7 under creator 'bob', not 'alice'",
    )


@pytest.mark.parametrize("creator", ["", None, 5], ids=["empty", "none", "not a string"])
def test_a_listed_job_without_a_creator_string_takes_the_logged_in_users(creator):
    assert identify_job("alice", 7, listed=listed_job(creator=creator)) == JobFacts(
        id=7, uuid=U, creator="alice", created_at="t1", updated_at="t2", source=FROM_API
    )


def test_a_job_listed_with_a_non_canonical_uuid_is_unidentified():
    assert identify_job("alice", 7, listed=listed_job(uuid=f"bob-{U}")) == JobFacts(
        id=7,
        creator="alice",
        problem=f"job not identified: the API lists job #7 with the uuid 'bob-{U}', which is "
        f"not a canonical job uuid ({FORM})",
    )


@pytest.mark.parametrize("uuid", ["", None, 5], ids=["empty", "none", "not a string"])
def test_a_job_listed_without_a_uuid_string_is_unidentified(uuid):
    assert identify_job("alice", 7, listed=listed_job(uuid=uuid)) == JobFacts(
        id=7, creator="alice", problem="job not identified: the API lists job #7 no uuid"
    )


def test_a_listed_uuid_other_than_the_recorded_one_leaves_the_job_unidentified():
    assert identify_job("alice", 7, listed=listed_job(), record_uuid=R) == JobFacts(
        id=7,
        uuid=R,
        creator="alice",
        problem=f"job not identified: the API gives job #7 the uuid '{U}', but this server "
        f"submitted it as {R}",
    )


def test_a_listed_uuid_this_server_recorded_for_another_job_leaves_it_unidentified():
    assert identify_job("alice", 7, listed=listed_job(), record_id_of_listed_uuid=8) == JobFacts(
        id=7,
        creator="alice",
        problem=f"job not identified: the API gives job #7 the uuid {U}, which this server "
        "recorded as job #8",
    )


def test_a_listed_uuid_matching_the_record_is_identified_from_the_record():
    facts = identify_job(
        "alice", 7, listed=listed_job(uuid=R), record_uuid=R, record_id_of_listed_uuid=7
    )
    assert facts == JobFacts(
        id=7,
        uuid=R,
        creator="alice",
        created_at="t1",
        updated_at="t2",
        source="uuid from this server's record of the submission",
    )


def test_a_job_submitted_elsewhere_is_identified_from_the_list_and_says_so():
    assert identify_job("alice", 7, listed=listed_job()) == JobFacts(
        id=7,
        uuid=U,
        creator="alice",
        created_at="t1",
        updated_at="t2",
        source="uuid from the API's job list (submitted elsewhere)",
    )


def test_listed_times_that_are_not_strings_are_left_unknown():
    listed = listed_job(created_at=1700000000, updated_at=None)
    assert identify_job("alice", 7, listed=listed) == JobFacts(
        id=7, uuid=U, creator="alice", source=FROM_API
    )


def saved_job(**fields: Any) -> JobFacts:
    return JobFacts(
        **{"id": 7, "uuid": U, "creator": "alice", "created_at": "t1", "updated_at": "t2"} | fields
    )


def identified_saved(job_id: int | None, uuid: str | None, *sources: str) -> JobFacts:
    return JobFacts(
        id=job_id,
        uuid=uuid,
        creator="alice",
        created_at="t1",
        updated_at="t2",
        source="; ".join(["creator from the logged-in user", *sources, f"times from {IN_FILE}"]),
    )


def no_lookup(_key: object) -> None:
    raise AssertionError("looked up without a key")


def test_a_saved_output_of_another_creator_is_unidentified_with_the_reviewers_way():
    facts = identify_saved_job("alice", saved_job(creator="bob"), file_name=FILE)
    assert facts == JobFacts(
        id=7,
        uuid=U,
        creator="alice",
        problem="job not identified: saved for creator 'bob', you are 'alice' (a reviewer "
        "checks another creator's output with the command line: python -m "
        "jupyterlab_manatee.attestation verify)",
    )


def test_a_saved_file_without_a_creator_takes_the_logged_in_users():
    assert identify_saved_job("alice", saved_job(creator=None), file_name=FILE) == (
        identified_saved(
            7, U, f"job id from {IN_FILE}", f"uuid from {IN_FILE} (not confirmed by this server)"
        )
    )


def test_a_saved_file_naming_another_job_than_our_record_of_the_output_is_unidentified():
    facts = identify_saved_job("alice", saved_job(id=8), file_name=FILE, output_job_id=7)
    assert facts == JobFacts(
        id=7,
        uuid=U,
        creator="alice",
        problem=f"job not identified: this server saved this output as job #7's, but {IN_FILE} "
        "says job #8",
    )


def test_the_job_id_comes_from_our_record_of_the_output_over_a_file_without_one():
    facts = identify_saved_job("alice", saved_job(id=None), file_name=FILE, output_job_id=7)
    assert facts == identified_saved(
        7,
        U,
        "job id from this server's record of the saved output",
        f"uuid from {IN_FILE} (not confirmed by this server)",
    )


def test_a_problem_stated_in_the_saved_file_stays_and_says_where_it_came_from():
    facts = identify_saved_job(
        "alice", saved_job(problem="job not identified: gone"), file_name=FILE
    )
    assert facts == JobFacts(
        id=7, uuid=U, creator="alice", problem=f"job not identified: gone (as {IN_FILE} says)"
    )


def test_the_recorded_uuid_wins_over_the_saved_files_and_the_difference_is_stated():
    facts = identify_saved_job(
        "alice", saved_job(), file_name=FILE, record_uuid_of={7: R}.get, record_id_of={}.get
    )
    assert facts == identified_saved(
        7,
        R,
        f"job id from {IN_FILE}",
        f"uuid from this server's record of the submission ({IN_FILE} says '{U}')",
    )


def test_a_saved_uuid_equal_to_the_record_is_from_the_record_with_nothing_to_add():
    facts = identify_saved_job(
        "alice", saved_job(uuid=R), file_name=FILE, record_uuid_of={7: R}.get
    )
    assert facts == identified_saved(
        7, R, f"job id from {IN_FILE}", "uuid from this server's record of the submission"
    )


def test_a_saved_uuid_recorded_as_another_job_leaves_the_output_unidentified():
    facts = identify_saved_job(
        "alice", saved_job(), file_name=FILE, record_uuid_of={}.get, record_id_of={U: 8}.get
    )
    assert facts == JobFacts(
        id=7,
        uuid=U,
        creator="alice",
        problem=f"job not identified: {IN_FILE} gives job #7 the uuid {U}, which this server "
        "recorded as job #8",
    )


def test_a_saved_uuid_recorded_as_the_same_job_is_confirmed_by_the_record():
    facts = identify_saved_job(
        "alice", saved_job(), file_name=FILE, record_uuid_of={}.get, record_id_of={U: 7}.get
    )
    assert facts == identified_saved(
        7, U, f"job id from {IN_FILE}", "uuid from this server's record of the submission"
    )


def test_a_saved_file_without_a_job_id_takes_it_from_our_record_of_its_uuid():
    facts = identify_saved_job(
        "alice",
        saved_job(id=None),
        file_name=FILE,
        record_uuid_of=no_lookup,
        record_id_of={U: 7}.get,
    )
    assert facts == identified_saved(
        7,
        U,
        "job id from this server's record of the submission",
        "uuid from this server's record of the submission",
    )


def test_a_saved_file_without_a_uuid_is_not_looked_up_by_uuid():
    facts = identify_saved_job(
        "alice",
        saved_job(uuid=None),
        file_name=FILE,
        record_uuid_of={}.get,
        record_id_of=no_lookup,
    )
    assert facts == identified_saved(
        7, None, f"job id from {IN_FILE}", f"uuid from {IN_FILE} (not confirmed by this server)"
    )


def test_without_records_the_saved_files_uuid_is_unconfirmed():
    assert identify_saved_job("alice", saved_job(), file_name=FILE) == identified_saved(
        7, U, f"job id from {IN_FILE}", f"uuid from {IN_FILE} (not confirmed by this server)"
    )


# --- job facts read back from a saved file ----------------------------------------------
@pytest.mark.parametrize("saved", [None, [], "alice", 7], ids=["null", "list", "text", "number"])
def test_saved_job_facts_that_are_not_an_object_identify_no_job(saved):
    facts = JobFacts.from_json(saved)
    assert facts == JobFacts(problem="job not identified: no creator and uuid to compare with")
    assert facts.identified is False


@pytest.mark.parametrize(
    ("saved_id", "read_id"),
    [(7, 7), ("7", None), (True, None), (7.0, None), (None, None)],
    ids=["int", "text", "bool", "float", "null"],
)
def test_a_saved_job_id_is_kept_only_when_it_is_an_integer(saved_id, read_id):
    assert JobFacts.from_json({"id": saved_id, "uuid": JOB_UUID, "creator": "alice"}).id == read_id


def test_saved_text_facts_of_another_type_become_unknown():
    saved = {k: 5 for k in ("uuid", "creator", "created_at", "updated_at", "problem", "source")}
    assert JobFacts.from_json({**saved, "id": 7}) == JobFacts(id=7)


def test_the_job_check_of_a_job_without_an_id_names_its_uuid_and_creator():
    from jupyterlab_manatee.attestation.verify import _job_check

    check = _job_check(JobFacts(uuid=JOB_UUID, creator="alice", source="from the test"))
    assert (check.status, check.reason) == ("pass", f"job {JOB_UUID} of alice (from the test)")
