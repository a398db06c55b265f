"""The composition root: settings in, services, the durable runtime, the chat commands and
the adapters out; run the bots (and the daily posts) on one loop.

Adding a surface is one builder in ADAPTERS: `build(ctx, **options)` returns an adapter that
has registered its port factory with ctx.runtime (ConfigError when its token is missing) and
offers `async login()` (REST only), `async start()` (serve in the background), `async wait()`
and `async stop()`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imagebot.providers.base import ConfigError

if TYPE_CHECKING:
    from imagebot.bot.runtime import Runtime
    from imagebot.bot.settings import Settings
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.app")

TOKENS = {"discord": "DISCORD_TOKEN", "telegram": "TELEGRAM_TOKEN"}


class StartupError(Exception):
    """A surface could not start for a reason outside the settings (the network): exit 1."""


@dataclass
class BotContext:
    """What every adapter shares."""

    settings: Settings
    services: Services
    runtime: Runtime
    chat: ChatCommands


class PlatformAdapter(Protocol):
    async def login(self) -> None: ...
    async def start(self) -> None: ...
    async def wait(self) -> None: ...
    async def stop(self) -> None: ...


def build_services(settings: Settings) -> Services:
    """The commands' services from the settings: the one place paths and options are read.

    On every start (CLI or bot) the batches of processes that are gone are swept first.
    """
    from imagebot.commands.services import Services
    from imagebot.storage.archive import Archive
    from imagebot.storage.opening import open_index
    from imagebot.storage.owners import ProcessOwner, sweep

    db_path, url = Path(settings.db_path), database_url(settings)
    archive = Archive(settings.output_dir, object_store(settings))
    owner = ProcessOwner(archive.root)
    services = Services(
        settings.command_config, archive, lambda: open_index(db_path, url), owner=owner
    )
    try:
        sweep(archive, services.index)
    except BaseException:
        owner.release()
        raise
    return services


def database_url(settings: Settings) -> str | None:
    """IMAGEBOT_DATABASE_URL revealed for the driver only (it never reaches a log)."""
    return settings.database_url.reveal() if settings.database_url is not None else None


def object_store(settings: Settings) -> Any:
    """The S3 archive of IMAGEBOT_ARCHIVE_URL (None: local folders only)."""
    if not settings.archive_url:
        return None
    try:
        from imagebot.storage.object_store import ObjectStore

        return ObjectStore(settings.archive_url, settings.s3_endpoint)
    except ImportError:
        raise ConfigError(
            "IMAGEBOT_ARCHIVE_URL needs the s3 extra: pip install 'imagebot[s3]'"
        ) from None


def require_token(settings: Settings, platform: str) -> None:
    """ConfigError naming the variable when `platform` has no token."""
    if platform not in configured_platforms(settings):
        raise ConfigError(f"{TOKENS[platform]} is not set; it is needed to run the {platform} bot")


def build_discord(ctx: BotContext, **options: Any) -> PlatformAdapter:
    """The Discord bot (discord.py), imported only when it runs."""
    require_token(ctx.settings, "discord")
    from imagebot.bot.discord.adapter import DiscordAdapter

    return DiscordAdapter(ctx, **options)


def build_telegram(ctx: BotContext, **options: Any) -> PlatformAdapter:
    """The Telegram bot (aiogram), imported only when it runs."""
    require_token(ctx.settings, "telegram")
    from imagebot.bot.telegram.adapter import TelegramBot

    return TelegramBot(ctx, **options)


def build_web(ctx: BotContext, **options: Any) -> PlatformAdapter:
    """The web app (aiohttp + Jinja2) on IMAGEBOT_WEB_HOST/PORT, or `host`/`port` given."""
    from imagebot.web.app import WebAdapter

    settings = ctx.settings
    token = settings.web_token.reveal() if settings.web_token else None
    return WebAdapter(
        ctx.services,
        ctx.runtime,
        ctx.chat,
        ctx.runtime,
        host=options.get("host") or settings.web_host,
        port=settings.web_port if options.get("port") is None else options["port"],
        token=token,
    )


ADAPTERS: dict[str, Callable[..., PlatformAdapter]] = {
    "discord": build_discord,
    "telegram": build_telegram,
    "web": build_web,
}


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms whose token is set (what `imagebot run` starts)."""
    found = []
    if settings.discord_token is not None:
        found.append("discord")
    if settings.telegram_token is not None:
        found.append("telegram")
    return found


