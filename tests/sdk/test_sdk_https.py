"""https:// locations, read with requests from a local TLS server."""

from __future__ import annotations

import io

import pytest
from sdk_support import INSURANCE_CSV

import sdk


@pytest.fixture(autouse=True)
def stage1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")


def test_get_data_fetches_the_name_below_the_url(https_files) -> None:
    https_files.files["/public/insurance.csv"] = INSURANCE_CSV.encode()
    repo = sdk.DataRepo(f"{https_files.url}/public", f"{https_files.url}/real")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_a_placeholder_and_a_query_string_are_kept_in_place(https_files) -> None:
    https_files.files["/files/insurance.csv.s1?sig=abc"] = INSURANCE_CSV.encode()
    repo = sdk.DataRepo(f"{https_files.url}/files/{{name}}.s1?sig=abc", "real")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_a_query_string_without_placeholder_goes_after_the_name(https_files) -> None:
    https_files.files["/files/insurance.csv?sig=abc"] = b"ok"
    repo = sdk.DataRepo(f"{https_files.url}/files/?sig=abc", "real")
    assert repo.get_data("insurance.csv") == "ok"


def test_names_are_percent_encoded_in_the_url(https_files) -> None:
    https_files.files["/public/my%20data.csv"] = b"spaced"
    repo = sdk.DataRepo(f"{https_files.url}/public", "real")
    assert repo.get_data("my data.csv") == "spaced"


def test_read_csv_streams_the_response_into_a_dataframe(https_files) -> None:
    https_files.files["/public/insurance.csv"] = INSURANCE_CSV.encode()
    repo = sdk.DataRepo(f"{https_files.url}/public", "real")
    frame = repo.read_csv("insurance.csv", nrows=2)
    assert frame["charges"].tolist() == [16884.924, 1725.5523]


def test_open_returns_a_readable_binary_stream(https_files) -> None:
    https_files.files["/public/blob.bin"] = bytes(range(256)) * 1000
    repo = sdk.DataRepo(f"{https_files.url}/public", "real")
    with repo.open("blob.bin") as handle:
        assert isinstance(handle, io.BufferedIOBase)
        assert handle.read(3) == b"\x00\x01\x02"
        assert len(handle.read()) == 256 * 1000 - 3


def test_a_404_is_file_not_found_naming_the_url(https_files) -> None:
    repo = sdk.DataRepo(f"{https_files.url}/public", "real")
    with pytest.raises(FileNotFoundError, match=rf"{https_files.url}/public/missing\.csv"):
        repo.get_data("missing.csv")


def test_a_403_is_a_permission_error_naming_the_identity_and_stage(https_files) -> None:
    repo = sdk.DataRepo(f"{https_files.url}/private", "real")
    with pytest.raises(PermissionError) as caught:
        repo.get_bytes("insurance.csv")
    message = str(caught.value)
    assert "HTTP 403" in message
    assert "anonymous HTTPS request" in message
    assert "read in stage 1" in message


def test_an_untrusted_certificate_is_refused(https_files, monkeypatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    https_files.files["/public/insurance.csv"] = b"x"
    repo = sdk.DataRepo(f"{https_files.url}/public", "real")
    with pytest.raises(OSError, match="could not fetch"):
        repo.get_data("insurance.csv")


def test_https_locations_cannot_be_listed(https_files) -> None:
    repo = sdk.DataRepo(f"{https_files.url}/public", "real")
    with pytest.raises(io.UnsupportedOperation, match="cannot be listed"):
        repo.list()


def test_a_signed_url_query_is_kept_out_of_error_messages(https_files, monkeypatch) -> None:
    repo = sdk.DataRepo(f"{https_files.url}/files/{{name}}?sig=SECRET", "real")
    with pytest.raises(FileNotFoundError) as missing:
        repo.get_data("insurance.csv")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(OSError) as untrusted:
        repo.get_data("insurance.csv")
    for error in (missing.value, untrusted.value):
        assert "SECRET" not in str(error)
        assert f"{https_files.url}/files/insurance.csv?..." in str(error)
