"""The slash commands of the Discord bot, rendered from the declarations in commands.catalog.

Each command only gathers its options and calls ImageBot.run_command; validation (ranges,
sizes, providers, who may do what) happens once, in commands/. Discord reads the options from
a callback's signature, so each callback gets one built from the declared arguments.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from imagebot.commands.catalog import COMMANDS, Arg, Command, describe

if TYPE_CHECKING:
    from imagebot.bot.discord.adapter import ImageBot
    from imagebot.commands.config import CommandConfig

COMMON_SIZES = ("1024x1024", "512x512", "256x256", "768x768", "1024x576", "576x1024")
COMMON_SIZES += ("1280x720", "720x1280", "1024x768", "768x1024", "1536x1024", "1024x1536")
DESCRIPTION_MAX = 100  # Discord's limit for command and option descriptions


async def complete_size(interaction: discord.Interaction, current: str) -> list[Any]:
    typed = current.strip().lower()
    found = [s for s in COMMON_SIZES if s.startswith(typed)] or list(COMMON_SIZES)
    return [app_commands.Choice(name=s, value=s) for s in found[:25]]


def _annotation(arg: Arg, config: CommandConfig) -> Any:
    limit = arg.limit(config)
    if arg.kind in ("count", "number"):
        return app_commands.Range[int, arg.minimum, limit] if limit else int
    if arg.kind == "text" and limit:
        return app_commands.Range[str, 1, limit]
    if arg.kind == "time":
        return app_commands.Range[str, 3, 5]
    return str


def _callback(bot: ImageBot, name: str, action: str | None, args: tuple[Arg, ...], config: Any):
    async def callback(interaction: discord.Interaction, **options: Any) -> None:
        if action is not None:
            options["action"] = action
        await bot.run_command(interaction, name, options)

    parameters = [
        inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=discord.Interaction)
    ]  # fmt: skip
    for arg in sorted(args, key=lambda a: not a.required):  # Discord wants required first
        annotation = _annotation(arg, config)
        parameters.append(
            inspect.Parameter(
                arg.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=annotation if arg.required else annotation | None,
                default=inspect.Parameter.empty if arg.required else None,
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return callback


def _command(bot: ImageBot, declared: Command, parent: str | None) -> app_commands.Command:
    config = bot.services.config
    name = parent or declared.name
    action = declared.name if parent else None
    callback = _callback(bot, name, action, declared.args, config)
    described = {arg.name: describe(arg, config)[:DESCRIPTION_MAX] for arg in declared.args}
    if described:
        callback = app_commands.describe(**described)(callback)
    providers = [app_commands.Choice(name=p, value=p) for p in config.configured]
    for arg in declared.args:
        if arg.kind == "provider":
            callback = app_commands.choices(**{arg.name: providers})(callback)
        elif arg.kind == "key":
            keys = [app_commands.Choice(name=k, value=k) for k in arg.choices]
            callback = app_commands.choices(**{arg.name: keys})(callback)
        elif arg.kind == "size":
            callback = app_commands.autocomplete(**{arg.name: complete_size})(callback)
    return app_commands.Command(
        name=declared.name, description=declared.description[:DESCRIPTION_MAX], callback=callback
    )


def slash_commands(bot: ImageBot) -> list[app_commands.Command | app_commands.Group]:
    """Every declared command as a slash command (a group for /daily and /settings)."""
    rendered: list[app_commands.Command | app_commands.Group] = []
    for declared in COMMANDS:
        if not declared.actions:
            rendered.append(_command(bot, declared, None))
            continue
        group = app_commands.Group(
            name=declared.name, description=declared.description[:DESCRIPTION_MAX]
        )
        for action in declared.actions:
            group.add_command(_command(bot, action, declared.name))
        rendered.append(group)
    return rendered


def add_commands(bot: ImageBot) -> None:
    """Put every declared command on the bot's tree."""
    for command in slash_commands(bot):
        bot.tree.add_command(command)
