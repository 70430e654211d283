"""Saving outputs: in the outputs folder beside the submitting notebook, never overwriting,
never outside the contents root, nothing left behind on failure."""

from __future__ import annotations

import pytest

from tests.conftest import call, write_notebook

JOB_UUID = "00000000-1111-2222-3333-444444444444"  # what the recording API hands out


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def files_under(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def fetch_output(jp_fetch, job_id=7):
    return await call(jp_fetch, "output", method="POST", body={"id": job_id})


async def submit_nb(jp_fetch) -> None:
    """Submit analysis/nb.ipynb; the recording API numbers the job 7."""
    code, _ = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert code == 200


async def test_output_of_a_job_this_server_submitted_lands_in_the_outputs_folder_by_its_notebook(
    jp_fetch, fault_server, notebook, jp_root_dir
):
    await submit_nb(jp_fetch)
    await call(jp_fetch, "jobs")  # the list tells the extension the job's numeric id
    code, reply = await fetch_output(jp_fetch)
    assert code == 200
    assert {k: v for k, v in reply.items() if k != "attestation"} == {
        "code": 0,
        "msg": "Success",
        "filename": "analysis/manatee-outputs/out-7-nb.ipynb",
        "path": "analysis/manatee-outputs/out-7-nb.ipynb",
        "errors": None,  # the stand-in's output is 200 JSON objects in a row: no notebook
        "errors_message": None,
    }
    assert (jp_root_dir / "analysis/manatee-outputs/out-7-nb.ipynb").read_bytes() == (
        fault_server.file_body
    )


async def test_the_attestation_lands_beside_the_output_in_the_outputs_folder(
    jp_fetch, fault_server, notebook, jp_root_dir
):
    await submit_nb(jp_fetch)
    _code, reply = await fetch_output(jp_fetch)
    assert reply["attestation"]["path"] == (
        "analysis/manatee-outputs/out-7-nb.ipynb.attestation.json"
    )
    assert sorted(p.name for p in (jp_root_dir / "analysis/manatee-outputs").iterdir()) == [
        "out-7-nb.ipynb",
        "out-7-nb.ipynb.attestation.json",
    ]


async def test_output_is_found_beside_its_notebook_even_before_the_job_list_was_seen(
    jp_fetch, fault_server, notebook
):
    await submit_nb(jp_fetch)
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, "analysis/manatee-outputs/out-7-nb.ipynb")


async def test_a_second_output_of_a_job_never_overwrites_the_first_nor_its_attestation(
    jp_fetch, fault_server, notebook, jp_root_dir
):
    await submit_nb(jp_fetch)
    _code, first = await fetch_output(jp_fetch)
    folder = jp_root_dir / "analysis/manatee-outputs"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    fault_server.file_body = b'{"cells": [], "second": true}'  # the job ran again
    code, second = await fetch_output(jp_fetch)
    assert code == 200
    assert (first["filename"], second["filename"]) == (
        "analysis/manatee-outputs/out-7-nb.ipynb",
        "analysis/manatee-outputs/out-7-nb-1.ipynb",
    )
    assert second["attestation"]["path"] == (
        "analysis/manatee-outputs/out-7-nb-1.ipynb.attestation.json"
    )
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert (folder / "out-7-nb-1.ipynb").read_bytes() == b'{"cells": [], "second": true}'


async def test_a_file_in_the_way_of_the_outputs_folder_is_409_and_kept(
    jp_fetch, fault_server, notebook, jp_root_dir
):
    await submit_nb(jp_fetch)
    (jp_root_dir / "analysis/manatee-outputs").write_text("my notes")
    code, reply = await fetch_output(jp_fetch)
    assert code == 409
    assert reply["message"] == (
        "Cannot save the output into 'analysis/manatee-outputs': a file of that name is in "
        "the way. Rename or move that file, then fetch the output again."
    )
    assert (jp_root_dir / "analysis/manatee-outputs").read_text() == "my notes"
    assert files_under(jp_root_dir) == {
        "analysis/nb.ipynb",
        "analysis/data.csv",
        "analysis/manatee-outputs",
    }


