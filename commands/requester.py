"""Who asked: the platform-neutral identity every command and archive row carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Requester:
    """A user in a chat on a platform (`cli` for the command line, `daily` for schedules)."""

    platform: str
    user_id: str | None = None
    user_name: str | None = None
    chat_id: str | None = None
    guild_id: str | None = None

    def info(self) -> dict[str, Any] | None:
        """`requested_by` of info.json: null for the command line."""
        if self.platform == "cli":
            return None
        return {
            "platform": self.platform,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "chat_id": self.chat_id,
            "guild_id": self.guild_id,
        }

    def row(self) -> dict[str, Any]:
        """The index columns that say who asked."""
        return {
            "platform": self.platform,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "chat_id": self.chat_id,
            "guild_id": self.guild_id,
        }


CLI = Requester(platform="cli")
