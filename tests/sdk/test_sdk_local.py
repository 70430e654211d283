"""Local paths and file:// locations, and the {name} placeholder."""

from __future__ import annotations

import os
from pathlib import Path

import pandas
import pytest
from sdk_support import INSURANCE_CSV, REAL_CSV

import sdk


@pytest.fixture(autouse=True)
def stage1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")


@pytest.fixture
def notebook_folder(in_tmp: Path) -> Path:
    """A notebook folder holding data/insurance.csv.s1 and .s2, as the tutorials do."""
    (in_tmp / "data").mkdir()
    (in_tmp / "data" / "insurance.csv.s1").write_text(INSURANCE_CSV)
    (in_tmp / "data" / "insurance.csv.s2").write_text(REAL_CSV)
    return in_tmp


def test_a_placeholder_location_reads_the_stage1_file_in_stage1(notebook_folder: Path) -> None:
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_a_placeholder_location_reads_the_stage2_file_in_stage2(
    notebook_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "2")
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    assert repo.get_data("insurance.csv") == REAL_CSV


def test_without_a_placeholder_the_name_is_joined_as_to_a_folder(notebook_folder: Path) -> None:
    (notebook_folder / "synthetic").mkdir()
    (notebook_folder / "synthetic" / "insurance.csv").write_text(INSURANCE_CSV)
    repo = sdk.DataRepo("synthetic", "real")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV
    assert repo.location_of("insurance.csv") == str(notebook_folder / "synthetic" / "insurance.csv")


def test_relative_paths_resolve_against_the_directory_current_at_creation(
    notebook_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory
) -> None:
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_relative_file_uri_is_relative_to_the_notebook_folder(notebook_folder: Path) -> None:
    repo = sdk.DataRepo("file://data/{name}.s1", "file://data/{name}.s2")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_absolute_file_uri_reads_the_absolute_path(notebook_folder: Path) -> None:
    folder = notebook_folder / "data"
    repo = sdk.DataRepo(f"file://{folder}/{{name}}.s1", "file:///nowhere")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_a_path_object_is_accepted_as_a_location(notebook_folder: Path) -> None:
    repo = sdk.DataRepo(notebook_folder / "data", Path("real"))
    assert repo.get_bytes("insurance.csv.s1") == INSURANCE_CSV.encode()


def test_read_csv_of_a_local_file_returns_a_dataframe(notebook_folder: Path) -> None:
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    frame = repo.read_csv("insurance.csv")
    assert isinstance(frame, pandas.DataFrame)
    assert frame.shape == (3, 7)


def test_open_streams_a_local_file(notebook_folder: Path) -> None:
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    with repo.open("insurance.csv") as handle:
        assert handle.readline() == b"age,sex,bmi,children,smoker,region,charges\n"


def test_a_missing_file_is_file_not_found_naming_the_full_path(notebook_folder: Path) -> None:
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    expected = str(notebook_folder / "data" / "claims.csv.s1")
    for read in (repo.get_data, repo.get_bytes, repo.open, repo.read_csv):
        with pytest.raises(FileNotFoundError) as caught:
            read("claims.csv")
        assert expected in str(caught.value)
        assert "stage-1 location 'data/{name}.s1'" in str(caught.value)


def test_list_with_a_placeholder_returns_the_names_of_matching_files(notebook_folder: Path) -> None:
    (notebook_folder / "data" / "sub").mkdir()
    (notebook_folder / "data" / "sub" / "claims.csv.s1").write_text("x")
    (notebook_folder / "data" / "notes.txt").write_text("x")
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    assert repo.list() == ["insurance.csv", "sub/claims.csv"]
    assert repo.list("sub/") == ["sub/claims.csv"]
    assert repo.get_data("sub/claims.csv") == "x"


def test_list_of_a_missing_folder_is_file_not_found(notebook_folder: Path) -> None:
    repo = sdk.DataRepo("nothing-here", "real")
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        repo.list()


@pytest.mark.parametrize("name", ["../secret.csv", "a/../../b", "/etc/passwd", "", " x"])
def test_names_that_would_leave_the_location_are_rejected(notebook_folder: Path, name: str) -> None:
    repo = sdk.DataRepo("data", "real")
    with pytest.raises(ValueError, match="invalid data name"):
        repo.get_data(name)


@pytest.mark.parametrize(
    ("location", "hint"),
    [
        ("ftp://host/data", "supported are gs://"),
        ("s3://bucket/data", "https://host/path"),
        ("http://host/data", "plain http is not supported"),
    ],
)
def test_an_unsupported_scheme_is_an_error_listing_the_supported_ones(
    location: str, hint: str
) -> None:
    with pytest.raises(sdk.UnsupportedLocationError, match=hint) as caught:
        sdk.DataRepo("data", location)
    assert "file://" in str(caught.value)


@pytest.mark.parametrize(
    "location", ["gs://", "gs:///prefix", "gs://{name}/x", "data/{name}/{name}", "https:///x", " "]
)
def test_malformed_locations_are_rejected_at_creation(location: str) -> None:
    with pytest.raises(sdk.UnsupportedLocationError):
        sdk.DataRepo(location, "data")


def test_stage1_data_can_be_read_in_stage2_on_request(
    notebook_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "2")
    repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
    assert repo.get_data("insurance.csv", stage=1) == INSURANCE_CSV


def test_get_data_decodes_with_the_given_encoding(notebook_folder: Path) -> None:
    (notebook_folder / "data" / "latin.txt").write_bytes("café".encode("latin-1"))
    repo = sdk.DataRepo("data", "real")
    assert repo.get_data("latin.txt", encoding="latin-1") == "café"


def test_the_compatibility_api_exists() -> None:
    assert isinstance(sdk.__version__, str) and sdk.__version__[0].isdigit()
    assert callable(sdk.gcp.init)
    assert os.path.basename(os.path.dirname(sdk.__file__)) == "sdk"
