"""The extension's state files (``state_dir``: the submission queue, the job records and
the saved-output records) are read defensively: a file that does not parse, or holds a
field of the wrong type, is moved aside to ``<name>.corrupt-<UTC time>`` with one warning
and read as absent, so the routes keep answering; and a queue entry's id never leads out
of the queue folder. Against a real Jupyter server and the fault server as the API (which
lists one finished job, id 7)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_manatee.common import state_files
from jupyterlab_manatee.jobs.job_records import records_file
from tests.conftest import CREATOR, call

#: ``<name>.corrupt-YYYYMMDDTHHMMSS.ffffffZ``: sortable UTC time
CORRUPT = re.compile(r"\.corrupt-\d{8}T\d{6}\.\d{6}Z$")
GOOD_ID, BAD_ID = "0123456789ab", "ba9876543210"
JOB_UUID = "00000000-1111-2222-3333-444444444444"  # the fault server's job 7
OTHER_UUID = "99999999-8888-7777-6666-555555555555"


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


def entry(entry_id: str, **changes: Any) -> dict[str, Any]:
    """A queue entry file's content as the queue writes it."""
    return {
        "id": entry_id,
        "creator": CREATOR,
        "notebook": "nb.ipynb",
        "path": "analysis/nb.ipynb",
        "folder": "analysis",
        "envs": [],
        "file_count": 2,
        "total_bytes": 100,
        "excluded_count": 0,
        "created_at": "2026-01-01T10:00:00Z",
        "waits_for": None,
        "state": "failed",
        "uuid": None,
        "error": "an earlier failure",
        "ended": 4102444800.0,  # far ahead: the outcome is not forgotten during the test
        "extra": {},
        **changes,
    }


def record(**changes: Any) -> dict[str, Any]:
    return {"creator": CREATOR, "folder": "analysis", "notebook": "nb.ipynb", **changes}


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def stored() -> dict[str, bytes]:
    """Files (by name under state_dir; ``{records}`` is the job records' file) in place
    before the server starts. Tests parametrize it."""
    return {}


@pytest.fixture
def state(manatee_config) -> Path:
    return Path(manatee_config["state_dir"])


@pytest.fixture
def names(fault_server) -> dict[str, str]:
    records = records_file(fault_server.url)
    return {"records": records, "outputs": records.replace(".json", "-outputs.json")}


@pytest.fixture
def jp_server_config(jp_server_config, state, stored, names):
    for name, data in stored.items():
        path = state / name.format(**names)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return jp_server_config


def set_aside(folder: Path, name: str) -> list[Path]:
    """The copies of ``name`` moved aside in ``folder``."""
    return [p for p in folder.glob(f"{name}.corrupt-*") if CORRUPT.search(p.name)]


def warnings_about(caplog, name: str) -> list[str]:
    return [
        r.getMessage()
        for phase in ("setup", "call")
        for r in caplog.get_records(phase)
        if r.levelno == logging.WARNING and name in r.getMessage()
    ]


async def both_routes_answer(jp_fetch) -> tuple[dict[str, Any], dict[str, Any]]:
    """``GET manatee/jobs`` and ``GET manatee/queue``, asserting each answers 200."""
    code, jobs = await call(jp_fetch, "jobs")
    assert code == 200, jobs
    code, queue = await call(jp_fetch, "queue")
    assert code == 200, queue
    return jobs, queue


