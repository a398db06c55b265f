"""The floor of the acknowledgement bench: a bare discord.py bot whose /generate only defers.

bench_discord.py runs it against the same fake and the same bursts as `imagebot discord`, so
the figures separate what discord.py and the machine cost from what imagebot adds.
Environment: DISCORD_TOKEN, DISCORD_API_BASE, DISCORD_GUILD_IDS (one guild).
"""

from __future__ import annotations

import asyncio
import os

import discord
import yarl
from discord import app_commands


async def generate(interaction: discord.Interaction, count: int = 1, size: str = "") -> None:
    await interaction.response.defer(thinking=True)


async def main() -> None:
    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    guild = discord.Object(int(os.environ["DISCORD_GUILD_IDS"]))
    # The same intents as imagebot, so both receive the same gateway traffic.
    client = discord.Client(intents=discord.Intents(guilds=True))
    tree = app_commands.CommandTree(client)
    command = app_commands.Command(name="generate", description="defer", callback=generate)
    tree.add_command(command, guild=guild)
    async with client:
        await client.login(os.environ["DISCORD_TOKEN"])
        _, url, _ = await client.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await tree.sync(guild=guild)
        await client.connect()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
