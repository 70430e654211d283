"""What the HTTP layer (`app`) needs from the backend, as a protocol.

`app` depends on this small interface, and `backend` implements it and builds the app:
the dependency goes one way (backend -> app -> interface), with no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .access import AccessPolicy
from .layout import DataLayout
from .signing import UrlSigner
from .store import JobRecord
from .tokens import TokenIssuer

T = TypeVar("T")


class ApiBackend(Protocol):
    """The operations and parts of a running backend the route handlers use."""

    layout: DataLayout
    signer: UrlSigner
    tokens: TokenIssuer
    access: AccessPolicy
    max_archive_size: int

    async def run_io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work off the event loop."""
        ...

    async def query_jobs(
        self, creator: str, page: int, page_size: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the creator's jobs (API JOB dicts) and their total."""
        ...

    async def find_job(self, job_id: int, creator: str) -> JobRecord | None:
        """The creator's (not deleted) job with this id."""
        ...

    async def submits_answered(self) -> None:
        """Return once submits may be answered (tests hold them)."""
        ...

    async def at_job_limit(self, creator: str) -> bool:
        """Whether the creator already has the most jobs in progress allowed."""
        ...

    async def accept_job(
        self,
        *,
        temp_archive: Path,
        creator: str,
        notebook: str,
        envs: list[dict[str, str]],
        archive_sha256: str,
        archive_size: int,
    ) -> str | None:
        """Store a received workspace and create its job; None at the job limit."""
        ...

    async def delete_job(self, job_uuid: str, creator: str) -> bool:
        """Soft-delete the creator's job; False when none matched."""
        ...
