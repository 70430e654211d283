"""Command line: verify an output, bundle its proof, or re-check a bundle offline.

- ``verify OUTPUT [TOKEN]``: every check and the verdict. TOKEN is the token text in a
  file, ``-`` for stdin, or a saved ``*.attestation.json`` (whose job facts are used too);
  without it, ``OUTPUT.attestation.json`` beside the output.
- ``bundle OUTPUT``: one file holding the token, the issuer's JWKS as fetched, the policy,
  the output's digests and the verdict, for a third party to re-check offline.
- ``verify --bundle FILE OUTPUT``: re-check a bundle with no network (its keys, its policy
  unless a flag overrides a setting, its job).
- ``jwks ISSUER``: an issuer's published keys, to keep for ``--jwks``.

Exit codes (``verify``, ``verify --bundle``), one per verdict so scripts can tell them apart:
0 verified (a production TEE run of the pinned deployment and of the identified job, its
token possibly expired); 1 not verified; 2 unusable arguments (a ``--uuid`` that is not a
canonical job uuid among them); 3 local run (signed by a configured local issuer, the output
matches, no hardware TEE: nothing about the platform is proven); 4 mock backend (nothing
attested). ``bundle`` exits 0 once the bundle is written, whatever its verdict (printed, and
kept in the bundle), and 2 when it cannot be.

A verified result says the output came from *this* job of *this* deployment; only the
reader knows whether those are the ones they expect. So ``bundle`` and ``verify --bundle``
list the facts to compare (creator, uuid, job id, times, project, image) and where each
came from: a bundle's job facts are what the bundle's maker saved, not confirmed here.

Over 500 lines because the four subcommands share one argument parser, one way of
printing checks and the bundle's format (written by one, read by another): split, each
part would import the others.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..remote.job_uuid import CANONICAL_FORM, canonical_uuid
from .files import open_regular
from .keys import KeyStore, KeyUnavailable, load_jwks_file, normalise_issuer
from .record import RECORD_SUFFIX, read_record, write_new_record
from .token import parse_token
from .verify import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLOCK_SKEW,
    DEFAULT_HWMODELS,
    FAIL,
    GOOGLE_ISSUER,
    LOCAL_RUN,
    MOCK_BACKEND,
    JobFacts,
    Policy,
    Verification,
    verify_token,
)

EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_USAGE, EXIT_LOCAL_RUN, EXIT_MOCK = 0, 1, 2, 3, 4
EXIT_WRITTEN = 0
#: hosts of a local backend's issuer URL (``manatee-local`` on this machine)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: the pins of manatee-local's default deployment (its tokens name them)
LOCAL_PINS = (
    "--project-id manatee-local "
    "--service-account manatee-local-tee@manatee-local.iam.gserviceaccount.com"
)
BUNDLE_FORMAT = "jupyterlab-manatee/attestation-bundle/1"
BUNDLE_SUFFIX = ".manatee-bundle.json"
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
CHUNK = 1024 * 1024
NO_JOB_GIVEN = (
    "job not identified: give --creator and --uuid (with --created-at and --updated-at), "
    "or verify with the .attestation.json saved beside the output"
)


READ_ME = (
    "Re-check offline: python -m jupyterlab_manatee.attestation verify --bundle THIS_FILE "
    "OUTPUT (add your own --project-id, --service-account, --image-repository to use your "
    "pins instead of the bundle's). A verified result proves OUTPUT came from the job and "
    "deployment listed under 'compare'; the job facts are the bundle maker's, not confirmed "
    "by anyone: compare each with what you expect."
)


class UsageError(Exception):
    """An argument that cannot be used (unreadable file, bad record or bundle)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jupyterlab_manatee.attestation",
        description="Verify that an output file is the one a ManaTEE attestation token proves.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify OUTPUT against its token or a bundle")
    verify.add_argument("output", type=Path, help="the output file exactly as downloaded")
    verify.add_argument(
        "token",
        nargs="?",
        help="file with the token text, '-' for stdin, or a saved *.attestation.json "
        "(default: OUTPUT.attestation.json)",
    )
    verify.add_argument("--bundle", type=Path, help="re-check a bundle made by 'bundle', offline")
    _policy_options(verify)
    _job_options(verify)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")

    bundle = commands.add_parser(
        "bundle", help="write OUTPUT's token, the issuer's keys, policy and verdict in one file"
    )
    bundle.add_argument("output", type=Path, help="the output file exactly as downloaded")
    bundle.add_argument(
        "--record", type=Path, help="its saved *.attestation.json (default: beside OUTPUT)"
    )
    bundle.add_argument(
        "--out", type=Path, help=f"the bundle file to create (default: OUTPUT{BUNDLE_SUFFIX})"
    )
    _policy_options(bundle)
    _job_options(bundle)
    bundle.add_argument("--json", action="store_true", help="print the result as JSON")

    keys = commands.add_parser("jwks", help="print an issuer's published keys (JWKS)")
    keys.add_argument("issuer", help=f"e.g. {GOOGLE_ISSUER}")
    keys.add_argument("--timeout", type=float, default=30.0, help="seconds per fetch")
    return parser


