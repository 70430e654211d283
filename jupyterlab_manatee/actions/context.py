"""What every action shares: settings, contents root, log, threads, API connections."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..common.background import background_executor
from ..config import ManateeConfig
from ..errors import ApiNotConfigured
from ..jobs.job_records import JobRecords, records_file
from ..remote.api_client import ManateeApiClient
from ..remote.api_session import ApiSession


class Context:
    """The server's settings and the resources its actions share, closed by :meth:`close`."""

    def __init__(
        self,
        config: ManateeConfig,
        root_dir: str | Path,
        log: logging.Logger,
        contents_manager: Any = None,
    ) -> None:
        self.config = config
        #: the server's ContentsManager: its ``allow_hidden`` also governs what is shipped
        self.contents_manager = contents_manager
        self.root_dir = Path(root_dir).resolve()
        self.log = log
        #: walking and archiving workspaces, file system checks: off the server's loop
        self.pool = background_executor(2, config.background_nice, "manatee-workspace")
        #: the JSON calls' pooled connections to the API
        self.api_session = ApiSession()
        self._records: dict[str, JobRecords] = {}

    @property
    def records(self) -> JobRecords:
        """The records of jobs submitted to the configured API. Kept per API URL: job ids
        are the API's, and another API (a reset local backend) numbers from 1 again, so a
        record from one must never identify a job of the other."""
        api = self.config.api_base_url or ""
        if api not in self._records:
            self._records[api] = JobRecords(Path(self.config.state_dir) / records_file(api))
        return self._records[api]

    @property
    def client(self) -> ManateeApiClient:
        """A client for the configured API (built per request: the settings may change)."""
        base_url = self.config.api_base_url
        problem = self.config.problem  # a bad URL, or a token a header cannot carry
        if base_url is None or problem:
            raise ApiNotConfigured(problem or "ManaTEE API is not configured")
        return ManateeApiClient(
            base_url,
            self.config.user_token,
            connect_timeout=self.config.connect_timeout,
            request_timeout=self.config.request_timeout,
            upload_timeout=self.config.upload_timeout,
            session=self.api_session,
        )

    async def close(self) -> None:
        """At server stop: the worker threads, then the API connections."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        await self.api_session.close()
