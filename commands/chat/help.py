"""`/help`: usage of every declared command, in the platform's own syntax."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagebot.commands.catalog import COMMANDS, Command, describe
from imagebot.commands.generate import DEFAULT_SIZE
from imagebot.providers.catalog import PROVIDERS

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.config import CommandConfig
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort

NAMED_OPTIONS = {"discord"}  # platforms whose arguments are named options, not words


def example(command: Command, platform: str, parent: str | None = None) -> str:
    """`/generate count:4 size:512x512 …` on Discord, `/generate 4 512x512 …` elsewhere."""
    name = f"/{parent} {command.name}" if parent else f"/{command.name}"
    if platform in NAMED_OPTIONS:
        parts = [f"{arg.name}:{arg.example}" for arg in command.args]
    else:
        parts = [arg.example for arg in command.args]
    return " ".join([name, *parts])


def _entry(command: Command, config: CommandConfig, platform: str, parent: str | None) -> str:
    args = "; ".join(f"{arg.name}: {describe(arg, config)}" for arg in command.args)
    details = f" ({args})" if args else ""
    return f"{example(command, platform, parent)}\n  {command.description}{details}."


def help_text(config: CommandConfig, platform: str) -> str:
    """Every command, its arguments and limits, then the buttons and the limits that apply."""
    lines = ["imagebot invents image prompts, renders them and posts them here.", ""]
    for command in COMMANDS:
        if command.actions:
            lines.append(f"/{command.name}: {command.description}.")
            lines += [_entry(action, config, platform, command.name) for action in command.actions]
        else:
            lines.append(_entry(command, config, platform, None))
    quota = (
        f"{config.daily_quota} images per person per UTC day"
        if config.daily_quota
        else "no daily limit"
    )
    lines += [
        "",
        "Under each batch: 🎲 Re-roll (new prompt, same settings), "
        "🔁 Same prompt (new seeds), 🗑 Delete (the requester or a moderator).",
        f"Defaults: {DEFAULT_SIZE}, provider {config.default_provider} "
        f"(configured: {', '.join(config.configured)}; known: {', '.join(PROVIDERS)}).",
        f"Limits: one running request per person; {quota}.",
    ]
    return "\n".join(lines)


async def show(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    platform = invocation.requester.platform
    await port.text(help_text(chat.services.config, platform), private=True)
