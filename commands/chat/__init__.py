"""The chat commands every adapter calls: one entry point per event, one per queued job.

`handle` applies what the declaration says (who may run it, allow-lists, required arguments,
acknowledging slow commands) before the command's own module runs; `run` is the worker's side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from imagebot.commands.arguments import missing, named
from imagebot.commands.catalog import BY_NAME, Command
from imagebot.commands.chat import (
    buttons,
    daily,
    export,
    help,
    prompts,
    providers,
    queue,
    settings,
    upscale,
)
from imagebot.commands.chat.generate import GenerateCommand
from imagebot.commands.limits import NotAllowed, check_allowed, check_moderator
from imagebot.providers.base import ConfigError, ProviderError, UsageError
from imagebot.storage.index import utc_now

if TYPE_CHECKING:
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import JobQueue, ReplyPort, RunningJob
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.commands")
BROKEN = "Something went wrong on the bot's side; please try again later."


def sentence(text: str) -> str:
    """An error as the user reads it: a capital first letter."""
    text = text.strip()
    return text[:1].upper() + text[1:] if text else "Something is wrong with that request."


class ChatCommands:
    """Platform-neutral chat commands over the services and the durable queue."""

    def __init__(
        self, services: Services, queue: JobQueue, clock: Callable[[], datetime] = utc_now
    ):
        self.services = services
        self.queue = queue
        self.clock = clock  # "now" for commands that speak of times (/daily)
        self.generation = GenerateCommand(services, queue)

    async def handle(self, invocation: Invocation, port: ReplyPort) -> None:
        """Run one command or button press; bad input and refusals get one private reply."""
        try:
            if invocation.command == "button":
                await buttons.press(self, invocation, port)
            else:
                await self._command(invocation, port)
        except (UsageError, ConfigError, ProviderError) as exc:
            await port.text(sentence(str(exc)), private=True)
        except Exception:
            log.exception("command /%s failed", invocation.command)
            await port.text(BROKEN, private=True)

    async def _command(self, invocation: Invocation, port: ReplyPort) -> None:
        command = BY_NAME.get(invocation.command)
        if command is None:
            raise UsageError(f"unknown command /{invocation.command}; see /help")
        try:
            await self._declared(command, invocation, port)
        except NotAllowed:
            raise
        except UsageError as exc:
            if not command.actions:
                raise
            # A group's actions (/daily set, /settings reset) change things: say none did.
            raise UsageError(f"{sentence(str(exc)).rstrip('.')}. Nothing was changed.") from None

    async def _declared(self, command: Command, invocation: Invocation, port: ReplyPort) -> None:
        """What the declaration says first (who, where, what is missing), then the command."""
        args = named(command, invocation.args)
        declared = command.action(args["action"]) if command.actions else command
        assert declared is not None
        if declared.moderators:
            name = f"{command.name} {declared.name}" if command.actions else command.name
            check_moderator(invocation, name)
        if command.allow_listed:
            check_allowed(self.services.config, invocation)
        problem = missing(command, args)
        if problem:
            raise UsageError(problem)
        if command.slow:
            await port.acknowledge(private=declared.private)
        await HANDLERS[command.name](self, invocation, port, args)

    async def run(self, job: RunningJob) -> None:
        """Do a queued job and answer it (the runtime calls this in a worker)."""
        await WORKERS[job.job.kind](self, job)


async def _generate(chat: ChatCommands, inv: Invocation, port: ReplyPort, args: Any) -> None:
    await chat.generation.request(inv, port, args)


HANDLERS = {
    "generate": _generate,
    "prompts": prompts.request,
    "export": export.run,
    "daily": daily.run,
    "settings": settings.run,
    "queue": queue.show,
    "cancel": queue.cancel,
    "providers": providers.show,
    "help": help.show,
}
WORKERS = {
    "generate": lambda chat, job: chat.generation.run(job),
    "prompts": prompts.run,
    "upscale": upscale.run,
}
