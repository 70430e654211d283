"""The platform checks of a production token, value by value: only the exact production
values pass (``secboot`` the JSON ``true``, ``support_attributes`` a list holding
``STABLE``, ``dbgstat`` ``disabled-since-boot``, a pinned ``hwmodel``), and the other checks
of the token are left untouched by a platform failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from jupyterlab_manatee.attestation import (
    LOCAL_RUN,
    NOT_VERIFIED,
    VERIFIED,
    KeyStore,
    verify_token,
)
from jupyterlab_manatee.attestation.verify import Check, Verification
from tests.attestation_support import (
    CHECK_NAMES,
    OUTPUT,
    Issuer,
    issuer_fixture,  # noqa: F401 - the "issuer" fixture
    job_around,
    md5,
    pinned,
    production_claims,
)

PLATFORM = ("swname", "dbgstat", "support_attributes", "secboot", "hwmodel")


async def verified(
    issuer: Issuer, change: Callable[[dict[str, Any]], None] | None = None, **policy: Any
) -> Verification:
    """A production token of this job with ``change`` made to its claims, verified."""
    issued = time.time() - 60
    claims = production_claims(issuer.url, md5(OUTPUT), issued)
    if change is not None:
        change(claims)
    return await verify_token(
        issuer.mint(claims),
        md5(OUTPUT),
        pinned(issuer, **policy),
        KeyStore(),
        job=job_around(issued),
    )


def claim(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        claims[name] = value

    return change


def support(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        claims["submods"]["confidential_space"]["support_attributes"] = value

    return change


def without(name: str) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        del claims[name]

    return change


def failing(result: Verification) -> list[str]:
    return [c.name for c in result.checks if c.status != "pass"]


async def test_the_production_values_pass_every_platform_check(issuer):
    result = await verified(issuer)
    assert result.verdict == VERIFIED
    assert [result.check(n) for n in PLATFORM] == [
        Check("swname", "pass", "swname is CONFIDENTIAL_SPACE"),
        Check("dbgstat", "pass", "dbgstat is disabled-since-boot (a production image)"),
        Check("support_attributes", "pass", "support_attributes has STABLE"),
        Check("secboot", "pass", "secure boot was on"),
        Check("hwmodel", "pass", "hwmodel is GCP_INTEL_TDX"),
    ]


# -- secboot: the JSON true, nothing merely truthy ----------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"),
    [(1, "1"), ("true", "'true'"), ("True", "'True'"), ([True], "[True]"), (False, "False")],
)
async def test_secboot_passes_only_as_the_json_true(issuer, value, shown):
    result = await verified(issuer, claim("secboot", value))
    assert result.verdict == NOT_VERIFIED
    assert failing(result) == ["secboot"]
    assert result.check("secboot") == Check("secboot", "fail", f"secboot is {shown}, not true")


async def test_a_token_without_secboot_fails_it(issuer):
    result = await verified(issuer, without("secboot"))
    assert result.check("secboot") == Check("secboot", "fail", "secboot is None, not true")


# -- dbgstat: disabled since boot, nothing else -------------------------------------------
@pytest.mark.parametrize(
    "value", ["enabled", "disabled", "DISABLED-SINCE-BOOT", "disabled-since-boot ", True, None]
)
async def test_dbgstat_passes_only_as_disabled_since_boot(issuer, value):
    result = await verified(issuer, claim("dbgstat", value))
    assert result.verdict == NOT_VERIFIED
    assert failing(result) == ["dbgstat"]
    assert result.check("dbgstat") == Check(
        "dbgstat",
        "fail",
        f"dbgstat is {value!r}: a debug image, whose operator can look inside the run",
    )


# -- swname ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["CONFIDENTIAL_SPACE_DEBUG", "confidential_space", "", None])
async def test_swname_passes_only_as_confidential_space(issuer, value):
    result = await verified(issuer, claim("swname", value))
    assert failing(result) == ["swname"]
    assert result.check("swname") == Check(
        "swname", "fail", f"swname is {value!r}, not CONFIDENTIAL_SPACE"
    )


# -- support_attributes: a list that holds STABLE ------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "STABLE",  # a string, not a list: "in" would find the substring
        "xSTABLEx",
        ["LATEST", "USABLE"],
        ["stable"],
        ["xSTABLEx"],
        [],
        {"STABLE": True},  # a mapping holding the key is not the list
        None,
    ],
)
async def test_support_attributes_pass_only_as_a_list_holding_stable(issuer, value):
    result = await verified(issuer, support(value))
    assert result.verdict == NOT_VERIFIED
    assert failing(result) == ["support_attributes"]
    assert result.check("support_attributes") == Check(
        "support_attributes",
        "fail",
        f"support_attributes is {value!r}, without STABLE: not a supported production image",
    )


async def test_stable_alone_is_enough(issuer):
    result = await verified(issuer, support(["STABLE"]))
    assert result.check("support_attributes").status == "pass"


async def test_a_token_without_the_confidential_space_submod_fails_support_attributes(issuer):
    def drop(claims: dict[str, Any]) -> None:
        del claims["submods"]["confidential_space"]

    result = await verified(issuer, drop)
    assert result.check("support_attributes") == Check(
        "support_attributes",
        "fail",
        "support_attributes is None, without STABLE: not a supported production image",
    )


# -- hwmodel: one the policy pins -----------------------------------------------------------
@pytest.mark.parametrize("value", ["GCP_AMD_SEV", "gcp_intel_tdx", ["GCP_INTEL_TDX"], None])
async def test_hwmodel_passes_only_as_a_pinned_model(issuer, value):
    result = await verified(issuer, claim("hwmodel", value))
    assert failing(result) == ["hwmodel"]
    assert result.check("hwmodel") == Check(
        "hwmodel", "fail", f"hwmodel is {value!r}, expected one of GCP_INTEL_TDX"
    )


async def test_a_policy_pinning_other_models_passes_those(issuer):
    policy = {"hwmodels": ("GCP_AMD_SEV_SNP", "GCP_AMD_SEV")}
    result = await verified(issuer, claim("hwmodel", "GCP_AMD_SEV"), **policy)
    assert result.verdict == VERIFIED
    assert result.check("hwmodel") == Check("hwmodel", "pass", "hwmodel is GCP_AMD_SEV")


async def test_the_pinned_models_are_named_when_hwmodel_fails(issuer):
    policy = {"hwmodels": ("GCP_AMD_SEV_SNP", "GCP_AMD_SEV")}
    result = await verified(issuer, **policy)
    assert result.check("hwmodel").reason == (
        "hwmodel is 'GCP_INTEL_TDX', expected one of GCP_AMD_SEV_SNP, GCP_AMD_SEV"
    )


async def test_a_policy_pinning_no_model_fails_every_hwmodel(issuer):
    result = await verified(issuer, hwmodels=())
    assert result.check("hwmodel") == Check(
        "hwmodel", "fail", "hwmodel is 'GCP_INTEL_TDX', expected one of none"
    )


# -- a local issuer: the platform is not checked at all -------------------------------------
async def test_a_local_issuers_token_has_every_platform_check_na_whatever_it_claims(issuer):
    def debug_platform(claims: dict[str, Any]) -> None:
        claims.update(secboot=False, dbgstat="enabled", swname="x", hwmodel="x")
        claims["submods"]["confidential_space"]["support_attributes"] = []

    result = await verified(issuer, debug_platform, trusted_issuers=(), local_issuers=(issuer.url,))
    assert result.verdict == LOCAL_RUN
    assert [result.check(n) for n in PLATFORM] == [Check(n, "n/a", LOCAL_RUN) for n in PLATFORM]
    assert [c.name for c in result.checks] == list(CHECK_NAMES)
