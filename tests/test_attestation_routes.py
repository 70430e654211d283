"""The routes: ``GET manatee/attestation`` verifies against the job's output, ``POST
manatee/output`` saves the token and its verdict beside the output, and ``POST
manatee/attestation/verify`` re-verifies a saved output against its saved token."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from jupyterlab_manatee.attestation import NOT_VERIFIED, VERIFIED, JobFacts
from jupyterlab_manatee.jobs.job_records import records_file
from tests.attestation_support import (
    CASES,
    IMAGE_DIGEST,
    IMAGE_REPOSITORY,
    JOB_UUID,
    OTHER_UUID,
    OUTPUT,
    PINS,
    FakeApi,
    assert_result,
    issuer_fixture,  # noqa: F401 - the "issuer" fixture
    job_around,
    make_scenario,
    md5,
    production_claims,
    rogue_fixture,  # noqa: F401 - the "rogue" fixture
)
from tests.conftest import call

SAVED = "manatee-outputs/out-7-nb.ipynb"
RECORD = SAVED + ".attestation.json"


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


# Cases whose policy or job list differ are met through their own tests below.
ROUTE_CASES = [n for n, c in CASES.items() if not c.policy and not c.hostile_list]


async def save(jp_fetch):
    return await call(jp_fetch, "output", method="POST", body={"id": 7})


async def reverify(jp_fetch, path: str):
    return await call(jp_fetch, "attestation", "verify", method="POST", body={"path": path})


@pytest.mark.parametrize("name", ROUTE_CASES)
async def test_the_attestation_route_verifies_each_case_against_the_jobs_output(
    jp_fetch, fake_api, issuer, rogue, name
):
    case = CASES[name]
    scenario = make_scenario(case, issuer, rogue)
    fake_api.serve(scenario)
    code, reply = await call(jp_fetch, "attestation", id="7")
    assert code == 200, reply
    assert (reply["code"], reply["msg"], reply["token"]) == (0, "Success", scenario.token)
    assert reply["kind"] in ("jwt", "mock", "unknown")
    assert_result(reply["verification"], case)


@pytest.mark.parametrize("name", ROUTE_CASES)
async def test_a_saved_output_carries_its_verdict_and_reverifies_the_same(
    jp_fetch, fake_api, issuer, rogue, jp_root_dir, name
):
    case = CASES[name]
    fake_api.serve(make_scenario(case, issuer, rogue))
    code, saved = await save(jp_fetch)
    assert code == 200, saved
    assert saved["attestation"]["path"] == RECORD
    assert saved["attestation"]["verdict"] == case.verdict

    code, reply = await reverify(jp_fetch, SAVED)
    assert code == 200, reply
    assert (reply["path"], reply["attestation_path"]) == (SAVED, RECORD)
    assert reply["saved_verdict"] == case.verdict
    assert_result(reply["verification"], case)


async def test_the_record_holds_the_token_the_verification_and_the_job(
    jp_fetch, fake_api, issuer, rogue, jp_root_dir
):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    fake_api.serve(scenario)
    code, _ = await save(jp_fetch)
    assert code == 200
    assert (jp_root_dir / SAVED).read_bytes() == OUTPUT
    record = json.loads((jp_root_dir / RECORD).read_text())
    assert record["token"] == scenario.token
    assert record["output"] == "out-7-nb.ipynb"
    assert record["output_md5"] == hashlib.md5(OUTPUT).hexdigest()
    assert record["job"] == {
        "id": 7,
        "uuid": JOB_UUID,
        "creator": "alice",
        "created_at": scenario.job.created_at,
        "updated_at": scenario.job.updated_at,
        "problem": None,
        "source": "uuid from the API's job list (submitted elsewhere)",
    }
    assert record["verification"]["verdict"] == VERIFIED
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["saved_at"])
    assert sorted(p.name for p in (jp_root_dir / "manatee-outputs").iterdir()) == [
        "out-7-nb.ipynb",
        "out-7-nb.ipynb.attestation.json",
    ]


async def test_a_missing_token_keeps_the_output_and_says_so(jp_fetch, fake_api, jp_root_dir):
    fake_api.token = None
    code, saved = await save(jp_fetch)
    assert code == 200, saved
    assert (jp_root_dir / SAVED).read_bytes() == OUTPUT
    assert saved["attestation"]["path"] is None
    assert saved["attestation"]["verdict"] == "token unavailable"
    assert "attestation token is not in storage" in saved["attestation"]["problem"]
    assert not (jp_root_dir / RECORD).exists()


async def test_an_existing_attestation_file_is_never_overwritten(
    jp_fetch, fake_api, issuer, rogue, jp_root_dir
):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    (jp_root_dir / "manatee-outputs").mkdir()
    (jp_root_dir / RECORD).write_text("mine")
    code, saved = await save(jp_fetch)
    assert code == 200
    assert saved["filename"] == "manatee-outputs/out-7-nb-1.ipynb"
    assert saved["attestation"]["path"] == "manatee-outputs/out-7-nb-1.ipynb.attestation.json"
    assert (jp_root_dir / RECORD).read_text() == "mine"
    assert not (jp_root_dir / SAVED).exists()


async def test_a_saved_output_changed_by_one_byte_no_longer_verifies(
    jp_fetch, fake_api, issuer, rogue, jp_root_dir
):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    await save(jp_fetch)
    output = jp_root_dir / SAVED
    output.write_bytes(output.read_bytes().replace(b'nbformat_minor": 5', b'nbformat_minor": 4'))
    code, reply = await reverify(jp_fetch, SAVED)
    assert code == 200
    assert reply["saved_verdict"] == VERIFIED
    assert reply["verification"]["verdict"] == NOT_VERIFIED
    failed = [c["name"] for c in reply["verification"]["checks"] if c["status"] == "fail"]
    assert failed == ["nonce"]


async def test_reverify_accepts_the_attestation_files_own_path(jp_fetch, fake_api, issuer, rogue):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    await save(jp_fetch)
    code, reply = await reverify(jp_fetch, "/" + RECORD)
    assert (code, reply["path"], reply["verification"]["verdict"]) == (200, SAVED, VERIFIED)


async def test_reverify_of_an_output_without_a_record_is_404(jp_fetch, fake_api, jp_root_dir):
    (jp_root_dir / "plain.ipynb").write_text("{}")
    code, reply = await reverify(jp_fetch, "plain.ipynb")
    assert code == 404
    assert "plain.ipynb.attestation.json" in reply["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [("", 400), ("../outside.ipynb", 400), ("missing.ipynb", 404), ("manatee-outputs", 400)],
)
async def test_reverify_refuses_bad_paths(jp_fetch, fake_api, jp_root_dir, path, status):
    (jp_root_dir / "manatee-outputs").mkdir()
    code, reply = await reverify(jp_fetch, path)
    assert code == status
    assert reply["message"]


async def test_reverify_does_not_follow_links_out_of_the_root(
    jp_fetch, fake_api, jp_root_dir, tmp_path
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.ipynb").write_text("{}")
    (outside / "secret.ipynb.attestation.json").write_text('{"token": "x"}')
    os.symlink(outside / "secret.ipynb", jp_root_dir / "link.ipynb")
    code, reply = await reverify(jp_fetch, "link.ipynb")
    assert code == 400
    assert "outside the contents root" in reply["message"]


async def test_the_server_reuses_fetched_keys_across_requests(jp_fetch, fake_api, issuer, rogue):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    before = issuer.key_fetches()
    for _ in range(3):
        _, reply = await call(jp_fetch, "attestation", id="7")
        assert reply["verification"]["verdict"] == VERIFIED
    assert issuer.key_fetches() - before <= 1


async def test_the_attestation_route_names_the_job_it_checked(jp_fetch, fake_api, issuer, rogue):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["job"]["uuid"] == JOB_UUID and reply["job"]["id"] == 7


async def test_the_reverify_route_refuses_a_request_without_credentials(
    http_server_client, http_server_port, jp_base_url, fake_api
):
    url = f"http://127.0.0.1:{http_server_port[1]}{jp_base_url}manatee/attestation/verify"
    request = HTTPRequest(url, method="POST", body=json.dumps({"path": SAVED}))
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 403


def failing(reply) -> set[str]:
    return {c["name"] for c in reply["verification"]["checks"] if c["status"] == "fail"}


JOB_CHECKS = {"job", "instance_name", "image", "issued_at"}


async def test_a_job_the_api_leaves_out_of_its_list_is_not_verified(
    jp_fetch, fake_api, issuer, rogue
):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    fake_api.hide_job = True
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == NOT_VERIFIED
    assert failing(reply) == JOB_CHECKS
    job = next(c for c in reply["verification"]["checks"] if c["name"] == "job")
    assert "job #7 is not in the API's job list for alice" in job["reason"]


async def test_a_job_the_api_lists_under_another_creator_is_not_verified(
    jp_fetch, fake_api, issuer, rogue
):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    fake_api.relabel = {"creator": "bob"}
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == NOT_VERIFIED
    assert failing(reply) == JOB_CHECKS


def token_of_other_job(issuer) -> tuple[str, JobFacts]:
    """A genuine token of alice's job OTHER_UUID, for OUTPUT, and that job's facts."""
    issued = time.time() - 60
    claims = production_claims(issuer.url, md5(OUTPUT), issued)
    claims["submods"]["gce"]["instance_name"] = f"alice-{OTHER_UUID}"
    claims["submods"]["container"]["image_reference"] = (
        f"{IMAGE_REPOSITORY}/alice-{OTHER_UUID}@{IMAGE_DIGEST}"
    )
    job = job_around(issued)
    return issuer.mint(claims), JobFacts(
        id=7, uuid=OTHER_UUID, creator="alice", created_at=job.created_at, updated_at=job.updated_at
    )


async def test_without_a_record_a_relabelled_list_is_all_the_server_can_go_by(
    jp_fetch, fake_api, issuer
):
    """The control for the next test: the same lie passes when nothing contradicts it."""
    token, job = token_of_other_job(issuer)
    fake_api.output, fake_api.token, fake_api.job = OUTPUT, token, job
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == VERIFIED


async def test_another_jobs_token_under_a_uuid_differing_from_our_record_is_not_verified(
    jp_fetch, fake_api, issuer, manatee_config
):
    """This server submitted job 7 as JOB_UUID; the API now lists job 7 as OTHER_UUID and
    serves OTHER_UUID's genuine token."""
    state = Path(manatee_config["state_dir"])
    record = {"creator": "alice", "folder": "", "notebook": "nb.ipynb", "id": 7}
    (state / records_file(fake_api.url)).write_text(json.dumps({JOB_UUID: record}))
    token, job = token_of_other_job(issuer)
    fake_api.output, fake_api.token, fake_api.job = OUTPUT, token, job
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == NOT_VERIFIED
    assert failing(reply) == JOB_CHECKS
    job_check = next(c for c in reply["verification"]["checks"] if c["name"] == "job")
    assert f"this server submitted it as {JOB_UUID}" in job_check["reason"]


