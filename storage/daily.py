"""SQL for the `daily_schedules` table (migrations m003, m005): one schedule per chat."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from imagebot.storage.sql import Sql

TABLE = "daily_schedules"


def schedule_id(platform: str, chat_id: str) -> str:
    """The key of a chat's schedule: `platform:chat_id`."""
    return f"{platform}:{chat_id}"


def latest_slot(time_utc: str, now: datetime) -> datetime:
    """The last moment at or before `now` when a `HH:MM` (UTC) schedule was due."""
    hour, minute = (int(part) for part in time_utc.split(":"))
    now = now.astimezone(UTC)
    slot = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def next_slot(time_utc: str, now: datetime) -> datetime:
    """The first moment after `now` when a `HH:MM` (UTC) schedule is due."""
    return latest_slot(time_utc, now) + timedelta(days=1)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    value = row.get("reply")
    row["reply"] = json.loads(value) if value else {}
    return row


class DailyStore:
    """Schedules live in the index; every change is one transaction."""

    def __init__(self, db: Sql):
        self.db = db

    def upsert(self, row: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the chat's schedule (keyed by platform and chat id)."""
        record = {
            **row,
            "id": schedule_id(row["platform"], row["chat_id"]),
            "reply": json.dumps(row.get("reply") or {}, ensure_ascii=False),
        }
        self.db.upsert(TABLE, record)
        return self.get(row["platform"], row["chat_id"]) or {}

    def delete(self, platform: str, chat_id: str) -> bool:
        """Remove the chat's schedule; False when there was none."""
        with self.db.writing():
            cursor = self.db.execute(
                f"delete from {TABLE} where id = ?", [schedule_id(platform, chat_id)]
            )
        return cursor.rowcount > 0

    def get(self, platform: str, chat_id: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query(f"select * from {TABLE} where id = ?", [schedule_id(platform, chat_id)])
        )
        return _decode(rows[0]) if rows else None

    def all(self) -> list[dict[str, Any]]:
        """Every schedule, by time of day."""
        return [_decode(row) for row in self.db.query(f"select * from {TABLE} order by time_utc")]

    def list_due(self, now: datetime) -> list[tuple[dict[str, Any], datetime]]:
        """Schedules not yet run for their latest slot at or before `now`, with that slot."""
        due = []
        for row in self.all():
            slot = latest_slot(row["time_utc"], now)
            if (row.get("last_run_date") or "") < slot.date().isoformat():
                due.append((row, slot))
        return due

    def claim(self, sid: str, run_date: str, role: str | None) -> bool:
        """Mark `run_date` as run, only if nobody did yet: True for exactly one caller.

        One conditional UPDATE is atomic in SQLite, across connections and processes, so
        two schedulers (or a restart after a crash mid-render) never post the same day twice.
        """
        with self.db.writing():
            cursor = self.db.execute(
                f"update {TABLE} set last_run_date = ?, last_role = coalesce(?, last_role) "
                "where id = ? and coalesce(last_run_date, '') < ?",
                [run_date, role, sid, run_date],
            )
        return cursor.rowcount == 1