def _policy_options(parser: argparse.ArgumentParser) -> None:
    """Every setting defaults to None, so a bundle's policy is overridden only where given."""
    parser.add_argument("--jwks", type=Path, help="saved JWKS file: use its keys, fetch nothing")
    parser.add_argument(
        "--issuer",
        action="append",
        help=f"trusted production issuer (repeatable; default {GOOGLE_ISSUER})",
    )
    parser.add_argument(
        "--local-issuer",
        action="append",
        help="trusted local issuer, reported as 'local run, no hardware TEE' (repeatable)",
    )
    parser.add_argument("--audience", help=f"expected aud (default {DEFAULT_AUDIENCE})")
    parser.add_argument(
        "--hwmodel",
        action="append",
        help=f"accepted hwmodel (repeatable; default {', '.join(DEFAULT_HWMODELS)})",
    )
    parser.add_argument(
        "--project-id", help="the deployment's GCP project: submods.gce.project_id must equal it"
    )
    parser.add_argument(
        "--service-account",
        action="append",
        help="a TEE service account of the deployment (repeatable): google_service_accounts "
        "must hold one",
    )
    parser.add_argument(
        "--image-repository",
        help="optional: image_reference must be '<image-repository>/<creator>-<uuid>' (a tag "
        "or digest may follow), the repository compared whole",
    )
    parser.add_argument("--clock-skew", type=float, help=f"seconds (default {DEFAULT_CLOCK_SKEW})")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per key fetch")


def _job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--creator", help="the job's creator (with --uuid: identifies the job)")
    parser.add_argument(
        "--uuid", type=_job_uuid, help=f"the job's uuid, in canonical form ({CANONICAL_FORM})"
    )
    parser.add_argument("--created-at", help="the job's created_at, 'YYYY-MM-DD HH:MM:SS' UTC")
    parser.add_argument("--updated-at", help="the job's updated_at, 'YYYY-MM-DD HH:MM:SS' UTC")


