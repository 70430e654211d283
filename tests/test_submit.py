"""Submitting a notebook: what the API receives, what is refused, what is left behind.

The API here is a recording server on 127.0.0.1 that answers like the real one, so each
test can open the exact multipart body and archive that arrived.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.conftest import USER_TOKEN, call, write_notebook

TOP = "alice-workspace"


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def submit(jp_fetch, path: str, filename: str | None = None):
    body = {"path": path, "filename": filename or path.rsplit("/", 1)[-1]}
    return call(jp_fetch, "jobs", method="POST", body=body)


def own_members(archive) -> set[str]:
    """Archive members other than the bundled SDK."""
    return {m.name for m in archive.getmembers() if not m.name.startswith(f"{TOP}/sdk")}


@pytest.fixture
def busy_folder(jp_root_dir):
    """A notebook in a sub-folder, among things that must and must not be shipped."""
    root = jp_root_dir
    (root / "top-level.txt").write_text("not in the notebook's folder")
    write_notebook(root / "elsewhere" / "other.ipynb")
    folder = root / "projects" / "insurance"
    write_notebook(folder / "nb.ipynb")
    (folder / "data.csv").write_text("age,charges\n19,16884.92\n")
    (folder / "lib").mkdir()
    (folder / "lib" / "helpers.py").write_text("X = 1\n")
    (folder / ".secret").write_text("hidden")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").write_text("{}")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (folder / "node_modules" / "m").mkdir(parents=True)
    (folder / "node_modules" / "m" / "index.js").write_text("")
    (folder / "myenv" / "lib").mkdir(parents=True)
    (folder / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (folder / "scratch.tmp").write_text("temporary")
    (folder / "raw").mkdir()
    (folder / "raw" / "dump.bin").write_bytes(b"\1" * 10)
    (folder / ".manateeignore").write_text("*.tmp\nraw/\n")
    return folder


async def test_archive_holds_the_notebooks_folder_with_the_notebook_at_its_top(
    jp_fetch, fault_server, busy_folder
):
    status, reply = await submit(jp_fetch, "projects/insurance/nb.ipynb")
    assert status == 200, reply
    (request,) = fault_server.requests_to("v1/job/submit/")
    with request.archive() as archive:
        assert own_members(archive) == {
            TOP,
            f"{TOP}/nb.ipynb",
            f"{TOP}/data.csv",
            f"{TOP}/lib",
            f"{TOP}/lib/helpers.py",
        }
        data = archive.extractfile(f"{TOP}/data.csv").read()
    assert data == (busy_folder / "data.csv").read_bytes()


async def test_submit_sends_the_multipart_fields_of_the_contract(
    jp_fetch, fault_server, notebook, monkeypatch
):
    monkeypatch.setenv("MANATEE_EXTRA_ENV_EXECUTION_STAGE", '"2"')
    status, reply = await submit(jp_fetch, "analysis/nb.ipynb")
    assert status == 200
    assert reply["code"] == 0 and reply["uuid"] == "00000000-1111-2222-3333-444444444444"
    (request,) = fault_server.requests_to("v1/job/submit/")
    assert request.headers["Authorization"] == USER_TOKEN
    form = request.form()
    assert form["creator"][0] == b"alice"
    assert form["filename"][0] == b"nb.ipynb"
    assert json.loads(form["envs"][0]) == [{"key": "EXECUTION_STAGE", "value": '"2"'}]
    file_headers = form["file"][1]
    assert 'filename="workspace.tar.gz"' in file_headers["Content-Disposition"]
    assert file_headers["Content-Type"] == "application/gzip"


class TestExtraEnvAllowList:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "extra_env_allow": ["KEEP"]}

    async def test_only_allowed_extra_envs_are_forwarded(
        self, jp_fetch, fault_server, notebook, monkeypatch
    ):
        monkeypatch.setenv("MANATEE_EXTRA_ENV_KEEP", "yes")
        monkeypatch.setenv("MANATEE_EXTRA_ENV_DROP", "no")
        await submit(jp_fetch, "analysis/nb.ipynb")
        (request,) = fault_server.requests_to("v1/job/submit/")
        assert json.loads(request.form()["envs"][0]) == [{"key": "KEEP", "value": "yes"}]


@pytest.mark.parametrize(
    ("path", "filename", "status"),
    [
        ("../outside.ipynb", "outside.ipynb", 400),
        ("/etc/passwd.ipynb", "passwd.ipynb", 400),
        ("analysis/../../outside.ipynb", "outside.ipynb", 400),
        ("analysis/data.csv", "data.csv", 400),
        ("analysis/missing.ipynb", "missing.ipynb", 404),
        ("analysis/nb.ipynb", "other.ipynb", 400),
        ("analysis", "analysis", 400),
    ],
)
async def test_bad_notebook_paths_are_refused_before_anything_is_sent(
    jp_fetch, fault_server, notebook, path, filename, status
):
    code, reply = await submit(jp_fetch, path, filename)
    assert code == status, reply
    assert reply["message"]
    assert fault_server.seen == []


async def test_symlink_leading_out_of_the_root_is_refused(
    jp_fetch, fault_server, jp_root_dir, tmp_path
):
    outside = tmp_path / "outside"
    write_notebook(outside / "nb.ipynb")
    (jp_root_dir / "linked").symlink_to(outside, target_is_directory=True)
    code, reply = await submit(jp_fetch, "linked/nb.ipynb")
    assert code == 400
    assert "outside" in reply["message"]
    assert fault_server.seen == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"filename": "nb.ipynb"})])
async def test_malformed_submit_bodies_are_400(jp_fetch, fault_server, body):
    code, reply = await call(jp_fetch, "jobs", method="POST", body=body)
    assert code == 400 and reply["message"]


class TestSizeCap:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "max_workspace_size": 4096}

    async def test_too_large_workspace_is_413_before_any_byte_is_sent(
        self, jp_fetch, fault_server, notebook, temp_dir
    ):
        (notebook.parent / "big.bin").write_bytes(os.urandom(8192))
        code, reply = await submit(jp_fetch, "analysis/nb.ipynb")
        assert code == 413
        assert ".manateeignore" in reply["message"]
        assert fault_server.seen == []
        assert list(temp_dir.iterdir()) == []


async def test_ten_concurrent_submissions_give_ten_distinct_correct_archives(
    jp_fetch, fault_server, jp_root_dir, temp_dir
):
    for i in range(10):
        folder = jp_root_dir / f"study{i}"
        write_notebook(folder / "nb.ipynb", source=f"print({i})")
        (folder / "marker.txt").write_bytes(str(i).encode() * (50_000 + i))
    replies = await asyncio.gather(*(submit(jp_fetch, f"study{i}/nb.ipynb") for i in range(10)))
    assert [code for code, _ in replies] == [200] * 10
    markers = []
    for request in fault_server.requests_to("v1/job/submit/"):
        with request.archive() as archive:
            marker = archive.extractfile(f"{TOP}/marker.txt").read()
            notebook = archive.extractfile(f"{TOP}/nb.ipynb").read().decode()
        i = int(marker[:1])
        assert marker == str(i).encode() * (50_000 + i)
        assert f"print({i})" in notebook
        markers.append(i)
    assert sorted(markers) == list(range(10))
    assert list(temp_dir.iterdir()) == []


async def test_the_workspace_is_uploaded_exactly_once(jp_fetch, fault_server, notebook):
    await submit(jp_fetch, "analysis/nb.ipynb")
    assert len(fault_server.requests_to("v1/job/submit/")) == 1


async def test_upload_refused_by_the_api_leaves_no_temporary_archive(
    jp_fetch, fault_server, notebook, temp_dir
):
    fault_server.mode = "html500"
    code, _ = await submit(jp_fetch, "analysis/nb.ipynb")
    assert code == 502
    assert list(temp_dir.iterdir()) == []


class TestUploadTimeout:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "upload_timeout": 1.0}

    async def test_upload_timing_out_is_504_and_leaves_no_temporary_archive(
        self, jp_fetch, fault_server, notebook, temp_dir
    ):
        fault_server.mode = "hang"
        fault_server.hang_seconds = 5
        code, reply = await submit(jp_fetch, "analysis/nb.ipynb")
        assert code == 504, reply
        assert list(temp_dir.iterdir()) == []


async def test_dry_run_returns_the_manifest_without_uploading(jp_fetch, fault_server, busy_folder):
    code, reply = await call(
        jp_fetch,
        "manifest",
        method="POST",
        body={"path": "projects/insurance/nb.ipynb", "filename": "nb.ipynb"},
    )
    assert code == 200
    own = [f for f in reply["files"] if not f["path"].startswith("sdk/")]
    assert [f["path"] for f in own] == ["data.csv", "lib/helpers.py", "nb.ipynb"]
    assert reply["total_bytes"] == sum(f["size"] for f in reply["files"])
    assert reply["file_count"] == len(reply["files"])
    reasons = {e["path"]: e["reason"] for e in reply["excluded"]}
    assert "raw/" in reasons and ".manateeignore" in reasons["raw/"]
    assert "scratch.tmp" in reasons
    assert any(path.startswith("myenv") for path in reasons)
    assert fault_server.seen == []


async def test_archive_carries_the_bundled_sdk_when_the_folder_has_none(
    jp_fetch, fault_server, notebook
):
    import sdk

    await submit(jp_fetch, "analysis/nb.ipynb")
    (request,) = fault_server.requests_to("v1/job/submit/")
    with request.archive() as archive:
        names = set(archive.getnames())
        shipped = archive.extractfile(f"{TOP}/sdk/__init__.py").read()
    assert shipped == Path(sdk.__file__).read_bytes()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


async def test_archive_keeps_the_folders_own_sdk(jp_fetch, fault_server, notebook):
    (notebook.parent / "sdk").mkdir()
    (notebook.parent / "sdk" / "__init__.py").write_text("OWN = True\n")
    await submit(jp_fetch, "analysis/nb.ipynb")
    (request,) = fault_server.requests_to("v1/job/submit/")
    with request.archive() as archive:
        sdk_files = [n for n in archive.getnames() if n.startswith(f"{TOP}/sdk/")]
        assert sdk_files == [f"{TOP}/sdk/__init__.py"]
        assert archive.extractfile(f"{TOP}/sdk/__init__.py").read() == b"OWN = True\n"
