"""Verifying an attestation token against an output file, check by check.

Shared by the server's routes and the command line. The checks themselves are pure
(:func:`evaluate`); only :func:`verify_token` waits, for the issuer's keys. Every check is
always listed, in the same order, with ``pass``/``fail``/``n/a`` and a reason, and one
verdict sums them up:

- ``verified``: a production Confidential Space run, every check passes;
- ``verified (token expired)``: the same, but the token is past its one-hour ``exp``
  (expected for any later check; it does not undo the proof);
- ``local run, no hardware TEE``: signed by a configured local issuer, output and job
  match, but no TEE vouches for the platform;
- ``mock backend, nothing attested``: the upstream mock token, whose nonce matches;
- ``not verified``: anything failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from google.auth import crypt

from .keys import KeyStore, KeyUnavailable, UnknownKey, normalise_issuer
from .token import ParsedToken, parse_token

GOOGLE_ISSUER = "https://confidentialcomputing.googleapis.com"
DEFAULT_AUDIENCE = "https://research.tiktok.com/"
DEFAULT_HWMODELS = ("GCP_INTEL_TDX",)
DEFAULT_CLOCK_SKEW = 300.0

VERIFIED = "verified"
VERIFIED_EXPIRED = "verified (token expired)"
LOCAL_RUN = "local run, no hardware TEE"
MOCK_BACKEND = "mock backend, nothing attested"
NOT_VERIFIED = "not verified"
VERDICTS = (VERIFIED, VERIFIED_EXPIRED, LOCAL_RUN, MOCK_BACKEND, NOT_VERIFIED)

PASS, FAIL, NA = "pass", "fail", "n/a"
CHECK_NAMES = (
    "token",
    "algorithm",
    "issuer",
    "signature",
    "audience",
    "nonce",
    "swname",
    "dbgstat",
    "support_attributes",
    "secboot",
    "hwmodel",
    "instance_name",
    "issued_at",
    "expiry",
)
PLATFORM_CHECKS = ("swname", "dbgstat", "support_attributes", "secboot", "hwmodel")

PRODUCTION_SWNAME = "CONFIDENTIAL_SPACE"
PRODUCTION_DBGSTAT = "disabled-since-boot"
STABLE = "STABLE"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Policy:
    """Whom to trust and what to expect (the ``ManateeConfig`` traits, or CLI options)."""

    trusted_issuers: tuple[str, ...] = (GOOGLE_ISSUER,)
    local_issuers: tuple[str, ...] = ()
    audience: str = DEFAULT_AUDIENCE
    hwmodels: tuple[str, ...] = DEFAULT_HWMODELS
    clock_skew: float = DEFAULT_CLOCK_SKEW

    @classmethod
    def from_config(cls, config: Any) -> Policy:
        return cls(
            trusted_issuers=tuple(config.trusted_issuers),
            local_issuers=tuple(config.local_issuers),
            audience=config.audience,
            hwmodels=tuple(config.hwmodel),
            clock_skew=config.clock_skew,
        )

    def issuer_kind(self, issuer: str) -> str | None:
        """ "local", "production" or None (untrusted); listed as both counts as local."""
        issuer = normalise_issuer(issuer)
        if issuer in {normalise_issuer(i) for i in self.local_issuers}:
            return "local"
        if issuer in {normalise_issuer(i) for i in self.trusted_issuers}:
            return "production"
        return None


@dataclass(frozen=True)
class JobFacts:
    """What the API says about the job the output belongs to (any part may be unknown)."""

    id: int | None = None
    uuid: str | None = None
    creator: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def instance_name(self) -> str | None:
        """The TEE VM's name for this job: ``<creator>-<uuid>``."""
        return f"{self.creator}-{self.uuid}" if self.creator and self.uuid else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobFacts:
        """Tolerant of missing or ill-typed fields (they become unknown)."""
        if not isinstance(data, Mapping):
            return cls()
        text = {
            k: data.get(k) if isinstance(data.get(k), str) else None
            for k in ("uuid", "creator", "created_at", "updated_at")
        }
        job_id = data.get("id")
        return cls(
            id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None, **text
        )


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    reason: str


