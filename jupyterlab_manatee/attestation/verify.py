"""Verifying an attestation token against an output file, check by check.

Shared by the server's routes and the command line. The checks themselves are pure
(:func:`evaluate`); only :func:`verify_token` waits, for the issuer's keys. Every check is
always listed, in the same order, with ``pass``/``fail``/``n/a`` and a reason, and one
verdict sums them up:

- ``verified``: a production Confidential Space run of *this* deployment (pinned project
  and TEE service account) and of *this* job, every check passes;
- ``verified (token expired)``: the same, but the token is past its one-hour ``exp``
  (expected for any later check; it does not undo the proof);
- ``local run, no hardware TEE``: signed by a configured local issuer, output and job
  match, but no TEE vouches for the platform;
- ``mock backend, nothing attested``: the upstream mock token, whose nonce matches;
- ``not verified``: anything failed, or could not be checked.

Fail closed: Google signs every customer's Confidential Space tokens with the same keys, so
a signature, a platform and a nonce prove nothing about *whose* deployment ran the job. The
deployment pins (project, TEE service accounts, image repository) and the job's identity
(creator as this server computes it, uuid from this server's record) are checked on every
signed token; a pin that is not set, or a job that cannot be identified, fails its check.

Over 500 lines because the checks are one ordered list that one verdict sums up, with
the fail-closed defaults beside them: split, the order and the defaults would be spread
over modules (the module is also one mutation-testing target, scored whole).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from google.auth import crypt

from ..remote.job_uuid import CANONICAL_FORM, canonical_uuid
from .files import open_regular
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
    "project_id",
    "service_account",
    "image",
    "image_digest",
    "job",
    "instance_name",
    "issued_at",
    "expiry",
)
PLATFORM_CHECKS = ("swname", "dbgstat", "support_attributes", "secboot", "hwmodel")
BINDING_CHECKS = ("project_id", "service_account", "image", "image_digest")

PRODUCTION_SWNAME = "CONFIDENTIAL_SPACE"
PRODUCTION_DBGSTAT = "disabled-since-boot"
STABLE = "STABLE"
CHUNK = 1024 * 1024

# An image reference as the OCI distribution spec writes it (reference.go's grammar), read
# whole: ``[domain[:port]/]path-component(/path-component)*[:tag][@digest]``. Only a
# reference that matches all of it is compared, so no tag, digest or odd character can
# move where the name ends (``repo/alice-<u>@sha256:x/y`` is not an image named ``y``).
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}"
_IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)


@dataclass(frozen=True)
class Policy:
    """Whom to trust and what to expect (the ``ManateeConfig`` traits, or CLI options)."""

    trusted_issuers: tuple[str, ...] = (GOOGLE_ISSUER,)
    local_issuers: tuple[str, ...] = ()
    audience: str = DEFAULT_AUDIENCE
    hwmodels: tuple[str, ...] = DEFAULT_HWMODELS
    clock_skew: float = DEFAULT_CLOCK_SKEW
    #: The deployment: the GCP project and TEE service accounts its VMs run as, and
    #: (optionally) the repository its images are pushed to. Unset pins fail closed.
    project_id: str | None = None
    service_accounts: tuple[str, ...] = ()
    image_repository: str | None = None

    @classmethod
    def from_config(cls, config: Any) -> Policy:
        return cls(
            trusted_issuers=tuple(config.trusted_issuers),
            local_issuers=tuple(config.local_issuers),
            audience=config.audience,
            hwmodels=tuple(config.hwmodel),
            clock_skew=config.clock_skew,
            project_id=config.project_id or None,
            service_accounts=tuple(config.tee_service_accounts),
            image_repository=config.image_repository or None,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: Any) -> Policy:
        """A policy saved by :meth:`to_json` (in a bundle); raises ValueError if unusable."""
        if not isinstance(data, Mapping):
            raise ValueError("the policy is not a JSON object")
        lists = ("trusted_issuers", "local_issuers", "hwmodels", "service_accounts")
        texts = ("audience", "project_id", "image_repository")
        values: dict[str, Any] = {}
        for name in lists:
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"the policy's {name} is not a list of strings")
            values[name] = tuple(value)
        for name in texts:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"the policy's {name} is not a string")
            values[name] = value
        skew = data.get("clock_skew", DEFAULT_CLOCK_SKEW)
        if isinstance(skew, bool) or not isinstance(skew, int | float) or not skew >= 0:
            raise ValueError("the policy's clock_skew is not a number of seconds")
        values["audience"] = values["audience"] or DEFAULT_AUDIENCE
        return cls(clock_skew=float(skew), **values)

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
    """The job the output belongs to, as this side establishes it.

    ``creator`` is the one this server computes for the logged-in user, ``uuid`` this
    server's record of its submission when there is one (else the API's, or a saved
    file's); ``problem`` says why the job is not identified (missing from the list, another
    creator's, a uuid that differs from the record); ``source`` says where each fact came
    from. A job that is not identified fails the ``job`` check, never "n/a", and so does a
    uuid that is not canonical (see :mod:`..job_uuid`), wherever it came from.
    """

    id: int | None = None
    uuid: str | None = None
    creator: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    problem: str | None = None
    source: str | None = None

    @property
    def unidentified(self) -> str | None:
        """Why the job is not identified ("job not identified: ..."), None when it is."""
        if self.problem is not None:
            return self.problem
        if not self.creator or not self.uuid:
            return NO_JOB
        if canonical_uuid(self.uuid) is None:
            return (
                f"job not identified: the uuid {self.uuid!r} is not a canonical job uuid "
                f"({CANONICAL_FORM})"
            )
        return None

    @property
    def identified(self) -> bool:
        return self.unidentified is None

    @property
    def instance_name(self) -> str | None:
        """The TEE VM's name for this job, ``<creator>-<uuid>``; None unless identified."""
        return f"{self.creator}-{self.uuid}" if self.identified else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobFacts:
        """Tolerant of missing or ill-typed fields (they become unknown)."""
        if not isinstance(data, Mapping):
            return cls(problem=NO_JOB)
        text = {
            k: data.get(k) if isinstance(data.get(k), str) else None
            for k in ("uuid", "creator", "created_at", "updated_at", "problem", "source")
        }
        job_id = data.get("id")
        return cls(
            id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None, **text
        )


