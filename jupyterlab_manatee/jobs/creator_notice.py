"""Tell a user once that ``creator_mapping = 'safe'`` gave them a new creator name.

The API lists jobs by creator, so a user whose name the mapping changes (an e-mail address,
capitals) no longer sees the jobs submitted under the old name once an operator turns the
mapping on. ``GET manatee/config`` carries ``creator_notice`` ``{"old", "new"}`` until the
user dismisses it; the dismissal is kept under ``state_dir`` (``creator-notices.json``), per
pair of names, so a later change of mapping is told again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ..common.state_files import field_problem, set_aside
from ..config import ManateeConfig, creator_problem, safe_creator

NOTICES_FILE = "creator-notices.json"
PAIR_FIELDS = {"old": (str,), "new": (str,)}


def changed_creator(config: ManateeConfig, username: str) -> dict[str, str] | None:
    """``{"old", "new"}`` when the safe mapping changed ``username``, which the API would
    have taken unchanged (so jobs may exist under it); else None."""
    if config.creator or config.creator_mapping != "safe":
        return None
    new = safe_creator(username)
    if new == username or creator_problem(username) is not None:
        return None
    return {"old": username, "new": new}


class CreatorNotices:
    """The dismissed notices of one server, in ``<state_dir>/creator-notices.json``."""

    def __init__(self, state_dir: str | Path, log: logging.Logger) -> None:
        self.path = Path(state_dir) / NOTICES_FILE
        self.log = log

    def pending(self, config: ManateeConfig, username: str) -> dict[str, str] | None:
        """The notice to show ``username``, or None (none, or dismissed)."""
        pair = changed_creator(config, username)
        return None if pair is None or pair in self._dismissed() else pair

    def dismiss(self, config: ManateeConfig, username: str) -> None:
        """Remember that ``username`` has read the notice (nothing to do without one)."""
        pair = changed_creator(config, username)
        dismissed = self._dismissed()
        if pair is None or pair in dismissed:
            return
        self._write({"dismissed": [*dismissed, pair]})

    def _dismissed(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            set_aside(self.path, f"it does not parse ({e})", self.log, "notices show again")
            return []
        problem = field_problem(data, {"dismissed": (list,)}, required=("dismissed",))
        pairs = data["dismissed"] if problem is None else []
        for pair in pairs:
            problem = problem or field_problem(
                pair, PAIR_FIELDS, required=("old", "new"), known_only=True
            )
        if problem is not None:
            set_aside(self.path, problem, self.log, "notices show again")
            return []
        return pairs

    def _write(self, data: dict[str, Any]) -> None:
        """Atomically; a failure is logged and the notice shows again next time."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".notices-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(temp, self.path)
        except OSError as e:
            self.log.warning("ManaTEE: could not save %s: %s", self.path, e)