def build_context(settings: Settings, services: Services | None = None) -> BotContext:
    """Services, the durable runtime and the chat commands, built once per process."""
    from imagebot.bot.runtime import Runtime
    from imagebot.commands.chat import ChatCommands

    services = services or build_services(settings)
    runtime = Runtime(services)
    chat = ChatCommands(services, runtime)
    runtime.set_worker(chat.run)
    return BotContext(settings, services, runtime, chat)


def freeze_startup_objects() -> None:
    """Move what start-up allocated (modules, caches) out of the collector's sight.

    A full collection otherwise walks them all and stalls every interaction in flight: the
    longest pauses measured in the Discord bench fell from 48–67 ms to 20–37 ms.
    """
    gc.collect()
    gc.freeze()


async def run_bots(
    settings: Settings, platforms: list[str], web: dict[str, Any] | None = None
) -> None:
    """Run the requested bots and the daily posts on this loop until one stops (or Ctrl-C);
    with `web` (its host/port options, may be empty) the web app too."""
    from imagebot.bot.daily import DailyScheduler

    ctx = build_context(settings)
    adapters: list[PlatformAdapter] = []
    try:
        adapters = [ADAPTERS[platform](ctx) for platform in platforms]
        if web is not None:
            adapters.append(build_web(ctx, **web))
        for adapter in adapters:
            await adapter.start()
        # After the adapters log in: resumed jobs may answer at once.
        await ctx.runtime.start()
        freeze_startup_objects()
        daily = DailyScheduler(ctx.services, ctx.runtime)
        waits = [asyncio.create_task(adapter.wait()) for adapter in adapters]
        waits.append(asyncio.create_task(daily.run_forever()))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()  # a fatal error of one bot ends the process with its message
    finally:
        gc.unfreeze()
        await ctx.runtime.stop()
        await _close(ctx, adapters)


async def _close(ctx: BotContext, adapters: list[PlatformAdapter]) -> None:
    """Stop every adapter (one failing does not leave the others open), then the services."""
    for adapter in adapters:
        try:
            await adapter.stop()
        except Exception:
            log.exception("closing an adapter failed")
    await ctx.services.aclose()


def _outcome(ctx: BotContext, schedule: str, job_id: str) -> dict[str, Any]:
    """A queued daily post as `imagebot daily` reports it: its folders and its errors."""
    result = ctx.runtime.result_of(job_id) or {}
    folders, errors = [], [result["failed"]] if "failed" in result else []
    for batch in result.get("batches", []):
        row = ctx.services.index.get_batch(batch["id"])
        if row is not None and row.get("folder"):
            folders.append(row["folder"])
        errors += batch.get("errors") or []
    return {"schedule": schedule, "folders": folders, "errors": errors}


async def post_daily(settings: Settings, once: bool = True) -> list[dict[str, Any]]:
    """`imagebot daily [--once]`: queue the due daily posts (once, or on schedule until
    stopped) and answer them through the configured bots over REST only (no gateway, no
    polling); returns what each post queued by a single run recorded."""
    from imagebot.bot.daily import DailyScheduler

    ctx = build_context(settings)
    adapters: list[PlatformAdapter] = []
    try:
        adapters = [ADAPTERS[platform](ctx) for platform in configured_platforms(settings)]
        for adapter in adapters:
            await adapter.login()
        await ctx.runtime.start()
        scheduler = DailyScheduler(ctx.services, ctx.runtime)
        if not once:
            await scheduler.run_forever()
            return []
        await scheduler.run_due()
        await ctx.runtime.drain()
        return [_outcome(ctx, schedule, job_id) for schedule, job_id in scheduler.queued.items()]
    finally:
        await ctx.runtime.stop()
        await _close(ctx, adapters)
