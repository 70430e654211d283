"""Where stage 2 gets the project number, and what a missing Google library says.

The TEE's service account usually lacks ``resourcemanager.projects.get``, so the number
comes from the attestation token, then the metadata server, before Resource Manager; the
TEE image has no Google libraries, so a missing one names its pip package."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from sdk_support import INSURANCE_CSV, POOL, PROJECT_ID, PROJECT_NUMBER, REAL_CSV, SERVICE_ACCOUNT

import sdk

TOKEN_NUMBER = "987654321098"
METADATA_NUMBER = "555555555555"


def _jwt(claims: dict) -> str:
    """A token shaped as Confidential Space's (header.claims.signature, base64url)."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def buckets(gcs):
    gcs.put("stage1", "insurance.csv", INSURANCE_CSV)
    gcs.put("stage2", "insurance.csv", REAL_CSV)
    return gcs


def test_the_number_in_the_attestation_token_is_used_without_any_lookup(
    buckets, google, stage2_env, token_file: Path
) -> None:
    token_file.write_text(_jwt({"submods": {"gce": {"project_number": TOKEN_NUMBER}}}))
    google.metadata_number = METADATA_NUMBER
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)

    assert sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv") == REAL_CSV
    assert sdk.gcp.project_number() == TOKEN_NUMBER
    assert google.metadata_calls() == [] and google.crm_calls() == []


def test_the_token_number_shapes_the_sts_audience(
    buckets, google, stage2_env, token_file: Path
) -> None:
    token_file.write_text(_jwt({"submods": {"gce": {"project_number": TOKEN_NUMBER}}}))
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    [exchange] = google.sts_calls()
    assert exchange.form()["audience"] == (
        f"//iam.googleapis.com/projects/{TOKEN_NUMBER}/locations/global/"
        f"workloadIdentityPools/{POOL}/providers/attestation-verifier"
    )


def test_without_a_token_claim_the_metadata_server_gives_the_number(
    buckets, google, stage2_env
) -> None:
    google.metadata_number = METADATA_NUMBER
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)

    assert sdk.gcp.project_number() == METADATA_NUMBER
    [call] = google.metadata_calls()
    assert call.headers["metadata-flavor"] == "Google"
    assert google.crm_calls() == []


def test_resource_manager_is_the_last_resort(buckets, google, stage2_env) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)

    assert sdk.gcp.project_number() == PROJECT_NUMBER
    assert len(google.metadata_calls()) == 1 and len(google.crm_calls()) == 1


def test_a_missing_storage_library_names_its_pip_package(
    buckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # as if not installed
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(sdk.MissingPackageError, match="%pip install google-cloud-storage"):
        repo.get_data("insurance.csv")


def test_a_missing_auth_library_in_stage2_names_google_auth(
    buckets, google, stage2_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.auth.identity_pool", None)
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT, project_number=1)
    with pytest.raises(sdk.MissingPackageError, match="'google-auth'"):
        sdk.gcp.credentials()


def test_the_missing_package_error_is_a_module_not_found_error() -> None:
    assert issubclass(sdk.MissingPackageError, ModuleNotFoundError)
