"""Stage detection from EXECUTION_STAGE and the two-stage rule of DataRepo."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import sdk


def test_unset_stage_means_stage1_with_a_single_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sdk.current_stage() == 1
        assert sdk.current_stage() == 1
    assert [str(w.message) for w in caught if "EXECUTION_STAGE" in str(w.message)] == [
        "EXECUTION_STAGE is not set; assuming stage 1 (JupyterLab, stage-1 data). "
        "The TEE sets EXECUTION_STAGE=2."
    ]


def test_plain_1_means_stage1_without_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sdk.current_stage() == 1


def test_quoted_2_as_helm_sets_it_means_stage2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, '"2"')
    assert sdk.current_stage() == 2


def test_single_quotes_and_blanks_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, " '2' ")
    assert sdk.current_stage() == 2


@pytest.mark.parametrize("value", ["3", "two", "stage2", '"1', "0"])
def test_any_other_value_is_an_error_naming_the_accepted_values(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, value)
    with pytest.raises(sdk.InvalidStageError) as caught:
        sdk.current_stage()
    message = str(caught.value)
    assert repr(value) in message
    assert "Accepted values are 1" in message
    assert "and 2" in message


def test_a_repo_keeps_the_stage_it_was_made_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "2")
    repo = sdk.DataRepo("a", "b")
    monkeypatch.setenv(sdk.STAGE_ENV, "1")
    assert repo.stage == 2
    assert repo.location == "b"


def test_a_repo_made_with_a_bad_stage_fails_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "prod")
    with pytest.raises(sdk.InvalidStageError):
        sdk.DataRepo("a", "b")


def test_reading_the_stage2_location_in_stage1_is_refused_with_an_explanation(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")
    (in_tmp / "real").mkdir()
    (in_tmp / "real" / "insurance.csv").write_text("secret")
    repo = sdk.DataRepo("synthetic", "real")
    with pytest.raises(sdk.StageAccessError) as caught:
        repo.get_data("insurance.csv", stage=2)
    message = str(caught.value)
    assert "'real'" in message
    assert "stage 1 in JupyterLab" in message
    assert "stage 2 inside the TEE" in message
    assert "picks the location of the current stage" in message


@pytest.mark.parametrize("method", ["get_bytes", "open", "read_csv", "list", "location_of"])
def test_every_read_method_refuses_stage2_data_in_stage1(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "1")
    repo = sdk.DataRepo("synthetic", "real")
    with pytest.raises(PermissionError):
        getattr(repo, method)("insurance.csv", stage=2)


def test_a_stage_other_than_1_or_2_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, "2")
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        sdk.DataRepo("a", "b").get_data("x", stage=3)
