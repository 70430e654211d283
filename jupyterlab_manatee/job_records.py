"""A small on-disk record of the jobs this server submitted.

The API knows a job's notebook name but not the folder it came from; the record lets an
output land in the outputs folder beside its notebook, also after a server restart.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .job_uuid import canonical_uuid

MAX_RECORDS = 2000

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
        if isinstance(saved, dict) and isinstance(saved.get("path"), str):
            return {"path": saved["path"], "errors": saved.get("errors")}
        return None

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
            records = _read_json(self.path)
            self._records = {k: v for k, v in records.items() if canonical_uuid(k)}
            if len(self._records) < len(records):
                log.warning("Ignoring ManaTEE records of non-canonical job uuids in %s", self.path)
        return self._records

    def _load_outputs(self) -> dict[str, Any]:
        if self._outputs is None:
            self._outputs = _read_json(self.outputs_path)
        return self._outputs

    def _save(self) -> None:
        _write_json(self.path, self._records)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("Ignoring unreadable ManaTEE records %s: %s", path, e)
        return {}
    return data if isinstance(data, dict) else {}


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