def _job_uuid(value: str) -> str:
    """``--uuid`` only in the form the API generates: nothing is tidied up, so a uuid such
    as ``bob-<u>`` (whose VM ``alice-bob-<u>`` is creator alice-bob's) is refused."""
    if canonical_uuid(value) is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a canonical job uuid: give it exactly as the API lists it, "
            f"{CANONICAL_FORM} (e.g. 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0)"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "jwks":
            return _print_jwks(args)
        if args.command == "bundle":
            return _bundle(args)
        if args.bundle is not None:
            return _verify_bundle(args)
        return _verify(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


# --- verify ---------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    source = args.token or f"{args.output}{RECORD_SUFFIX}"
    token, job = _read_token(source)
    job = _job(args, job, f"the saved file {Path(source).name}")
    result = _run(args, token, job, _policy(args, Policy()), _keys(args))
    return _report(args, token, result)


def _verify_bundle(args: argparse.Namespace) -> int:
    if args.token is not None:
        raise UsageError("give either TOKEN or --bundle, not both")
    bundle = _read_bundle(args.bundle)
    policy = _policy(args, Policy.from_json(bundle["policy"]))
    keys = _keys(args) if args.jwks else KeyStore(documents=bundle["jwks"])
    job = _job(args, JobFacts.from_json(bundle["job"]), f"the bundle {args.bundle.name}")
    result = _run(args, bundle["token"], job, policy, keys)
    sha256 = _digests(args.output)[1]
    own_pins = args.project_id or args.service_account or args.image_repository
    pins_from = "your flags where given, else the bundle's" if own_pins else "the bundle's"
    compare = facts_to_compare(job, policy, bundle["token"], pins_from)
    if args.json:
        reply = {**result.to_json(), "policy": policy.to_json(), "compare": compare}
        print(json.dumps(reply, indent=1))
    else:
        print(render(result))
        print(f"\npolicy: {json.dumps(policy.to_json())}")
        if sha256 != bundle.get("output_sha256"):
            print(f"note: {args.output} is not the file the bundle was made for (SHA-256 differs)")
        print("\n" + render_compare(compare))
    return exit_code(result)


def exit_code(result: Verification) -> int:
    """The verdict as an exit code (see the module's docstring)."""
    if result.verified:
        return EXIT_VERIFIED
    return {LOCAL_RUN: EXIT_LOCAL_RUN, MOCK_BACKEND: EXIT_MOCK}.get(
        result.verdict, EXIT_NOT_VERIFIED
    )


def _run(
    args: argparse.Namespace, token: str, job: JobFacts, policy: Policy, keys: KeyStore
) -> Verification:
    md5 = _digests(args.output)[0]
    return asyncio.run(verify_token(token, md5, policy, keys, job=job))


def _report(args: argparse.Namespace, token: str, result: Verification) -> int:
    hint = None if args.json else local_issuer_hint(token, result)
    if hint:
        print(f"verdict: {result.verdict}\n{hint}")
    else:
        print(json.dumps(result.to_json(), indent=1) if args.json else render(result))
    return exit_code(result)


def local_issuer_hint(token: str, result: Verification) -> str | None:
    """One line naming the flags a local backend's output needs, when its token comes from
    an untrusted issuer on this machine: every other failure follows from that one."""
    if result.check("issuer").status != FAIL:
        return None
    claims = parse_token(token).claims
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str):
        return None
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
        return None
    return (
        f"The token was signed by {issuer}, a local backend, which is not trusted here: verify "
        f"it as a local run with --local-issuer {issuer} and the deployment's pins "
        f"({LOCAL_PINS} for manatee-local's defaults); --json shows every check."
    )


def _job(args: argparse.Namespace, saved: JobFacts | None, where: str) -> JobFacts:
    """The job from the flags, else from the saved record or bundle (``where``); not
    identified without either. The saved ``source`` is never repeated: whoever could edit
    the file wrote it."""
    given = "given on the command line"
    if saved is None:
        saved, where = JobFacts(), "nowhere (not given)"
    creator, job_uuid = args.creator or saved.creator, args.uuid or saved.uuid
    problem = None if args.creator or args.uuid else saved.problem
    if not creator or not job_uuid:
        problem = NO_JOB_GIVEN
    sources = [
        f"creator {given}" if args.creator else f"creator from {where}",
        f"uuid {given}" if args.uuid else f"uuid from {where}",
    ]
    if args.created_at or args.updated_at:
        sources.append(f"times {given}")
    else:
        sources.append(f"times from {where}")
    return JobFacts(
        id=saved.id,
        uuid=job_uuid,
        creator=creator,
        created_at=args.created_at or saved.created_at,
        updated_at=args.updated_at or saved.updated_at,
        problem=problem,
        source="; ".join(sources) + " (not confirmed: compare them with what you expect)",
    )


