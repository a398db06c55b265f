"""Discord shards across processes (DISCORD_SHARDS=I-J/N): each bot identifies with its shard,
the fake routes a guild's events to the shard owning it ((guild_id >> 22) % N) as Discord does,
and a /generate in each guild is answered by exactly the bot running that guild's shard."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from imagebot.bot.app import build_context
from imagebot.bot.discord.adapter import DiscordAdapter, ImageBot, ShardedImageBot
from tests.discord_harness import offline_settings, posted_batch, start_bot, stop_bot
from tests.fakes.discord_gateway import shard_of
from tests.fakes.discord_server import FakeDiscord


def answered_jobs(running: Any) -> list[tuple[str, str]]:
    """(guild, status) of every job this bot's process took, from its own index."""
    rows = running.ctx.services.index.db.query("select reply, status from jobs")
    return [(json.loads(row["reply"])["guild_id"], row["status"]) for row in rows]


async def test_each_shard_answers_only_its_own_guilds(tmp_path: Path) -> None:
    async with FakeDiscord(guild_count=2, shard_count=2) as fake:
        first, second = fake.guilds
        assert [shard_of(g.id, 2) for g in fake.guilds] == [0, 1]
        guilds = f"{first.id},{second.id}"
        bots = []
        try:
            for number, shards in enumerate(("0-0/2", "1-1/2")):
                settings = offline_settings(
                    fake, tmp_path / f"process{number}", DISCORD_SHARDS=shards,
                    DISCORD_GUILD_IDS=guilds,
                )  # fmt: skip
                bots.append(await start_bot(settings))
            assert sorted(d["shard"] for d in fake.gateway.identifies) == [[0, 2], [1, 2]]
            assert [isinstance(b.adapter.bot, ShardedImageBot) for b in bots] == [True, True]
            # Each process sees only its shard's guild, as Discord's READY tells it.
            assert [[str(g.id) for g in b.adapter.bot.guilds] for b in bots] == [
                [first.id],
                [second.id],
            ]

            records = []
            for guild in (first, second):
                options = {"count": 1, "size": "64x64"}
                records.append(await fake.send_slash_command("generate", options, guild=guild))
            for record in records:
                await posted_batch(fake, record, f"the batch of guild {record.guild_id}")
            # Marked done just after the post: wait for it, then each bot took only its guild.
            expected = [[(first.id, "done")], [(second.id, "done")]]
            await fake.wait_for(lambda: [answered_jobs(b) for b in bots] == expected, 30)
            assert [answered_jobs(b) for b in bots] == expected
            # Each batch was posted once, by one process.
            for record in records:
                posts = [m for m in fake.messages_for_interaction(record.id) if m.attachments]
                assert len(posts) == 1
        finally:
            for running in bots:
                await stop_bot(running)


async def test_without_discord_shards_the_client_is_unchanged(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        running = await start_bot(offline_settings(fake, tmp_path))
        try:
            assert type(running.adapter.bot) is ImageBot
            assert fake.gateway.identifies[-1].get("shard") in (None, [0, 1])
        finally:
            await stop_bot(running)


async def test_the_fake_refuses_a_bot_without_shards_when_discord_requires_them(
    tmp_path: Path,
) -> None:
    async with FakeDiscord(shard_count=2) as fake:
        settings = offline_settings(fake, tmp_path)
        ctx = build_context(settings)
        adapter = DiscordAdapter(ctx)
        try:
            await adapter.start()
            with pytest.raises(Exception, match="4011"):
                await adapter.wait()
        finally:
            await adapter.stop()
            await ctx.services.aclose()


async def test_two_bot_processes_split_the_guilds(tmp_path: Path) -> None:
    """`imagebot discord` twice, DISCORD_SHARDS=0-0/2 and 1-1/2: each answers its guild."""
    async with FakeDiscord(guild_count=2, shard_count=2) as fake:
        guilds = [guild.id for guild in fake.guilds]
        children = []
        try:
            for number, shards in enumerate(("0-0/2", "1-1/2")):
                env = {
                    **os.environ,
                    "IMAGEBOT_OUTPUT_DIR": str(tmp_path / f"process{number}"),
                    "IMAGEBOT_PROMPT_SOURCE": "templates",
                    "DISCORD_TOKEN": fake.token,
                    "DISCORD_API_BASE": fake.api_base,
                    "DISCORD_GUILD_IDS": ",".join(guilds),
                    "DISCORD_SHARDS": shards,
                }
                children.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-c", BOT_PROCESS, env=env, cwd=tmp_path,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )  # fmt: skip
            await fake.wait_for(lambda: len(fake.gateway.ready_sessions) == 2, 60, "2 shards")
            records = []
            for guild in fake.guilds:
                options = {"count": 1, "size": "64x64"}
                records.append(await fake.send_slash_command("generate", options, guild=guild))
            for record in records:
                await posted_batch(fake, record, f"the batch of guild {record.guild_id}", 60)
            # The job is marked done just after its post: wait for both before stopping.
            expected = [[(guild, "done")] for guild in guilds]
            await fake.wait_for(lambda: process_jobs(tmp_path) == expected, 60, "jobs done")
        finally:
            for child in children:
                if child.returncode is None:
                    child.terminate()
                await child.wait()
        assert process_jobs(tmp_path) == expected  # each process answered only its guild


def process_jobs(tmp_path: Path) -> list[list[tuple[str, str]]]:
    """(guild, status) of the jobs in each bot process's own index."""
    found = []
    for number in range(2):
        db = sqlite3.connect(tmp_path / f"process{number}" / "archive.db")
        try:
            rows = db.execute("select reply, status from jobs").fetchall()
        finally:
            db.close()
        found.append([(json.loads(reply)["guild_id"], status) for reply, status in rows])
    return found


BOT_PROCESS = "from imagebot.bot.cli import main; raise SystemExit(main(['discord']))"
