"""A local ManaTEE backend: the upstream API contract and the two-stage flow on one machine.

``LocalBackend`` serves the job routes, runs submitted notebooks in stage 2 with nbclient,
and issues tokens shaped like Confidential Space tokens that say plainly that no hardware
TEE was involved (``swname`` ``LOCAL_NO_TEE``).

The names are loaded on first use, so the executor child process
(``python -m jupyterlab_manatee.local_backend.execute``) does not import the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import INTERRUPTED_REASON, DataDirInUse, LocalBackend

__all__ = ["INTERRUPTED_REASON", "DataDirInUse", "LocalBackend"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
