"""A Finished job's card says whether its cells raised before the user presses Output: the
server scans the output in the background and the job list carries ``cells_raised``."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterlab_manatee.jobs.output_scan import summary
from tests.conftest import call, wait_for_job, write_notebook

FINISHED = 5
ENDED = {FINISHED, 2, 6, 7, 8, 9}


async def finished_job(jp_fetch, jp_root_dir, folder: str, *sources: str) -> dict[str, Any]:
    write_notebook(jp_root_dir / folder / "nb.ipynb", sources[0])
    if len(sources) > 1:
        import nbformat

        path = jp_root_dir / folder / "nb.ipynb"
        nb = nbformat.read(path, as_version=4)
        nb.cells += [nbformat.v4.new_code_cell(source) for source in sources[1:]]
        nbformat.write(nb, path)
    code, submitted = await call(
        jp_fetch, "jobs", method="POST", body={"path": f"{folder}/nb.ipynb"}
    )
    assert code == 200, submitted
    job = await wait_for_job(jp_fetch, submitted["uuid"], ENDED)
    assert job["job_status"] == FINISHED, job
    return job


async def listed_once_scanned(jp_fetch, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
    """The job as listed, once the list carries its scan (polling, as the panel does)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, reply = await call(jp_fetch, "jobs")
        job = next(j for j in reply["jobs"] if j["id"] == job_id)
        if job["cells_raised"] is not None:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} was never scanned: {job}")
        await asyncio.sleep(0.3)


async def test_the_job_list_says_which_cells_raised_without_an_output_call(
    jp_fetch, backend, jp_root_dir
):
    job = await finished_job(
        jp_fetch, jp_root_dir, "fails", "print('start')", "raise ValueError('no bmi column')"
    )

    listed = await listed_once_scanned(jp_fetch, job["id"])

    assert listed["cells_raised"] == {
        "count": 1,
        "first": "ValueError: no bmi column",
        "first_cell": 2,
    }
    assert listed["cells_raised_pending"] is False
    assert "output" not in listed  # nothing was saved for it
    assert sorted(p.name for p in (jp_root_dir / "fails").iterdir()) == ["nb.ipynb"]


async def test_a_clean_run_is_listed_with_no_cells_raised(jp_fetch, backend, jp_root_dir):
    job = await finished_job(jp_fetch, jp_root_dir, "clean", "print('fine')")

    listed = await listed_once_scanned(jp_fetch, job["id"])

    assert listed["cells_raised"] == {"count": 0, "first": None, "first_cell": None}
    assert listed["cells_raised_pending"] is False


async def test_the_first_listing_as_finished_says_the_scan_is_pending(
    jp_fetch, backend, jp_root_dir
):
    # what keeps the panel refreshing until the scan's result is listed
    write_notebook(jp_root_dir / "pending" / "nb.ipynb", "print('fine')")
    code, submitted = await call(jp_fetch, "jobs", method="POST", body={"path": "pending/nb.ipynb"})
    assert code == 200, submitted

    first = await wait_for_job(jp_fetch, submitted["uuid"], ENDED)

    assert first["job_status"] == FINISHED
    assert first["cells_raised"] is None
    assert first["cells_raised_pending"] is True


async def test_a_job_not_finished_has_no_cells_raised(jp_fetch, backend, jp_root_dir):
    write_notebook(jp_root_dir / "slow" / "nb.ipynb", "import time; time.sleep(30)")
    code, submitted = await call(jp_fetch, "jobs", method="POST", body={"path": "slow/nb.ipynb"})
    assert code == 200, submitted

    _, reply = await call(jp_fetch, "jobs")

    listed = next(j for j in reply["jobs"] if j["uuid"] == submitted["uuid"])
    assert listed["job_status"] != FINISHED
    assert listed["cells_raised"] is None
    assert listed["cells_raised_pending"] is False


def test_an_output_too_large_to_scan_is_unknown_not_clean():
    unchecked = {"count": None, "first": None, "unchecked": "the output is 20 MiB"}
    assert summary(unchecked) is None


def notebook_bytes(*sources: str, raising: str | None = None) -> bytes:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    if raising:
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [
            nbformat.from_dict(
                {"output_type": "error", "ename": "KeyError", "evalue": raising, "traceback": []}
            )
        ]
        nb.cells.append(cell)
    return nbformat.writes(nb).encode()


def serving(data: bytes, chunk: int = 1024):
    """A fetch that streams ``data`` in chunks, counting what the scan accepted."""
    accepted = []

    async def fetch(write) -> int:
        for start in range(0, len(data), chunk):
            write(data[start : start + chunk])
            accepted.append(chunk)
            await asyncio.sleep(0)
        return len(data)

    return fetch, accepted


async def test_a_scan_that_fails_is_unknown_and_tried_again_later():
    import logging

    from jupyterlab_manatee.errors import ApiUnavailable
    from jupyterlab_manatee.jobs import output_scan

    scans = output_scan.OutputScans(None, logging.getLogger("test"))
    key = ("http://api", "alice", 7, "u-7")
    calls = []

    async def unreachable(write) -> int:
        calls.append(1)
        raise ApiUnavailable("storage is down")

    assert scans.cells_raised(key, unreachable) is None
    assert scans.pending(key)  # the panel asks again
    await scans.idle()
    assert scans.cells_raised(key, unreachable) is None  # not "no errors"
    assert not scans.pending(key)
    await scans.idle()
    assert calls == [1]  # not again before RETRY_AFTER

    fetch, _ = serving(notebook_bytes("1", raising="'bmi'"))
    scans._failed[key] -= output_scan.RETRY_AFTER  # as if a minute had passed
    scans.cells_raised(key, fetch)
    await scans.idle()
    assert scans.cells_raised(key, fetch) == {
        "count": 1,
        "first": "KeyError: 'bmi'",
        "first_cell": 2,
    }


async def test_an_output_over_the_limit_stops_downloading_and_stays_unknown():
    import logging

    from jupyterlab_manatee.jobs.output_scan import OutputScans

    scans = OutputScans(None, logging.getLogger("test"), limit=4096)
    key = ("http://api", "alice", 8, "u-8")
    fetch, accepted = serving(b" " * (1024 * 1024))

    scans.cells_raised(key, fetch)
    await scans.idle()

    assert scans.cells_raised(key, fetch) is None
    assert len(accepted) == 4  # 4 KiB held, then the download stopped
    await scans.idle()
    assert len(accepted) == 4  # and it is not downloaded again


async def test_the_results_kept_are_bounded():
    import logging

    from jupyterlab_manatee.jobs.output_scan import OutputScans

    scans = OutputScans(None, logging.getLogger("test"), max_kept=3)
    fetch, _ = serving(notebook_bytes("1"))
    for job_id in range(1, 6):
        scans.cells_raised(("http://api", "alice", job_id, f"u-{job_id}"), fetch)
    await scans.idle()

    assert [key[2] for key in scans._results] == [3, 4, 5]
