"""Stage 2 end to end: google-auth's real external_account code against local STS and
IAM Credentials servers, the attestation token file, and reads from the GCS emulator."""

from __future__ import annotations

import pytest
from sdk_support import (
    ATTESTATION_TOKEN,
    INSURANCE_CSV,
    POOL,
    PROJECT_ID,
    PROJECT_NUMBER,
    REAL_CSV,
    SA_EMAIL,
    SERVICE_ACCOUNT,
    STS_TOKEN,
)

import sdk

AUDIENCE = (
    f"//iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/"
    f"workloadIdentityPools/{POOL}/providers/attestation-verifier"
)


@pytest.fixture
def buckets(gcs):
    gcs.put("stage1", "insurance.csv", INSURANCE_CSV)
    gcs.put("stage2", "insurance.csv", REAL_CSV)
    return gcs


def test_stage2_reads_the_stage2_bucket_with_federated_credentials(
    buckets, google, stage2_env
) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    assert repo.stage == 2
    assert repo.get_data("insurance.csv") == REAL_CSV


def test_the_token_exchange_carries_the_attestation_token_and_the_audience(
    buckets, google, stage2_env
) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    [exchange] = google.sts_calls()
    form = exchange.form()
    assert form["subject_token"] == ATTESTATION_TOKEN
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert form["audience"] == AUDIENCE
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"


def test_impersonation_names_the_tee_service_account_and_uses_the_sts_token(
    buckets, google, stage2_env
) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    [impersonation] = google.iam_calls()
    assert impersonation.path == (f"/v1/projects/-/serviceAccounts/{SA_EMAIL}:generateAccessToken")
    assert impersonation.headers["authorization"] == f"Bearer {STS_TOKEN}"
    assert "https://www.googleapis.com/auth/cloud-platform" in impersonation.json()["scope"]


def test_the_project_number_is_looked_up_with_resource_manager_v3(
    buckets, google, stage2_env
) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    [lookup] = google.crm_calls()
    assert lookup.path == f"/v3/projects/{PROJECT_ID}"
    assert sdk.gcp.project_number() == PROJECT_NUMBER


def test_a_given_project_number_and_provider_skip_the_lookup_and_shape_the_audience(
    buckets, google, stage2_env
) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT, project_number=42, provider="custom")
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    assert google.crm_calls() == []
    [exchange] = google.sts_calls()
    assert exchange.form()["audience"] == (
        f"//iam.googleapis.com/projects/42/locations/global/"
        f"workloadIdentityPools/{POOL}/providers/custom"
    )


def test_keyword_settings_override_the_environment(
    buckets, google, stage2_env, tmp_path, monkeypatch
) -> None:
    other_token = tmp_path / "other-token"
    other_token.write_text("token-given-by-keyword")
    monkeypatch.setenv(sdk.gcp.ENV_STS_URL, "http://127.0.0.1:9/unused")
    sdk.gcp.init(
        PROJECT_ID,
        POOL,
        SERVICE_ACCOUNT,
        token_path=other_token,
        sts_url=f"{google.url}/v1/token",
    )
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    [exchange] = google.sts_calls()
    assert exchange.form()["subject_token"] == "token-given-by-keyword"


def test_stage2_may_read_the_stage1_location_on_request(buckets, google, stage2_env) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    assert repo.get_data("insurance.csv", stage=1) == INSURANCE_CSV


def test_stage1_init_and_reads_contact_nothing_of_stage2(buckets, google, monkeypatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")
    monkeypatch.setenv(sdk.gcp.ENV_STS_URL, f"{google.url}/v1/token")
    monkeypatch.setenv(sdk.gcp.ENV_IAM_CREDENTIALS_URL, google.url)
    monkeypatch.setenv(sdk.gcp.ENV_RESOURCE_MANAGER_URL, google.url)
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    assert sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv") == INSURANCE_CSV
    assert google.calls == []


def test_stage2_without_init_explains_that_init_is_needed(buckets, stage2_env) -> None:
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(sdk.CredentialsError, match=r"sdk\.gcp\.init\("):
        repo.get_data("insurance.csv")


def test_a_missing_attestation_token_file_is_explained(
    buckets, google, stage2_env, tmp_path
) -> None:
    missing = tmp_path / "no-token-here"
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT, token_path=missing)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(sdk.CredentialsError, match="attestation token file") as caught:
        repo.get_data("insurance.csv")
    assert str(missing) in str(caught.value)
    assert google.sts_calls() == []


def test_a_refused_token_exchange_names_the_identity_and_stage2(
    buckets, google, stage2_env
) -> None:
    google.sts_error = "attribute condition not met"
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(PermissionError) as caught:
        repo.get_data("insurance.csv")
    message = str(caught.value)
    assert SA_EMAIL in message
    assert "stage 2" in message
    assert "attribute condition not met" in message


def test_a_stage2_permission_failure_names_the_service_account(
    denying_storage, google, stage2_env
) -> None:
    sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(PermissionError) as caught:
        repo.get_data("insurance.csv")
    message = str(caught.value)
    assert "gs://stage2/insurance.csv" in message
    assert SA_EMAIL in message
    assert "stage 2" in message
    assert len(google.sts_calls()) == 1


def test_a_failed_project_lookup_says_how_to_skip_it(buckets, google, stage2_env) -> None:
    sdk.gcp.init("someone-elses-project", POOL, SERVICE_ACCOUNT)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(sdk.CredentialsError, match="project_number=") as caught:
        repo.get_data("insurance.csv")
    assert "HTTP 403" in str(caught.value)


def test_a_full_service_account_email_is_used_as_given(buckets, google, stage2_env) -> None:
    email = "runner@other-project.iam.gserviceaccount.com"
    sdk.gcp.init(PROJECT_ID, POOL, email)
    sdk.DataRepo("gs://stage1", "gs://stage2").get_data("insurance.csv")
    [impersonation] = google.iam_calls()
    assert f"/serviceAccounts/{email}:generateAccessToken" in impersonation.path


def test_init_rejects_empty_arguments_and_a_non_numeric_project_number() -> None:
    with pytest.raises(ValueError, match="pool_name"):
        sdk.gcp.init(PROJECT_ID, "", SERVICE_ACCOUNT)
    with pytest.raises(ValueError, match="project_number"):
        sdk.gcp.init(PROJECT_ID, POOL, SERVICE_ACCOUNT, project_number="abc")
