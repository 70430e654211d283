"""Which ManaTEE creator a user is, and the notice that their creator changed."""

from __future__ import annotations

import logging

from ..config import ManateeConfig, creator_problem, creator_warning, safe_creator
from ..errors import Forbidden, quoted
from ..jobs.creator_notice import CreatorNotices


class Creators:
    """Maps user names to the creator the API sees; warns once per odd creator."""

    def __init__(self, config: ManateeConfig, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self.notices = CreatorNotices(config.state_dir, log)
        self._warned: set[str] = set()

    def creator(self, username: str) -> str:
        """The creator name the API sees for this user: the override, else the user name."""
        name = self.config.creator or (
            safe_creator(username) if self.config.creator_mapping == "safe" else username
        )
        problem = creator_problem(name)
        if problem:
            hint = (
                "an operator can set c.ManateeConfig.creator_mapping = 'safe' to map user "
                "names to valid creators, or c.ManateeConfig.creator (MANATEE_CREATOR) to a "
                "short lowercase name"
                if not self.config.creator
                else "fix c.ManateeConfig.creator / MANATEE_CREATOR"
            )
            raise Forbidden(
                f"{quoted(name)} cannot be used as the ManaTEE creator: {problem}; {hint}"
            )
        warning = creator_warning(name)
        if warning and name not in self._warned:
            self._warned.add(name)
            self.log.warning("ManaTEE: %s", warning)
        return name

    def notice(self, username: str) -> dict[str, str] | None:
        """``{"old", "new"}`` while the safe mapping changed this user's creator, unread."""
        return self.notices.pending(self.config, username)

    def dismiss_notice(self, username: str) -> None:
        """The user has read that their creator changed: stop telling them."""
        self.notices.dismiss(self.config, username)
