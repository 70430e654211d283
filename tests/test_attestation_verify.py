"""The verification module: every token case, the issuers' keys (discovery, cache, offline
file, never for an untrusted issuer) and the job binding."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from jupyterlab_manatee.attestation import (
    LOCAL_RUN,
    NOT_VERIFIED,
    VERIFIED,
    JobFacts,
    KeyStore,
    Policy,
    describe_token,
    evaluate,
    parse_token,
    verify,
    verify_token,
)
from jupyterlab_manatee.attestation.keys import KeyUnavailable, _redirect_target, usable_jwks_uri
from tests.attestation_support import (
    AUDIENCE,
    CASES,
    CHECK_NAMES,
    IMAGE_DIGEST,
    IMAGE_REPOSITORY,
    JOB_UUID,
    NOT_CANONICAL,
    OUTPUT,
    SERVICE_ACCOUNT,
    Issuer,
    assert_result,
    issuer_fixture,  # noqa: F401 - the "issuer" fixture
    job_around,
    make_scenario,
    md5,
    pinned,
    production_claims,
    rogue_fixture,  # noqa: F401 - the "rogue" fixture
)
from tests.fault_server import closed_port_url


def trusting(issuer: Issuer, **changes) -> Policy:
    """The issuer's tokens are trusted for the pinned test deployment."""
    return pinned(issuer, **changes)


def statuses(result) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


@pytest.mark.parametrize("name", list(CASES))
async def test_each_case_gives_its_verdict_and_check_list(name, issuer, rogue):
    case = CASES[name]
    scenario = make_scenario(case, issuer, rogue)
    policy = trusting(issuer, **case.policy)
    result = await verify_token(
        scenario.token, md5(scenario.output), policy, KeyStore(), job=scenario.job
    )
    assert_result(result.to_json(), case)


async def test_an_untrusted_issuer_is_never_asked_for_keys(issuer, rogue):
    scenario = make_scenario(CASES["wrong issuer"], issuer, rogue)
    before = sum(rogue.hits.values())
    await verify_token(scenario.token, md5(OUTPUT), trusting(issuer), KeyStore(), job=scenario.job)
    assert sum(rogue.hits.values()) == before


async def test_keys_are_fetched_once_while_the_cache_is_fresh(issuer, rogue):
    keys = KeyStore(ttl=3600)
    scenario = make_scenario(CASES["good"], issuer, rogue)
    before = issuer.key_fetches()
    for _ in range(3):
        result = await verify_token(
            scenario.token, md5(OUTPUT), trusting(issuer), keys, job=scenario.job
        )
        assert result.verdict == VERIFIED
    assert issuer.key_fetches() - before == 1


async def test_keys_are_fetched_again_once_the_cache_expires(issuer, rogue):
    keys = KeyStore(ttl=0)
    scenario = make_scenario(CASES["good"], issuer, rogue)
    before = issuer.key_fetches()
    for _ in range(2):
        await verify_token(scenario.token, md5(OUTPUT), trusting(issuer), keys, job=scenario.job)
    assert issuer.key_fetches() - before == 2


@pytest.mark.parametrize("by_issuer", [False, True])
async def test_a_saved_jwks_file_verifies_offline(issuer, rogue, tmp_path, by_issuer):
    jwks = issuer.jwks()
    saved = tmp_path / "jwks.json"
    saved.write_text(json.dumps({issuer.url + "/": jwks} if by_issuer else jwks))
    scenario = make_scenario(CASES["good"], issuer, rogue)
    before = sum(issuer.hits.values())
    result = await verify_token(
        scenario.token, md5(OUTPUT), trusting(issuer), KeyStore(jwks_file=saved), job=scenario.job
    )
    assert result.verdict == VERIFIED
    assert sum(issuer.hits.values()) == before


async def test_a_jwks_file_without_the_kid_fails_the_signature(issuer, rogue, tmp_path):
    saved = tmp_path / "jwks.json"
    saved.write_text(json.dumps({"keys": []}))
    scenario = make_scenario(CASES["good"], issuer, rogue)
    result = await verify_token(
        scenario.token, md5(OUTPUT), trusting(issuer), KeyStore(jwks_file=saved), job=scenario.job
    )
    assert result.verdict == NOT_VERIFIED
    assert result.check("signature").status == "fail"
    assert issuer.kid in result.check("signature").reason


