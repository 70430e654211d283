"""A small on-disk record of the jobs this server submitted.

The API knows a job's notebook name but not the folder it came from; the record lets an
output land beside its notebook, also after a server restart.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

MAX_RECORDS = 2000

log = logging.getLogger(__name__)


class JobRecords:
    """``uuid -> {"creator", "folder", "notebook", "id"}`` kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, dict[str, Any]] | None = None

    def add(self, job_uuid: str, *, creator: str, folder: str, notebook: str) -> None:
        records = self._load()
        records[job_uuid] = {"creator": creator, "folder": folder, "notebook": notebook}
        while len(records) > MAX_RECORDS:
            records.pop(next(iter(records)))
        self._save()

    def learn_ids(self, creator: str, jobs: list[dict[str, Any]]) -> None:
        """Note the API's numeric id of jobs we know by uuid (the output route uses ids)."""
        records = self._load()
        changed = False
        for job in jobs:
            record = records.get(str(job.get("uuid")))
            if record and record["creator"] == creator and record.get("id") != job.get("id"):
                record["id"] = job.get("id")
                changed = True
        if changed:
            self._save()

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
        if self._records is None:
            try:
                data = json.loads(self.path.read_text())
                self._records = data if isinstance(data, dict) else {}
            except FileNotFoundError:
                self._records = {}
            except (OSError, ValueError) as e:
                log.warning("Ignoring unreadable ManaTEE job records %s: %s", self.path, e)
                self._records = {}
        return self._records

    def _save(self) -> None:
        """Write atomically: a crash mid-write keeps the previous file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".jobs-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self._records, f)
            os.replace(temp, self.path)
        except OSError as e:
            log.warning("Could not save ManaTEE job records to %s: %s", self.path, e)
