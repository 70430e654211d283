"""``python -m tests.mutation [MODULE ...|all] [--jobs N] [--fail-under 0.9]``, each MODULE a
name in `TARGETS`: access, verify, identity, uuid, api_session, reply_head, isolation, draft,
aim."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT_FILE = Path(__file__).with_name("equivalent.toml")
#: What the scratch copy needs besides pyproject.toml (tests import ``sdk`` too).
LINKED = ("jupyterlab_manatee", "sdk", "tests")
#: mutmut's statuses that count as a kill (a timeout is a mutant the tests stopped).
KILLING = ("killed", "timeout")
#: the owner tests are named one by one: most of that file provisions, which is slow
OWNER = "tests/test_provision_owner.py::"


def is_killed(code: int | None) -> bool:
    return status_by_exit_code[code] in KILLING


@dataclass(frozen=True)
class Target:
    """One module under mutation and the (fast) test files that cover it."""

    source: str
    tests: tuple[str, ...]
    #: folders the tests read beside the package (found from the test file's own path)
    data: tuple[str, ...] = ()
    #: mutmut settings of its own
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def dotted(self) -> str:
        return self.source.removesuffix(".py").replace("/", ".")


TARGETS = {
    "access": Target(
        "jupyterlab_manatee/local_backend/access.py", ("tests/local_backend/test_access.py",)
    ),
    "verify": Target(
        "jupyterlab_manatee/attestation/verify.py",
        (
            "tests/test_attestation_platform_checks.py",
            "tests/test_attestation_policy.py",
            "tests/test_attestation_verdicts.py",
            "tests/test_attestation_verify.py",
            # the saved job facts (JobFacts.from_json/to_json) are read back here
            "tests/test_attestation_identity.py",
        ),
    ),
    "identity": Target(
        "jupyterlab_manatee/jobs/job_identity.py",
        (
            "tests/test_attestation_identity.py",
            "tests/test_attestation_routes.py",
            "tests/test_attestation_verify.py",
        ),
    ),
    "uuid": Target(
        "jupyterlab_manatee/remote/job_uuid.py", ("tests/test_attestation_identity.py",)
    ),
    "api_session": Target(
        "jupyterlab_manatee/remote/api_session.py",
        (
            "tests/test_api_http.py",
            "tests/test_api_faults.py",
            "tests/test_hostile_api.py",
            "tests/test_connect_failure.py",
        ),
    ),
    "reply_head": Target(
        "jupyterlab_manatee/remote/reply_head.py",
        (
            "tests/test_reply_head.py",
            "tests/test_api_http.py",
            "tests/test_upload_form.py",
            "tests/test_attestation_verify.py",
        ),
    ),
    # the rules, and the launcher run for real without a backend; the tests that run
    # confined notebooks are too slow per mutant
    "isolation": Target(
        "jupyterlab_manatee/local_backend/isolation.py",
        ("tests/local_backend/test_isolation_rules.py", "tests/local_backend/test_launcher.py"),
    ),
    # domain drafting: the DP quantiles and their warnings, and the owner tests that draft
    # in-process
    "draft": Target(
        "jupyterlab_manatee/provision/draft.py",
        (
            "tests/test_provision_draft.py",
            OWNER + "test_a_domain_is_drafted_from_public_facts_in_the_order_given",
            OWNER + "test_a_drafted_edge_list_that_is_not_increasing_is_refused",
            OWNER + "test_dp_quantiles_put_the_inner_edges_near_the_datas_quantiles",
        ),
    ),
    # AIM's rounds, accounting and plan (the tests that run the command do so in processes
    # of their own, which mutmut does not trace)
    "aim": Target(
        "jupyterlab_manatee/provision/aim.py",
        ("tests/test_provision_aim.py",),
        ("tutorials",),
        # mbi computes with JAX, whose threads deadlock a process forked after it ran: each
        # mutant's tests run in a process forked from one that has not imported it
        (("process_isolation", "forkserver"), ("forkserver_warmup", "none")),
    ),
}


@dataclass
class Summary:
    """One module's results, with the reviewed equivalents set apart."""

    name: str
    total: int = 0
    killed: int = 0
    timed_out: int = 0  # of the killed: a mutant that made the tests hang
    not_checked: int = 0  # an interrupted run: left out of the score
    survived: dict[str, str] = field(default_factory=dict)  # id -> its diff
    equivalent: dict[str, str] = field(default_factory=dict)  # id -> the reviewed reason
    stale: dict[str, str] = field(default_factory=dict)  # listed entries that no longer hold

    @property
    def score(self) -> float:
        counted = self.total - self.not_checked - len(self.equivalent)
        return self.killed / counted if counted else 1.0


