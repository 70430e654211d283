"""The server extension as a jupyter_server ``ExtensionApp``: the one kind of extension
whose ``stop_extension`` the server awaits when it stops (function-based extensions get no
shutdown hook in jupyter_server 2.x), so the API connections are closed then."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop

from .config import ManateeConfig, redact_url
from .handlers import setup_handlers
from .manager import ManateeManager


class ManateeExtension(ExtensionApp):
    """Registers the shield panel's routes; a missing API URL or an unusable token is a
    warning, not a crash (the routes answer 503 saying what to fix)."""

    name = "jupyterlab_manatee"

    manager: ManateeManager | None = None

    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        assert serverapp is not None
        # parent=serverapp: c.ManateeConfig.* of the server's config and command line
        config = ManateeConfig(parent=serverapp)
        contents = serverapp.contents_manager
        self.manager = ManateeManager(config, contents.root_dir, serverapp.log, contents)
        problem = config.problem
        if problem:
            serverapp.log.warning("jupyterlab_manatee: %s (the shield panel answers 503)", problem)
        else:
            serverapp.log.info(
                "jupyterlab_manatee: ManaTEE API at %s", redact_url(config.api_base_url or "")
            )

    def initialize_handlers(self) -> None:
        assert self.serverapp is not None and self.manager is not None
        setup_handlers(self.serverapp.web_app, self.manager)
        # queued submissions of an earlier run are sent once the server's loop runs
        IOLoop.current().add_callback(self.manager.start_queue)

    async def stop_extension(self) -> None:
        """The server is stopping: close the API connections, stop the queue's sender."""
        if self.manager is not None:
            await self.manager.close()
            self.manager.log.info("jupyterlab_manatee: stopped; API connections closed")
