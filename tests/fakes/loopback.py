"""Serve a fake's aiohttp app on loopback: the one start-up every fake shares."""

from __future__ import annotations

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
