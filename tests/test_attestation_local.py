"""The local backend's real tokens, end to end through the extension: trusted as a local
issuer they verify as "local run, no hardware TEE"; untrusted they are not verified."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from jupyterlab_manatee.attestation import LOCAL_RUN, NOT_VERIFIED
from tests.conftest import call, wait_for_job, write_notebook

REPO = Path(__file__).resolve().parent.parent
FINISHED = 5
PLATFORM = {"swname", "dbgstat", "support_attributes", "secboot", "hwmodel"}


async def finished_job(jp_fetch, jp_root_dir) -> dict:
    write_notebook(jp_root_dir / "analysis" / "nb.ipynb", "print(6 * 7)")
    code, submitted = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert code == 200, submitted
    job = await wait_for_job(jp_fetch, submitted["uuid"], {FINISHED, 2, 6, 7, 8, 9})
    assert job["job_status"] == FINISHED, job
    return job


def statuses(verification: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in verification["checks"]}


class TestTrustedAsALocalIssuer:
    @pytest.fixture
    def manatee_config(self, manatee_config, backend):
        return {**manatee_config, "local_issuers": [backend.url]}

    async def test_its_tokens_verify_as_a_local_run_everywhere(
        self, jp_fetch, backend, jp_root_dir
    ):
        job = await finished_job(jp_fetch, jp_root_dir)

        code, saved = await call(jp_fetch, "output", method="POST", body={"id": job["id"]})
        assert code == 200, saved
        assert saved["attestation"]["verdict"] == LOCAL_RUN
        record = saved["attestation"]["path"]
        assert record == saved["filename"] + ".attestation.json"

        _, attestation = await call(jp_fetch, "attestation", id=str(job["id"]))
        verification = attestation["verification"]
        assert (verification["verdict"], verification["verified"]) == (LOCAL_RUN, False)
        assert statuses(verification) == {
            name: "n/a" if name in PLATFORM else "pass" for name in statuses(verification)
        }

        _, again = await call(
            jp_fetch, "attestation", "verify", method="POST", body={"path": saved["filename"]}
        )
        assert again["verification"]["verdict"] == LOCAL_RUN
        assert again["job"]["uuid"] == job["uuid"]

        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jupyterlab_manatee.attestation", "verify",
            str(jp_root_dir / saved["filename"]), str(jp_root_dir / record),
            f"--local-issuer={backend.url}", "--json", "--project-id=manatee-local",
            "--service-account=manatee-local-tee@manatee-local.iam.gserviceaccount.com",
            "--image-repository=localhost/manatee-local",
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )  # fmt: skip
        out, _ = await cli.communicate()
        assert cli.returncode == 3  # a local run: never "verified", told apart
        assert json.loads(out)["verdict"] == LOCAL_RUN
        assert statuses(json.loads(out)) == statuses(verification)


class TestNotTrusted:
    async def test_its_tokens_are_not_verified_the_issuer_check_failing(
        self, jp_fetch, backend, jp_root_dir
    ):
        job = await finished_job(jp_fetch, jp_root_dir)
        _, attestation = await call(jp_fetch, "attestation", id=str(job["id"]))
        verification = attestation["verification"]
        assert verification["verdict"] == NOT_VERIFIED
        checks = statuses(verification)
        assert checks["issuer"] == "fail" and checks["signature"] == "n/a"
        assert checks["nonce"] == "pass" and checks["instance_name"] == "pass"
        assert backend.url in verification["summary"]