@dataclass(frozen=True)
class Verification:
    """The reply shape the shield panel renders (``to_json``)."""

    verdict: str
    verified: bool
    summary: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "verified": self.verified,
            "summary": self.summary,
            "checks": [asdict(c) for c in self.checks],
        }


async def verify_token(
    token: str,
    output_md5: str | None,
    policy: Policy,
    keys: KeyStore,
    *,
    job: JobFacts | None = None,
    output_problem: str = "",
    now: float | None = None,
) -> Verification:
    """Verify ``token`` for an output whose MD5 hex is ``output_md5`` (None: unreadable).

    Keys are looked up only when the token is an RS256 JWT from a trusted issuer.
    """
    parsed = parse_token(token)
    key: RSAPublicKey | None = None
    key_problem = ""
    if parsed.kind == "jwt" and parsed.header.get("alg") == "RS256":
        iss, kid = parsed.claims.get("iss"), parsed.header.get("kid")
        if isinstance(iss, str) and policy.issuer_kind(iss) and isinstance(kid, str) and kid:
            try:
                key = await keys.key(iss, kid)
            except UnknownKey as e:
                key_problem = f"unknown key: {e}"
            except KeyUnavailable as e:
                key_problem = f"the issuer's keys are unavailable: {e}"
    return evaluate(
        parsed,
        output_md5,
        policy,
        key=key,
        key_problem=key_problem,
        job=job,
        output_problem=output_problem,
        now=now,
    )


def evaluate(
    parsed: ParsedToken,
    output_md5: str | None,
    policy: Policy,
    *,
    key: RSAPublicKey | None = None,
    key_problem: str = "",
    job: JobFacts | None = None,
    output_problem: str = "",
    now: float | None = None,
) -> Verification:
    """Every check and the verdict, given the key (or why there is none)."""
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    if parsed.kind == "mock":
        return _mock(parsed, output_md5, output_problem)
    if parsed.kind != "jwt":
        reason = f"the token cannot be read: {parsed.problem}"
        checks = [Check("token", FAIL, reason)]
        checks += [Check(n, NA, "not checked: the token cannot be read") for n in CHECK_NAMES[1:]]
        return _verdict(checks, NOT_VERIFIED, "Not verified: " + reason + ".")
    job = job or JobFacts()
    return _jwt(parsed, output_md5, policy, key, key_problem, job, output_problem, now)


def _mock(parsed: ParsedToken, output_md5: str | None, output_problem: str) -> Verification:
    checks = [Check("token", PASS, "the upstream mock backend's plain-text token (not signed)")]
    for name in CHECK_NAMES[1:]:
        if name == "nonce":
            checks.append(_nonce_check(parsed.nonce, output_md5, output_problem))
        else:
            checks.append(Check(name, NA, "mock backend: nothing is signed or attested"))
    if checks[CHECK_NAMES.index("nonce")].status == PASS:
        return _verdict(
            checks,
            MOCK_BACKEND,
            "The mock backend's token: its nonce matches the output, but nothing is signed "
            "and no TEE ran, so nothing is attested.",
        )
    return _verdict(checks, NOT_VERIFIED, "Not verified: " + _failures(checks) + ".")