async def test_an_outputs_folder_linking_out_of_the_root_is_refused(
    jp_fetch, fault_server, notebook, jp_root_dir, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    await submit_nb(jp_fetch)
    (jp_root_dir / "analysis/manatee-outputs").symlink_to(outside)
    code, reply = await fetch_output(jp_fetch)
    assert code == 400
    assert reply["message"] == (
        "Output folder 'analysis/manatee-outputs' leads outside the contents root"
    )
    assert list(outside.iterdir()) == []


class TestOutputsFolderSetting:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "outputs_folder": "results"}

    async def test_the_setting_names_the_folder_beside_the_notebook(
        self, jp_fetch, fault_server, notebook, jp_root_dir
    ):
        await submit_nb(jp_fetch)
        code, reply = await fetch_output(jp_fetch)
        assert (code, reply["filename"]) == (200, "analysis/results/out-7-nb.ipynb")
        assert reply["attestation"]["path"] == "analysis/results/out-7-nb.ipynb.attestation.json"


class TestOutputsBesideTheNotebook:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "outputs_folder": ""}

    async def test_an_empty_setting_saves_beside_the_notebook_as_before(
        self, jp_fetch, fault_server, notebook, jp_root_dir
    ):
        await submit_nb(jp_fetch)
        code, reply = await fetch_output(jp_fetch)
        assert (code, reply["filename"]) == (200, "analysis/out-7-nb.ipynb")
        assert reply["attestation"]["path"] == "analysis/out-7-nb.ipynb.attestation.json"


async def test_a_notebook_at_the_root_gets_its_outputs_folder_at_the_root(
    jp_fetch, fault_server, jp_root_dir
):
    write_notebook(jp_root_dir / "nb.ipynb")
    code, _ = await call(
        jp_fetch, "jobs", method="POST", body={"path": "nb.ipynb", "filename": "nb.ipynb"}
    )
    assert code == 200
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, "manatee-outputs/out-7-nb.ipynb")


async def test_output_of_an_unknown_job_goes_to_the_output_folder(
    jp_fetch, fault_server, jp_root_dir
):
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, "manatee-outputs/out-7-nb.ipynb")
    assert (jp_root_dir / "manatee-outputs/out-7-nb.ipynb").read_bytes() == fault_server.file_body


async def test_existing_files_are_never_overwritten(jp_fetch, fault_server, jp_root_dir):
    folder = jp_root_dir / "manatee-outputs"
    folder.mkdir()
    (folder / "out-7-nb.ipynb").write_text("mine")
    (folder / "out-7-nb-1.ipynb").write_text("mine too")
    _code, reply = await fetch_output(jp_fetch)
    assert reply["filename"] == "manatee-outputs/out-7-nb-2.ipynb"
    assert (folder / "out-7-nb.ipynb").read_text() == "mine"
    assert (folder / "out-7-nb-1.ipynb").read_text() == "mine too"
    _code, reply = await fetch_output(jp_fetch)
    assert reply["filename"] == "manatee-outputs/out-7-nb-3.ipynb"


HOSTILE_API_FILENAMES = [
    "sdk.py",
    "../x.ipynb",
    "x.ipynb.py",
    "__init__.py",
    "../../../../tmp/evil.ipynb",
    "/etc/cron.d/evil",
    "..",
    "",
    ".bashrc",
    "a\\..\\..\\evil.ipynb",
    "out-7-nb.ipynb/../sdk.py",
]


