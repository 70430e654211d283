"""The command line, run as a user runs it: ``python -m jupyterlab_manatee.attestation
verify OUTPUT TOKEN``; it exits 0 only for a verified output, and a code per verdict otherwise."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyterlab_manatee.attestation import (
    VERIFIED,
    JobFacts,
    Verification,
    describe_token,
    make_record,
)
from tests.attestation_support import (
    CASES,
    CHECK_NAMES,
    IMAGE_REPOSITORY,
    JOB_UUID,
    NOT_CANONICAL,
    OUTPUT,
    PROJECT,
    SERVICE_ACCOUNT,
    Issuer,
    Scenario,
    assert_result,
    issuer_fixture,  # noqa: F401 - the "issuer" fixture
    make_scenario,
    md5,
    rogue_fixture,  # noqa: F401 - the "rogue" fixture
)

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_manatee.attestation", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def job_options(job: JobFacts) -> list[str]:
    return [
        f"--creator={job.creator}",
        f"--uuid={job.uuid}",
        f"--created-at={job.created_at}",
        f"--updated-at={job.updated_at}",
    ]


def pin_options(**policy) -> list[str]:
    """The deployment pins as flags; a case's policy may leave some out."""
    options = []
    if policy.get("project_id", PROJECT):
        options.append(f"--project-id={PROJECT}")
    if policy.get("service_accounts", (SERVICE_ACCOUNT,)):
        options.append(f"--service-account={SERVICE_ACCOUNT}")
    if policy.get("image_repository", IMAGE_REPOSITORY):
        options.append(f"--image-repository={IMAGE_REPOSITORY}")
    return options


PINS = pin_options()


#: the documented exit code of each verdict
EXIT_CODES = {
    "verified": 0,
    "verified (token expired)": 0,
    "not verified": 1,
    "local run, no hardware TEE": 3,
    "mock backend, nothing attested": 4,
}


def write_files(tmp_path: Path, scenario: Scenario) -> tuple[Path, Path]:
    output, token = tmp_path / "out-7-nb.ipynb", tmp_path / "token.txt"
    output.write_bytes(scenario.output)
    token.write_text(scenario.token)
    return output, token


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if not c.hostile_list])
def test_each_case_gives_its_verdict_and_exit_code(tmp_path, issuer, rogue, name):
    case = CASES[name]
    scenario = make_scenario(case, issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), str(token), f"--issuer={issuer.url}", "--json",
        *job_options(scenario.job), *pin_options(**case.policy),
    )  # fmt: skip
    assert_result(json.loads(done.stdout), case)
    assert done.returncode == EXIT_CODES[case.verdict], done.stderr


def test_the_text_report_leads_with_the_verdict_then_every_check(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["debug image"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), str(token), f"--issuer={issuer.url}", *PINS,
        *job_options(scenario.job),
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert lines[0] == "verdict: not verified"
    check_lines = [line.split() for line in lines[3:]]
    assert [(words[1], words[0]) for words in check_lines] == [
        (name, "fail" if name == "dbgstat" else "pass") for name in CHECK_NAMES
    ]


def test_without_the_job_the_output_is_not_verified_saying_job_not_identified(
    tmp_path, issuer, rogue
):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli("verify", str(output), str(token), f"--issuer={issuer.url}", *PINS)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "verdict: not verified"
    assert "job not identified" in done.stdout


def test_a_saved_attestation_record_brings_its_job(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["another job's instance name"], issuer, rogue)
    output, _ = write_files(tmp_path, scenario)
    record = tmp_path / "out-7-nb.ipynb.attestation.json"
    saved = make_record(
        output_name=output.name,
        output_md5=md5(OUTPUT),
        token=scenario.token,
        verification=Verification("not verified", False, "", ()),
        job=scenario.job,
    )
    record.write_text(json.dumps(saved))
    done = run_cli("verify", str(output), str(record), f"--issuer={issuer.url}", "--json", *PINS)
    assert done.returncode == 1
    assert_result(json.loads(done.stdout), CASES["another job's instance name"])


def test_the_token_can_come_from_stdin(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, _ = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), "-", f"--issuer={issuer.url}", "--json", *PINS,
        *job_options(scenario.job), stdin=scenario.token,
    )  # fmt: skip
    assert (done.returncode, json.loads(done.stdout)["verdict"]) == (0, VERIFIED)


def test_saved_keys_verify_offline(tmp_path, issuer, rogue):
    fetched = run_cli("jwks", issuer.url)
    assert fetched.returncode == 0, fetched.stderr
    jwks = tmp_path / "jwks.json"
    jwks.write_text(fetched.stdout)
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    before = sum(issuer.hits.values())
    done = run_cli(
        "verify", str(output), str(token), f"--issuer={issuer.url}", f"--jwks={jwks}", "--json",
        *PINS, *job_options(scenario.job),
    )  # fmt: skip
    assert (done.returncode, json.loads(done.stdout)["verdict"]) == (0, VERIFIED)
    assert sum(issuer.hits.values()) == before


