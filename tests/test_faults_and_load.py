"""Load and faults, sized to run in seconds: many submissions at once, an API that dies
mid-upload, an output folder whose disk is full."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from tests.conftest import call, write_notebook

TOP = "alice-workspace"


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


async def test_twenty_submissions_and_two_hundred_listings_at_once_all_succeed(
    jp_fetch, fault_server, jp_root_dir, temp_dir
):
    for i in range(20):
        folder = jp_root_dir / f"load{i:02d}"
        write_notebook(folder / "nb.ipynb", source=f"print({i})")
        (folder / "marker.txt").write_text(f"{i:02d}" * (20_000 + i))
    submits = [
        call(
            jp_fetch,
            "jobs",
            method="POST",
            body={"path": f"load{i:02d}/nb.ipynb", "filename": "nb.ipynb"},
        )
        for i in range(20)
    ]
    listings = [call(jp_fetch, "jobs") for _ in range(200)]
    replies = await asyncio.gather(*submits, *listings)
    assert [code for code, _ in replies] == [200] * 220
    markers = set()
    for request in fault_server.requests_to("v1/job/submit/"):
        with request.archive() as archive:
            marker = archive.extractfile(f"{TOP}/marker.txt").read().decode()
        i = int(marker[:2])
        assert marker == f"{i:02d}" * (20_000 + i)
        markers.add(i)
    assert markers == set(range(20))
    assert list(temp_dir.iterdir()) == []


async def test_api_dying_mid_upload_is_a_clear_502_and_leaves_no_temporary_archive(
    jp_fetch, fault_server, notebook, temp_dir
):
    (notebook.parent / "big.bin").write_bytes(os.urandom(1024 * 1024))
    fault_server.mode = "die-mid-upload"
    code, reply = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert code == 502, reply
    assert "/v1/job/submit/" in reply["message"]
    assert len(fault_server.requests_to("v1/job/submit/")) == 1
    assert list(temp_dir.iterdir()) == []


@pytest.fixture
def full_output_folder(jp_root_dir):
    """``manatee-outputs`` on a 256 KiB tmpfs holding one file of the user's."""
    folder = jp_root_dir / "manatee-outputs"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a small tmpfs: {mounted.stderr}")
        pytest.skip(f"needs root to mount a small tmpfs: {mounted.stderr.strip()}")
    (folder / "mine.txt").write_text("the user's own file")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


async def test_a_full_disk_is_a_clear_507_leaving_no_partial_file_and_the_users_files(
    jp_fetch, fault_server, full_output_folder
):
    fault_server.file_body = os.urandom(1024 * 1024)
    code, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert code == 507, reply
    assert "No space left on device" in reply["message"]
    assert "free some space" in reply["message"]
    assert sorted(p.name for p in full_output_folder.iterdir()) == ["mine.txt"]
    assert (full_output_folder / "mine.txt").read_text() == "the user's own file"
