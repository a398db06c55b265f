"""The chat commands every adapter calls: one entry point, every rule behind it (SPEC §6–7)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from imagebot.commands.chat_args import generate_args
from imagebot.commands.chat_generate import GenerateFlow
from imagebot.commands.chat_misc import (
    PromptsFlow,
    cancel_text,
    export_chat,
    providers_text,
    queue_text,
)
from imagebot.commands.daily import handle_daily
from imagebot.commands.generate import DEFAULT_SIZE
from imagebot.commands.prompts import CHAT_MAX_PROMPTS
from imagebot.providers.base import ConfigError, ProviderError, UsageError
from imagebot.providers.catalog import PROVIDERS

if TYPE_CHECKING:
    from imagebot.bot.runtime import Runtime
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.commands")


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else "Something is wrong with that request."


class ChatCommands:
    """Platform-neutral chat commands; adapters call `handle` with an invocation and a port."""

    def __init__(self, services: Services, runtime: Runtime):
        self.services = services
        self.runtime = runtime
        self.generation = GenerateFlow(services, runtime)
        self.prompts = PromptsFlow(services, runtime)
        runtime.register_handler("generate", self.generation.run)
        runtime.register_handler("prompts", self.prompts.run)

    async def handle(self, invocation: Invocation, port: ReplyPort) -> None:
        """Run one command; bad input and refusals get one clear private reply."""
        command = invocation.command
        handlers = {
            "generate": self._generate,
            "prompts": self.prompts.request,
            "export": self._export,
            "daily": self._daily,
            "queue": self._queue,
            "cancel": self._cancel,
            "providers": self._providers,
            "help": self._help,
            "button": self.generation.button,
        }
        handler = handlers.get(command)
        try:
            if handler is None:
                raise UsageError(f"unknown command /{command}; see /help")
            await handler(invocation, port)
        except (UsageError, ConfigError) as exc:
            await port.text(_sentence(str(exc)), private=True)
        except ProviderError as exc:
            await port.text(_sentence(str(exc)), private=True)
        except Exception:
            log.exception("command /%s failed", command)
            await port.text(
                "Something went wrong on the bot's side; please try again later.", private=True
            )

    async def _generate(self, invocation: Invocation, port: ReplyPort) -> None:
        await self.generation.request(invocation, port, generate_args(invocation.args))

    async def _export(self, invocation: Invocation, port: ReplyPort) -> None:
        await export_chat(self.services, invocation, port)

    async def _daily(self, invocation: Invocation, port: ReplyPort) -> None:
        await handle_daily(self.services, invocation, port)

    async def _queue(self, invocation: Invocation, port: ReplyPort) -> None:
        await port.text(await queue_text(self.runtime, invocation), private=True)

    async def _cancel(self, invocation: Invocation, port: ReplyPort) -> None:
        await port.text(await cancel_text(self.runtime, invocation), private=True)

    async def _providers(self, invocation: Invocation, port: ReplyPort) -> None:
        await port.text(await providers_text(self.services), private=True)

    async def _help(self, invocation: Invocation, port: ReplyPort) -> None:
        await port.text(self.help_text(invocation.requester.platform), private=True)

    def help_text(self, platform: str) -> str:
        """Usage of every command, in the platform's own syntax."""
        settings = self.services.settings
        providers = ", ".join(settings.configured_providers())
        most = settings.max_images
        if platform == "discord":
            generate = "/generate count:4 size:512x512 provider:local theme:a foggy harbour"
            prompts, export = "/prompts count:10", "/export days:7"
        else:
            generate = "/generate 4 512x512 local a foggy harbour"
            prompts, export = "/prompts 10", "/export 7"
        quota = (
            f"{settings.daily_quota} images per person per UTC day"
            if settings.daily_quota
            else "no daily limit"
        )
        return "\n".join(
            [
                "imagebot invents image prompts, renders them and posts them here.",
                "",
                f"{generate}",
                f"  Make images of one new prompt. Everything is optional: count 1–{most} "
                f"(default 4), size WxH (default {DEFAULT_SIZE}), provider "
                f"(default {settings.default_provider}; configured: {providers}), theme.",
                f"{prompts}",
                f"  Write 1–{CHAT_MAX_PROMPTS} prompt specs and attach them as prompts.csv.",
                f"{export}",
                "  Moderators: this chat's archive as CSV (optionally the last N days only).",
                "/daily set HH:MM [provider] [size] [count] | /daily off | /daily show",
                "  Moderators: one automatic batch a day (not available yet).",
                "/queue — your place in the queue.   /cancel — cancel your request.",
                "/providers — the image providers, their models and sizes.",
                "/help — this text.",
                "",
                "Under each batch: 🎲 Re-roll (new prompt, same settings), "
                "🔁 Same prompt (new seeds), 🗑 Delete (the requester or a moderator).",
                f"Limits: one running request per person; {quota}. "
                f"Known providers: {', '.join(PROVIDERS)}.",
            ]
        )