def test_keys_are_not_fetched_from_an_issuer_not_named_trusted(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    before = sum(issuer.hits.values())
    done = run_cli("verify", str(output), str(token), "--json")  # trusts Google only
    assert done.returncode == 1
    assert json.loads(done.stdout)["verdict"] == "not verified"
    assert sum(issuer.hits.values()) == before


def test_a_local_issuer_is_a_local_run_and_exits_3(tmp_path, issuer: Issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), str(token), f"--local-issuer={issuer.url}", "--json", *PINS,
        *job_options(scenario.job),
    )  # fmt: skip
    assert done.returncode == 3
    assert json.loads(done.stdout)["verdict"] == "local run, no hardware TEE"


def test_a_local_backends_token_without_flags_says_in_one_line_which_flags_it_needs(
    tmp_path, issuer: Issuer, rogue
):
    # the issuer runs on 127.0.0.1, as manatee-local does; nothing names it trusted
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli("verify", str(output), str(token), *job_options(scenario.job))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "verdict: not verified",
        f"The token was signed by {issuer.url}, a local backend, which is not trusted here: "
        f"verify it as a local run with --local-issuer {issuer.url} and the deployment's pins "
        "(--project-id manatee-local --service-account "
        "manatee-local-tee@manatee-local.iam.gserviceaccount.com for manatee-local's "
        "defaults); --json shows every check.",
    ]


