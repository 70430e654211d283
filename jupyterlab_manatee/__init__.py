"""jupyterlab_manatee: the JupyterLab side of ManaTEE, a TEE-based data clean room."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlab-manatee"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # imported here: the local backend and the CLIs import this package without a server
    from .extension import ManateeExtension

    return [{"module": "jupyterlab_manatee", "app": ManateeExtension}]