async def test_an_unreachable_issuer_fails_the_signature_saying_why(issuer):
    offline = closed_port_url()
    issued = time.time() - 60
    token = issuer.mint(production_claims(offline, md5(OUTPUT), issued))
    result = await verify_token(
        token,
        md5(OUTPUT),
        pinned(issuer, trusted_issuers=(offline,)),
        KeyStore(connect_timeout=2, request_timeout=2),
        job=job_around(issued),
    )
    assert result.verdict == NOT_VERIFIED
    assert statuses(result)["signature"] == "fail"
    assert "keys are unavailable" in result.check("signature").reason


async def test_a_discovery_document_naming_another_issuer_is_refused():
    impostor = Issuer("impostor").start()
    try:
        impostor.discovery_issuer = "https://confidentialcomputing.googleapis.com"
        issued = time.time() - 60
        token = impostor.mint(production_claims(impostor.url, md5(OUTPUT), issued))
        result = await verify_token(
            token, md5(OUTPUT), trusting(impostor), KeyStore(), job=job_around(issued)
        )
        assert result.check("signature").status == "fail"
        assert "names another issuer" in result.check("signature").reason
        assert impostor.key_fetches() == 0
    finally:
        impostor.stop()


async def test_a_token_issued_outside_the_jobs_run_fails(issuer):
    issued = time.time() - 60
    token = issuer.mint(production_claims(issuer.url, md5(OUTPUT), issued))
    later_job = job_around(issued + 3 * 3600)
    result = await verify_token(token, md5(OUTPUT), trusting(issuer), KeyStore(), job=later_job)
    assert result.verdict == NOT_VERIFIED
    assert {k: v for k, v in statuses(result).items() if v != "pass"} == {"issued_at": "fail"}
    assert "outside the job" in result.check("issued_at").reason


async def test_a_token_issued_in_the_future_fails(issuer):
    issued = time.time() + 3600
    token = issuer.mint(production_claims(issuer.url, md5(OUTPUT), issued))
    result = await verify_token(token, md5(OUTPUT), trusting(issuer), KeyStore(), job=None)
    assert statuses(result)["issued_at"] == "fail"
    assert result.verdict == NOT_VERIFIED