def _jwt(
    parsed: ParsedToken,
    output_md5: str | None,
    policy: Policy,
    key: RSAPublicKey | None,
    key_problem: str,
    job: JobFacts,
    output_problem: str,
    now: float,
) -> Verification:
    claims, header = parsed.claims, parsed.header
    alg = header.get("alg")
    iss = claims.get("iss")
    kind = policy.issuer_kind(iss) if isinstance(iss, str) else None
    checks = [Check("token", PASS, "a JWT with readable header and claims")]

    if alg == "RS256":
        checks.append(Check("algorithm", PASS, "RS256"))
    else:
        checks.append(Check("algorithm", FAIL, f"alg is {alg!r}; only RS256 is accepted"))

    if not isinstance(iss, str) or not iss:
        checks.append(Check("issuer", FAIL, "the token has no iss claim"))
    elif kind == "production":
        checks.append(Check("issuer", PASS, f"{iss} is a trusted attestation service"))
    elif kind == "local":
        checks.append(
            Check("issuer", PASS, f"{iss} is a configured local issuer (no hardware TEE)")
        )
    else:
        trusted = ", ".join(policy.trusted_issuers + policy.local_issuers) or "none"
        reason = f"{iss!r} is not a trusted issuer (trusted: {trusted})"
        checks.append(Check("issuer", FAIL, reason))

    checks.append(_signature_check(parsed, alg, iss, kind, key, key_problem))
    checks.append(_audience_check(claims.get("aud"), policy.audience))
    checks.append(_nonce_check(claims.get("eat_nonce"), output_md5, output_problem))
    if kind == "local":
        checks += [Check(n, NA, LOCAL_RUN) for n in PLATFORM_CHECKS]
    else:
        checks += _platform_checks(claims, policy)
    checks.append(_instance_check(claims, job))
    checks.append(_issued_check(claims.get("iat"), job, policy.clock_skew, now))
    expiry, expired_at = _expiry_check(claims, policy.clock_skew, now)
    checks.append(expiry)

    if any(c.status == FAIL for c in checks):
        return _verdict(checks, NOT_VERIFIED, "Not verified: " + _failures(checks) + ".")
    instance = _dig(claims, "submods", "gce", "instance_name")
    run = f"job {instance}" if isinstance(instance, str) and instance else "this run"
    if kind == "local":
        return _verdict(
            checks,
            LOCAL_RUN,
            f"Signed by the local backend {iss} for {run}, and the output matches; the run "
            "had no hardware TEE, so nothing about the platform is proven.",
        )
    summary = (
        f"The output is the one {iss} attested for {run}, executed in a production "
        f"Confidential Space TEE ({claims.get('hwmodel')})."
    )
    if expired_at is not None:
        summary += (
            f" The token expired {expired_at} (tokens live one hour); that does not undo the proof."
        )
        return _verdict(checks, VERIFIED_EXPIRED, summary, verified=True)
    return _verdict(checks, VERIFIED, summary, verified=True)


def _signature_check(
    parsed: ParsedToken,
    alg: Any,
    iss: Any,
    kind: str | None,
    key: RSAPublicKey | None,
    key_problem: str,
) -> Check:
    if alg != "RS256":
        return Check("signature", NA, f"not checked: alg {alg!r} is refused")
    if kind is None:
        return Check("signature", NA, "not checked: keys are only fetched for trusted issuers")
    kid = parsed.header.get("kid")
    if not isinstance(kid, str) or not kid:
        return Check("signature", FAIL, "the token names no signing key (kid)")
    if key is None:
        return Check("signature", FAIL, key_problem or f"no key {kid!r} of {iss}")
    if crypt.RSAVerifier(key).verify(parsed.signed_section, parsed.signature):
        return Check("signature", PASS, f"RS256 signature by key {kid} of {iss}")
    return Check(
        "signature",
        FAIL,
        f"the signature does not match key {kid} of {iss}: the token was altered or "
        "not signed by this issuer",
    )


def _audience_check(aud: Any, expected: str) -> Check:
    values = aud if isinstance(aud, list) else [aud]
    if aud is None:
        return Check("audience", FAIL, "the token has no aud claim")
    if expected in values:
        return Check("audience", PASS, f"aud is {expected}")
    return Check("audience", FAIL, f"aud is {aud!r}, expected {expected!r}")


def _nonce_check(nonce: Any, output_md5: str | None, output_problem: str) -> Check:
    if output_md5 is None:
        return Check("nonce", FAIL, f"the output could not be read: {output_problem or 'unknown'}")
    nonces = nonce if isinstance(nonce, list) else [nonce]
    if nonce is None or not nonces:
        return Check("nonce", FAIL, "the token has no eat_nonce claim")
    if output_md5 in nonces:
        return Check("nonce", PASS, f"the output's MD5 {output_md5} is the token's eat_nonce")
    shown = nonce if isinstance(nonce, str) else ", ".join(map(str, nonces))
    return Check(
        "nonce",
        FAIL,
        f"the output's MD5 is {output_md5} but the token's eat_nonce is {shown}: this is not "
        "the attested output (changed, or from another run)",
    )