class TestACorruptQueueEntry:
    @pytest.mark.parametrize(
        "stored",
        [
            {
                f"queue/{BAD_ID}.json": json_bytes(entry(BAD_ID, created_at=None)),
                f"queue/{GOOD_ID}.json": json_bytes(entry(GOOD_ID)),
            }
        ],
    )
    async def test_an_entry_created_at_null_is_set_aside_and_the_good_one_still_listed(
        self, jp_fetch, state, stored, caplog
    ):
        jobs, queue = await both_routes_answer(jp_fetch)
        assert [e["id"] for e in queue["queued"]] == [GOOD_ID]
        assert [e["id"] for e in jobs["queued"]] == [GOOD_ID]
        (copy,) = set_aside(state / "queue", f"{BAD_ID}.json")
        assert copy.read_bytes() == stored[f"queue/{BAD_ID}.json"]
        assert not (state / "queue" / f"{BAD_ID}.json").exists()
        (warning,) = warnings_about(caplog, f"{BAD_ID}.json")
        assert "'created_at' is null, not a string" in warning

    @pytest.mark.parametrize("stored", [{f"queue/{BAD_ID}.json": b'{"id": "ba98'}])
    async def test_an_entry_that_is_not_json_is_set_aside(self, jp_fetch, state, caplog):
        _, queue = await both_routes_answer(jp_fetch)
        assert queue["queued"] == []
        assert len(set_aside(state / "queue", f"{BAD_ID}.json")) == 1
        (warning,) = warnings_about(caplog, f"{BAD_ID}.json")
        assert "not JSON" in warning

    @pytest.mark.parametrize("stored", [{f"queue/{BAD_ID}.json": json_bytes(entry(GOOD_ID))}])
    async def test_an_entry_whose_id_is_not_its_file_name_is_set_aside(
        self, jp_fetch, state, caplog
    ):
        _, queue = await both_routes_answer(jp_fetch)
        assert queue["queued"] == []
        assert len(set_aside(state / "queue", f"{BAD_ID}.json")) == 1
        (warning,) = warnings_about(caplog, f"{BAD_ID}.json")
        assert "is not its file's name" in warning

    @pytest.mark.parametrize(
        ("stored", "why"),
        [
            ({f"queue/{BAD_ID}.json": json_bytes(entry(BAD_ID, **change))}, why)
            for change, why in [
                ({"state": "lost"}, "its state 'lost' is none this queue knows"),
                ({"envs": [["K", "v"]]}, "its envs are not all {key, value} pairs"),
                ({"envs": [{"key": "K", "value": 1}]}, "its envs are not all strings"),
                ({"ended": True}, "its 'ended' is a boolean, not an integer or a number or null"),
                ({"total_bytes": "100"}, "its 'total_bytes' is a string, not an integer"),
                ({"priority": 1}, "it has an unknown field 'priority'"),
            ]
        ]
        + [
            (
                {
                    f"queue/{BAD_ID}.json": json_bytes(
                        {k: v for k, v in entry(BAD_ID).items() if k != "creator"}
                    )
                },
                "it has no 'creator'",
            )
        ],
        ids=["state", "envs pairs", "envs strings", "ended bool", "count", "unknown", "missing"],
    )
    async def test_an_entry_with_a_field_of_the_wrong_kind_is_set_aside(
        self, jp_fetch, state, caplog, why
    ):
        _, queue = await both_routes_answer(jp_fetch)
        assert queue["queued"] == []
        assert len(set_aside(state / "queue", f"{BAD_ID}.json")) == 1
        (warning,) = warnings_about(caplog, f"{BAD_ID}.json")
        assert why in warning


class TestAQueueIdThatClimbsOutOfTheQueueFolder:
    """``../../../victim`` would name ``<state_dir>/queue/../../../victim.tar.gz``."""

    VICTIM = b"the victim's own archive, not a submission"

    @pytest.fixture
    def manatee_config(self, manatee_config, tmp_path):
        # state_dir three levels under tmp_path: the traversal lands in tmp_path/home
        return {**manatee_config, "state_dir": str(tmp_path / "home" / "a" / "state")}

    @pytest.fixture
    def victim(self, tmp_path) -> Path:
        path = tmp_path / "home" / "victim.tar.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.VICTIM)
        return path

    @pytest.mark.parametrize(
        "stored",
        [
            {f"queue/{BAD_ID}.json": json_bytes(entry("../../../victim", state=state))}
            for state in ("queued", "sending")
        ],
        ids=["queued", "sending"],
    )
    async def test_nothing_outside_the_queue_folder_is_removed_or_uploaded(
        self, victim, jp_fetch, jp_serverapp, fault_server, state, caplog
    ):
        _, queue = await both_routes_answer(jp_fetch)
        # the sender the server started (if anything was queued) has done its work
        task = jp_serverapp.web_app.settings["manatee_manager"].submission._queue_task
        if task is not None:
            await task
        assert victim.read_bytes() == self.VICTIM
        assert fault_server.requests_to("v1/job/submit/") == []
        assert queue["queued"] == []
        assert len(set_aside(state / "queue", f"{BAD_ID}.json")) == 1
        (warning,) = warnings_about(caplog, f"{BAD_ID}.json")
        assert "is not a queue id" in warning


