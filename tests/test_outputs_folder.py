"""The outputs folder beside each notebook (``ManateeConfig.outputs_folder``): the panel is
told its name, and it never travels back in a later submission (stage-2 results would
otherwise go into the next stage-2 run)."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from jupyterlab_manatee.config import ManateeConfig
from tests.conftest import call

TOP = "alice-workspace"
REASON = "saved ManaTEE outputs (stage-2 results are never sent back)"
OUTPUT_FILE_REASON = "a saved ManaTEE output (stage-2 results are never sent back)"


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def submit(jp_fetch):
    body = {"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    return call(jp_fetch, "jobs", method="POST", body=body)


def manifest(jp_fetch):
    body = {"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    return call(jp_fetch, "manifest", method="POST", body=body)


def own_members(archive) -> set[str]:
    """Archive members other than the bundled SDK."""
    return {m.name for m in archive.getmembers() if not m.name.startswith(f"{TOP}/sdk")}


async def test_a_saved_output_never_travels_back_in_the_next_submission(
    jp_fetch, fault_server, notebook, jp_root_dir
):
    assert (await submit(jp_fetch))[0] == 200
    code, saved = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert (code, saved["filename"]) == (200, "analysis/manatee-outputs/out-7-nb.ipynb")
    assert (await submit(jp_fetch))[0] == 200
    _first, second = fault_server.requests_to("v1/job/submit/")
    with second.archive() as archive:
        assert own_members(archive) == {TOP, f"{TOP}/nb.ipynb", f"{TOP}/data.csv"}


async def test_the_manifest_lists_the_outputs_folder_as_excluded_with_its_reason(
    jp_fetch, fault_server, notebook
):
    outputs = notebook.parent / "manatee-outputs"
    outputs.mkdir()
    (outputs / "out-3-nb.ipynb").write_text("{}")
    (outputs / "out-3-nb.ipynb.attestation.json").write_text("{}")
    code, reply = await manifest(jp_fetch)
    assert code == 200
    assert reply["excluded"] == [{"path": "manatee-outputs/", "reason": REASON}]
    own = [f["path"] for f in reply["files"] if not f["path"].startswith("sdk/")]
    assert own == ["data.csv", "nb.ipynb"]
    assert fault_server.seen == []


async def test_a_sub_folders_outputs_folder_is_left_out_too(jp_fetch, fault_server, notebook):
    outputs = notebook.parent / "study" / "manatee-outputs"
    outputs.mkdir(parents=True)
    (outputs / "out-4-other.ipynb").write_text("{}")
    (notebook.parent / "study" / "other.ipynb").write_text("{}")
    code, reply = await manifest(jp_fetch)
    assert code == 200
    assert reply["excluded"] == [{"path": "study/manatee-outputs/", "reason": REASON}]
    assert "study/other.ipynb" in [f["path"] for f in reply["files"]]


async def test_an_output_left_beside_its_notebook_by_an_earlier_version_is_left_out(
    jp_fetch, fault_server, notebook
):
    (notebook.parent / "out-2-nb.ipynb").write_text("{}")
    (notebook.parent / "out-2-nb.ipynb.attestation.json").write_text("{}")
    code, reply = await manifest(jp_fetch)
    assert code == 200
    assert reply["excluded"] == [
        {"path": "out-2-nb.ipynb", "reason": OUTPUT_FILE_REASON},
        {"path": "out-2-nb.ipynb.attestation.json", "reason": OUTPUT_FILE_REASON},
    ]


async def test_a_notebook_without_an_attestation_beside_it_is_shipped(
    jp_fetch, fault_server, notebook
):
    (notebook.parent / "out-2-nb.ipynb").write_text("{}")
    (notebook.parent / "notes.attestation.json").write_text("{}")
    code, reply = await manifest(jp_fetch)
    assert code == 200
    assert reply["excluded"] == []
    own = [f["path"] for f in reply["files"] if not f["path"].startswith("sdk/")]
    assert own == ["data.csv", "nb.ipynb", "notes.attestation.json", "out-2-nb.ipynb"]


async def test_a_file_named_like_the_outputs_folder_is_shipped(jp_fetch, fault_server, notebook):
    (notebook.parent / "manatee-outputs").write_text("a file, not the extension's folder")
    code, reply = await manifest(jp_fetch)
    assert code == 200
    assert reply["excluded"] == []
    assert "manatee-outputs" in [f["path"] for f in reply["files"]]


async def test_a_notebook_inside_an_outputs_folder_is_refused_before_anything_is_sent(
    jp_fetch, fault_server, notebook
):
    outputs = notebook.parent / "manatee-outputs"
    outputs.mkdir()
    (outputs / "out-3-nb.ipynb").write_text(notebook.read_text())
    body = {"path": "analysis/manatee-outputs/out-3-nb.ipynb", "filename": "out-3-nb.ipynb"}
    for route in ("manifest", "jobs"):
        code, reply = await call(jp_fetch, route, method="POST", body=body)
        assert (code, reply["message"]) == (
            400,
            "The notebook 'out-3-nb.ipynb' is in 'analysis/manatee-outputs', a folder of saved "
            "ManaTEE outputs: submitting it would send stage-2 results back. Copy the notebook "
            "into its source folder and submit it from there.",
        )
    assert fault_server.seen == []


async def test_the_config_reply_names_the_outputs_folder(jp_fetch, fault_server):
    code, reply = await call(jp_fetch, "config")
    assert (code, reply["outputs_folder"]) == (200, "manatee-outputs")


class TestAnotherOutputsFolder:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "outputs_folder": "results"}

    async def test_the_config_reply_names_the_configured_folder(self, jp_fetch, fault_server):
        code, reply = await call(jp_fetch, "config")
        assert (code, reply["outputs_folder"]) == (200, "results")

    async def test_the_configured_folder_is_excluded_and_the_default_name_is_not(
        self, jp_fetch, fault_server, notebook
    ):
        (notebook.parent / "results").mkdir()
        (notebook.parent / "results" / "out-3-nb.ipynb").write_text("{}")
        (notebook.parent / "manatee-outputs").mkdir()
        (notebook.parent / "manatee-outputs" / "kept.csv").write_text("x\n")
        code, reply = await manifest(jp_fetch)
        assert code == 200
        assert reply["excluded"] == [{"path": "results/", "reason": REASON}]
        assert "manatee-outputs/kept.csv" in [f["path"] for f in reply["files"]]


class TestNoOutputsFolder:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "outputs_folder": ""}

    async def test_an_empty_setting_excludes_nothing_and_is_told_as_empty(
        self, jp_fetch, fault_server, notebook
    ):
        (notebook.parent / "manatee-outputs").mkdir()
        (notebook.parent / "manatee-outputs" / "kept.csv").write_text("x\n")
        (notebook.parent / "out-2-nb.ipynb").write_text("{}")
        (notebook.parent / "out-2-nb.ipynb.attestation.json").write_text("{}")
        _code, config = await call(jp_fetch, "config")
        code, reply = await manifest(jp_fetch)
        assert (config["outputs_folder"], code, reply["excluded"]) == ("", 200, [])


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", "a\\b", " x", "x\n"])
def test_an_outputs_folder_that_is_not_one_folder_name_is_refused(name):
    with pytest.raises(TraitError, match=r"c\.ManateeConfig\.outputs_folder = "):
        ManateeConfig(outputs_folder=name)
