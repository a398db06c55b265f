"""Which chat messages make up one posted batch, kept so delete works after a restart."""

from __future__ import annotations

import json

from imagebot.storage.index import iso, utc_now
from imagebot.storage.sql import Sql


def _key(platform: str, chat_id: int | str, message_id: int | str) -> str:
    return f"{platform}:{chat_id}:{message_id}"


class PostStore:
    """The messages of each post, keyed by the message its buttons are on."""

    def __init__(self, db: Sql, platform: str):
        self.db = db
        self.platform = platform

    def remember(
        self, chat_id: int, message_id: int, parts: list[int], batch_id: str | None = None
    ) -> None:
        """Record that `parts` belong to the post of `batch_id` whose buttons are on
        `message_id`."""
        key = _key(self.platform, chat_id, message_id)
        row = {"id": key, "parts": json.dumps(parts), "created_at": iso(utc_now())}
        self.db.upsert("posts", {**row, "batch_id": batch_id})

    def batch_on(self, chat_id: int, message_id: int) -> str | None:
        """The batch posted in that message, when known."""
        key = _key(self.platform, chat_id, message_id)
        rows = self.db.execute("select batch_id from posts where id = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def take(self, chat_id: int, message_id: int) -> list[int] | None:
        """The other messages of that post (forgetting them), or None when unknown."""
        key = _key(self.platform, chat_id, message_id)
        rows = self.db.execute("select parts from posts where id = ?", [key]).fetchall()
        if not rows:
            return None
        with self.db.writing():
            self.db.execute("delete from posts where id = ?", [key])
        return [int(part) for part in json.loads(rows[0][0])]
