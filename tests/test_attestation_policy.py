"""The verification policy: made from the server's configuration, saved in a bundle and
read back (a malformed saved policy is refused, never half-used), and which issuers it
trusts as what."""

from __future__ import annotations

import math

import pytest

from jupyterlab_manatee.attestation import Policy
from jupyterlab_manatee.config import ManateeConfig

PINNED = Policy(
    trusted_issuers=("https://issuer.example",),
    local_issuers=("http://127.0.0.1:8901",),
    audience="https://audience.example/",
    hwmodels=("GCP_INTEL_TDX", "GCP_AMD_SEV"),
    clock_skew=60.0,
    project_id="manatee-prod-4711",
    service_accounts=("tee@manatee-prod-4711.iam.gserviceaccount.com",),
    image_repository="us-docker.pkg.dev/manatee-prod-4711/jobs",
)
SAVED = {
    "trusted_issuers": ["https://issuer.example"],
    "local_issuers": ["http://127.0.0.1:8901"],
    "audience": "https://audience.example/",
    "hwmodels": ["GCP_INTEL_TDX", "GCP_AMD_SEV"],
    "clock_skew": 60.0,
    "project_id": "manatee-prod-4711",
    "service_accounts": ["tee@manatee-prod-4711.iam.gserviceaccount.com"],
    "image_repository": "us-docker.pkg.dev/manatee-prod-4711/jobs",
}


def test_a_policy_is_saved_with_lists_for_its_tuples():
    assert PINNED.to_json() == SAVED


def test_a_saved_policy_reads_back_as_the_same_policy():
    assert Policy.from_json(SAVED) == PINNED


def test_a_saved_policy_missing_everything_reads_as_the_defaults_with_nothing_pinned():
    assert Policy.from_json({}) == Policy(
        trusted_issuers=(),
        local_issuers=(),
        audience="https://research.tiktok.com/",
        hwmodels=(),
        clock_skew=300.0,
        project_id=None,
        service_accounts=(),
        image_repository=None,
    )


def test_an_empty_saved_audience_is_the_default_audience():
    assert Policy.from_json({**SAVED, "audience": ""}).audience == "https://research.tiktok.com/"


def test_a_whole_number_clock_skew_reads_as_seconds():
    policy = Policy.from_json({**SAVED, "clock_skew": 0})
    assert (policy.clock_skew, type(policy.clock_skew)) == (0.0, float)


@pytest.mark.parametrize("data", [[], "policy", None, 1])
def test_a_saved_policy_that_is_not_an_object_is_refused(data):
    with pytest.raises(ValueError) as refused:
        Policy.from_json(data)
    assert str(refused.value) == "the policy is not a JSON object"


@pytest.mark.parametrize(
    "name", ["trusted_issuers", "local_issuers", "hwmodels", "service_accounts"]
)
@pytest.mark.parametrize("value", ["https://issuer.example", ["ok", 1], {"a": "b"}, None])
def test_a_saved_list_that_is_not_a_list_of_strings_is_refused(name, value):
    with pytest.raises(ValueError) as refused:
        Policy.from_json({**SAVED, name: value})
    assert str(refused.value) == f"the policy's {name} is not a list of strings"


@pytest.mark.parametrize("name", ["audience", "project_id", "image_repository"])
@pytest.mark.parametrize("value", [["x"], 7, True])
def test_a_saved_text_that_is_not_a_string_is_refused(name, value):
    with pytest.raises(ValueError) as refused:
        Policy.from_json({**SAVED, name: value})
    assert str(refused.value) == f"the policy's {name} is not a string"


@pytest.mark.parametrize("value", [True, "60", -1, -0.5, math.nan, None])
def test_a_saved_clock_skew_that_is_not_seconds_is_refused(value):
    with pytest.raises(ValueError) as refused:
        Policy.from_json({**SAVED, "clock_skew": value})
    assert str(refused.value) == "the policy's clock_skew is not a number of seconds"


def test_the_policy_of_a_configured_server_takes_each_setting():
    config = ManateeConfig(
        trusted_issuers=["https://issuer.example"],
        local_issuers=["http://127.0.0.1:8901"],
        audience="https://audience.example/",
        hwmodel=["GCP_INTEL_TDX", "GCP_AMD_SEV"],
        clock_skew=60.0,
        project_id="manatee-prod-4711",
        tee_service_accounts=["tee@manatee-prod-4711.iam.gserviceaccount.com"],
        image_repository="us-docker.pkg.dev/manatee-prod-4711/jobs",
    )
    assert Policy.from_config(config) == PINNED


def test_unset_deployment_pins_of_the_configuration_are_none(monkeypatch):
    for name in ("MANATEE_PROJECT_ID", "MANATEE_TEE_SERVICE_ACCOUNTS", "MANATEE_IMAGE_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    policy = Policy.from_config(ManateeConfig(project_id="", image_repository=""))
    assert (policy.project_id, policy.service_accounts, policy.image_repository) == (
        None,
        (),
        None,
    )


@pytest.mark.parametrize(
    ("issuer", "kind"),
    [
        ("https://issuer.example", "production"),
        ("https://issuer.example/", "production"),
        (" https://issuer.example ", "production"),
        ("http://127.0.0.1:8901/", "local"),
        ("https://other.example", None),
        ("", None),
    ],
)
def test_issuers_are_trusted_as_production_or_local_trailing_slash_aside(issuer, kind):
    assert PINNED.issuer_kind(issuer) == kind


def test_an_issuer_listed_both_ways_counts_as_local():
    policy = Policy(
        trusted_issuers=("https://both.example/",), local_issuers=("https://both.example",)
    )
    assert policy.issuer_kind("https://both.example") == "local"
