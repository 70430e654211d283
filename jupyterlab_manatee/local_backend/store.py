"""The job table, in SQLite (standard library).

As upstream's gorm model: pages of a query come in id order (oldest first; upstream's
``Order`` is applied after the query ran, so its SQL has no ORDER BY), and delete is a
soft delete (``deleted_at``): a deleted job leaves every read and every status update,
but its row stays so its files are kept.

The methods are synchronous; the backend calls them from one dedicated thread, so they
never block the event loop and never run at the same time. The per-creator limit is also
checked and enforced inside one ``BEGIN IMMEDIATE`` transaction, so it holds even if two
processes ever shared the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..remote.wire import JOB_KEYS as API_JOB_KEYS
from .validation import page_window

# Upstream's job_status values.
CREATED = 0
BUILDING = 1  # here: unpacking and preparing the workspace
BUILD_FAILED = 2
STARTING = 3
RUNNING = 4
FINISHED = 5
KILLED = 6
FAILED = 7
UNKNOWN = 8
LAUNCH_FAILED = 9

#: The rows a soft delete has not hidden.
_LIVE = "deleted_at IS NULL"

IN_PROGRESS = frozenset({CREATED, BUILDING, STARTING, RUNNING})
TERMINAL = frozenset({BUILD_FAILED, FINISHED, KILLED, FAILED, UNKNOWN, LAUNCH_FAILED})

#: Upstream allows at most this many in-progress jobs per creator.
MAX_IN_PROGRESS_PER_CREATOR = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid              TEXT    NOT NULL UNIQUE,
    creator           TEXT    NOT NULL,
    jupyter_file_name TEXT    NOT NULL,
    job_status        INTEGER NOT NULL DEFAULT 0,
    status_reason     TEXT    NOT NULL DEFAULT '',
    envs              TEXT    NOT NULL DEFAULT '[]',
    archive_sha256    TEXT    NOT NULL,
    archive_size      INTEGER NOT NULL,
    output_md5        TEXT    NOT NULL DEFAULT '',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    deleted_at        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_creator ON jobs (creator, id);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (job_status, id);
"""

#: The keys of a JOB as the API returns it (upstream's seven plus ``status_reason``).
JOB_KEYS = (*API_JOB_KEYS, "status_reason")


def utc_timestamp(now: datetime | None = None) -> str:
    """Upstream's timestamp format: ``YYYY-MM-DD HH:MM:SS``, no zone (UTC here)."""
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class JobRecord:
    """One row of the job table."""

    id: int
    uuid: str
    creator: str
    jupyter_file_name: str
    job_status: int
    status_reason: str
    envs: list[dict[str, str]]
    archive_sha256: str
    archive_size: int
    output_md5: str
    created_at: str
    updated_at: str
    deleted_at: str | None = None

    def api_dict(self) -> dict[str, Any]:
        """The JOB object of the API contract (plus ``status_reason``)."""
        return {key: getattr(self, key) for key in JOB_KEYS}


