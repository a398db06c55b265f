"""Serve a fake's aiohttp app on loopback: the one start-up and shut-down every fake shares."""

from __future__ import annotations

import asyncio
from typing import Self

from aiohttp import web


async def listen(
    app: web.Application, port: int = 0, *, shutdown_timeout: float = 0.1
) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 at `port` (0: a free one; the same again after a restart)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class LoopbackServer:
    """A fake service on 127.0.0.1: subclasses build their app; start, stop and `async with`.

    `closing` is set while the server stops, so handlers that hang (to fake a stuck server)
    can return at once. A restarted server keeps its port, so clients see the same one return.
    """

    shutdown_timeout: float = 0.1

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._runner: web.AppRunner | None = None
        self.closing = asyncio.Event()

    def build_app(self) -> web.Application:
        """The aiohttp application with the fake's routes."""
        raise NotImplementedError

    async def before_stop(self) -> None:
        """Release what the fake holds open (websockets, workers) before the runner stops."""

    async def start(self) -> None:
        self.closing = asyncio.Event()
        self._runner, self._port = await listen(
            self.build_app(), self._port, shutdown_timeout=self.shutdown_timeout
        )

    async def stop(self) -> None:
        self.closing.set()
        await self.before_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"
