"""Saving outputs: beside the submitting notebook, never overwriting, never outside the
contents root, nothing left behind on failure."""

from __future__ import annotations

import pytest

from tests.conftest import call

JOB_UUID = "00000000-1111-2222-3333-444444444444"  # what the recording API hands out


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def files_under(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def fetch_output(jp_fetch, job_id=7):
    return await call(jp_fetch, "output", method="POST", body={"id": job_id})


async def test_output_of_a_job_this_server_submitted_lands_beside_its_notebook(
    jp_fetch, fault_server, notebook, jp_root_dir
):
    code, _ = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert code == 200
    await call(jp_fetch, "jobs")  # the list tells the extension the job's numeric id
    code, reply = await fetch_output(jp_fetch)
    assert code == 200
    assert {k: v for k, v in reply.items() if k != "attestation"} == {
        "code": 0,
        "msg": "Success",
        "filename": "analysis/out-7-nb.ipynb",
        "path": "analysis/out-7-nb.ipynb",
        "errors": None,  # the stand-in's output is 200 JSON objects in a row: no notebook
        "errors_message": None,
    }
    assert reply["attestation"]["path"] == "analysis/out-7-nb.ipynb.attestation.json"
    assert (jp_root_dir / "analysis/out-7-nb.ipynb").read_bytes() == fault_server.file_body


async def test_output_is_found_beside_its_notebook_even_before_the_job_list_was_seen(
    jp_fetch, fault_server, notebook
):
    await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, "analysis/out-7-nb.ipynb")


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
    """The output lands beside analysis/nb.ipynb, named from this server's record: no
    ``sdk.py`` for the notebook's next ``import sdk`` to run."""
    code, _ = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert code == 200
    fault_server.output_filename = api_filename
    fault_server.listed_notebook = "sdk.py"  # the record of the submission wins
    code, reply = await fetch_output(jp_fetch)
    assert (code, reply["filename"]) == (200, "analysis/out-7-nb.ipynb")
    assert files_under(jp_root_dir) == {
        "analysis/nb.ipynb",
        "analysis/data.csv",
        "analysis/out-7-nb.ipynb",
        "analysis/out-7-nb.ipynb.attestation.json",
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