def test_an_untrusted_local_issuer_in_json_still_gives_every_check(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli("verify", str(output), str(token), "--json", *job_options(scenario.job))
    assert done.returncode == 1
    assert [c["name"] for c in json.loads(done.stdout)["checks"]] == list(CHECK_NAMES)


def test_an_untrusted_remote_issuer_gets_every_check_and_no_local_hint(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    claims = describe_token(scenario.token)["claims"]
    claims["iss"] = "https://issuer.example.com"
    output, token = write_files(tmp_path, Scenario(issuer.mint(claims), OUTPUT, scenario.job))
    done = run_cli("verify", str(output), str(token), *job_options(scenario.job))
    assert done.returncode == 1
    assert "a local backend" not in done.stdout
    assert len(done.stdout.splitlines()) == 3 + len(CHECK_NAMES)


@pytest.mark.parametrize("missing", ["output", "token"])
def test_an_unreadable_file_exits_2_saying_which(tmp_path, missing):
    output, token = tmp_path / "out.ipynb", tmp_path / "token.txt"
    (token if missing == "output" else output).write_text("x")
    done = run_cli("verify", str(output), str(token))
    assert done.returncode == 2
    assert f"cannot read the {missing}" in done.stderr


def saved_record(tmp_path: Path, scenario: Scenario) -> Path:
    """The output and the .attestation.json the extension saves beside it."""
    output, _ = write_files(tmp_path, scenario)
    record = tmp_path / f"{output.name}.attestation.json"
    saved = make_record(
        output_name=output.name,
        output_md5=md5(scenario.output),
        token=scenario.token,
        verification=Verification("verified", True, "", ()),
        job=scenario.job,
    )
    record.write_text(json.dumps(saved))
    return output


def test_the_token_defaults_to_the_record_beside_the_output(tmp_path, issuer, rogue):
    output = saved_record(tmp_path, make_scenario(CASES["good"], issuer, rogue))
    done = run_cli("verify", str(output), f"--issuer={issuer.url}", "--json", *PINS)
    assert (done.returncode, json.loads(done.stdout)["verdict"]) == (0, VERIFIED), done.stderr


class TestBundle:
    """``bundle OUTPUT`` keeps everything a third party needs; ``verify --bundle`` re-checks
    it with no network."""

    def make(self, tmp_path: Path, issuer: Issuer, rogue, case: str = "good") -> Path:
        output = saved_record(tmp_path, make_scenario(CASES[case], issuer, rogue))
        done = run_cli("bundle", str(output), f"--issuer={issuer.url}", *PINS)
        assert done.returncode == 0, done.stderr  # written, whatever the verdict
        return output

    def test_a_bundle_of_an_output_not_verified_is_written_and_exits_0(
        self, tmp_path, issuer, rogue
    ):
        self.make(tmp_path, issuer, rogue, case="debug image")
        bundle = json.loads((tmp_path / "out-7-nb.ipynb.manatee-bundle.json").read_text())
        assert bundle["verification"]["verdict"] == "not verified"

    def test_verify_bundle_tells_a_local_run_from_a_tampered_output_by_exit_code(
        self, tmp_path, issuer, rogue
    ):
        output = saved_record(tmp_path, make_scenario(CASES["good"], issuer, rogue))
        done = run_cli("bundle", str(output), f"--local-issuer={issuer.url}", *PINS)
        assert done.returncode == 0, done.stderr
        bundle = tmp_path / "out-7-nb.ipynb.manatee-bundle.json"
        intact = run_cli("verify", "--bundle", str(bundle), str(output))
        output.write_bytes(output.read_bytes().replace(b"caf", b"Caf"))
        tampered = run_cli("verify", "--bundle", str(bundle), str(output))
        assert (intact.returncode, tampered.returncode) == (3, 1)

    def test_the_bundle_holds_token_keys_policy_digests_and_verdict(self, tmp_path, issuer, rogue):
        output = self.make(tmp_path, issuer, rogue)
        bundle = json.loads((tmp_path / "out-7-nb.ipynb.manatee-bundle.json").read_text())
        assert bundle["format"] == "jupyterlab-manatee/attestation-bundle/1"
        assert bundle["token"] == (tmp_path / "token.txt").read_text()
        assert bundle["jwks"] == {issuer.url: issuer.jwks()}
        assert bundle["output_md5"] == md5(OUTPUT)
        assert bundle["output_sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
        assert bundle["policy"]["project_id"] == PROJECT
        assert bundle["policy"]["service_accounts"] == [SERVICE_ACCOUNT]
        assert bundle["verification"]["verdict"] == VERIFIED

    def test_a_bundle_reverifies_with_no_network(self, tmp_path, issuer, rogue):
        output = self.make(tmp_path, issuer, rogue)
        before = sum(issuer.hits.values())
        bundle = tmp_path / "out-7-nb.ipynb.manatee-bundle.json"
        done = run_cli("verify", "--bundle", str(bundle), str(output), "--json")
        assert (done.returncode, json.loads(done.stdout)["verdict"]) == (0, VERIFIED), done.stderr
        assert sum(issuer.hits.values()) == before

    def test_a_changed_output_fails_against_its_bundle(self, tmp_path, issuer, rogue):
        output = self.make(tmp_path, issuer, rogue)
        output.write_bytes(output.read_bytes().replace(b"caf", b"Caf"))
        bundle = tmp_path / "out-7-nb.ipynb.manatee-bundle.json"
        done = run_cli("verify", "--bundle", str(bundle), str(output))
        assert done.returncode == 1
        assert "nonce" in done.stdout and "SHA-256 differs" in done.stdout

    def test_a_reviewer_pins_override_the_bundles_policy(self, tmp_path, issuer, rogue):
        output = self.make(tmp_path, issuer, rogue)
        bundle = tmp_path / "out-7-nb.ipynb.manatee-bundle.json"
        done = run_cli(
            "verify", "--bundle", str(bundle), str(output), "--project-id=reviewers-project",
            "--json",
        )  # fmt: skip
        result = json.loads(done.stdout)
        assert (done.returncode, result["verdict"]) == (1, "not verified")
        assert {c["name"] for c in result["checks"] if c["status"] == "fail"} == {"project_id"}

    def test_keys_swapped_in_the_bundle_fail_the_signature(self, tmp_path, issuer, rogue):
        output = self.make(tmp_path, issuer, rogue)
        path = tmp_path / "out-7-nb.ipynb.manatee-bundle.json"
        bundle = json.loads(path.read_text())
        bundle["jwks"] = {issuer.url: rogue.jwks()}
        path.write_text(json.dumps(bundle))
        done = run_cli("verify", "--bundle", str(path), str(output), "--json")
        assert done.returncode == 1
        signature = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "signature")
        assert signature["status"] == "fail"

    def test_an_existing_bundle_is_never_overwritten(self, tmp_path, issuer, rogue):
        output = self.make(tmp_path, issuer, rogue)
        path = tmp_path / "out-7-nb.ipynb.manatee-bundle.json"
        before = path.read_bytes()
        done = run_cli("bundle", str(output), f"--issuer={issuer.url}", *PINS)
        assert done.returncode == 2
        assert "never overwritten" in done.stderr
        assert path.read_bytes() == before


@pytest.mark.parametrize("job_uuid", NOT_CANONICAL)
def test_a_non_canonical_uuid_flag_is_a_usage_error(tmp_path, issuer, rogue, job_uuid):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), str(token), f"--issuer={issuer.url}", *PINS,
        "--creator=alice", f"--uuid={job_uuid}",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        f"argument --uuid: {job_uuid!r} is not a canonical job uuid: give it exactly as the "
        "API lists it, lowercase 8-4-4-4-12 hex, 36 characters "
        "(e.g. 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0)"
    ) in done.stderr, done.stderr


