"""Every chat command, declared once: its name, arguments with their limits, description, who
may use it and whether its replies are private. The Discord adapter renders these into slash
commands, the Telegram adapter into BotCommands and word parsing, the web chat into its form,
and /help reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagebot.commands.config import CommandConfig

MAX_THEME = 300
MAX_EXPORT_DAYS = 3650
CHAT_MAX_PROMPTS = 50
SETTING_KEYS = ("provider", "size", "count", "role", "quota", "spoiler")

# Argument kinds, and how each is recognised among Telegram's words:
#   count  a whole number, only as the first word      size      WxH
#   number a whole number anywhere                     provider  a provider's name
#   time   HH:MM                                       key       one of `choices`
#   text   everything else, in order (at most one text argument, always last)


@dataclass(frozen=True)
class Arg:
    """One argument of a command."""

    name: str
    kind: str
    description: str
    example: str
    required: bool = False
    minimum: int = 1
    maximum: int | str | None = None  # a number, or the name of a CommandConfig limit
    choices: tuple[str, ...] = ()

    def limit(self, config: CommandConfig) -> int | None:
        """The largest allowed value (numbers) or length (text)."""
        if isinstance(self.maximum, str):
            return int(getattr(config, self.maximum))
        return self.maximum


@dataclass(frozen=True)
class Command:
    """A chat command, or one action of a command group (`/daily set`)."""

    name: str
    description: str
    args: tuple[Arg, ...] = ()
    moderators: bool = False  # only moderators may run it
    allow_listed: bool = False  # IMAGEBOT_ALLOWED_* apply (commands that make things)
    private: bool = False  # replies only the asker sees (Discord: ephemeral)
    slow: bool = False  # acknowledged before it runs (health checks, exports)
    actions: tuple[Command, ...] = ()  # a group: /daily set|off|show

    def action(self, name: str) -> Command | None:
        return next((action for action in self.actions if action.name == name), None)


COUNT = Arg("count", "count", "how many images (1-{max}, default 4)", "4", maximum="max_images")
SIZE = Arg("size", "size", "WxH, e.g. 1024x1024 (the default) or 1024x576", "512x512")
PROVIDER = Arg("provider", "provider", "who renders them (default {default})", "local")
THEME = Arg("theme", "text", "what the images should be about", "a foggy harbour",
            maximum=MAX_THEME)  # fmt: skip

COMMANDS: tuple[Command, ...] = (
    Command(
        "generate",
        "Invent a prompt and render images of it",
        (COUNT, SIZE, PROVIDER, THEME),
        allow_listed=True,
    ),
    Command(
        "prompts",
        "Write prompt specs, attached as prompts.csv",
        (
            Arg(
                "count",
                "count",
                f"how many prompt specs (1-{CHAT_MAX_PROMPTS}, default 10)",
                "10",
                maximum=CHAT_MAX_PROMPTS,
            ),
            THEME,
        ),
        allow_listed=True,
    ),  # fmt: skip
    Command(
        "export",
        "Moderators: this chat's archive as CSV",
        (
            Arg(
                "days",
                "number",
                "only the last N days (default: everything)",
                "7",
                maximum=MAX_EXPORT_DAYS,
            ),
        ),
        moderators=True,
        private=True,
        slow=True,
    ),  # fmt: skip
    Command(
        "daily",
        "Moderators: one automatic batch here every day",
        actions=(
            Command(
                "set",
                "Post one batch here every day at TIME (UTC)",
                (
                    Arg("time", "time", "HH:MM, UTC", "09:30", required=True),
                    PROVIDER,
                    SIZE,
                    Arg("count", "number", COUNT.description, "4", maximum="max_images"),
                ),
                moderators=True,
            ),
            Command("off", "Stop the daily post here", moderators=True),
            Command("show", "Show this chat's daily post", moderators=True, private=True),
        ),
    ),  # fmt: skip
    Command(
        "settings",
        "This chat's defaults: provider, size, count, role, quota, spoiler",
        actions=(
            Command("show", "Show this chat's defaults", private=True),
            Command(
                "set",
                "Moderators: change one default",
                (
                    Arg(
                        "key", "key", "what to change", "size", required=True, choices=SETTING_KEYS
                    ),
                    Arg("value", "text", "the new value", "512x512", required=True, maximum=100),
                ),
                moderators=True,
            ),
            Command(
                "reset",
                "Moderators: back to the bot's defaults (one key, or all)",
                (
                    Arg(
                        "key",
                        "key",
                        "what to reset (default: everything)",
                        "size",
                        choices=SETTING_KEYS,
                    ),
                ),
                moderators=True,
            ),
        ),
    ),  # fmt: skip
    Command("queue", "Your place in the queue", private=True),
    Command("cancel", "Cancel your waiting or running request", private=True),
    Command(
        "providers",
        "The image providers, their models and sizes, and whether each answers",
        private=True,
        slow=True,
    ),
    Command("help", "How to use imagebot", private=True),
)
BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}


def describe(arg: Arg, config: CommandConfig) -> str:
    """An argument's description with this installation's limits filled in."""
    return arg.description.format(max=arg.limit(config), default=config.default_provider)
