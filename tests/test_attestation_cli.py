"""The command line, run as a user runs it: ``python -m jupyterlab_manatee.attestation
verify OUTPUT TOKEN``; it exits 0 only for a verified output."""

from __future__ import annotations

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
    make_record,
)
from jupyterlab_manatee.attestation.verify import CHECK_NAMES
from tests.attestation_support import (
    CASES,
    OUTPUT,
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


def write_files(tmp_path: Path, scenario: Scenario) -> tuple[Path, Path]:
    output, token = tmp_path / "out-7-nb.ipynb", tmp_path / "token.txt"
    output.write_bytes(scenario.output)
    token.write_text(scenario.token)
    return output, token


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_gives_its_verdict_and_exit_code(tmp_path, issuer, rogue, name):
    case = CASES[name]
    scenario = make_scenario(case, issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), str(token), f"--issuer={issuer.url}", "--json",
        *job_options(scenario.job),
    )  # fmt: skip
    assert_result(json.loads(done.stdout), case)
    assert done.returncode == (0 if json.loads(done.stdout)["verified"] else 1), done.stderr


def test_the_text_report_leads_with_the_verdict_then_every_check(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["debug image"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli("verify", str(output), str(token), f"--issuer={issuer.url}")
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert lines[0] == "verdict: not verified"
    check_lines = [line.split() for line in lines[3:]]
    assert [(words[1], words[0]) for words in check_lines] == [
        (name, "fail" if name == "dbgstat" else "n/a" if name in ("instance_name", "issued_at")
         else "pass")
        for name in CHECK_NAMES
    ]  # fmt: skip


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
    done = run_cli("verify", str(output), str(record), f"--issuer={issuer.url}", "--json")
    assert done.returncode == 1
    assert_result(json.loads(done.stdout), CASES["another job's instance name"])


def test_the_token_can_come_from_stdin(tmp_path, issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, _ = write_files(tmp_path, scenario)
    done = run_cli(
        "verify", str(output), "-", f"--issuer={issuer.url}", "--json", stdin=scenario.token
    )
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
        "verify", str(output), str(token), f"--issuer={issuer.url}", f"--jwks={jwks}", "--json"
    )
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


def test_a_local_issuer_is_a_local_run_and_exits_non_zero(tmp_path, issuer: Issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    output, token = write_files(tmp_path, scenario)
    done = run_cli("verify", str(output), str(token), f"--local-issuer={issuer.url}", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["verdict"] == "local run, no hardware TEE"


@pytest.mark.parametrize("missing", ["output", "token"])
def test_an_unreadable_file_exits_2_saying_which(tmp_path, missing):
    output, token = tmp_path / "out.ipynb", tmp_path / "token.txt"
    (token if missing == "output" else output).write_text("x")
    done = run_cli("verify", str(output), str(token))
    assert done.returncode == 2
    assert f"cannot read the {missing}" in done.stderr
