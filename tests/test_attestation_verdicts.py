"""What the shield panel and the command line show, word for word: each verdict's summary,
and the reason of every check outside the job binding (image, image_digest, job and
instance_name are pinned in test_attestation_verify.py), for the good token and for each
way a check fails or is not applicable."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from jupyterlab_manatee.attestation import (
    LOCAL_RUN,
    MOCK_BACKEND,
    NOT_VERIFIED,
    VERIFIED,
    VERIFIED_EXPIRED,
    JobFacts,
    KeyStore,
    evaluate,
    parse_token,
    verify_token,
)
from jupyterlab_manatee.attestation.verify import Check, Verification, file_md5
from tests.attestation_support import (
    AUDIENCE,
    CHECK_NAMES,
    CREATOR,
    JOB_UUID,
    OUTPUT,
    PROJECT,
    SERVICE_ACCOUNT,
    Issuer,
    b64url,
    issuer_fixture,  # noqa: F401 - the "issuer" fixture
    job_around,
    md5,
    other_signer,
    pinned,
    production_claims,
)

#: 2026-01-01 00:00:00 UTC: the token is issued then, the job ran 23:50:00 to 00:00:20.
ISSUED = 1_767_225_600
NOW = ISSUED + 60
MD5 = md5(OUTPUT)
JOB_BOUND = ("image", "image_digest", "job", "instance_name")


async def verified(
    issuer: Issuer,
    change: Callable[[dict[str, Any]], None] | None = None,
    *,
    now: float = NOW,
    job: JobFacts | None = None,
    **policy: Any,
) -> Verification:
    claims = production_claims(issuer.url, MD5, ISSUED)
    if change is not None:
        change(claims)
    return await verify_token(
        issuer.mint(claims),
        MD5,
        pinned(issuer, **policy),
        KeyStore(),
        job=job or job_around(ISSUED),
        now=now,
    )


def good_checks(issuer: Issuer) -> dict[str, tuple[str, str]]:
    """Every check of the good token but the job-bound ones: (status, reason)."""
    return {
        "token": ("pass", "a JWT with readable header and claims"),
        "algorithm": ("pass", "RS256"),
        "issuer": ("pass", f"{issuer.url} is a trusted attestation service"),
        "signature": ("pass", f"RS256 signature by key {issuer.kid} of {issuer.url}"),
        "audience": ("pass", f"aud is {AUDIENCE}"),
        "nonce": ("pass", f"the output's MD5 {MD5} is the token's eat_nonce"),
        "swname": ("pass", "swname is CONFIDENTIAL_SPACE"),
        "dbgstat": ("pass", "dbgstat is disabled-since-boot (a production image)"),
        "support_attributes": ("pass", "support_attributes has STABLE"),
        "secboot": ("pass", "secure boot was on"),
        "hwmodel": ("pass", "hwmodel is GCP_INTEL_TDX"),
        "project_id": ("pass", f"ran in the pinned project {PROJECT}"),
        "service_account": ("pass", f"ran as the pinned {SERVICE_ACCOUNT}"),
        "issued_at": (
            "pass",
            "issued 2026-01-01 00:00:00 UTC, during the job "
            "(2025-12-31 23:50:00 UTC to 2026-01-01 00:00:20 UTC)",
        ),
        "expiry": ("pass", "valid until 2026-01-01 01:00:00 UTC"),
    }


def unbound(result: Verification) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.reason) for c in result.checks if c.name not in JOB_BOUND}


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            claims = claims[part]
        claims[last] = value

    return change


def deleting(path: str) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            claims = claims[part]
        del claims[last]

    return change


# -- the verdicts' summaries -----------------------------------------------------------------
async def test_the_good_token_is_verified_with_every_reason(issuer):
    result = await verified(issuer)
    assert (result.verdict, result.verified) == (VERIFIED, True)
    assert result.summary == (
        f"The output is the one {issuer.url} attested for job {CREATOR}-{JOB_UUID}, executed "
        f"in a production Confidential Space TEE (GCP_INTEL_TDX) of project {PROJECT}."
    )
    assert unbound(result) == good_checks(issuer)
    assert [c.name for c in result.checks] == list(CHECK_NAMES)


async def test_an_expired_good_token_stays_verified_saying_when_it_expired(issuer):
    result = await verified(issuer, now=ISSUED + 7200)
    assert (result.verdict, result.verified) == (VERIFIED_EXPIRED, True)
    assert result.summary.endswith(
        f"of project {PROJECT}. The token expired 2026-01-01 01:00:00 UTC (tokens live one "
        "hour); that does not undo the proof."
    )
    assert result.check("expiry") == Check(
        "expiry",
        "n/a",
        "expired since 2026-01-01 01:00:00 UTC; tokens live one hour, so this is expected later on",
    )


async def test_a_local_issuers_token_is_a_local_run_saying_nothing_is_proven(issuer):
    result = await verified(issuer, trusted_issuers=(), local_issuers=(issuer.url,))
    assert (result.verdict, result.verified) == (LOCAL_RUN, False)
    assert result.summary == (
        f"Signed by the local backend {issuer.url} for job {CREATOR}-{JOB_UUID}, and the "
        "output matches; the run had no hardware TEE, so nothing about the platform is proven."
    )
    assert result.check("issuer") == Check(
        "issuer", "pass", f"{issuer.url} is a configured local issuer (no hardware TEE)"
    )


async def test_failures_are_summed_up_in_check_order_each_with_its_reason(issuer):
    def two_failures(claims: dict[str, Any]) -> None:
        claims.update(secboot=1, hwmodel="GCP_AMD_SEV")

    result = await verified(issuer, two_failures)
    assert (result.verdict, result.verified) == (NOT_VERIFIED, False)
    assert result.summary == (
        "Not verified: secboot: secboot is 1, not true; "
        "hwmodel: hwmodel is 'GCP_AMD_SEV', expected one of GCP_INTEL_TDX."
    )


def test_an_unreadable_token_fails_and_checks_nothing_else():
    result = evaluate(parse_token("not a token"), MD5, pinned_nothing(), now=NOW)
    reason = result.check("token").reason
    assert reason.startswith("the token cannot be read: ")
    assert result.to_json() == {
        "verdict": NOT_VERIFIED,
        "verified": False,
        "summary": f"Not verified: {reason}.",
        "checks": [{"name": "token", "status": "fail", "reason": reason}]
        + [
            {"name": name, "status": "n/a", "reason": "not checked: the token cannot be read"}
            for name in CHECK_NAMES[1:]
        ],
    }


def pinned_nothing():
    from jupyterlab_manatee.attestation import Policy

    return Policy()


# -- the upstream mock backend's token -------------------------------------------------------
MOCK_NA = "mock backend: nothing is signed or attested"


def mock_result(nonce: str, output_md5: str | None, problem: str = "") -> Verification:
    token = parse_token(f"mock tee token with nonce {nonce}")
    return evaluate(token, output_md5, pinned_nothing(), output_problem=problem, now=NOW)


def test_a_mock_token_for_this_output_is_the_mock_verdict_with_every_reason():
    result = mock_result(MD5, MD5)
    assert result.to_json() == {
        "verdict": MOCK_BACKEND,
        "verified": False,
        "summary": "The mock backend's token: its nonce matches the output, but nothing is "
        "signed and no TEE ran, so nothing is attested.",
        "checks": [
            {
                "name": name,
                "status": {"token": "pass", "nonce": "pass"}.get(name, "n/a"),
                "reason": {
                    "token": "the upstream mock backend's plain-text token (not signed)",
                    "nonce": f"the output's MD5 {MD5} is the token's eat_nonce",
                }.get(name, MOCK_NA),
            }
            for name in CHECK_NAMES
        ],
    }


def test_a_mock_token_for_another_output_is_not_verified_saying_why():
    other = md5(b"other")
    result = mock_result(other, MD5)
    reason = (
        f"the output's MD5 is {MD5} but the token's eat_nonce is {other}: this is not the "
        "attested output (changed, or from another run)"
    )
    assert (result.verdict, result.summary) == (NOT_VERIFIED, f"Not verified: nonce: {reason}.")
    assert result.check("nonce") == Check("nonce", "fail", reason)


def test_a_mock_token_of_an_unreadable_output_fails_the_nonce_saying_why():
    result = mock_result(MD5, None, "permission denied")
    assert result.check("nonce") == Check(
        "nonce", "fail", "the output could not be read: permission denied"
    )


def test_an_unreadable_output_without_a_stated_problem_is_unknown():
    result = mock_result(MD5, None)
    assert result.check("nonce").reason == "the output could not be read: unknown"


# -- each failing check, its reason -----------------------------------------------------------
CASES: dict[str, tuple[Callable[[dict[str, Any]], None] | None, dict[str, Any], dict]] = {
    "no aud": (deleting("aud"), {}, {"audience": ("fail", "the token has no aud claim")}),
    "another aud": (
        setting("aud", "https://other.example/"),
        {},
        {
            "audience": (
                "fail",
                "aud is 'https://other.example/', expected 'https://research.tiktok.com/'",
            )
        },
    ),
    "aud list holding ours": (setting("aud", ["x", AUDIENCE]), {}, {}),
    "no eat_nonce": (
        deleting("eat_nonce"),
        {},
        {"nonce": ("fail", "the token has no eat_nonce claim")},
    ),
    "empty eat_nonce list": (
        setting("eat_nonce", []),
        {},
        {"nonce": ("fail", "the token has no eat_nonce claim")},
    ),
    "other nonces": (
        setting("eat_nonce", ["a1", "b2"]),
        {},
        {
            "nonce": (
                "fail",
                f"the output's MD5 is {MD5} but the token's eat_nonce is a1, b2: this is not "
                "the attested output (changed, or from another run)",
            )
        },
    ),
    "project not pinned": (
        None,
        {"project_id": None},
        {
            "project_id": (
                "fail",
                f"no deployment project is pinned, so {PROJECT!r} proves nothing: set "
                "c.ManateeConfig.project_id (MANATEE_PROJECT_ID, --project-id)",
            )
        },
    ),
    "another project": (
        setting("submods.gce.project_id", "someone-else"),
        {},
        {
            "project_id": (
                "fail",
                f"ran in project 'someone-else', not the pinned {PROJECT!r}: another "
                "deployment's VM",
            )
        },
    ),
    "account not pinned": (
        None,
        {"service_accounts": ()},
        {
            "service_account": (
                "fail",
                "no TEE service account is pinned: set c.ManateeConfig.tee_service_accounts "
                "(MANATEE_TEE_SERVICE_ACCOUNTS, --service-account)",
            )
        },
    ),
    "no accounts claim": (
        deleting("google_service_accounts"),
        {},
        {"service_account": ("fail", "the token has no google_service_accounts claim")},
    ),
    "accounts not strings": (
        setting("google_service_accounts", [7, None]),
        {},
        {"service_account": ("fail", "the token has no google_service_accounts claim")},
    ),
    "other accounts": (
        setting("google_service_accounts", ["a@x", "b@x"]),
        {},
        {"service_account": ("fail", f"ran as a@x, b@x, none of the pinned {SERVICE_ACCOUNT}")},
    ),
    "pinned account among others": (
        setting("google_service_accounts", [7, "a@x", SERVICE_ACCOUNT]),
        {},
        {},
    ),
    "no iat": (
        deleting("iat"),
        {},
        {"issued_at": ("fail", "the token has no usable iat claim")},
    ),
    "iat not a time": (
        setting("iat", True),
        {},
        {"issued_at": ("fail", "the token has no usable iat claim")},
    ),
    "iat in the future": (
        setting("iat", NOW + 301),
        {},
        {"issued_at": ("fail", "issued 2026-01-01 00:06:01 UTC, in the future")},
    ),
    "iat within the skew of the job's end": (
        setting("iat", ISSUED + 20 + 300),
        {},
        {
            "issued_at": (
                "pass",
                "issued 2026-01-01 00:05:20 UTC, during the job (2025-12-31 23:50:00 UTC to "
                "2026-01-01 00:00:20 UTC)",
            )
        },
    ),
    "iat before the job": (
        setting("iat", ISSUED - 600 - 301),
        {},
        {
            "issued_at": (
                "fail",
                "issued 2025-12-31 23:44:59 UTC, outside the job (2025-12-31 23:50:00 UTC to "
                "2026-01-01 00:00:20 UTC): a token of another run",
            )
        },
    ),
    "iat within the skew before the job": (
        setting("iat", ISSUED - 600 - 300),
        {},
        {
            "issued_at": (
                "pass",
                "issued 2025-12-31 23:45:00 UTC, during the job (2025-12-31 23:50:00 UTC to "
                "2026-01-01 00:00:20 UTC)",
            )
        },
    ),
    "iat after the job": (
        setting("iat", ISSUED + 20 + 301),
        {"clock_skew": 300.0},
        {
            "issued_at": (
                "fail",
                "issued 2026-01-01 00:05:21 UTC, outside the job (2025-12-31 23:50:00 UTC to "
                "2026-01-01 00:00:20 UTC): a token of another run",
            )
        },
    ),
    "no exp": (deleting("exp"), {}, {"expiry": ("fail", "the token has no usable exp claim")}),
    "exp not a time": (
        setting("exp", "tomorrow"),
        {},
        {"expiry": ("fail", "the token has no usable exp claim")},
    ),
    "nbf not a time": (
        setting("nbf", "now"),
        {},
        {"expiry": ("fail", "the token's nbf claim is not a time")},
    ),
    "nbf in the future": (
        setting("nbf", NOW + 301),
        {},
        {"expiry": ("fail", "not valid before 2026-01-01 00:06:01 UTC")},
    ),
    "nbf within the skew": (setting("nbf", NOW + 300), {}, {}),
    "no nbf": (deleting("nbf"), {}, {}),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_each_way_a_check_fails_says_why(issuer, name):
    change, policy, expected = CASES[name]
    result = await verified(issuer, change, **policy)
    assert unbound(result) == {**good_checks(issuer), **expected}
    failed = any(status == "fail" for status, _ in expected.values())
    assert result.verdict == (NOT_VERIFIED if failed else VERIFIED)


async def test_a_token_naming_no_issuer_fails_the_issuer_and_checks_no_signature(issuer):
    result = await verified(issuer, deleting("iss"))
    assert result.check("issuer") == Check("issuer", "fail", "the token has no iss claim")
    assert result.check("signature") == Check(
        "signature", "n/a", "not checked: keys are only fetched for trusted issuers"
    )


async def test_an_untrusted_issuer_is_named_with_the_trusted_ones(issuer):
    result = await verified(
        issuer, local_issuers=("http://127.0.0.1:1",), trusted_issuers=("https://a.example",)
    )
    assert result.check("issuer") == Check(
        "issuer",
        "fail",
        f"{issuer.url!r} is not a trusted issuer (trusted: https://a.example, http://127.0.0.1:1)",
    )


async def test_an_untrusted_issuer_with_nothing_trusted_says_none(issuer):
    result = await verified(issuer, trusted_issuers=())
    assert result.check("issuer").reason == (
        f"{issuer.url!r} is not a trusted issuer (trusted: none)"
    )


def unsigned(issuer: Issuer, alg: str, **header: Any) -> str:
    claims = production_claims(issuer.url, MD5, ISSUED)
    head = {"alg": alg, "typ": "JWT", **header}
    return f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}."


async def test_a_token_of_another_algorithm_is_refused_unchecked(issuer):
    token = unsigned(issuer, "none", kid=issuer.kid)
    result = await verify_token(
        token, MD5, pinned(issuer), KeyStore(), job=job_around(ISSUED), now=NOW
    )
    assert result.check("algorithm") == Check(
        "algorithm", "fail", "alg is 'none'; only RS256 is accepted"
    )
    assert result.check("signature") == Check(
        "signature", "n/a", "not checked: alg 'none' is refused"
    )


@pytest.mark.parametrize("kid", [{}, {"kid": ""}, {"kid": 7}])
async def test_an_rs256_token_naming_no_key_fails_the_signature(issuer, kid):
    token = unsigned(issuer, "RS256", **kid)
    result = await verify_token(
        token, MD5, pinned(issuer), KeyStore(), job=job_around(ISSUED), now=NOW
    )
    assert result.check("signature") == Check(
        "signature", "fail", "the token names no signing key (kid)"
    )


async def test_a_token_signed_by_an_unpublished_key_names_the_key(issuer):
    token = unsigned(issuer, "RS256", kid="unpublished")
    parsed = parse_token(token)
    result = evaluate(parsed, MD5, pinned(issuer), job=job_around(ISSUED), now=NOW)
    assert result.check("signature") == Check(
        "signature", "fail", f"no key 'unpublished' of {issuer.url}"
    )


async def test_a_token_whose_signature_does_not_match_says_it_was_altered(issuer):
    genuine = issuer.mint(production_claims(issuer.url, MD5, ISSUED))
    header, payload, signature = genuine.split(".")
    altered = f"{header}.{payload}.{signature[:-4]}AAAA"
    result = await verify_token(
        altered, MD5, pinned(issuer), KeyStore(), job=job_around(ISSUED), now=NOW
    )
    assert result.check("signature") == Check(
        "signature",
        "fail",
        f"the signature does not match key {issuer.kid} of {issuer.url}: the token was "
        "altered or not signed by this issuer",
    )


async def test_a_job_with_unknown_times_fails_issued_at(issuer):
    job = JobFacts(id=7, uuid=JOB_UUID, creator=CREATOR, created_at=None, updated_at="x")
    result = await verified(issuer, job=job)
    assert result.check("issued_at") == Check(
        "issued_at",
        "fail",
        "issued 2026-01-01 00:00:00 UTC; the job's times are not known to compare",
    )


@pytest.mark.parametrize(
    "created_at", ["2025-12-31T23:50:00Z", "2025-12-31 23:50:00+00:00", " 2025-12-31 23:50:00 "]
)
async def test_job_times_with_a_zone_or_iso_t_compare_as_utc(issuer, created_at):
    job = JobFacts(
        id=7,
        uuid=JOB_UUID,
        creator=CREATOR,
        created_at=created_at,
        updated_at="2026-01-01 00:00:20",
    )
    result = await verified(issuer, job=job)
    assert result.check("issued_at") == Check(*("issued_at", *good_checks(issuer)["issued_at"]))


async def test_an_iat_beyond_any_date_is_not_a_time(issuer):
    result = await verified(issuer, setting("iat", 10**20))
    assert result.check("issued_at") == Check(
        "issued_at", "fail", "the token has no usable iat claim"
    )


async def test_a_key_the_issuer_does_not_publish_is_an_unknown_key(issuer):
    claims = production_claims(issuer.url, MD5, ISSUED)
    token = issuer.mint(claims, other_signer("unpublished"))
    result = await verify_token(
        token, MD5, pinned(issuer), KeyStore(), job=job_around(ISSUED), now=NOW
    )
    assert result.check("signature").status == "fail"
    assert result.check("signature").reason.startswith("unknown key: ")


def test_the_outputs_md5_is_of_its_bytes_as_stored(tmp_path):
    data = bytes(range(256)) * 4097  # a little over 1 MiB: read in more than one chunk
    (tmp_path / "output.csv").write_bytes(data)
    assert file_md5(tmp_path / "output.csv") == hashlib.md5(data).hexdigest()


async def test_an_output_that_could_not_be_read_for_no_stated_reason_is_unknown(issuer):
    token = issuer.mint(production_claims(issuer.url, MD5, ISSUED))
    result = await verify_token(
        token, None, pinned(issuer), KeyStore(), job=job_around(ISSUED), now=NOW
    )
    assert result.check("nonce") == Check("nonce", "fail", "the output could not be read: unknown")


async def test_a_token_of_another_algorithm_makes_no_key_request(issuer):
    before = issuer.key_fetches()
    await verify_token(
        unsigned(issuer, "none", kid=issuer.kid),
        MD5,
        pinned(issuer),
        KeyStore(),
        job=job_around(ISSUED),
        now=NOW,
    )
    assert issuer.key_fetches() == before


@pytest.fixture
def new_york_time(monkeypatch):
    """The server's local zone is not UTC."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_zoneless_job_times_are_utc_whatever_the_servers_zone(issuer, new_york_time):
    result = await verified(issuer)
    assert result.check("issued_at") == Check(*("issued_at", *good_checks(issuer)["issued_at"]))