class JobStore:
    """The SQLite job table of one data directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(jobs)")}
        if "deleted_at" not in columns:  # a data directory from before soft delete
            self._conn.execute("ALTER TABLE jobs ADD COLUMN deleted_at TEXT")
        self.path.chmod(0o600)

    def close(self) -> None:
        self._conn.close()

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _record(row: sqlite3.Row) -> JobRecord:
        data = dict(row)
        data["envs"] = json.loads(data["envs"])
        return JobRecord(**data)

    def _one(self, sql: str, params: Iterable[Any]) -> JobRecord | None:
        row = self._conn.execute(sql, tuple(params)).fetchone()
        return None if row is None else self._record(row)

    # -- writes ------------------------------------------------------------------------
    def create_job(
        self,
        *,
        job_uuid: str,
        creator: str,
        notebook: str,
        envs: list[dict[str, str]],
        archive_sha256: str,
        archive_size: int,
        limit: int = MAX_IN_PROGRESS_PER_CREATOR,
    ) -> JobRecord | None:
        """Insert a new job in status 0, or return None when ``creator`` is at the limit.

        The count and the insert happen in one write transaction: concurrent submits
        can never get more than ``limit`` jobs in progress.
        """
        now = utc_timestamp()
        statuses = ",".join(str(s) for s in sorted(IN_PROGRESS))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            (count,) = self._conn.execute(
                f"SELECT COUNT(*) FROM jobs WHERE creator = ? AND job_status IN ({statuses})"
                f" AND {_LIVE}",
                (creator,),
            ).fetchone()
            if count >= limit:
                self._conn.execute("ROLLBACK")
                return None
            cursor = self._conn.execute(
                "INSERT INTO jobs (uuid, creator, jupyter_file_name, job_status, envs,"
                " archive_sha256, archive_size, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_uuid,
                    creator,
                    notebook,
                    CREATED,
                    json.dumps(envs),
                    archive_sha256,
                    archive_size,
                    now,
                    now,
                ),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        record = self._one("SELECT * FROM jobs WHERE id = ?", (cursor.lastrowid,))
        assert record is not None
        return record

    def set_status(
        self,
        job_uuid: str,
        status: int,
        reason: str = "",
        *,
        output_md5: str | None = None,
    ) -> bool:
        """Move a job to ``status``; False when the job is deleted (no longer tracked)."""
        if output_md5 is None:
            cursor = self._conn.execute(
                "UPDATE jobs SET job_status = ?, status_reason = ?, updated_at = ?"
                f" WHERE uuid = ? AND {_LIVE}",
                (status, reason, utc_timestamp(), job_uuid),
            )
        else:
            cursor = self._conn.execute(
                "UPDATE jobs SET job_status = ?, status_reason = ?, output_md5 = ?,"
                f" updated_at = ? WHERE uuid = ? AND {_LIVE}",
                (status, reason, output_md5, utc_timestamp(), job_uuid),
            )
        return cursor.rowcount > 0

    def fail_in_progress(self, statuses: Iterable[int], status: int, reason: str) -> list[str]:
        """Move every job in one of ``statuses`` to ``status``; returns their uuids."""
        wanted = sorted(set(statuses))
        if not wanted:
            return []
        marks = ",".join("?" for _ in wanted)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            rows = self._conn.execute(
                f"SELECT uuid FROM jobs WHERE job_status IN ({marks}) AND {_LIVE}", wanted
            ).fetchall()
            self._conn.execute(
                f"UPDATE jobs SET job_status = ?, status_reason = ?, updated_at = ?"
                f" WHERE job_status IN ({marks}) AND {_LIVE}",
                (status, reason, utc_timestamp(), *wanted),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return [row["uuid"] for row in rows]

    def delete(self, job_uuid: str, creator: str) -> bool:
        """Soft-delete the job with this uuid and creator; False if none matched."""
        cursor = self._conn.execute(
            f"UPDATE jobs SET deleted_at = ? WHERE uuid = ? AND creator = ? AND {_LIVE}",
            (utc_timestamp(), job_uuid, creator),
        )
        return cursor.rowcount > 0

    def set_built_archive(self, job_uuid: str, archive_sha256: str, archive_size: int) -> None:
        """Record the workspace archive the build actually read (maybe a later submit's)."""
        self._conn.execute(
            f"UPDATE jobs SET archive_sha256 = ?, archive_size = ? WHERE uuid = ? AND {_LIVE}",
            (archive_sha256, archive_size, job_uuid),
        )

    # -- reads -------------------------------------------------------------------------
    def query(self, creator: str, page: int, page_size: int) -> tuple[list[JobRecord], int]:
        """One page of ``creator``'s jobs in id order (oldest first, as upstream's query,
        which has no ORDER BY), and how many they have in all. Any ``page_size`` goes, as
        upstream's (see `validation.page_window`)."""
        (total,) = self._conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE creator = ? AND {_LIVE}", (creator,)
        ).fetchone()
        limit, offset = page_window(page, page_size)
        rows = self._conn.execute(
            f"SELECT * FROM jobs WHERE creator = ? AND {_LIVE} ORDER BY id LIMIT ? OFFSET ?",
            (creator, limit, offset),
        ).fetchall()
        return [self._record(row) for row in rows], int(total)

    def in_progress(self, creator: str) -> int:
        """How many of the creator's jobs are in progress (statuses 0, 1, 3, 4)."""
        statuses = ",".join(str(s) for s in sorted(IN_PROGRESS))
        (count,) = self._conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE creator = ? AND job_status IN ({statuses})"
            f" AND {_LIVE}",
            (creator,),
        ).fetchone()
        return int(count)

    def get(self, job_id: int, creator: str) -> JobRecord | None:
        return self._one(
            f"SELECT * FROM jobs WHERE id = ? AND creator = ? AND {_LIVE}", (job_id, creator)
        )

    def get_by_uuid(self, job_uuid: str, *, deleted: bool = False) -> JobRecord | None:
        """The job with this uuid; a deleted one only when ``deleted`` is true."""
        live = "" if deleted else f" AND {_LIVE}"
        return self._one(f"SELECT * FROM jobs WHERE uuid = ?{live}", (job_uuid,))

    def with_status(self, statuses: Iterable[int]) -> list[JobRecord]:
        """Jobs in any of ``statuses``, oldest first (the order they are run in)."""
        wanted = sorted(set(statuses))
        marks = ",".join("?" for _ in wanted)
        rows = self._conn.execute(
            f"SELECT * FROM jobs WHERE job_status IN ({marks}) AND {_LIVE} ORDER BY id", wanted
        ).fetchall()
        return [self._record(row) for row in rows]

    def all_uuids(self) -> set[str]:
        """Every job's uuid, deleted ones included (their files are kept)."""
        return {row["uuid"] for row in self._conn.execute("SELECT uuid FROM jobs")}
