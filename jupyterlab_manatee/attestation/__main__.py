"""Command line: ``python -m jupyterlab_manatee.attestation verify OUTPUT TOKEN [--jwks FILE]``.

Prints every check and the verdict; exits 0 only when the output is verified (a
production TEE run, its token possibly expired), 1 otherwise, 2 on unusable arguments.
TOKEN is the token text in a file, ``-`` for stdin, or a saved ``*.attestation.json``
(whose job facts are then used too). ``jwks ISSUER`` prints an issuer's published keys,
to keep for ``--jwks`` (offline verification).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .keys import KeyStore, KeyUnavailable
from .record import read_record
from .verify import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLOCK_SKEW,
    DEFAULT_HWMODELS,
    GOOGLE_ISSUER,
    JobFacts,
    Policy,
    Verification,
    file_md5,
    verify_token,
)

EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jupyterlab_manatee.attestation",
        description="Verify that an output file is the one a ManaTEE attestation token proves.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify OUTPUT against TOKEN")
    verify.add_argument("output", type=Path, help="the output file exactly as downloaded")
    verify.add_argument(
        "token", help="file with the token text, '-' for stdin, or a saved *.attestation.json"
    )
    verify.add_argument("--jwks", type=Path, help="saved JWKS file: verify offline with its keys")
    verify.add_argument(
        "--issuer",
        action="append",
        help=f"trusted production issuer (repeatable; default {GOOGLE_ISSUER})",
    )
    verify.add_argument(
        "--local-issuer",
        action="append",
        default=[],
        help="trusted local issuer, reported as 'local run, no hardware TEE' (repeatable)",
    )
    verify.add_argument("--audience", default=DEFAULT_AUDIENCE, help="expected aud")
    verify.add_argument(
        "--hwmodel",
        action="append",
        help=f"accepted hwmodel (repeatable; default {', '.join(DEFAULT_HWMODELS)})",
    )
    verify.add_argument("--creator", help="the job's creator (with --uuid: checks instance_name)")
    verify.add_argument("--uuid", help="the job's uuid")
    verify.add_argument("--created-at", help="the job's created_at, 'YYYY-MM-DD HH:MM:SS' UTC")
    verify.add_argument("--updated-at", help="the job's updated_at, 'YYYY-MM-DD HH:MM:SS' UTC")
    verify.add_argument("--clock-skew", type=float, default=DEFAULT_CLOCK_SKEW, help="seconds")
    verify.add_argument("--timeout", type=float, default=30.0, help="seconds per key fetch")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    keys = commands.add_parser("jwks", help="print an issuer's published keys (JWKS)")
    keys.add_argument("issuer", help=f"e.g. {GOOGLE_ISSUER}")
    keys.add_argument("--timeout", type=float, default=30.0, help="seconds per fetch")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "jwks":
            return _print_jwks(args)
        return _verify(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


class UsageError(Exception):
    """An argument that cannot be used (unreadable file, bad record)."""


def _verify(args: argparse.Namespace) -> int:
    token, job = _read_token(args.token)
    job = JobFacts(
        id=job.id,
        uuid=args.uuid or job.uuid,
        creator=args.creator or job.creator,
        created_at=args.created_at or job.created_at,
        updated_at=args.updated_at or job.updated_at,
    )
    try:
        md5 = file_md5(args.output)
    except OSError as e:
        raise UsageError(f"cannot read the output {args.output}: {e.strerror or e}") from None
    policy = Policy(
        trusted_issuers=tuple(args.issuer or (GOOGLE_ISSUER,)),
        local_issuers=tuple(args.local_issuer),
        audience=args.audience,
        hwmodels=tuple(args.hwmodel or DEFAULT_HWMODELS),
        clock_skew=args.clock_skew,
    )
    keys = KeyStore(jwks_file=args.jwks, connect_timeout=args.timeout, request_timeout=args.timeout)
    result = asyncio.run(verify_token(token, md5, policy, keys, job=job))
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print(render(result))
    return EXIT_VERIFIED if result.verified else EXIT_NOT_VERIFIED


def _read_token(source: str) -> tuple[str, JobFacts]:
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
    return text, JobFacts()


def render(result: Verification) -> str:
    """The verdict, the summary, then one line per check."""
    width = max(len(c.name) for c in result.checks)
    lines = [f"verdict: {result.verdict}", result.summary, ""]
    lines += [f"  {c.status:<4}  {c.name:<{width}}  {c.reason}" for c in result.checks]
    return "\n".join(lines)


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
