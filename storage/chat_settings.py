"""SQL for the `chat_settings` table (migration m007): one JSON object of defaults per chat."""

from __future__ import annotations

import json
from typing import Any

from imagebot.storage.index import iso, utc_now
from imagebot.storage.sql import Sql


def _key(platform: str, chat_id: str | None) -> str:
    return f"{platform}:{chat_id}"


class ChatSettingsStore:
    """A chat's defaults; every change is one transaction, read back at once."""

    def __init__(self, db: Sql):
        self.db = db

    def get(self, platform: str, chat_id: str | None) -> dict[str, Any]:
        """The keys a moderator set for the chat ({} when none, or no chat)."""
        if chat_id is None:
            return {}
        rows = self.db.execute(
            "select settings from chat_settings where id = ?", [_key(platform, chat_id)]
        ).fetchall()
        return json.loads(rows[0][0]) if rows else {}

    def put(
        self, platform: str, chat_id: str, values: dict[str, Any], by: str | None
    ) -> dict[str, Any]:
        """Replace the chat's settings with `values` (an empty dict removes the row)."""
        key = _key(platform, chat_id)
        with self.db.writing():
            if not values:
                self.db.execute("delete from chat_settings where id = ?", [key])
            else:
                self.db.upsert(
                    "chat_settings",
                    {
                        "id": key,
                        "platform": platform,
                        "chat_id": chat_id,
                        "settings": json.dumps(values),
                        "updated_by": by,
                        "updated_at": iso(utc_now()),
                    },
                )
        return dict(values)
