"""jupyterlab_manatee: the JupyterLab side of ManaTEE, a TEE-based data clean room."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlab-manatee"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "jupyterlab_manatee"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the shield panel's routes; a missing API URL is a warning, not a crash."""
    from tornado.ioloop import IOLoop

    from .config import ManateeConfig, redact_url
    from .handlers import setup_handlers
    from .manager import ManateeManager

    config = ManateeConfig(parent=serverapp)
    contents = serverapp.contents_manager
    manager = ManateeManager(config, contents.root_dir, serverapp.log, contents)
    setup_handlers(serverapp.web_app, manager)
    # queued submissions of an earlier run are sent once the server's loop runs
    IOLoop.current().add_callback(manager.start_queue)
    problem = config.api_url_problem
    if problem:
        serverapp.log.warning("jupyterlab_manatee: %s (the shield panel answers 503)", problem)
    else:
        serverapp.log.info(
            "jupyterlab_manatee: ManaTEE API at %s", redact_url(config.api_base_url or "")
        )
