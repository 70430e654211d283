"""gs:// locations, read in stage 1 against the in-process GCS emulator."""

from __future__ import annotations

import hashlib
import os
import re
import time

import pandas
import pytest
from sdk_support import INSURANCE_CSV

import sdk


@pytest.fixture(autouse=True)
def stage1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, '"1"')


def test_get_data_returns_the_object_text_from_the_stage1_bucket(gcs) -> None:
    gcs.put("stage1", "insurance.csv", INSURANCE_CSV)
    gcs.put("stage2", "insurance.csv", "real,data\n")
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_get_bytes_returns_binary_content_unchanged(gcs) -> None:
    payload = bytes(range(256)) * 4
    gcs.put("stage1", "blob.bin", payload)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    assert repo.get_bytes("blob.bin") == payload


def test_read_csv_returns_a_dataframe_and_passes_pandas_arguments(gcs) -> None:
    gcs.put("stage1", "insurance.csv", INSURANCE_CSV)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    frame = repo.read_csv("insurance.csv", usecols=["age", "charges"])
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["age", "charges"]
    assert frame["age"].tolist() == [19, 18, 28]


def test_a_prefix_location_joins_the_name_without_a_leading_slash(gcs) -> None:
    gcs.put("stage1", "tables/2024/insurance.csv", INSURANCE_CSV)
    repo = sdk.DataRepo("gs://stage1/tables/2024", "gs://stage2/tables/2024")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV
    assert repo.location_of("insurance.csv") == "gs://stage1/tables/2024/insurance.csv"


def test_a_prefix_location_with_a_trailing_slash_names_the_same_object(gcs) -> None:
    gcs.put("stage1", "tables/insurance.csv", INSURANCE_CSV)
    repo = sdk.DataRepo("gs://stage1/tables/", "gs://stage2/")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_a_name_placeholder_puts_the_name_inside_the_object_name(gcs) -> None:
    gcs.put("stage1", "synthetic/insurance.csv.s1", INSURANCE_CSV)
    repo = sdk.DataRepo("gs://stage1/synthetic/{name}.s1", "gs://stage2/{name}")
    assert repo.get_data("insurance.csv") == INSURANCE_CSV


def test_a_50_mb_object_is_streamed_in_pieces_and_arrives_intact(gcs) -> None:
    payload = os.urandom(1 << 20) * 50
    gcs.put("stage1", "big.bin", payload)
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    gcs.emulator.log.lines.clear()
    digest = hashlib.sha256()
    with repo.open("big.bin") as handle:
        while piece := handle.read(4 << 20):
            digest.update(piece)
    assert digest.digest() == hashlib.sha256(payload).digest()
    ranged = [line for line in gcs.requests() if "/download/" in line and '" 206' in line]
    assert len(ranged) >= 2


def test_a_missing_object_is_file_not_found_naming_the_full_location(gcs) -> None:
    gcs.put("stage1", "tables/other.csv", "x")
    repo = sdk.DataRepo("gs://stage1/tables", "gs://stage2")
    with pytest.raises(FileNotFoundError, match=r"gs://stage1/tables/missing\.csv"):
        repo.get_data("missing.csv")


def test_opening_a_missing_object_fails_at_open_not_at_first_read(gcs) -> None:
    gcs.put("stage1", "other.csv", "x")
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(FileNotFoundError, match=r"gs://stage1/missing\.csv"):
        repo.open("missing.csv")


def test_list_returns_the_names_under_the_prefix_usable_with_get_data(gcs) -> None:
    for name in ("tables/a.csv", "tables/sub/b.csv", "other/c.csv"):
        gcs.put("stage1", name, name)
    repo = sdk.DataRepo("gs://stage1/tables", "gs://stage2")
    assert repo.list() == ["a.csv", "sub/b.csv"]
    assert repo.list("sub/") == ["sub/b.csv"]
    assert repo.get_data(repo.list()[1]) == "tables/sub/b.csv"


def test_list_with_a_placeholder_keeps_only_matching_names(gcs) -> None:
    for name in ("data/a.csv.s1", "data/a.csv.s2", "data/b.csv.s1"):
        gcs.put("stage1", name, name)
    repo = sdk.DataRepo("gs://stage1/data/{name}.s1", "gs://stage2")
    assert repo.list() == ["a.csv", "b.csv"]


def test_reads_make_no_bucket_metadata_request(gcs) -> None:
    """An object-viewer role cannot read bucket metadata, so the SDK must never ask."""
    gcs.put("stage1", "p/insurance.csv", INSURANCE_CSV)
    gcs.emulator.log.lines.clear()
    repo = sdk.DataRepo("gs://stage1/p", "gs://stage2/p")
    repo.get_data("insurance.csv")
    repo.list()
    with repo.open("insurance.csv") as handle:
        handle.read()
    time.sleep(0.3)  # the storage library would ask from a background thread
    requested = gcs.requests()
    assert len(requested) >= 3
    assert not [line for line in requested if re.search(r"/b/stage1[?\s]", line)]


def test_stage1_permission_failure_names_the_identity_and_the_stage(denying_storage) -> None:
    repo = sdk.DataRepo("gs://stage1", "gs://stage2")
    with pytest.raises(PermissionError) as caught:
        repo.get_data("insurance.csv")
    message = str(caught.value)
    assert "gs://stage1/insurance.csv" in message
    assert "anonymous access to the storage emulator" in message
    assert "stage 1" in message