def short_id(target: Target, mutant: str) -> str:
    """``x_is_loopback__mutmut_3`` for ``jupyterlab_manatee.local_backend.access.x_is_…``."""
    return mutant.removeprefix(target.dotted + ".")


def changed_lines(diff: str) -> str:
    """The mutated line(s) of a ``mutmut show`` diff: what an equivalent entry pins; for a
    mutant that only removes lines (an argument of a call written over several lines),
    ``deleted:`` and the removed lines."""
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    if added:
        return "\n".join(added)
    return "deleted: " + "\n".join(line[1:].strip() for line in diff.splitlines())


def summarise(
    name: str,
    exit_codes: dict[str, int | None],
    diffs: dict[str, str],
    equivalents: dict[str, dict[str, str]],
) -> Summary:
    """Count kills; a survivor is equivalent only while the listed mutation is still the
    same one (mutmut numbers mutants per function, so an edited function renumbers them)."""
    summary = Summary(name, total=len(exit_codes))
    for mutant, code in sorted(exit_codes.items()):
        entry = equivalents.get(mutant)
        if status_by_exit_code[code] == "not checked":
            summary.not_checked += 1
            continue
        if is_killed(code):
            summary.killed += 1
            summary.timed_out += status_by_exit_code[code] == "timeout"
            if entry is not None:
                summary.stale[mutant] = "listed as equivalent but killed: remove the entry"
            continue
        diff = diffs.get(mutant, "")
        if entry is None:
            summary.survived[mutant] = diff
        elif entry.get("mutation", "").strip() != changed_lines(diff):
            summary.survived[mutant] = diff
            summary.stale[mutant] = (
                f"listed as equivalent for {entry.get('mutation')!r}, but the mutant is now "
                f"{changed_lines(diff)!r}: review it again"
            )
        else:
            summary.equivalent[mutant] = entry.get("reason", "")
    for mutant in sorted(set(equivalents) - set(exit_codes)):
        summary.stale[mutant] = "listed as equivalent but no such mutant: remove the entry"
    return summary


def prepare(name: str, target: Target) -> Path:
    """A fresh scratch project: links to the sources and tests, and mutmut's settings."""
    work = ROOT / "build" / "mutation" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for part in (*LINKED, *target.data):
        (work / part).symlink_to(ROOT / part, target_is_directory=True)
    configure(work, target)
    # Made before Python starts: a PYTHONPATH entry missing at start-up is cached as
    # "nothing here", and the tests would then import the unmutated package.
    (work / "mutants").mkdir()
    return work