async def test_an_unknown_job_fails_the_job_checks_rather_than_skipping_them(issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    result = await verify_token(scenario.token, md5(OUTPUT), trusting(issuer), KeyStore())
    assert {k: v for k, v in statuses(result).items() if v != "pass"} == {
        "image": "fail",
        "job": "fail",
        "instance_name": "fail",
        "issued_at": "fail",
    }
    assert result.verdict == NOT_VERIFIED


async def test_pinning_only_the_project_still_fails_closed(issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    policy = trusting(issuer, service_accounts=())
    result = await verify_token(scenario.token, md5(OUTPUT), policy, KeyStore(), job=scenario.job)
    assert {k: v for k, v in statuses(result).items() if v != "pass"} == {"service_account": "fail"}
    assert "tee_service_accounts" in result.check("service_account").reason


async def test_any_one_of_several_pinned_service_accounts_is_enough(issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    policy = trusting(
        issuer,
        service_accounts=(
            "dcr-staging-cvm-sa@manatee-prod-4711.iam.gserviceaccount.com",
            "dcr-prod-cvm-sa@manatee-prod-4711.iam.gserviceaccount.com",
        ),
    )
    result = await verify_token(scenario.token, md5(OUTPUT), policy, KeyStore(), job=scenario.job)
    assert result.verdict == VERIFIED


async def test_without_an_image_repository_pin_any_repository_naming_the_job_passes(issuer, rogue):
    scenario = make_scenario(CASES["image outside the pinned repository"], issuer, rogue)
    policy = trusting(issuer, image_repository=None)
    result = await verify_token(scenario.token, md5(OUTPUT), policy, KeyStore(), job=scenario.job)
    assert result.verdict == VERIFIED


async def test_an_unreadable_output_fails_the_nonce_saying_why(issuer, rogue):
    scenario = make_scenario(CASES["good"], issuer, rogue)
    result = await verify_token(
        scenario.token,
        None,
        trusting(issuer),
        KeyStore(),
        job=scenario.job,
        output_problem="storage said 404",
    )
    assert result.verdict == NOT_VERIFIED
    assert "storage said 404" in result.check("nonce").reason


class TestLocalIssuer:
    """A configured local issuer: checked like the others, never called a TEE run."""

    def local_token(self, issuer: Issuer, production_like: bool) -> tuple[str, JobFacts]:
        issued = time.time() - 30
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        if not production_like:
            claims.update(swname="LOCAL_NO_TEE", dbgstat="enabled", hwmodel="NONE", secboot=False)
        return issuer.mint(claims), job_around(issued)

    @pytest.mark.parametrize("production_like", [False, True])
    async def test_its_tokens_are_a_local_run(self, issuer, production_like):
        token, job = self.local_token(issuer, production_like)
        policy = pinned(issuer, trusted_issuers=(), local_issuers=(issuer.url,))
        result = await verify_token(token, md5(OUTPUT), policy, KeyStore(), job=job)
        assert (result.verdict, result.verified) == (LOCAL_RUN, False)
        platform = ("swname", "dbgstat", "support_attributes", "secboot", "hwmodel")
        assert {c.name: (c.status, c.reason) for c in result.checks if c.name in platform} == {
            name: ("n/a", LOCAL_RUN) for name in platform
        }
        assert all(c.status == "pass" for c in result.checks if c.name not in platform)

    async def test_a_changed_output_is_not_verified_even_locally(self, issuer):
        token, job = self.local_token(issuer, False)
        policy = pinned(issuer, trusted_issuers=(), local_issuers=(issuer.url,))
        result = await verify_token(token, md5(OUTPUT + b" "), policy, KeyStore(), job=job)
        assert result.verdict == NOT_VERIFIED

    async def test_a_local_token_from_another_job_is_not_a_local_run_of_this_one(self, issuer):
        """A job that re-signs another creator's output cannot name this job's image."""
        token, job = self.local_token(issuer, False)
        other = JobFacts(
            id=8,
            uuid="ffffffff-0000-4000-8000-000000000000",
            creator="bob",
            created_at=job.created_at,
            updated_at=job.updated_at,
        )
        policy = pinned(issuer, trusted_issuers=(), local_issuers=(issuer.url,))
        result = await verify_token(token, md5(OUTPUT), policy, KeyStore(), job=other)
        assert result.verdict == NOT_VERIFIED
        assert {c.name for c in result.checks if c.status == "fail"} == {"image", "instance_name"}

    async def test_a_local_token_needs_the_pins_too(self, issuer):
        token, job = self.local_token(issuer, False)
        policy = Policy(trusted_issuers=(), local_issuers=(issuer.url,))
        result = await verify_token(token, md5(OUTPUT), policy, KeyStore(), job=job)
        assert result.verdict == NOT_VERIFIED
        assert {c.name for c in result.checks if c.status == "fail"} == {
            "project_id",
            "service_account",
        }

    async def test_unlisted_it_is_an_untrusted_issuer(self, issuer):
        token, job = self.local_token(issuer, False)
        policy = pinned(issuer, trusted_issuers=())
        result = await verify_token(token, md5(OUTPUT), policy, KeyStore(), job=job)
        assert result.verdict == NOT_VERIFIED
        assert result.check("issuer").status == "fail"


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("mock tee token with nonce " + "a" * 32, "mock"),
        ("mock tee token with nonce " + "a" * 32 + "\n", "mock"),
        ("a.b.c", "unknown"),
        ("", "unknown"),
        ("e30.e30.!!!", "unknown"),
    ],
)
def test_describe_token_names_the_kind(token, kind):
    assert describe_token(token)["kind"] == kind


def test_describe_token_shows_a_jwts_claims_unverified(issuer):
    claims = production_claims(issuer.url, md5(OUTPUT), time.time())
    described = describe_token(issuer.mint(claims))
    assert described["kind"] == "jwt"
    assert described["claims"] == claims
    assert described["header"]["kid"] == issuer.kid


@pytest.mark.parametrize("name", CHECK_NAMES)
async def test_each_check_is_held_by_a_case_that_passes_wrongly_without_it(
    name, issuer, rogue, monkeypatch
):
    """Make one check pass wherever it would fail: some case of the table must then come out
    differently, so no check can be replaced by a constant pass unnoticed."""
    original = verify.Check

    def always_passing(check_name: str, status: str, reason: str) -> verify.Check:
        forced = check_name == name and status == "fail"
        return original(check_name, "pass" if forced else status, reason)

    monkeypatch.setattr(verify, "Check", always_passing)
    changed = []
    for case_name, case in CASES.items():
        scenario = make_scenario(case, issuer, rogue)
        policy = trusting(issuer, **case.policy)
        result = await verify_token(
            scenario.token, md5(scenario.output), policy, KeyStore(), job=scenario.job
        )
        if (result.verdict, statuses(result)) != (case.verdict, case.expected_statuses()):
            changed.append(case_name)
    assert changed, f"no case notices the {name} check passing unconditionally"


class TestKeyGuards:
    """What the issuers' keys must be before a signature counts."""

    async def test_a_key_under_2048_bits_is_never_used(self, rogue):
        weak = Issuer("weak", key_size=1024).start()
        try:
            issued = time.time() - 60
            token = weak.mint(production_claims(weak.url, md5(OUTPUT), issued))
            result = await verify_token(
                token, md5(OUTPUT), pinned(weak), KeyStore(), job=job_around(issued)
            )
            assert result.check("signature").status == "fail"
            assert "publishes no key" in result.check("signature").reason
        finally:
            weak.stop()

    def test_an_https_issuer_may_not_serve_its_keys_over_http(self):
        with pytest.raises(KeyUnavailable, match="plain http"):
            usable_jwks_uri(
                "https://confidentialcomputing.googleapis.com",
                {"jwks_uri": "http://www.googleapis.com/service_accounts/v1/metadata/jwk/x"},
            )

    def test_an_https_issuer_may_serve_its_keys_over_https(self):
        uri = "https://www.googleapis.com/service_accounts/v1/metadata/jwk/x"
        assert (
            usable_jwks_uri("https://confidentialcomputing.googleapis.com", {"jwks_uri": uri})
            == uri
        )

    @pytest.mark.parametrize("jwks_uri", [None, 7, "file:///etc/passwd", "ftp://x/keys"])
    def test_a_jwks_uri_that_is_not_http_is_refused(self, jwks_uri):
        with pytest.raises(KeyUnavailable, match="no usable jwks_uri"):
            usable_jwks_uri("http://127.0.0.1:1", {"jwks_uri": jwks_uri})


class TestKeyDocuments:
    """What an issuer's discovery document and JWKS may do on the wire."""

    @pytest.fixture
    def own_issuer(self):
        """An issuer of this test's own (the session's is shared)."""
        server = Issuer("own").start()
        yield server
        server.stop()

    async def signature(self, issuer: Issuer):
        issued = time.time() - 60
        token = issuer.mint(production_claims(issuer.url, md5(OUTPUT), issued))
        result = await verify_token(
            token, md5(OUTPUT), pinned(issuer), KeyStore(), job=job_around(issued)
        )
        return result.check("signature")

    async def test_keys_behind_a_redirect_on_the_same_scheme_are_used(self, own_issuer):
        """The control: a redirect itself is fine."""
        own_issuer.keys_redirect = f"{own_issuer.url}/keys-moved"
        check = await self.signature(own_issuer)
        assert check.status == "pass"
        assert own_issuer.hits["keys-moved"] == 1

    @pytest.mark.parametrize(
        ("location", "reason"),
        [
            ("file:///etc/passwd", "redirects to 'file:///etc/passwd', not an http(s) URL"),
            ("http://[::1", "redirects to an unusable URL"),
            ("http://127.0.0.1:99999/keys", "redirects to an unusable URL"),
        ],
    )
    async def test_a_keys_redirect_to_an_unusable_url_fails_the_signature_saying_why(
        self, own_issuer, location, reason
    ):
        own_issuer.keys_redirect = location
        check = await self.signature(own_issuer)
        assert check.status == "fail"
        assert check.reason == (
            f"the issuer's keys are unavailable: the JWKS at {own_issuer.url}/keys {reason}"
        )

    async def test_a_keys_redirect_loop_fails_the_signature(self, own_issuer):
        own_issuer.keys_redirect = f"{own_issuer.url}/keys"
        check = await self.signature(own_issuer)
        assert check.status == "fail"
        assert "the JWKS redirected more than 3 times" in check.reason
        assert own_issuer.hits["keys"] == 4

    async def test_a_jwks_over_1_mib_is_refused_while_it_streams(self, own_issuer):
        own_issuer.jwks_padding = 1024 * 1024
        check = await self.signature(own_issuer)
        assert check.status == "fail"
        assert check.reason == (
            f"the issuer's keys are unavailable: the JWKS at {own_issuer.url}/keys is larger "
            "than 1048576 bytes"
        )

    async def test_a_document_declaring_over_1_mib_is_refused_before_its_body(self):
        """A declared length over the cap ends the fetch at the headers: an issuer that
        then sends nothing does not hold the verifier until its timeout."""

        finished = asyncio.Event()

        async def declare_and_stall(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2000000\r\n\r\n{"
            )
            await writer.drain()
            await finished.wait()
            writer.close()

        server = await asyncio.start_server(declare_and_stall, "127.0.0.1", 0)
        issuer = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            with pytest.raises(KeyUnavailable) as refused:
                await KeyStore(request_timeout=20).fetch(issuer)
        finally:
            finished.set()
            server.close()
            await server.wait_closed()
        assert str(refused.value) == (
            f"the discovery document at {issuer}/.well-known/openid-configuration is larger "
            "than 1048576 bytes"
        )

    def test_an_https_document_may_not_redirect_to_plain_http(self):
        """A supplement (no TLS stand-in here): the rule the redirect loop applies."""
        with pytest.raises(KeyUnavailable, match="redirects to plain http; refusing it"):
            _redirect_target("https://issuer.example/keys", "http://issuer.example/k", "JWKS")
        assert (
            _redirect_target("https://issuer.example/keys", "/k2", "JWKS")
            == "https://issuer.example/k2"
        )


class TestWholeNames:
    """The VM and the image are compared by their whole names: never a prefix, a
    substring, or a name read out of a reference crafted to end elsewhere."""

    REPO = IMAGE_REPOSITORY
    NAME = f"alice-{JOB_UUID}"

    async def image_check(self, issuer, reference: str, **policy) -> tuple[str, str]:
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        claims["submods"]["container"]["image_reference"] = reference
        result = await verify_token(
            issuer.mint(claims),
            md5(OUTPUT),
            trusting(issuer, **policy),
            KeyStore(),
            job=job_around(issued),
        )
        return result.check("image").status, result.check("image").reason

    @pytest.mark.parametrize(
        "reference",
        [
            f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}@{IMAGE_DIGEST}",
            f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}:latest",
            f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}:v1@{IMAGE_DIGEST}",
            f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}",
        ],
    )
    async def test_control_the_jobs_image_in_the_pinned_repository_passes(self, issuer, reference):
        assert await self.image_check(issuer, reference) == (
            "pass",
            f"the image alice-{JOB_UUID} in {IMAGE_REPOSITORY} was built for this job",
        )

    async def test_control_a_pinned_repository_written_with_a_slash_still_matches(self, issuer):
        reference = f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}@{IMAGE_DIGEST}"
        status, _ = await self.image_check(
            issuer, reference, image_repository=IMAGE_REPOSITORY + "/"
        )
        assert status == "pass"

    @pytest.mark.parametrize(
        ("reference", "why"),
        [
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}-evil@{IMAGE_DIGEST}", "another job's image"),
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}0", "another job's image"),
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID[:-1]}", "another job's image"),
            (f"{IMAGE_REPOSITORY}/evil-alice-{JOB_UUID}", "another job's image"),
            (f"{IMAGE_REPOSITORY}/alice-bob-{JOB_UUID}", "another job's image"),
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}/x", "another job's image"),
            (f"{IMAGE_REPOSITORY}/sub/alice-{JOB_UUID}", "not in the pinned repository"),
            (f"{IMAGE_REPOSITORY}evil/alice-{JOB_UUID}", "not in the pinned repository"),
            (f"evil{IMAGE_REPOSITORY}/alice-{JOB_UUID}", "not in the pinned repository"),
            (f"evil.example/{IMAGE_REPOSITORY}/alice-{JOB_UUID}", "not in the pinned repository"),
            (f"alice-{JOB_UUID}", "not in the pinned repository"),
            (
                f"{IMAGE_REPOSITORY.rpartition('/')[0]}/alice-{JOB_UUID}",
                "not in the pinned repository",
            ),
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}@{IMAGE_DIGEST}/x", "not a well-formed"),
            (f"{IMAGE_REPOSITORY}/x@{IMAGE_DIGEST}/alice-{JOB_UUID}", "not a well-formed"),
            (f"{IMAGE_REPOSITORY}/x:tag/alice-{JOB_UUID}", "not a well-formed"),
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}\n", "not a well-formed"),
            (f"{IMAGE_REPOSITORY}/alice-{JOB_UUID} ", "not a well-formed"),
            (f"{IMAGE_REPOSITORY}//alice-{JOB_UUID}", "not a well-formed"),
            (f"{IMAGE_REPOSITORY}/ALICE-{JOB_UUID.upper()}", "not a well-formed"),
        ],
    )
    async def test_a_crafted_image_reference_fails(self, issuer, reference, why):
        status, reason = await self.image_check(issuer, reference)
        assert status == "fail"
        assert why in reason, reason

    async def test_an_image_built_for_another_job_fails_and_says_so(self, issuer):
        other = "ffffffff-0000-4000-8000-000000000000"
        reference = f"{IMAGE_REPOSITORY}/alice-{other}@{IMAGE_DIGEST}"
        assert await self.image_check(issuer, reference) == (
            "fail",
            f"the image {reference!r} was built for 'alice-{other}', not this job "
            f"(alice-{JOB_UUID}): another job's image",
        )

    async def test_without_a_repository_pin_the_passing_image_names_no_repository(self, issuer):
        reference = f"{IMAGE_REPOSITORY}/alice-{JOB_UUID}@{IMAGE_DIGEST}"
        assert await self.image_check(issuer, reference, image_repository=None) == (
            "pass",
            f"the image alice-{JOB_UUID} was built for this job",
        )

    async def both_image_checks(self, issuer, reference: object) -> list[tuple[str, str]]:
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        claims["submods"]["container"]["image_reference"] = reference
        result = await verify_token(
            issuer.mint(claims), md5(OUTPUT), trusting(issuer), KeyStore(), job=job_around(issued)
        )
        return [(c.status, c.reason) for c in (result.check("image"), result.check("image_digest"))]

    @pytest.mark.parametrize("reference", [None, "", 7], ids=["absent", "empty", "not a string"])
    async def test_a_token_without_an_image_reference_fails_both_image_checks(
        self, issuer, reference
    ):
        missing = "the token has no submods.container.image_reference"
        assert await self.both_image_checks(issuer, reference) == [
            ("fail", missing),
            ("fail", missing),
        ]

    async def test_a_malformed_image_reference_fails_both_image_checks(self, issuer):
        why = f"'{IMAGE_REPOSITORY}//alice-{JOB_UUID}' is not a well-formed image reference"
        assert await self.both_image_checks(issuer, f"{IMAGE_REPOSITORY}//alice-{JOB_UUID}") == [
            ("fail", why),
            ("fail", why),
        ]

    @pytest.mark.parametrize(
        "reference",
        [
            f"docker.io/evil/other@{IMAGE_DIGEST}/alice-{JOB_UUID}",
            f"docker.io/evil/other:tag/alice-{JOB_UUID}",
            f"docker.io/evil/alice-{JOB_UUID}-x",
        ],
    )
    async def test_without_a_repository_pin_the_image_name_is_still_read_whole(
        self, issuer, reference
    ):
        status, _ = await self.image_check(issuer, reference, image_repository=None)
        assert status == "fail"

    @pytest.mark.parametrize("job_uuid", NOT_CANONICAL)
    async def test_a_job_whose_uuid_is_not_canonical_is_not_identified(self, issuer, job_uuid):
        """Even with a token whose VM and image carry that very uuid (the job facts come
        straight in here, as from a saved file, not through the API's list)."""
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        claims["submods"]["gce"]["instance_name"] = f"alice-{job_uuid}"
        claims["submods"]["container"]["image_reference"] = (
            f"{IMAGE_REPOSITORY}/alice-{job_uuid}@{IMAGE_DIGEST}"
        )
        around = job_around(issued)
        job = JobFacts(
            id=7,
            uuid=job_uuid,
            creator="alice",
            created_at=around.created_at,
            updated_at=around.updated_at,
        )
        result = await verify_token(
            issuer.mint(claims), md5(OUTPUT), trusting(issuer), KeyStore(), job=job
        )
        assert (job.identified, job.instance_name) == (False, None)
        assert result.verdict == NOT_VERIFIED
        assert result.check("job").status == "fail"
        assert result.check("job").reason == (
            f"job not identified: the uuid {job_uuid!r} is not a canonical job uuid "
            "(lowercase 8-4-4-4-12 hex, 36 characters)"
        )
        for name in ("instance_name", "image"):
            assert result.check(name).status == "fail"
            assert "job not identified" in result.check(name).reason