@pytest.mark.parametrize("api_filename", HOSTILE_API_FILENAMES)
async def test_the_api_filename_never_names_the_saved_output(
    jp_fetch, fault_server, jp_root_dir, api_filename
):
    """A job this server did not submit: named from the job list's notebook."""
    fault_server.output_filename = api_filename
    code, reply = await fetch_output(jp_fetch)
    assert code == 200
    assert reply["filename"] == "manatee-outputs/out-7-nb.ipynb"
    assert files_under(jp_root_dir) == {
        "manatee-outputs/out-7-nb.ipynb",
        "manatee-outputs/out-7-nb.ipynb.attestation.json",
    }


@pytest.mark.parametrize("api_filename", ["sdk.py", "x.ipynb.py", "../x.ipynb", "nb.ipynb"])
async def test_an_api_cannot_plant_code_beside_the_submitting_notebook(
    jp_fetch, fault_server, notebook, jp_root_dir, api_filename
):
    """The output lands in analysis/manatee-outputs, named from this server's record: no
    ``sdk.py`` for the notebook's next ``import sdk`` to run."""
    await submit_nb(jp_fetch)
    fault_server.output_filename = api_filename
    fault_server.listed_notebook = "sdk.py"  # the record of the submission wins
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, "analysis/manatee-outputs/out-7-nb.ipynb")
    assert files_under(jp_root_dir) == {
        "analysis/nb.ipynb",
        "analysis/data.csv",
        "analysis/manatee-outputs/out-7-nb.ipynb",
        "analysis/manatee-outputs/out-7-nb.ipynb.attestation.json",
    }


@pytest.mark.parametrize(
    ("listed_notebook", "saved"),
    [
        ("sdk.py", "out-7.ipynb"),
        ("x.ipynb.py", "out-7.ipynb"),
        ("../x.ipynb", "out-7-x.ipynb"),
        ("/abs/dir/x.ipynb", "out-7-x.ipynb"),
        (".ipynb", "out-7.ipynb"),
        (".hidden.ipynb", "out-7.ipynb"),
        ("a\nb.ipynb", "out-7.ipynb"),
        ("", "out-7.ipynb"),
    ],
)
async def test_a_hostile_job_list_notebook_name_still_gives_an_ipynb(
    jp_fetch, fault_server, jp_root_dir, listed_notebook, saved
):
    fault_server.output_filename = "sdk.py"
    fault_server.listed_notebook = listed_notebook
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, f"manatee-outputs/{saved}")
    assert files_under(jp_root_dir) == {
        f"manatee-outputs/{saved}",
        f"manatee-outputs/{saved}.attestation.json",
    }


async def test_a_broken_transfer_leaves_no_partial_file(jp_fetch, fault_server, jp_root_dir):
    (jp_root_dir / "manatee-outputs").mkdir()
    fault_server.mode = "truncated"
    code, _ = await fetch_output(jp_fetch)
    assert code == 502
    assert files_under(jp_root_dir) == set()


@pytest.mark.parametrize(
    "body", [{}, {"id": 0}, {"id": -3}, {"id": "x"}, {"id": 1.5}, {"id": True}]
)
async def test_bad_job_ids_are_400(jp_fetch, fault_server, body):
    code, reply = await call(jp_fetch, "output", method="POST", body=body)
    assert code == 400 and "id" in reply["message"]
    assert fault_server.seen == []


class TestOutputFolderOutsideRoot:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "output_dir": "../escape"}

    async def test_an_output_folder_outside_the_root_is_refused(
        self, jp_fetch, fault_server, jp_root_dir
    ):
        code, reply = await fetch_output(jp_fetch)
        assert code == 400 and "contents root" in reply["message"]
        assert not (jp_root_dir.parent / "escape").exists()


async def test_saved_outputs_are_read_only_so_the_attested_bytes_stay_as_downloaded(
    jp_fetch, fault_server, jp_root_dir
):
    code, reply = await fetch_output(jp_fetch)
    assert code == 200
    mode = (jp_root_dir / reply["filename"]).stat().st_mode & 0o777
    assert mode == 0o444