def configure(work: Path, target: Target) -> None:
    """The project's pyproject.toml plus a [tool.mutmut] for this module only."""
    config = {
        "source_paths": ["jupyterlab_manatee"],
        "only_mutate": [target.source],
        "also_copy": ["sdk", *target.data],
        "pytest_add_cli_args_test_selection": list(target.tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        # mutmut's time estimate leaves out fixture setup (a backend, an issuer started per
        # test): without slack, a busy machine turns slow survivors into "timeouts"
        "timeout_constant": 20.0,
        **dict(target.settings),
    }
    section = "\n".join(f"{key} = {json.dumps(value)}" for key, value in config.items())
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    (work / "pyproject.toml").write_text(f"{text}\n[tool.mutmut]\n{section}\n", "utf-8")


def not_killed(work: Path, target: Target) -> list[str]:
    """The mutants of the last run that no test killed, and those that timed out (what
    ``--again`` reruns)."""
    meta = json.loads((work / "mutants" / f"{target.source}.meta").read_text("utf-8"))
    return sorted(
        k for k, v in meta["exit_code_by_key"].items() if status_by_exit_code[v] != "killed"
    )


def run_mutmut(work: Path, jobs: int, mutants: list[str]) -> None:
    """``mutmut run`` in the scratch project (all mutants, or the ones named); subprocesses
    of the tests (the attestation CLI, the local backend) import the mutated copy through
    PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(work / "mutants")}
    with (work / "mutmut.log").open("wb") as log:
        done = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *mutants],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = (work / "mutmut.log").read_text("utf-8", "replace")[-3000:]
        raise SystemExit(f"mutmut failed (exit {done.returncode}); the end of its log:\n{tail}")


def show(work: Path, mutant: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", mutant],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return "\n".join(
        line
        for line in done.stdout.splitlines()
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    )


def results(work: Path, target: Target) -> tuple[dict[str, int | None], dict[str, str]]:
    """mutmut's exit code per mutant (its ``.meta`` file) and the diff of each survivor."""
    meta = json.loads((work / "mutants" / f"{target.source}.meta").read_text("utf-8"))
    codes = {short_id(target, k): v for k, v in meta["exit_code_by_key"].items()}
    diffs = {
        short_id(target, mutant): show(work, mutant)
        for mutant, code in meta["exit_code_by_key"].items()
        if not is_killed(code) and status_by_exit_code[code] != "not checked"
    }
    return codes, diffs


def report(summary: Summary, seconds: float) -> None:
    counted = summary.total - summary.not_checked - len(summary.equivalent)
    print(f"== {summary.name}: {summary.total} mutants in {seconds:.0f} s")
    if summary.not_checked:
        print(f"   NOT CHECKED {summary.not_checked} (the run was interrupted: run it again)")
    print(
        f"   killed {summary.killed} ({summary.timed_out} by a timeout), "
        f"survived {len(summary.survived)}, "
        f"equivalent {len(summary.equivalent)}; score {summary.killed}/{counted} "
        f"= {summary.score:.1%}"
    )
    for mutant, reason in summary.equivalent.items():
        print(f"   equivalent {mutant}: {reason}")
    for mutant, diff in summary.survived.items():
        print(f"   SURVIVED {mutant}")
        for line in diff.splitlines():
            print(f"      {line}")
    for mutant, problem in summary.stale.items():
        print(f"   STALE {mutant}: {problem}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    p.add_argument("modules", nargs="*", default=["all"], help=f"{', '.join(TARGETS)} or all")
    p.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    p.add_argument(
        "--again",
        action="store_true",
        help="rerun only the mutants the last run of these modules left alive (after adding "
        "tests); killed ones stay killed",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="test only the mutants whose id matches (fnmatch, repeatable; e.g. "
        "'x__image_checks__mutmut_*'); the others count as not checked, out of the score",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="run nothing: summarise the last run again (after editing equivalent.toml)",
    )
    p.add_argument(
        "--fail-under", type=float, default=None, help="exit 1 if a module's score is lower"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    names = list(TARGETS) if "all" in args.modules else args.modules
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser().error(f"unknown module {', '.join(unknown)}: choose among {', '.join(TARGETS)}")
    listed = tomllib.loads(EQUIVALENT_FILE.read_text("utf-8"))
    failed = False
    for name in names:
        target = TARGETS[name]
        start = time.monotonic()
        work = ROOT / "build" / "mutation" / name
        if args.report:
            pass
        elif args.again and (work / "mutants" / f"{target.source}.meta").exists():
            configure(work, target)
            again = not_killed(work, target)
            if args.only:  # the named ones only, not those the partial run left unchecked
                only = [f"{target.dotted}.{pattern}" for pattern in args.only]
                again = [m for m in again if any(fnmatch.fnmatchcase(m, p) for p in only)]
            if again:  # none left: nothing to run (an empty list would run them all)
                run_mutmut(work, args.jobs, again)
        else:
            only = [f"{target.dotted}.{pattern}" for pattern in args.only]
            run_mutmut(prepare(name, target), args.jobs, only)
        codes, diffs = results(work, target)
        summary = summarise(name, codes, diffs, listed.get(name, {}))
        report(summary, time.monotonic() - start)
        if args.fail_under is not None and summary.score < args.fail_under:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
