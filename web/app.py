"""The web app's factory and its life cycle as one more adapter of `imagebot run`: routes,
middleware, and the port factory that lets queued jobs of web visitors be answered."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from imagebot.web import chat_views, moderation, pages
from imagebot.web.auth import Auth, check_exposure, load_secret
from imagebot.web.chat import WebPort
from imagebot.web.errors import middleware
from imagebot.web.pages import SITE
from imagebot.web.site import STATIC, Site

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.ports import JobQueue, ReplyPort
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.web")
ID = "{batch_id:[0-9a-f]{6,32}}"


class Runtime(Protocol):
    """What the web app needs of the durable runtime: the queue, and where to answer."""

    def register_platform(self, platform: str, port_factory: Any) -> None: ...


def make_app(site: Site) -> web.Application:
    """The aiohttp application over `site` (tests drive it with aiohttp's test client)."""
    app = web.Application(middlewares=[middleware(site)], client_max_size=256 * 1024)
    app[SITE] = site
    add = app.router.add_route
    add("GET", "/", pages.gallery)
    add("GET", f"/batch/{ID}", pages.batch)
    add("GET", f"/batch/{ID}/files/{{name}}", pages.batch_file)
    add("GET", f"/thumb/{ID}/{{number}}", pages.thumbnail)
    add("POST", f"/batch/{ID}/delete", moderation.delete)
    add("GET", "/login", moderation.login_form)
    add("POST", "/login", moderation.login)
    add("POST", "/logout", moderation.logout)
    add("GET", "/export.csv", moderation.export)
    add("GET", "/queue", moderation.queue)
    add("GET", "/chat", chat_views.page)
    add("POST", "/chat/send", chat_views.send)
    add("POST", "/chat/button", chat_views.button)
    add("GET", "/chat/events", chat_views.events)
    add("GET", "/chat/files/{key}", chat_views.chat_file)
    app.router.add_static("/static", STATIC, follow_symlinks=False, show_index=False)
    return app


class WebAdapter:
    """`imagebot web`, and the web app beside the bots in `imagebot run`."""

    def __init__(
        self,
        services: Services,
        runtime: Runtime,
        chat: ChatCommands,
        queue: JobQueue,
        *,
        host: str,
        port: int,
        token: str | None,
    ) -> None:
        check_exposure(host, token)  # before anything listens: one line, exit 2
        self.host = host
        self.port = port
        auth = Auth(load_secret(services.archive.root), token, host)
        self.site = Site(services, chat, queue, auth)
        self.app = make_app(self.site)
        self._runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self.url: str | None = None  # where it listens, once started
        runtime.register_platform("web", self.port_for)

    def port_for(self, reply: dict[str, Any]) -> ReplyPort:
        """A reply port for a stored address (how queued jobs are answered after a restart)."""
        return WebPort(self.site.hub, reply)

    async def login(self) -> None:
        """Nothing to log in to."""

    async def start(self) -> None:
        """Listen on host:port; OSError in one line when the address is taken."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                          "set IMAGEBOT_WEB_PORT or --port") from None  # fmt: skip
        port = self._runner.addresses[0][1] if self._runner.addresses else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}/"
        log.info("web app on %s", self.url)

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        self.site.closing.set()
        for task in list(self.site.tasks):
            task.cancel()
        if self.site.tasks:
            await asyncio.gather(*self.site.tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._stopped.set()
