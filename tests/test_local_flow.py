"""The whole flow through the extension's routes against the local backend: submit, watch,
download the executed notebook, read its token, hit the job limit, delete."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import tarfile

import nbformat
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from google.auth import jwt
from tornado.httpclient import AsyncHTTPClient

from jupyterlab_manatee.remote.api_client import ManateeApiClient
from tests.conftest import CREATOR, USER_TOKEN, call, wait_for_job, write_notebook

FINISHED = 5
IN_PROGRESS = {0, 1, 3, 4}

READS_ITS_NEIGHBOUR = """\
import os
rows = open("data.csv").read().splitlines()
print(f"stage {os.environ['EXECUTION_STAGE']}: {len(rows) - 1} rows")
"""


def submit(jp_fetch, path: str):
    return call(
        jp_fetch, "jobs", method="POST", body={"path": path, "filename": path.rsplit("/", 1)[-1]}
    )


async def served_public_keys(issuer: str) -> dict[str, bytes]:
    """The issuer's signing keys as PEM, found the way a verifier finds them."""
    client = AsyncHTTPClient()
    discovery = json.loads((await client.fetch(f"{issuer}/.well-known/openid-configuration")).body)
    jwks = json.loads((await client.fetch(discovery["jwks_uri"])).body)

    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    return {
        key["kid"]: RSAPublicNumbers(number(key["e"]), number(key["n"]))
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        for key in jwks["keys"]
    }


async def test_a_submitted_notebook_finishes_and_its_proven_output_lands_in_its_outputs_folder(
    jp_fetch, backend, jp_root_dir
):
    write_notebook(jp_root_dir / "analysis" / "nb.ipynb", READS_ITS_NEIGHBOUR)
    (jp_root_dir / "analysis" / "data.csv").write_text("age,charges\n19,1.0\n33,2.0\n")

    code, submitted = await submit(jp_fetch, "analysis/nb.ipynb")
    assert code == 200, submitted
    job = await wait_for_job(jp_fetch, submitted["uuid"], {FINISHED, 2, 6, 7, 8, 9})
    assert job["job_status"] == FINISHED, job
    assert job["jupyter_file_name"] == "nb.ipynb" and job["creator"] == CREATOR

    code, saved = await call(jp_fetch, "output", method="POST", body={"id": job["id"]})
    assert code == 200, saved
    assert saved["filename"] == f"analysis/manatee-outputs/out-{job['id']}-nb.ipynb"
    output_bytes = (jp_root_dir / saved["filename"]).read_bytes()
    executed = nbformat.reads(output_bytes.decode(), as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "stage 2: 2 rows\n"

    code, attestation = await call(jp_fetch, "attestation", id=str(job["id"]))
    assert code == 200 and attestation["kind"] == "jwt"
    claims = jwt.decode(
        attestation["token"],
        certs=await served_public_keys(backend.url),
        verify=True,
        audience="https://research.tiktok.com/",
    )
    assert claims["eat_nonce"] == hashlib.md5(output_bytes).hexdigest()
    assert claims == attestation["claims"]
    assert claims["submods"]["gce"]["instance_name"] == f"{CREATOR}-{submitted['uuid']}"
    assert claims["swname"] != "CONFIDENTIAL_SPACE"


async def test_the_fourth_job_in_progress_is_refused_with_409_and_jobs_can_be_deleted(
    jp_fetch, backend, jp_root_dir
):
    """Each of the first three is sent or queued (queued while the one before it has not
    left its image build); either way they count, and the fourth is refused."""
    write_notebook(jp_root_dir / "slow" / "nb.ipynb", "import time\ntime.sleep(60)")
    accepted = []
    for _ in range(3):
        code, reply = await submit(jp_fetch, "slow/nb.ipynb")
        assert code == 200, reply
        accepted.append(reply)

    code, reply = await submit(jp_fetch, "slow/nb.ipynb")
    assert code == 409
    assert "the limit is 3" in reply["message"]

    for earlier in accepted:
        if earlier.get("queued"):  # cancelled, or already sent (then its job is listed)
            await call(jp_fetch, "queue", earlier["queue_id"], method="DELETE")
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # until no submission is queued or being sent: the job list is complete
        _, listing = await call(jp_fetch, "jobs", page_size="100")
        if not [q for q in listing["queued"] if q["state"] in ("queued", "sending")]:
            break
        assert asyncio.get_running_loop().time() < deadline, listing["queued"]
        await asyncio.sleep(0.05)
    uuids = [j["uuid"] for j in listing["jobs"]]
    for job_uuid in uuids:
        code, _ = await call(jp_fetch, "jobs", job_uuid, method="DELETE")
        assert code == 200
    _, listing = await call(jp_fetch, "jobs")
    assert not {j["uuid"] for j in listing["jobs"]} & set(uuids)

    code, reply = await submit(jp_fetch, "slow/nb.ipynb")
    assert code == 200 and reply["uuid"], reply
    await call(jp_fetch, "jobs", reply["uuid"], method="DELETE")


async def test_jobs_are_listed_newest_first(jp_fetch, backend, jp_root_dir):
    write_notebook(jp_root_dir / "a.ipynb")
    write_notebook(jp_root_dir / "b.ipynb")
    _, first = await submit(jp_fetch, "a.ipynb")
    await wait_for_job(jp_fetch, first["uuid"], {3, 4, 5, 6, 7, 8, 9})  # its build has read
    _, second = await submit(jp_fetch, "b.ipynb")
    assert second.get("uuid"), second
    _, listing = await call(jp_fetch, "jobs")
    assert [j["uuid"] for j in listing["jobs"]][:2] == [second["uuid"], first["uuid"]]
    assert listing["total"] == 2
    for reply in (first, second):
        await call(jp_fetch, "jobs", reply["uuid"], method="DELETE")


async def test_another_creators_job_cannot_be_fetched_through_this_server(
    jp_fetch, backend, tmp_path
):
    archive = tmp_path / "bob.tar.gz"
    notebook = write_notebook(tmp_path / "bob-workspace" / "nb.ipynb")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(notebook.parent, arcname="bob-workspace")
    bob = ManateeApiClient(backend.url, USER_TOKEN)  # the same API, another creator
    submitted = await bob.submit(archive, creator="bob", filename="nb.ipynb", envs=[])
    bobs_job = next(
        j
        for j in (await bob.query(creator="bob", page=1, page_size=10))["jobs"]
        if j["uuid"] == submitted["uuid"]
    )

    code, reply = await call(jp_fetch, "output", method="POST", body={"id": bobs_job["id"]})
    assert code == 404, reply
    code, reply = await call(jp_fetch, "attestation", id=str(bobs_job["id"]))
    assert code == 404, reply
    _, listing = await call(jp_fetch, "jobs")
    assert listing["jobs"] == []
    await bob.delete(creator="bob", job_uuid=submitted["uuid"])


@pytest.mark.parametrize("job_id", ["1", "0"])
async def test_attestation_of_a_missing_job_is_an_error_not_a_crash(jp_fetch, backend, job_id):
    code, reply = await call(jp_fetch, "attestation", id=job_id)
    assert code in (400, 404)
    assert reply["message"]