def test_a_saved_record_with_a_non_canonical_uuid_is_not_identified(tmp_path, issuer, rogue):
    """The token's VM and image carry the same uuid: only its form is wrong."""
    bad = f"bob-{JOB_UUID}"
    good = make_scenario(CASES["good"], issuer, rogue)
    claims = describe_token(good.token)["claims"]
    claims["submods"]["gce"]["instance_name"] = f"alice-{bad}"
    claims["submods"]["container"]["image_reference"] = f"{IMAGE_REPOSITORY}/alice-{bad}"
    job = JobFacts(**{**good.job.to_json(), "uuid": bad})
    output = saved_record(tmp_path, Scenario(issuer.mint(claims), OUTPUT, job))
    done = run_cli("verify", str(output), f"--issuer={issuer.url}", "--json", *PINS)
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    checks = {c["name"]: c for c in result["checks"]}
    assert result["verdict"] == "not verified"
    assert checks["job"]["status"] == "fail"
    assert checks["job"]["reason"].startswith(
        f"job not identified: the uuid {bad!r} is not a canonical job uuid "
        "(lowercase 8-4-4-4-12 hex, 36 characters) (creator from the saved file "
        "out-7-nb.ipynb.attestation.json; uuid from the saved file"
    ), checks["job"]
    for name in ("instance_name", "image"):
        assert checks[name]["status"] == "fail"
        assert "job not identified" in checks[name]["reason"]


class TestWhatAReviewerCompares:
    """A verified bundle proves the output came from the job and deployment it names; the
    reviewer is told which facts to hold against what they expect, and where each came
    from."""

    def bundle(self, tmp_path: Path, issuer: Issuer, rogue) -> tuple[Path, Path, JobFacts]:
        scenario = make_scenario(CASES["good"], issuer, rogue)
        output = saved_record(tmp_path, scenario)
        done = run_cli("bundle", str(output), f"--issuer={issuer.url}", *PINS)
        assert done.returncode == 0, done.stderr
        self.bundle_stdout = done.stdout
        return output, tmp_path / "out-7-nb.ipynb.manatee-bundle.json", scenario.job

    def expected(self, job: JobFacts, where: str, pins_from: str) -> list[str]:
        name = f"alice-{JOB_UUID}"
        return [
            "creator: alice (is this who ran the job?)",
            f"job uuid: {JOB_UUID}; job id: #7 (is this the job?)",
            f"job times: created {job.created_at}, last updated {job.updated_at} (UTC)",
            f"where the job facts come from: creator from {where}; uuid from {where}; "
            f"times from {where} (not confirmed: compare them with what you expect)",
            f"project: {PROJECT}; TEE service accounts: {SERVICE_ACCOUNT}; image repository: "
            f"{IMAGE_REPOSITORY} ({pins_from}: are these the deployment you trust? override "
            "with --project-id, --service-account, --image-repository)",
            f"image: {IMAGE_REPOSITORY}/{name}@sha256:{'ab' * 32} on the VM {name} (as the "
            "token names them)",
        ]

    def test_the_bundle_lists_the_facts_to_compare_and_how_to_read_it(
        self, tmp_path, issuer, rogue
    ):
        _, path, job = self.bundle(tmp_path, issuer, rogue)
        bundle = json.loads(path.read_text())
        where = "the saved file out-7-nb.ipynb.attestation.json"
        assert bundle["compare"] == self.expected(job, where, "pinned by the bundle's maker")
        assert "compare each with what you expect" in bundle["read_me"]
        assert "verify --bundle THIS_FILE OUTPUT" in bundle["read_me"]
        listed = [f"  - {line}" for line in bundle["compare"]]
        lines = self.bundle_stdout.splitlines()
        start = lines.index(
            "Compare with what you expect (a verified result proves the output came from "
            "this job of this deployment, not that they are the ones you expect):"
        )
        assert lines[start + 1 :] == listed

    def test_verify_bundle_lists_them_too_naming_the_bundle_as_their_source(
        self, tmp_path, issuer, rogue
    ):
        output, path, job = self.bundle(tmp_path, issuer, rogue)
        done = run_cli("verify", "--bundle", str(path), str(output), "--json")
        assert done.returncode == 0, done.stderr
        where = "the bundle out-7-nb.ipynb.manatee-bundle.json"
        assert json.loads(done.stdout)["compare"] == self.expected(job, where, "the bundle's")
        text = run_cli("verify", "--bundle", str(path), str(output), f"--project-id={PROJECT}")
        assert text.returncode == 0, text.stderr
        assert "  - creator: alice (is this who ran the job?)" in text.stdout.splitlines()
        assert "(your flags where given, else the bundle's: are these" in text.stdout
