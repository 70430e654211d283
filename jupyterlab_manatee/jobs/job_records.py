"""A small on-disk record of the jobs this server submitted.

The API knows a job's notebook name but not the folder it came from; the record lets an
output land in the outputs folder beside its notebook, also after a server restart.

Both files are read defensively: each record is checked (:func:`record_problem`,
:func:`output_problem`) when the file is read. A file that does not parse, or holds a
record that fails, is set aside whole (``<name>.corrupt-<time>``, see :mod:`..common.state_files`):
the copy keeps every byte that was read, bad record included, for whoever looks into it,
while the usable records are carried into a fresh file, so one bad record never costs the
others (the outputs of other jobs still land beside their notebooks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common.state_files import Fields, field_problem, set_aside
from ..errors import quoted
from ..remote.job_uuid import canonical_uuid
from .notebook_errors import errors_problem

MAX_RECORDS = 2000
#: A job record's fields (others, from a later version, are kept as they are).
RECORD_FIELDS: Fields = {
    "creator": (str,),
    "folder": (str,),
    "notebook": (str,),
    "id": (int, type(None)),
}
#: A saved output's record (``errors`` as :func:`.notebook_errors.cell_errors` makes it).
OUTPUT_FIELDS: Fields = {"path": (str,), "errors": (dict, type(None))}

log = logging.getLogger(__name__)


class JobRecords:
    """``uuid -> {"creator", "folder", "notebook", "id"}`` kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.outputs_path = path.with_name(path.stem + "-outputs.json")
        self._records: dict[str, dict[str, Any]] | None = None
        self._outputs: dict[str, Any] | None = None

    def add(self, job_uuid: str, *, creator: str, folder: str, notebook: str) -> None:
        records = self._load()
        records[job_uuid] = {"creator": creator, "folder": folder, "notebook": notebook}
        while len(records) > MAX_RECORDS:
            records.pop(next(iter(records)))
        self._save()

    def learn_ids(self, creator: str, jobs: list[dict[str, Any]]) -> None:
        """Note the API's numeric id of jobs we know by uuid (the output route uses ids).

        An id, once learnt, is kept: the API's ids never change, so a list that later gives
        one of our uuids another id (or our id another uuid) is caught by the verifier
        instead of rewriting the record.
        """
        records = self._load()
        taken = {r.get("id") for r in records.values() if r["creator"] == creator}
        changed = False
        for job in jobs:
            record = records.get(str(job.get("uuid")))
            job_id = job.get("id")
            if record and record["creator"] == creator and record.get("id") is None:
                if isinstance(job_id, int) and job_id not in taken:
                    record["id"] = job_id
                    taken.add(job_id)
                    changed = True
        if changed:
            self._save()

    def uuid_of(self, creator: str, job_id: int) -> str | None:
        """The uuid of the job this server submitted that the API numbered ``job_id``."""
        for job_uuid, record in self._load().items():
            if record["creator"] == creator and record.get("id") == job_id:
                return job_uuid
        return None

    def id_of(self, creator: str, job_uuid: str) -> int | None:
        record = self._load().get(job_uuid)
        return record.get("id") if record and record["creator"] == creator else None

    def remember_output(
        self, creator: str, job_id: int, path: str, errors: dict[str, Any] | None = None
    ) -> None:
        """Where the output of job ``job_id`` was saved (Report re-verifies that file), and
        which of its cells raised."""
        outputs = self._load_outputs()
        outputs[f"{creator}/{job_id}"] = {"path": path, "errors": errors}
        while len(outputs) > MAX_RECORDS:
            outputs.pop(next(iter(outputs)))
        _write_json(self.outputs_path, outputs)

    def saved_output(self, creator: str, job_id: int) -> str | None:
        saved = self.output_facts(creator, job_id)
        return saved["path"] if saved else None

    def output_job_id(self, creator: str, path: str) -> int | None:
        """The id of the job whose output this server saved at ``path``, if it did."""
        for key, saved in self._load_outputs().items():
            owner, _, job_id = key.rpartition("/")
            if owner == creator and isinstance(saved, dict) and saved.get("path") == path:
                return int(job_id) if job_id.isascii() and job_id.isdigit() else None
        return None

    def output_facts(self, creator: str, job_id: int) -> dict[str, Any] | None:
        """``{"path", "errors"}`` of the job's saved output, or None."""
        saved = self._load_outputs().get(f"{creator}/{job_id}")
        return {"path": saved["path"], "errors": saved.get("errors")} if saved else None

    def find(
        self, creator: str, *, job_id: int | None = None, job_uuid: str | None = None
    ) -> dict[str, Any] | None:
        records = self._load()
        if job_uuid is not None:
            record = records.get(job_uuid)
            return record if record and record["creator"] == creator else None
        for record in records.values():
            if record["creator"] == creator and record.get("id") == job_id:
                return record
        return None

    def forget(self, job_uuid: str) -> None:
        if self._load().pop(job_uuid, None) is not None:
            self._save()

    def _load(self) -> dict[str, dict[str, Any]]:
        """The records; one whose uuid is not canonical is ignored (never identifies a job)."""
        if self._records is None:
            records = _read_records(self.path, record_problem)
            self._records = {k: v for k, v in records.items() if canonical_uuid(k)}
            if len(self._records) < len(records):
                log.warning("Ignoring ManaTEE records of non-canonical job uuids in %s", self.path)
        return self._records

    def _load_outputs(self) -> dict[str, Any]:
        if self._outputs is None:
            self._outputs = _read_records(self.outputs_path, output_problem)
        return self._outputs

    def _save(self) -> None:
        _write_json(self.path, self._records)


def record_problem(record: Any) -> str | None:
    """What makes a job record unusable (see :data:`RECORD_FIELDS`), or None."""
    return field_problem(record, RECORD_FIELDS, required=("creator", "folder", "notebook"))


def output_problem(record: Any) -> str | None:
    """What makes a saved output's record unusable (see :data:`OUTPUT_FIELDS`), or None."""
    problem = field_problem(record, OUTPUT_FIELDS, required=("path",))
    if problem is None:
        problem = errors_problem(record.get("errors"))
        problem = problem and f"its 'errors': {problem}"
    return problem


def _read_records(path: Path, problem_of: Callable[[Any], str | None]) -> dict[str, Any]:
    """The records in ``path`` ({} when there is none). An unusable file is set aside with
    one warning; its usable records, if any, are written to a fresh file and returned."""
    usable: dict[str, Any] = {}
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as e:
        problem = f"it cannot be read: {e.strerror or e}"
    except (ValueError, RecursionError) as e:
        problem = f"it is not JSON: {e}"
    else:
        problem = field_problem(data, {})  # the file is one object of records
        if problem is None:
            bad = {key: why for key, record in data.items() if (why := problem_of(record))}
            if not bad:
                return data
            usable = {key: record for key, record in data.items() if key not in bad}
            key, why = next(iter(bad.items()))
            problem = f"{len(bad)} of its {len(data)} records are unusable; {quoted(key)}: {why}"
    then = f"its {len(usable)} usable records are kept" if usable else "it is read as absent"
    if set_aside(path, problem, log, then) is not None and usable:
        _write_json(path, usable)
    return usable


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a crash mid-write keeps the previous file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".jobs-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(temp, path)
    except OSError as e:
        log.warning("Could not save ManaTEE records to %s: %s", path, e)


def records_file(api_url: str) -> str:
    """``jobs-<hash of the API URL>.json``: one record file per API."""
    return f"jobs-{hashlib.sha256(api_url.encode()).hexdigest()[:12]}.json"