class TestCorruptJobRecords:
    @pytest.mark.parametrize(
        "stored",
        [{"{records}": json_bytes({OTHER_UUID: "not an object", JOB_UUID: record(id=7)})}],
    )
    async def test_a_record_that_is_not_an_object_is_set_aside_and_the_good_ones_kept(
        self, jp_fetch, state, stored, names, caplog
    ):
        await both_routes_answer(jp_fetch)
        await both_routes_answer(jp_fetch)  # read once: still one warning
        (copy,) = set_aside(state, names["records"])
        assert copy.read_bytes() == stored["{records}"]
        kept = json.loads((state / names["records"]).read_text())
        assert kept == {JOB_UUID: record(id=7)}
        (warning,) = warnings_about(caplog, names["records"])
        assert "1 of its 2 records are unusable" in warning
        assert "it is a string, not an object" in warning

    @pytest.mark.parametrize(
        ("stored", "why"),
        [
            (
                {"{records}": json_bytes({OTHER_UUID: record(id="7")})},
                "its 'id' is a string, not an integer or null",
            ),
            (
                {"{records}": json_bytes({OTHER_UUID: record(id=True)})},
                "its 'id' is a boolean, not an integer or null",
            ),
            (
                {"{records}": json_bytes({OTHER_UUID: {"creator": CREATOR, "folder": ""}})},
                "it has no 'notebook'",
            ),
        ],
        ids=["id string", "id boolean", "no notebook"],
    )
    async def test_a_record_with_a_field_of_the_wrong_kind_is_set_aside(
        self, jp_fetch, state, names, caplog, why
    ):
        await both_routes_answer(jp_fetch)
        assert len(set_aside(state, names["records"])) == 1
        (warning,) = warnings_about(caplog, names["records"])
        assert why in warning

    @pytest.mark.parametrize(
        "stored", [{"{records}": json_bytes({JOB_UUID: record(id=7, added_later="x")})}]
    )
    async def test_a_record_with_a_field_of_a_later_version_is_kept_as_it_is(
        self, jp_fetch, state, stored, names, caplog
    ):
        await both_routes_answer(jp_fetch)
        assert set_aside(state, names["records"]) == []
        assert (state / names["records"]).read_bytes() == stored["{records}"]
        assert warnings_about(caplog, names["records"]) == []

    @pytest.mark.parametrize("stored", [{"{records}": b"\x00\x01 not json"}])
    async def test_a_records_file_that_is_not_json_is_set_aside(
        self, jp_fetch, state, names, caplog
    ):
        await both_routes_answer(jp_fetch)
        assert len(set_aside(state, names["records"])) == 1
        assert not (state / names["records"]).exists()
        (warning,) = warnings_about(caplog, names["records"])
        assert "not JSON" in warning

    @pytest.mark.parametrize("stored", [{"{records}": json_bytes([record()])}])
    async def test_a_records_file_that_is_not_an_object_is_set_aside(
        self, jp_fetch, state, names, caplog
    ):
        await both_routes_answer(jp_fetch)
        assert len(set_aside(state, names["records"])) == 1
        (warning,) = warnings_about(caplog, names["records"])
        assert "it is an array, not an object" in warning