async def test_unpinned_the_server_verifies_nothing_and_names_the_settings(
    jp_fetch, fake_api, issuer, rogue, jp_serverapp
):
    fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
    config = jp_serverapp.web_app.settings["manatee_manager"].config
    config.project_id, config.tee_service_accounts = "", []
    _, reply = await call(jp_fetch, "attestation", id="7")
    assert reply["verification"]["verdict"] == NOT_VERIFIED
    assert failing(reply) == {"project_id", "service_account"}
    reasons = " ".join(c["reason"] for c in reply["verification"]["checks"])
    assert "c.ManateeConfig.project_id" in reasons
    assert "c.ManateeConfig.tee_service_accounts" in reasons


class TestReportOnASavedOutput:
    """Report re-verifies the file the user keeps, offline, once it is saved."""

    async def test_report_checks_the_saved_file_and_says_so(
        self, jp_fetch, fake_api, issuer, rogue
    ):
        fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
        await save(jp_fetch)
        _, reply = await call(jp_fetch, "attestation", id="7")
        assert (reply["source"], reply["path"], reply["attestation_path"]) == (
            "saved",
            SAVED,
            RECORD,
        )
        assert reply["verification"]["verdict"] == VERIFIED

    async def test_one_byte_changed_in_the_saved_file_fails_the_report(
        self, jp_fetch, fake_api, issuer, rogue, jp_root_dir
    ):
        fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
        await save(jp_fetch)
        output = jp_root_dir / SAVED
        output.write_bytes(output.read_bytes().replace(b"caf", b"Caf"))
        _, reply = await call(jp_fetch, "attestation", id="7")
        assert reply["verification"]["verdict"] == NOT_VERIFIED
        assert failing(reply) == {"nonce"}

    async def test_report_works_with_the_api_down(self, jp_fetch, fake_api, issuer, rogue):
        fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
        await save(jp_fetch)
        fake_api.stop()
        code, reply = await call(jp_fetch, "attestation", id="7")
        assert code == 200, reply
        assert (reply["source"], reply["verification"]["verdict"]) == ("saved", VERIFIED)

    async def test_a_deleted_saved_output_falls_back_to_the_apis_copy(
        self, jp_fetch, fake_api, issuer, rogue, jp_root_dir
    ):
        fake_api.serve(make_scenario(CASES["good"], issuer, rogue))
        await save(jp_fetch)
        (jp_root_dir / SAVED).chmod(0o644)
        (jp_root_dir / SAVED).unlink()
        _, reply = await call(jp_fetch, "attestation", id="7")
        assert (reply["source"], reply["path"]) == ("api", None)
        assert reply["verification"]["verdict"] == VERIFIED
