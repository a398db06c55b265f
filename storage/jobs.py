"""The durable job queue: every accepted chat request is a row in `jobs` until it is answered."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from imagebot.storage.index import insert_row, iso, utc_now
from imagebot.storage.sql import Sql

# Jobs that count against the daily quota: asked for and not given back by a failure/cancel.
QUOTA_STATUSES = ("accepted", "running", "done")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("payload", "reply", "result"):
        value = row.get(key)
        row[key] = json.loads(value) if value else ({} if key != "result" else None)
    return row


class JobStore:
    """SQL for the `jobs` table (migration m002); each change is one transaction."""

    def __init__(self, db: Sql):
        self.db = db

    def add(self, row: dict[str, Any]) -> None:
        """Persist a new job as 'accepted' (before it is queued: a crash cannot lose it)."""
        record = {
            **row,
            "payload": json.dumps(row.get("payload") or {}, ensure_ascii=False),
            "reply": json.dumps(row.get("reply") or {}, ensure_ascii=False),
            "status": "accepted",
            "attempts": 0,
            "answered": 0,
            "created_at": row.get("created_at") or iso(utc_now()),
        }
        insert_row(self.db, "jobs", record)

    def get(self, job_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from jobs where id = ?", [job_id]))
        return _decode(rows[0]) if rows else None

    def unfinished(self, platforms: list[str]) -> list[dict[str, Any]]:
        """Jobs a previous process left accepted or running, oldest first."""
        if not platforms:
            return []
        marks = ", ".join("?" for _ in platforms)
        sql = (
            f"select * from jobs where status in ('accepted', 'running') "
            f"and answered = 0 and platform in ({marks}) order by created_at, rowid"
        )
        return [_decode(row) for row in self.db.query(sql, platforms)]

    def mark_running(self, job_id: str) -> None:
        with self.db.writing():
            self.db.execute(
                "update jobs set status = 'running', started_at = ?, "
                "attempts = coalesce(attempts, 0) + 1 where id = ?",
                [iso(utc_now()), job_id],
            )

    def record_result(self, job_id: str, result: dict[str, Any]) -> None:
        """Remember what the job produced (e.g. its archived batches) before answering."""
        with self.db.writing():
            self.db.execute(
                "update jobs set result = ? where id = ?",
                [json.dumps(result, ensure_ascii=False), job_id],
            )

    def finish(
        self, job_id: str, status: str, *, error: str | None = None, answered: bool = True
    ) -> None:
        """Mark a job done, failed or cancelled; `answered` says the user was told."""
        with self.db.writing():
            self.db.execute(
                "update jobs set status = ?, error = ?, answered = ?, finished_at = ? where id = ?",
                [status, error, int(answered), iso(utc_now()), job_id],
            )

    def requeue(self, job_id: str) -> None:
        """An interrupted job goes back to 'accepted', to be resumed by the next start."""
        with self.db.writing():
            self.db.execute(
                "update jobs set status = 'accepted' where id = ? and status = 'running'",
                [job_id],
            )

    def images_since(self, platform: str, user_id: str | None, since: datetime) -> int:
        """Images the user asked for since `since` that still count against the quota."""
        marks = ", ".join("?" for _ in QUOTA_STATUSES)
        rows = self.db.execute(
            f"select coalesce(sum(image_count), 0) from jobs where platform = ? and user_id = ? "
            f"and created_at >= ? and status in ({marks})",
            [platform, user_id, iso(since), *QUOTA_STATUSES],
        ).fetchall()
        return int(rows[0][0])
