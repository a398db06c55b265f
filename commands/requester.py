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
        return None if self.platform == "cli" else self.row()

    def row(self) -> dict[str, Any]:
        """The index columns that say who asked."""
        return dict(vars(self))  # flat fields: no deep copy needed


CLI = Requester(platform="cli")
