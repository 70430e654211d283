"""Submissions held back until the creator's workspace slot is free.

The real API keeps one workspace object per creator (``<creator>/<creator>-workspace.tar.gz``)
and the image builder reads it only when it starts the job's build, seconds to minutes
later. A second submission before that silently replaces the first job's files (job A
would build B's notebook). So a creator's workspace is never sent while an earlier job of
theirs (from any client) is in status 0 (created) or 1 (building the image): the
submission is archived at once (what the user confirmed is what is sent), kept under
``state_dir/queue/`` with its archive, and sent by :meth:`SubmissionQueue.run` when the
slot frees. Entries survive a restart of Jupyter; sent and failed ones are kept a while so
the panel can tell the user the job id or the error.

An entry file read back is checked (:func:`entry_problem`) before anything is made of it:
its id names its archive, so an id that is not one this queue makes (``../../x``) would
reach outside the folder. A file that fails is set aside (:mod:`..common.state_files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..common.state_files import Fields, field_problem, set_aside
from ..errors import quoted

#: Statuses in which the builder has not yet read the creator's workspace object.
WORKSPACE_UNREAD = frozenset({0, 1})
IN_PROGRESS = frozenset({0, 1, 3, 4})
QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
#: How long the outcome of a sent or failed entry stays visible.
KEEP_OUTCOME_SECONDS = 3600.0
ENTRY_SUFFIX = ".json"
ARCHIVE_SUFFIX = ".tar.gz"
#: A queue id, as :meth:`SubmissionQueue.new_archive_path` makes them (uuid4's first 12 hex).
ENTRY_ID = re.compile(r"[0-9a-f]{12}")

log = logging.getLogger(__name__)


@dataclass
class Entry:
    """One held-back submission (its JSON file) and, while queued, its archive."""

    id: str
    creator: str
    notebook: str
    path: str
    folder: str
    envs: list[dict[str, str]]
    file_count: int
    total_bytes: int
    excluded_count: int
    created_at: str
    waits_for: dict[str, Any] | None = None
    state: str = QUEUED
    uuid: str | None = None
    error: str | None = None
    ended: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """What the panel shows (no archive path, no envs: they may hold settings)."""
        data = asdict(self)
        for private in ("envs", "extra", "ended"):
            data.pop(private)
        return data


_NULL = type(None)
#: The type of each field of an entry file (what :class:`Entry` holds).
ENTRY_FIELDS: Fields = {
    "id": (str,),
    "creator": (str,),
    "notebook": (str,),
    "path": (str,),
    "folder": (str,),
    "envs": (list,),
    "file_count": (int,),
    "total_bytes": (int,),
    "excluded_count": (int,),
    "created_at": (str,),
    "waits_for": (dict, _NULL),
    "state": (str,),
    "uuid": (str, _NULL),
    "error": (str, _NULL),
    "ended": (int, float, _NULL),
    "extra": (dict,),
}
_REQUIRED = tuple(
    f.name
    for f in dataclasses.fields(Entry)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)


def entry_problem(data: Any, file_id: str) -> str | None:
    """What makes the entry file ``<file_id>.json`` (holding ``data``) unusable, or None.

    Its id must be one this queue makes and the file's own name: it becomes the archive's
    path, which must stay inside the queue folder."""
    problem = field_problem(data, ENTRY_FIELDS, required=_REQUIRED, known_only=True)
    if problem is not None:
        return problem
    if not ENTRY_ID.fullmatch(data["id"]):
        return f"its id {quoted(data['id'])} is not a queue id (12 hex digits)"
    if data["id"] != file_id:
        return f"its id {quoted(data['id'])} is not its file's name"
    if data["state"] not in (QUEUED, SENDING, SENT, FAILED):
        return f"its state {quoted(data['state'])} is none this queue knows"
    if any(not isinstance(env, dict) or set(env) != {"key", "value"} for env in data["envs"]):
        return "its envs are not all {key, value} pairs"
    if not all(isinstance(v, str) for env in data["envs"] for v in env.values()):
        return "its envs are not all strings"
    return None


#: ``(creator) -> the creator's jobs, newest first`` (recent ones are enough: a job in
#: status 0/1 is never old).
RecentJobs = Callable[[str], Awaitable[list[dict[str, Any]]]]
#: ``(entry, archive) -> the API's submit reply`` (``uuid``), raising ManateeError.
Send = Callable[[Entry, Path], Awaitable[dict[str, Any]]]


class SubmissionQueue:
    """The queued submissions of every creator, on disk, and the task that sends them."""

    def __init__(self, folder: Path, *, poll_interval: float = 5.0) -> None:
        self.folder = folder
        self.poll_interval = poll_interval
        self._entries: dict[str, Entry] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._wake = asyncio.Event()

    # --- what the routes use ---------------------------------------------------------

    def lock(self, creator: str) -> asyncio.Lock:
        """Held while deciding to send or queue, and while sending: one at a time per
        creator, so two submissions can never both find the slot free."""
        return self._locks.setdefault(creator, asyncio.Lock())

    def entries(self, creator: str) -> list[Entry]:
        """The creator's entries, oldest first (queued ones and recent outcomes)."""
        self._forget_old()
        mine = [e for e in self._load().values() if e.creator == creator]
        return sorted(mine, key=lambda e: (e.created_at, e.id))

    def pending(self, creator: str) -> list[Entry]:
        return [e for e in self.entries(creator) if e.state in (QUEUED, SENDING)]

    def archive(self, entry: Entry) -> Path:
        return self.folder / f"{entry.id}{ARCHIVE_SUFFIX}"

    def new_archive_path(self) -> tuple[str, Path]:
        """An id and where its archive is to be written (before :meth:`add`)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry_id = uuid.uuid4().hex[:12]  # ENTRY_ID
        return entry_id, self.folder / f"{entry_id}{ARCHIVE_SUFFIX}"

    def add(self, entry: Entry) -> Entry:
        """Keep ``entry`` (its archive is already written) and wake the sender."""
        self._load()[entry.id] = entry
        self._save(entry)
        self._wake.set()
        return entry

    def cancel(self, creator: str, entry_id: str) -> Entry | None:
        """Remove a queued entry and its archive; None when there is no such entry.

        An entry being sent cannot be cancelled (the upload is under way).
        """
        entry = self._load().get(entry_id)
        if entry is None or entry.creator != creator:
            return None
        if entry.state == SENDING:
            raise RuntimeError("it is being sent right now")
        self._remove(entry)
        return entry

    # --- the sender --------------------------------------------------------------------

    def has_queued(self) -> bool:
        return any(e.state == QUEUED for e in self._load().values())

    async def run(self, recent_jobs: RecentJobs, send: Send) -> None:
        """Send queued entries as their creators' slots free; returns once none is left
        (:meth:`add` callers start it again)."""
        while self.has_queued():
            self._wake.clear()
            with contextlib.suppress(Exception):
                await self.send_ready(recent_jobs, send)
            if not self.has_queued():
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def send_ready(self, recent_jobs: RecentJobs, send: Send) -> None:
        """One pass: for each creator, send the oldest queued entry if the slot is free."""
        creators = {e.creator for e in self._load().values() if e.state == QUEUED}
        for creator in sorted(creators):
            async with self.lock(creator):
                queued = [e for e in self.entries(creator) if e.state == QUEUED]
                if not queued:
                    continue
                entry = queued[0]
                try:
                    blocker = blocking_job(await recent_jobs(creator))
                except Exception as e:  # the API is away: try again later
                    log.info("ManaTEE queue: cannot look at %s's jobs yet: %s", creator, e)
                    continue
                if blocker is not None:
                    if entry.waits_for != _job_ref(blocker):
                        entry.waits_for = _job_ref(blocker)
                        self._save(entry)
                    continue
                await self._send(entry, send)

    async def _send(self, entry: Entry, send: Send) -> None:
        entry.state = SENDING
        self._save(entry)
        try:
            reply = await send(entry, self.archive(entry))
        except Exception as e:
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            entry.state, entry.error = FAILED, message
            log.warning("ManaTEE queue: sending %s of %s failed: %s", entry.id, entry.creator, e)
        else:
            entry.state, entry.uuid = SENT, reply.get("uuid")
            log.info("ManaTEE queue: sent %s of %s as job %s", entry.id, entry.creator, entry.uuid)
        entry.ended = time.time()
        self._save(entry)
        self.archive(entry).unlink(missing_ok=True)

    # --- storage ---------------------------------------------------------------------

    def _load(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = {}
            for path in sorted(self.folder.glob(f"*{ENTRY_SUFFIX}")):
                entry = _read_entry(path)
                if entry is None:
                    continue
                if entry.state == SENDING:
                    # Jupyter stopped mid-upload: the API may or may not have the job.
                    entry.state = FAILED
                    entry.error = (
                        "Jupyter stopped while this submission was being sent; check the "
                        "job list, and submit again if the job is not there"
                    )
                    entry.ended = time.time()
                    self._entries[entry.id] = entry
                    self._save(entry)
                    self.archive(entry).unlink(missing_ok=True)
                    continue
                if entry.state == QUEUED and not self.archive(entry).is_file():
                    entry.state, entry.error = FAILED, "its archive is gone"
                    entry.ended = time.time()
                self._entries[entry.id] = entry
        return self._entries

    def _save(self, entry: Entry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(asdict(entry)).encode()
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".entry-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temp, self.folder / f"{entry.id}{ENTRY_SUFFIX}")
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _remove(self, entry: Entry) -> None:
        self._load().pop(entry.id, None)
        self.archive(entry).unlink(missing_ok=True)
        (self.folder / f"{entry.id}{ENTRY_SUFFIX}").unlink(missing_ok=True)

    def _forget_old(self) -> None:
        now = time.time()
        for entry in list(self._load().values()):
            if entry.ended is not None and now - entry.ended > KEEP_OUTCOME_SECONDS:
                self._remove(entry)


def blocking_job(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest job whose workspace the builder has not read yet (status 0 or 1)."""
    waiting = [j for j in jobs if j.get("job_status") in WORKSPACE_UNREAD]
    return max(waiting, key=lambda j: j["id"]) if waiting else None


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job_ref(job: dict[str, Any]) -> dict[str, Any]:
    return {"id": job.get("id"), "uuid": job.get("uuid")}


def _read_entry(path: Path) -> Entry | None:
    """The entry in ``path``; None (and the file set aside) when it cannot be trusted."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:  # cancelled meanwhile
        return None
    except OSError as e:
        problem = f"it cannot be read: {e.strerror or e}"
    except (ValueError, RecursionError) as e:
        problem = f"it is not JSON: {e}"
    else:
        problem = entry_problem(data, path.name[: -len(ENTRY_SUFFIX)])
        if problem is None:
            return Entry(**data)
    set_aside(path, problem, log)
    return None