def _platform_checks(claims: dict[str, Any], policy: Policy) -> list[Check]:
    swname, dbgstat = claims.get("swname"), claims.get("dbgstat")
    support = _dig(claims, "submods", "confidential_space", "support_attributes")
    secboot, hwmodel = claims.get("secboot"), claims.get("hwmodel")
    checks = [
        Check("swname", PASS, f"swname is {PRODUCTION_SWNAME}")
        if swname == PRODUCTION_SWNAME
        else Check("swname", FAIL, f"swname is {swname!r}, not {PRODUCTION_SWNAME}"),
        Check("dbgstat", PASS, f"dbgstat is {PRODUCTION_DBGSTAT} (a production image)")
        if dbgstat == PRODUCTION_DBGSTAT
        else Check(
            "dbgstat",
            FAIL,
            f"dbgstat is {dbgstat!r}: a debug image, whose operator can look inside the run",
        ),
    ]
    if isinstance(support, list) and STABLE in support:
        checks.append(Check("support_attributes", PASS, f"support_attributes has {STABLE}"))
    else:
        checks.append(
            Check(
                "support_attributes",
                FAIL,
                f"support_attributes is {support!r}, without {STABLE}: not a supported "
                "production image",
            )
        )
    if secboot is True:
        checks.append(Check("secboot", PASS, "secure boot was on"))
    else:
        checks.append(Check("secboot", FAIL, f"secboot is {secboot!r}, not true"))
    if isinstance(hwmodel, str) and hwmodel in policy.hwmodels:
        checks.append(Check("hwmodel", PASS, f"hwmodel is {hwmodel}"))
    else:
        allowed = ", ".join(policy.hwmodels) or "none"
        checks.append(Check("hwmodel", FAIL, f"hwmodel is {hwmodel!r}, expected one of {allowed}"))
    return checks


def _instance_check(claims: dict[str, Any], job: JobFacts) -> Check:
    instance = _dig(claims, "submods", "gce", "instance_name")
    expected = job.instance_name
    if expected is None:
        return Check("instance_name", NA, f"the job is not known, so {instance!r} is not compared")
    if instance == expected:
        return Check("instance_name", PASS, f"the TEE VM {instance} ran this job")
    return Check(
        "instance_name",
        FAIL,
        f"the token names the VM {instance!r}, but this job's is {expected!r}: another job's token",
    )


def _issued_check(iat: Any, job: JobFacts, skew: float, now: float) -> Check:
    issued = _time(iat)
    if issued is None:
        return Check("issued_at", FAIL, "the token has no usable iat claim")
    if iat > now + skew:
        return Check("issued_at", FAIL, f"issued {issued}, in the future")
    start, end = _job_time(job.created_at), _job_time(job.updated_at)
    if start is None or end is None:
        return Check("issued_at", NA, f"issued {issued}; the job's times are not known")
    window = f"{_time(start)} to {_time(end)}"
    if start - skew <= iat <= end + skew:
        return Check("issued_at", PASS, f"issued {issued}, during the job ({window})")
    return Check(
        "issued_at", FAIL, f"issued {issued}, outside the job ({window}): a token of another run"
    )


def _expiry_check(claims: dict[str, Any], skew: float, now: float) -> tuple[Check, str | None]:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    expires = _time(exp)
    if expires is None:
        return Check("expiry", FAIL, "the token has no usable exp claim"), None
    if nbf is not None:
        if _time(nbf) is None:
            return Check("expiry", FAIL, "the token's nbf claim is not a time"), None
        if nbf > now + skew:
            return Check("expiry", FAIL, f"not valid before {_time(nbf)}"), None
    if exp <= now:
        reason = f"expired since {expires}; tokens live one hour, so this is expected later on"
        return Check("expiry", NA, reason), expires
    return Check("expiry", PASS, f"valid until {expires}"), None


def _verdict(
    checks: list[Check], verdict: str, summary: str, *, verified: bool = False
) -> Verification:
    return Verification(verdict, verified, summary, tuple(checks))


def _failures(checks: Iterable[Check]) -> str:
    return "; ".join(f"{c.name}: {c.reason}" for c in checks if c.status == FAIL)


def _dig(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _time(value: Any) -> str | None:
    """A claim's seconds as ``YYYY-MM-DD HH:MM:SS UTC``; None when it is not a time."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return None


def _job_time(value: str | None) -> float | None:
    """The API's ``YYYY-MM-DD HH:MM:SS`` (no zone: UTC) as seconds; None if unusable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def file_md5(path: str | Path) -> str:
    """MD5 hex of a file's bytes as stored (blocking: call it in a thread)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
