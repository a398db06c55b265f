"""A chat command as every adapter hands it over: who, where, what, and how to answer later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imagebot.commands.requester import Requester


@dataclass(frozen=True)
class Invocation:
    """One user's command, platform-neutral.

    `args` holds the arguments as the platform gives them: Discord's named options
    (`{"count": 4, "size": "512x512", "provider": "dalle", "theme": "..."}`), or Telegram's
    words (`{"text": "4 512x512 dalle a foggy harbour"}`), which commands parse by their form.
    `reply` is a JSON-able address the adapter can turn back into a ReplyPort after a
    restart (Discord: interaction token and its expiry, channel; Telegram: chat, message).
    """

    requester: Requester
    command: str  # generate, prompts, export, daily, queue, cancel, providers, help, button
    args: dict[str, Any] = field(default_factory=dict)
    is_moderator: bool = False
    role_ids: tuple[str, ...] = ()  # Discord roles of the member, for IMAGEBOT_ALLOWED_ROLES
    reply: dict[str, Any] = field(default_factory=dict)