NO_JOB = "job not identified: no creator and uuid to compare with"


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
    checks += _binding_checks(claims, policy, job)
    checks.append(_job_check(job))
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
        f"Confidential Space TEE ({claims.get('hwmodel')}) of project {policy.project_id}."
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


def _binding_checks(claims: dict[str, Any], policy: Policy, job: JobFacts) -> list[Check]:
    """Whose deployment ran it: project, service account, and an image built for this job."""
    project = _dig(claims, "submods", "gce", "project_id")
    if not policy.project_id:
        project_check = Check(
            "project_id",
            FAIL,
            f"no deployment project is pinned, so {project!r} proves nothing: set "
            "c.ManateeConfig.project_id (MANATEE_PROJECT_ID, --project-id)",
        )
    elif project == policy.project_id:
        project_check = Check("project_id", PASS, f"ran in the pinned project {project}")
    else:
        project_check = Check(
            "project_id",
            FAIL,
            f"ran in project {project!r}, not the pinned {policy.project_id!r}: another "
            "deployment's VM",
        )

    accounts = claims.get("google_service_accounts")
    listed = [a for a in accounts if isinstance(a, str)] if isinstance(accounts, list) else []
    if not policy.service_accounts:
        account_check = Check(
            "service_account",
            FAIL,
            "no TEE service account is pinned: set c.ManateeConfig.tee_service_accounts "
            "(MANATEE_TEE_SERVICE_ACCOUNTS, --service-account)",
        )
    elif not listed:
        account_check = Check(
            "service_account", FAIL, "the token has no google_service_accounts claim"
        )
    elif matched := [a for a in listed if a in policy.service_accounts]:
        account_check = Check("service_account", PASS, f"ran as the pinned {matched[0]}")
    else:
        account_check = Check(
            "service_account",
            FAIL,
            f"ran as {', '.join(listed)}, none of the pinned {', '.join(policy.service_accounts)}",
        )
    return [project_check, account_check, *_image_checks(claims, policy, job)]


def _image_checks(claims: dict[str, Any], policy: Policy, job: JobFacts) -> list[Check]:
    reference = _dig(claims, "submods", "container", "image_reference")
    digest = _dig(claims, "submods", "container", "image_digest")
    if not isinstance(reference, str) or not reference:
        missing = "the token has no submods.container.image_reference"
        return [Check("image", FAIL, missing), Check("image_digest", FAIL, missing)]
    parts = _IMAGE_REFERENCE.fullmatch(reference)
    if parts is None:
        unreadable = f"{reference!r} is not a well-formed image reference"
        if job.instance_name is None:
            unreadable = f"job not identified, and {unreadable}"
        return [Check("image", FAIL, unreadable), Check("image_digest", FAIL, unreadable)]
    # the last path segment is the image's name; what comes before it, its repository
    repository, _, name = parts["name"].rpartition("/")
    pinned_repository = (policy.image_repository or "").rstrip("/")
    expected = job.instance_name
    if expected is None:
        image = Check("image", FAIL, f"job not identified, so {reference!r} is not compared")
    elif name != expected:
        image = Check(
            "image",
            FAIL,
            f"the image {reference!r} was built for {name!r}, not this job ({expected}): "
            "another job's image",
        )
    elif pinned_repository and repository != pinned_repository:
        image = Check(
            "image",
            FAIL,
            f"the image {reference!r} is not in the pinned repository {pinned_repository} "
            f"(its repository is {repository!r})",
        )
    else:
        where = f" in {repository}" if pinned_repository else ""
        image = Check("image", PASS, f"the image {name}{where} was built for this job")
    pinned_digest = parts["digest"]
    if pinned_digest is None:
        digest_check = Check(
            "image_digest", NA, f"the image is named by tag; its digest is {digest!r}"
        )
    elif pinned_digest == digest:
        digest_check = Check("image_digest", PASS, f"the image reference's digest is {digest}")
    else:
        digest_check = Check(
            "image_digest",
            FAIL,
            f"the image reference carries {pinned_digest!r} but the container ran {digest!r}",
        )
    return [image, digest_check]


def _job_check(job: JobFacts) -> Check:
    source = f" ({job.source})" if job.source else ""
    unidentified = job.unidentified
    if unidentified is not None:
        return Check("job", FAIL, f"{unidentified}{source}")
    number = f"job #{job.id} " if job.id is not None else "job "
    return Check("job", PASS, f"{number}{job.uuid} of {job.creator}{source}")


def _instance_check(claims: dict[str, Any], job: JobFacts) -> Check:
    instance = _dig(claims, "submods", "gce", "instance_name")
    expected = job.instance_name
    if expected is None:
        return Check(
            "instance_name",
            FAIL,
            f"job not identified, so the VM name {instance!r} is not compared",
        )
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
        return Check(
            "issued_at", FAIL, f"issued {issued}; the job's times are not known to compare"
        )
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
    with open_regular(Path(path)) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
