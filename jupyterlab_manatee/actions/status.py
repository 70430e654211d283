"""What the panel's banner shows: the API's state, the user's creator, the limits."""

from __future__ import annotations

import asyncio
from typing import Any

from .._version import __version__
from ..common.local_setup import describe as describe_setup
from ..common.local_setup import setup_under_way
from ..config import creator_warning, redact_url
from ..errors import Forbidden, ManateeError
from .context import Context
from .creators import Creators


async def status(context: Context, creators: Creators, username: str) -> dict[str, Any]:
    """The banner's facts; never raises for a missing or unreachable API."""
    config = context.config
    problem = config.problem
    url_problem = config.api_url_problem
    reply: dict[str, Any] = {
        "version": __version__,
        # while ./dev run sets the local backend up: {"seconds_left", ...}
        "setting_up": None,
        # the banner shows "not configured" with the problem, also for the token
        "configured": problem is None,
        "api_url": None if url_problem else redact_url(config.api_base_url or ""),
        "problem": problem,
        "reachable": None,
        "creator": None,
        "creator_problem": None,
        "creator_warning": None,
        # {"old", "new"}: the safe mapping changed the user's creator (their earlier
        # jobs are listed under the old one), until they dismiss it
        "creator_notice": None,
        "max_workspace_size": config.max_workspace_size,
        # the panel counts jobs in progress and queued against it before it asks
        "job_limit": config.job_limit if config.queue_submissions else None,
        "queue_submissions": config.queue_submissions,
        # the folder beside each notebook that holds its saved outputs ('' if none):
        # never shipped, so the panel can leave it out of its Sources list too
        "outputs_folder": config.outputs_folder,
    }
    try:
        reply["creator"] = creators.creator(username)
        reply["creator_warning"] = creator_warning(reply["creator"])
        reply["creator_notice"] = creators.notice(username)
    except Forbidden as e:
        reply["creator_problem"] = e.message
    if problem is None and config.check_health:
        try:
            await context.client.health()
            reply["reachable"] = True
        except ManateeError as e:
            reply["reachable"] = False
            reply["problem"] = e.message
            setting_up = await asyncio.get_running_loop().run_in_executor(
                None, setup_under_way, config.local_setup_file
            )
            if setting_up is not None:  # not a mistake of the user's: say so
                reply["setting_up"] = setting_up
                reply["problem"] = describe_setup(setting_up)
    return reply
