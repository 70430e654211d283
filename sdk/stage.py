"""Which execution stage this process runs in.

ManaTEE runs a notebook twice: stage 1 in JupyterLab against synthetic or sample data,
stage 2 inside the TEE against the real data. Deployments tell the two apart with the
``EXECUTION_STAGE`` environment variable; Helm sets it with literal quotes (``'"1"'``),
so one pair of matching quotes and blanks around the value are ignored.
"""

from __future__ import annotations

import os
import threading
import warnings

from .errors import InvalidStageError

STAGE_ENV = "EXECUTION_STAGE"
STAGE_1 = 1
STAGE_2 = 2

_warn_lock = threading.Lock()
_warned_unset = False

STAGE_EXPLANATION = (
    "ManaTEE runs a notebook in two stages: stage 1 in JupyterLab, where the SDK reads "
    "the stage-1 location (synthetic or sample data), and stage 2 inside the TEE, where "
    "it reads the stage-2 location (the real data). DataRepo.get_data() picks the "
    "location of the current stage by itself."
)


def parse_stage(raw: str | None) -> int | None:
    """Return 1 or 2 for a raw ``EXECUTION_STAGE`` value, ``None`` when unset or empty.

    Raises ``InvalidStageError`` naming the accepted values for anything else.
    """
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()
    if value == "":
        return None
    if value in ("1", "2"):
        return int(value)
    raise InvalidStageError(
        f"{STAGE_ENV}={raw!r} is not a valid execution stage. Accepted values are 1 "
        f"(JupyterLab, stage-1 data) and 2 (the TEE, stage-2 data), optionally quoted "
        f"like '\"1\"'; unset means stage 1."
    )


def current_stage() -> int:
    """Return the stage of this process from ``EXECUTION_STAGE`` (1 when unset).

    An unset variable is the usual case on a laptop, so it means stage 1, with one
    warning per process: a TEE that forgot to set it would otherwise read the wrong data
    silently.
    """
    global _warned_unset
    stage = parse_stage(os.environ.get(STAGE_ENV))
    if stage is not None:
        return stage
    with _warn_lock:
        if not _warned_unset:
            _warned_unset = True
            warnings.warn(
                f"{STAGE_ENV} is not set; assuming stage 1 (JupyterLab, stage-1 data). "
                f"The TEE sets {STAGE_ENV}=2.",
                UserWarning,
                stacklevel=3,
            )
    return STAGE_1