class TestCorruptOutputRecords:
    @pytest.mark.parametrize(
        "stored",
        [
            {
                "{outputs}": json_bytes(
                    {
                        f"{CREATOR}/7": {"path": "analysis/out-7-nb.ipynb", "errors": "boom"},
                        f"{CREATOR}/8": {"path": "analysis/out-8-nb.ipynb", "errors": None},
                    }
                )
            }
        ],
    )
    async def test_errors_that_are_not_an_object_are_set_aside(
        self, jp_fetch, state, stored, names, caplog
    ):
        jobs, _ = await both_routes_answer(jp_fetch)
        ((job,),) = [jobs["jobs"]]
        assert (job["id"], "output" in job) == (7, False)
        (copy,) = set_aside(state, names["outputs"])
        assert copy.read_bytes() == stored["{outputs}"]
        kept = json.loads((state / names["outputs"]).read_text())
        assert kept == {f"{CREATOR}/8": {"path": "analysis/out-8-nb.ipynb", "errors": None}}
        (warning,) = warnings_about(caplog, names["outputs"])
        assert "'errors' is a string, not an object or null" in warning

    @pytest.mark.parametrize(
        ("stored", "why"),
        [
            (
                {"{outputs}": json_bytes({f"{CREATOR}/7": {"path": "o.ipynb", "errors": errors}})},
                why,
            )
            for errors, why in [
                ({"count": 2, "first": 1}, "its 'first' is a number, not an object or null"),
                ({"count": "2", "first": None}, "its 'count' is a string, not an integer or null"),
                ({"first": None}, "it has no 'count'"),
                ({"count": 2, "first": None}, "it counts cells that raised but names no first"),
                (
                    {"count": 1, "first": {"cell": "2", "ename": "E"}},
                    "its first error: its 'cell' is a string, not an integer",
                ),
                ({"count": 1, "first": {"cell": 2}}, "its first error: it has no 'ename'"),
                (
                    {"count": None, "first": None, "unchecked": 5},
                    "its 'unchecked' is a number, not a string",
                ),
            ]
        ],
        ids=["first", "count", "no count", "no first", "cell", "ename", "unchecked"],
    )
    async def test_errors_of_the_wrong_shape_are_set_aside(
        self, jp_fetch, state, names, caplog, why
    ):
        jobs, _ = await both_routes_answer(jp_fetch)
        assert "output" not in jobs["jobs"][0]
        assert len(set_aside(state, names["outputs"])) == 1
        (warning,) = warnings_about(caplog, names["outputs"])
        assert f"its 'errors': {why}" in warning

    @pytest.mark.parametrize(
        "stored", [{"{outputs}": json_bytes({f"{CREATOR}/7": {"errors": None}})}]
    )
    async def test_an_output_record_without_a_path_is_set_aside(
        self, jp_fetch, state, names, caplog
    ):
        jobs, _ = await both_routes_answer(jp_fetch)
        assert "output" not in jobs["jobs"][0]
        assert len(set_aside(state, names["outputs"])) == 1
        (warning,) = warnings_about(caplog, names["outputs"])
        assert "it has no 'path'" in warning

    @pytest.mark.parametrize(
        "stored",
        [
            {
                "{outputs}": json_bytes(
                    {
                        f"{CREATOR}/7": {
                            "path": "analysis/out-7-nb.ipynb",
                            "errors": {
                                "count": 1,
                                "first": {"cell": 2, "ename": "KeyError", "evalue": "'x'"},
                            },
                        }
                    }
                )
            }
        ],
    )
    async def test_a_well_formed_output_record_is_used_and_left_in_place(
        self, jp_fetch, state, names, caplog
    ):
        """The control: the checks do not refuse what the server itself writes."""
        jobs, _ = await both_routes_answer(jp_fetch)
        assert jobs["jobs"][0]["output"]["errors_message"] == (
            "1 cell raised an error in the stage-2 run; the first: KeyError in code cell 2"
        )
        assert set_aside(state, names["outputs"]) == []
        assert warnings_about(caplog, names["outputs"]) == []

    @pytest.mark.parametrize("stored", [{"{outputs}": b"[1, 2"}])
    async def test_an_outputs_file_that_is_not_json_is_set_aside(
        self, jp_fetch, state, names, caplog
    ):
        await both_routes_answer(jp_fetch)
        assert len(set_aside(state, names["outputs"])) == 1
        (warning,) = warnings_about(caplog, names["outputs"])
        assert "not JSON" in warning


def test_a_second_copy_set_aside_in_the_same_instant_keeps_the_first(tmp_path, monkeypatch):
    """Two set-asides with the same time stamp: neither copy replaces the other."""
    monkeypatch.setattr(state_files, "_stamp", lambda: "20260101T000000.000000Z")
    path = tmp_path / "jobs.json"
    path.write_text("first")
    first = state_files.set_aside(path, "a test", logging.getLogger("test"))
    path.write_text("second")
    second = state_files.set_aside(path, "a test", logging.getLogger("test"))
    assert first is not None and second is not None and first != second
    assert (first.read_text(), second.read_text()) == ("first", "second")
