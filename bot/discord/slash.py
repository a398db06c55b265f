"""The slash commands of the Discord bot: names, described options, choices, autocomplete.

Each command only gathers its options and calls ImageBot.run_command; validation (ranges,
sizes, providers, who may do what) happens once, in commands/.
"""

# No `from __future__ import annotations` here: discord.py reads the option types from the
# annotations, and the ranges depend on settings (closure variables it could not resolve).
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from imagebot.commands.prompts import CHAT_MAX_PROMPTS

if TYPE_CHECKING:
    from imagebot.bot.discord.adapter import ImageBot

MAX_DAYS = 3650


def add_commands(bot: "ImageBot") -> None:
    """Add generate, prompts, export, daily, queue, cancel, providers and help to the tree."""
    from imagebot.bot.discord.adapter import COMMON_SIZES

    settings = bot.settings
    most = settings.max_images
    providers = [app_commands.Choice(name=p, value=p) for p in settings.configured_providers()]

    async def sizes(interaction: discord.Interaction, current: str) -> list[app_commands.Choice]:
        typed = current.strip().lower()
        found = [s for s in COMMON_SIZES if s.startswith(typed)] or list(COMMON_SIZES)
        return [app_commands.Choice(name=s, value=s) for s in found[:25]]

    @app_commands.command(name="generate", description="Make images of one new prompt spec")
    @app_commands.describe(
        count=f"how many images (1-{most}, default 4)",
        size="WxH, e.g. 1024x1024 (the default) or 1024x576",
        provider=f"who renders them (default {settings.default_provider})",
        theme="what the images should be about",
    )
    @app_commands.choices(provider=providers)
    @app_commands.autocomplete(size=sizes)
    async def generate(
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, most] | None = None,
        size: str | None = None,
        provider: str | None = None,
        theme: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        args = {"count": count, "size": size, "provider": provider, "theme": theme}
        await bot.run_command(interaction, "generate", args)

    @app_commands.command(name="prompts", description="Write prompt specs, attached as CSV")
    @app_commands.describe(count=f"how many prompt specs (1-{CHAT_MAX_PROMPTS})")
    async def prompts(
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, CHAT_MAX_PROMPTS] | None = None,
    ) -> None:
        await bot.run_command(interaction, "prompts", {"count": count})

    @app_commands.command(name="export", description="Moderators: this channel's archive as CSV")
    @app_commands.describe(days="only the last N days (default: everything)")
    async def export(
        interaction: discord.Interaction, days: app_commands.Range[int, 1, MAX_DAYS] | None = None
    ) -> None:
        await bot.run_command(interaction, "export", {"days": days})

    daily = app_commands.Group(name="daily", description="Moderators: one batch every day")

    @daily.command(name="set", description="Post one batch here every day at TIME (UTC)")
    @app_commands.describe(
        time="HH:MM, UTC",
        provider="who renders it",
        size="WxH",
        count=f"how many images (1-{most})",
    )
    @app_commands.choices(provider=providers)
    @app_commands.autocomplete(size=sizes)
    async def daily_set(
        interaction: discord.Interaction,
        time: app_commands.Range[str, 3, 5],
        provider: str | None = None,
        size: str | None = None,
        count: app_commands.Range[int, 1, most] | None = None,
    ) -> None:
        args = {"action": "set", "time": time, "provider": provider, "size": size, "count": count}
        await bot.run_command(interaction, "daily", args)

    @daily.command(name="off", description="Stop the daily post in this channel")
    async def daily_off(interaction: discord.Interaction) -> None:
        await bot.run_command(interaction, "daily", {"action": "off"})

    @daily.command(name="show", description="Show this channel's daily post")
    async def daily_show(interaction: discord.Interaction) -> None:
        await bot.run_command(interaction, "daily", {"action": "show"})

    @app_commands.command(name="queue", description="Your place in the queue")
    async def queue(interaction: discord.Interaction) -> None:
        await bot.run_command(interaction, "queue", {})

    @app_commands.command(name="cancel", description="Cancel your waiting or running request")
    async def cancel(interaction: discord.Interaction) -> None:
        await bot.run_command(interaction, "cancel", {})

    @app_commands.command(name="providers", description="The image providers and their sizes")
    async def providers_command(interaction: discord.Interaction) -> None:
        await bot.run_command(interaction, "providers", {})

    @app_commands.command(name="help", description="How to use imagebot")
    async def help_command(interaction: discord.Interaction) -> None:
        await bot.run_command(interaction, "help", {})

    for command in (generate, prompts, export, daily, queue, cancel, providers_command):
        bot.tree.add_command(command)
    bot.tree.add_command(help_command)