class TestEdges:
    """Boundaries and claim shapes where a looser check would still pass a token."""

    async def checked(self, issuer, claims: dict, *, now: float, job=None, **policy):
        return await verify_token(
            issuer.mint(claims),
            md5(OUTPUT),
            trusting(issuer, **policy),
            KeyStore(),
            job=job or job_around(claims["iat"]),
            now=now,
        )

    async def test_an_aud_string_holding_the_audience_inside_it_fails(self, issuer):
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        claims["aud"] = f"x{AUDIENCE}y"
        result = await self.checked(issuer, claims, now=issued + 60)
        assert (result.check("audience").status, result.verdict) == ("fail", NOT_VERIFIED)

    async def test_an_eat_nonce_string_holding_the_md5_inside_it_fails(self, issuer):
        issued = time.time() - 60
        claims = production_claims(issuer.url, f"00{md5(OUTPUT)}00", issued)
        result = await self.checked(issuer, claims, now=issued + 60)
        assert result.check("nonce").status == "fail"
        assert f"the token's eat_nonce is 00{md5(OUTPUT)}00: " in result.check("nonce").reason

    async def test_a_token_expiring_exactly_now_is_expired(self, issuer):
        issued = time.time() - 3600
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        result = await self.checked(issuer, claims, now=claims["exp"])
        assert result.check("expiry").status == "n/a"
        assert result.check("expiry").reason.startswith("expired since ")

    async def test_a_token_issued_exactly_at_the_skews_end_is_not_in_the_future(self, issuer):
        issued = time.time()
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        result = await self.checked(issuer, claims, now=claims["iat"] - 300)  # the default skew
        assert result.check("issued_at").status == "pass"

    async def test_a_job_without_its_last_update_time_cannot_place_the_token(self, issuer):
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        job = JobFacts(**{**job_around(claims["iat"]).to_json(), "updated_at": None})
        result = await self.checked(issuer, claims, now=issued + 60, job=job)
        assert result.check("issued_at").status == "fail"
        assert result.check("issued_at").reason.endswith("the job's times are not known to compare")

    async def test_an_empty_iss_is_no_issuer(self, issuer):
        issued = time.time() - 60
        claims = production_claims("", md5(OUTPUT), issued)
        result = await self.checked(issuer, claims, now=issued + 60)
        assert (result.check("issuer").status, result.check("issuer").reason) == (
            "fail",
            "the token has no iss claim",
        )

    async def test_a_service_account_pinned_by_none_names_every_pinned_one(self, issuer):
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        claims["google_service_accounts"] = ["cvm@elsewhere.iam.gserviceaccount.com"]
        other = "second@manatee-prod-4711.iam.gserviceaccount.com"
        result = await self.checked(
            issuer, claims, now=issued + 60, service_accounts=(SERVICE_ACCOUNT, other)
        )
        assert result.check("service_account").reason.endswith(
            f"none of the pinned {SERVICE_ACCOUNT}, {other}"
        )

    async def test_a_pinned_registry_host_in_capitals_is_compared_whole(self, issuer):
        issued = time.time() - 60
        claims = production_claims(issuer.url, md5(OUTPUT), issued)
        claims["submods"]["container"]["image_reference"] = f"REGISTRY.EXAMPLEX/alice-{JOB_UUID}"
        result = await self.checked(
            issuer, claims, now=issued + 60, image_repository="REGISTRY.EXAMPLEX"
        )
        assert result.check("image").status == "pass", result.check("image").reason

    def test_an_unreadable_output_with_no_reason_given_says_unknown(self, issuer):
        issued = time.time() - 60
        token = issuer.mint(production_claims(issuer.url, md5(OUTPUT), issued))
        result = evaluate(parse_token(token), None, trusting(issuer))
        assert result.check("nonce").reason == "the output could not be read: unknown"