def facts_to_compare(job: JobFacts, policy: Policy, token: str, pins_from: str) -> list[str]:
    """What a reviewer compares with what they expect, one line each, saying where each
    fact came from. A verified result proves the output came from the job and deployment
    named here, not that they are the ones the reviewer had in mind."""
    parsed = parse_token(token)
    claims = parsed.claims if parsed.kind == "jwt" else {}
    image = _claim(claims, "submods", "container", "image_reference")
    instance = _claim(claims, "submods", "gce", "instance_name")
    source = job.source or "unknown"
    return [
        f"creator: {job.creator or 'unknown'} (is this who ran the job?)",
        f"job uuid: {job.uuid or 'unknown'}; job id: "
        f"{'#' + str(job.id) if job.id is not None else 'unknown'} (is this the job?)",
        f"job times: created {job.created_at or 'unknown'}, last updated "
        f"{job.updated_at or 'unknown'} (UTC)",
        f"where the job facts come from: {source}",
        f"project: {policy.project_id or 'none pinned'}; TEE service accounts: "
        f"{', '.join(policy.service_accounts) or 'none pinned'}; image repository: "
        f"{policy.image_repository or 'none pinned'} ({pins_from}: are these the deployment "
        "you trust? override with --project-id, --service-account, --image-repository)",
        f"image: {image if isinstance(image, str) else 'unknown'} on the VM "
        f"{instance if isinstance(instance, str) else 'unknown'} (as the token names them)",
    ]


def _claim(claims: Any, *path: str) -> Any:
    for part in path:
        claims = claims.get(part) if isinstance(claims, dict) else None
    return claims


def render_compare(compare: list[str]) -> str:
    lines = [
        "Compare with what you expect (a verified result proves the output came from this "
        "job of this deployment, not that they are the ones you expect):"
    ]
    return "\n".join(lines + [f"  - {line}" for line in compare])


def _policy(args: argparse.Namespace, base: Policy) -> Policy:
    """``base`` with every setting the flags give replaced."""
    changes: dict[str, Any] = {
        "trusted_issuers": args.issuer,
        "local_issuers": args.local_issuer,
        "audience": args.audience,
        "hwmodels": args.hwmodel,
        "clock_skew": args.clock_skew,
        "project_id": args.project_id,
        "service_accounts": args.service_account,
        "image_repository": args.image_repository,
    }
    values = {**base.to_json()}
    values.update({k: v for k, v in changes.items() if v is not None})
    try:
        return Policy.from_json(values)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _keys(args: argparse.Namespace) -> KeyStore:
    return KeyStore(jwks_file=args.jwks, connect_timeout=args.timeout, request_timeout=args.timeout)


