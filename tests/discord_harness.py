"""The real discord.py bot against the loopback Discord fake: start, stop, and waits on what a
user sees. Shared by the Discord end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from imagebot.bot.app import BotContext, build_context
from imagebot.bot.discord.adapter import DiscordAdapter
from imagebot.bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord, InteractionRecord, StoredMessage


@dataclass
class Running:
    fake: FakeDiscord
    ctx: BotContext
    adapter: DiscordAdapter

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.ctx.services.index.db.query("select * from jobs"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def offline_settings(fake: FakeDiscord, tmp_path: Any, **extra: str) -> Settings:
    env = {
        "IMAGEBOT_OUTPUT_DIR": str(tmp_path / "out"),
        "IMAGEBOT_PROMPT_SOURCE": "templates",
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GUILD_IDS": fake.guild.id,
        **extra,
    }
    return Settings.from_env(environ=env, dotenv_path=None)


async def start_bot(settings: Settings, *, work: bool = True) -> Running:
    ctx = build_context(settings)
    adapter = DiscordAdapter(ctx, guild_ready_timeout=0.05)
    await adapter.start()
    await adapter.wait_until_ready(10)
    if work:
        await ctx.runtime.start()
    return Running(None, ctx, adapter)  # type: ignore[arg-type]


async def stop_bot(running: Running) -> None:
    await running.ctx.runtime.stop()
    await running.adapter.stop()
    await running.ctx.services.aclose()


@pytest.fixture
async def bot(fake: FakeDiscord, tmp_path: Any) -> AsyncIterator[Running]:
    running = None
    try:
        running = await start_bot(offline_settings(fake, tmp_path))
        running.fake = fake
        yield running
    finally:
        if running is not None:
            await stop_bot(running)


async def answers(
    fake: FakeDiscord, record: InteractionRecord, what: str, count: int = 1
) -> list[StoredMessage]:
    """Wait until the interaction produced `count` visible messages; return them."""

    def ready() -> list[StoredMessage] | None:
        found = fake.messages_for_interaction(record.id)
        return found if len(found) >= count else None

    return await fake.wait_for(ready, what=what)


async def posted_batch(
    fake: FakeDiscord, record: InteractionRecord, what: str, timeout: float = 10.0
) -> StoredMessage:
    """Wait until the interaction's batch (images and embed) is posted; return that message."""

    def found() -> StoredMessage | None:
        messages = fake.messages_for_interaction(record.id)
        return next((m for m in messages if m.attachments and m.embeds), None)

    return await fake.wait_for(found, timeout, what)
