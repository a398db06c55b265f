"""`/providers`: the configured providers, their models and sizes, and whether each answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagebot.commands.providers_report import providers_report

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort


async def show(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    services = chat.services
    text, _ = await providers_report(services.config, await services.http())
    await port.text(text, private=True)