def _digests(path: Path) -> tuple[str, str]:
    """MD5 (the nonce) and SHA-256 hex of the file's bytes."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    try:
        with open_regular(path) as f:
            while chunk := f.read(CHUNK):
                md5.update(chunk)
                sha256.update(chunk)
    except ValueError as e:
        raise UsageError(f"cannot read the output {path}: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot read the output {path}: {e.strerror or e}") from None
    return md5.hexdigest(), sha256.hexdigest()


def _read_token(source: str) -> tuple[str, JobFacts | None]:
    """The token text and, from a saved record, the job it was saved for."""
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the token {source}: {e.strerror or e}") from None
    text = raw.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        path = Path(source)
        try:
            record: dict[str, Any] = read_record(path) if source != "-" else json.loads(text)
        except (OSError, ValueError) as e:
            raise UsageError(f"{source} is not a usable attestation record: {e}") from None
        if not isinstance(record, dict) or not isinstance(record.get("token"), str):
            raise UsageError(f"{source} is not an attestation record (no token)")
        return record["token"], JobFacts.from_json(record.get("job"))
    return text, None


def render(result: Verification) -> str:
    """The verdict, the summary, then one line per check."""
    width = max(len(c.name) for c in result.checks)
    lines = [f"verdict: {result.verdict}", result.summary, ""]
    lines += [f"  {c.status:<4}  {c.name:<{width}}  {c.reason}" for c in result.checks]
    return "\n".join(lines)


# --- bundle ---------------------------------------------------------------------------


def _bundle(args: argparse.Namespace) -> int:
    record_path = args.record or Path(f"{args.output}{RECORD_SUFFIX}")
    token, saved_job = _read_token(str(record_path))
    out = args.out or Path(f"{args.output}{BUNDLE_SUFFIX}")
    if out.exists():
        raise UsageError(f"{out} already exists; it is never overwritten (choose --out)")
    policy = _policy(args, Policy())
    job = _job(args, saved_job, f"the saved file {record_path.name}")
    issuer, jwks = _issuer_keys(args, token, policy)
    keys = KeyStore(documents={issuer: jwks}) if issuer else KeyStore(documents={})
    md5, sha256 = _digests(args.output)
    result = asyncio.run(verify_token(token, md5, policy, keys, job=job))
    bundle = {
        "format": BUNDLE_FORMAT,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "output": args.output.name,
        "output_md5": md5,
        "output_sha256": sha256,
        "token": token,
        "issuer": issuer,
        "jwks": {issuer: jwks} if issuer else {},
        "job": job.to_json(),
        "policy": policy.to_json(),
        "verification": result.to_json(),
        "read_me": READ_ME,
        "compare": facts_to_compare(job, policy, token, "pinned by the bundle's maker"),
    }
    try:
        write_new_record(out, bundle)
    except FileExistsError:
        raise UsageError(f"{out} already exists; it is never overwritten (choose --out)") from None
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from None
    if args.json:
        print(
            json.dumps(
                {**result.to_json(), "bundle": str(out), "compare": bundle["compare"]}, indent=1
            )
        )
    else:
        print(render(result))
        print(f"\nbundle: {out}")
        print("\n" + render_compare(bundle["compare"]))
    return EXIT_WRITTEN


def _issuer_keys(
    args: argparse.Namespace, token: str, policy: Policy
) -> tuple[str | None, dict[str, Any]]:
    """The token's issuer and its JWKS as published (or from --jwks), if it is trusted."""
    parsed = parse_token(token)
    iss = parsed.claims.get("iss") if parsed.kind == "jwt" else None
    if not isinstance(iss, str) or not policy.issuer_kind(iss):
        return None, {}
    issuer = normalise_issuer(iss)
    if args.jwks:
        try:
            load_jwks_file(args.jwks, issuer)  # the keys must be usable
            data = json.loads(args.jwks.read_bytes())
        except (KeyUnavailable, OSError, ValueError) as e:
            raise UsageError(f"cannot use {args.jwks}: {e}") from None
        if "keys" not in data:
            data = {normalise_issuer(k): v for k, v in data.items()}[issuer]
        return issuer, data
    store = KeyStore(connect_timeout=args.timeout, request_timeout=args.timeout)
    try:
        return issuer, asyncio.run(store.fetch_jwks(issuer))
    except KeyUnavailable as e:
        raise UsageError(f"cannot fetch the keys of {issuer}: {e}") from None


def _read_bundle(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise UsageError(f"{path} is larger than {MAX_BUNDLE_BYTES} bytes")
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise UsageError(f"cannot read the bundle {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"{path} is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise UsageError(f"{path} is not a ManaTEE attestation bundle ({BUNDLE_FORMAT})")
    if not isinstance(data.get("token"), str) or not isinstance(data.get("jwks"), dict):
        raise UsageError(f"{path} lacks its token or keys")
    if not isinstance(data.get("policy"), dict):
        raise UsageError(f"{path} lacks its policy")
    try:
        Policy.from_json(data["policy"])
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None
    return data


def _print_jwks(args: argparse.Namespace) -> int:
    keys = KeyStore(connect_timeout=args.timeout, request_timeout=args.timeout)
    try:
        jwks = asyncio.run(keys.fetch_jwks(args.issuer))
    except KeyUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NOT_VERIFIED
    print(json.dumps(jwks, indent=1))
    return EXIT_VERIFIED


if __name__ == "__main__":
    sys.exit(main())
